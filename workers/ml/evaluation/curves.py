"""The pictures of an evaluation as data the browser draws: confusion matrix, ROC, PR and calibration curves (binary),
residuals (regression). Curves are thinned to at most MAX_CURVE_POINTS points, enough for a chart."""

import numpy as np
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve

MAX_CURVE_POINTS = 200
MAX_RESIDUAL_POINTS = 500
CALIBRATION_BINS = 10


def thin(length: int, max_points: int = MAX_CURVE_POINTS) -> np.ndarray:
    """Evenly spaced positions into a sequence of `length`, first and last kept."""
    if length <= max_points:
        return np.arange(length)
    return np.unique(np.linspace(0, length - 1, max_points).round().astype(int))


def confusion(y_true, y_pred, classes) -> dict:
    """Rows are the true class, columns the predicted one, both in the order of `labels`."""
    matrix = skm.confusion_matrix(y_true, y_pred, labels=list(classes))
    return {"labels": list(classes), "matrix": matrix.tolist()}


def binary_curves(is_positive: np.ndarray, positive_proba: np.ndarray) -> dict:
    """ROC, precision-recall and calibration of the positive class; None for a curve the test set cannot draw (it
    holds a single class)."""
    if is_positive.all() or not is_positive.any():
        return {"roc": None, "pr": None, "calibration": None}
    fpr, tpr, roc_thresholds = skm.roc_curve(is_positive, positive_proba)
    keep = thin(len(fpr))
    precision, recall, _ = skm.precision_recall_curve(is_positive, positive_proba)
    keep_pr = thin(len(precision))
    fraction_positive, mean_predicted = calibration_curve(is_positive, positive_proba, n_bins=CALIBRATION_BINS)
    return {
        # The first ROC threshold is +inf (nothing predicted positive): it becomes None in JSON.
        "roc": {"fpr": fpr[keep], "tpr": tpr[keep], "thresholds": roc_thresholds[keep]},
        "pr": {"precision": precision[keep_pr], "recall": recall[keep_pr]},
        "calibration": {
            "mean_predicted": mean_predicted,
            "fraction_positive": fraction_positive,
            "brier_score": float(skm.brier_score_loss(is_positive, positive_proba)),
        },
    }


def residuals(y_true: np.ndarray, y_pred: np.ndarray, *, seed: int) -> dict:
    """A seeded sample of (predicted, residual = true - predicted) points."""
    positions = np.arange(len(y_true))
    if len(positions) > MAX_RESIDUAL_POINTS:
        positions = np.sort(np.random.default_rng(seed).choice(positions, MAX_RESIDUAL_POINTS, replace=False))
    return {"predicted": y_pred[positions], "residual": y_true[positions] - y_pred[positions]}
