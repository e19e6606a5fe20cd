"""The model against its project: the success threshold, the baseline, and the business value on the test set.

Business value, on the test set, in the project's currency (the same figures as apps/projects/roi.py):
- binary: value_per_correct_decision * (TP + TN) - cost_false_positive * FP - cost_false_negative * FN, from the
  model's own decisions; then the decision threshold on the positive-class probability ("positive when p >=
  threshold") that maximises it, swept over every distinct predicted probability, against the default of 0.5;
- multiclass: value_per_correct_decision * right - cost_per_misclassification * wrong;
- regression: value_per_correct_decision * n - cost_per_unit_error * sum(|error|); without a value per decision only
  the errors count (as in roi.py);
- clustering: not computed (no right or wrong decisions).
"""

import numpy as np

from workers.ml.evaluation.curves import thin
from workers.ml.evaluation.targets import ProjectTargets
from workers.ml.training.spec import LOWER_IS_BETTER

DEFAULT_THRESHOLD = 0.5
BINARY_COUNTS = ("true_positive", "false_positive", "true_negative", "false_negative")
REQUIRED_FIGURES = {
    "binary": ("value_per_correct_decision", "cost_false_positive", "cost_false_negative"),
    "multiclass": ("value_per_correct_decision", "cost_per_misclassification"),
    "regression": ("cost_per_unit_error",),
}


def project_verdict(targets: ProjectTargets, test_metrics: dict) -> dict:
    """Pass/fail on the threshold and lift over the baseline, for the project's primary metric on the test set."""
    metric = targets.primary_metric
    value = test_metrics.get(metric)
    lower_is_better = metric in LOWER_IS_BETTER
    verdict = {
        "primary_metric": metric,
        "direction": "lower_is_better" if lower_is_better else "higher_is_better",
        "value": value,
        "threshold": targets.threshold,
        "passed": None,
        "baseline": targets.baseline_value,
        "lift": None,
    }
    if not metric:
        verdict["note"] = "The project has no success criterion yet."
        return verdict
    if value is None:
        verdict["note"] = f"The test set gives no {metric} for this model, so the success criterion cannot be judged."
        return verdict
    if targets.threshold is not None:
        verdict["passed"] = value <= targets.threshold if lower_is_better else value >= targets.threshold
    if targets.baseline_value is not None:
        difference = value - targets.baseline_value
        verdict["lift"] = {
            "difference": difference,
            "relative": difference / abs(targets.baseline_value) if targets.baseline_value else None,
            "better_than_baseline": difference < 0 if lower_is_better else difference > 0,
        }
    return verdict


def _missing_figures(targets: ProjectTargets, problem_type: str) -> dict | None:
    """Why the value cannot be computed (clustering, missing ROI figures), or None."""
    if problem_type not in REQUIRED_FIGURES:
        return {
            "computed": False,
            "missing": [],
            "reason": "Clustering has no right or wrong decisions to put a value on.",
        }
    missing = [name for name in REQUIRED_FIGURES[problem_type] if getattr(targets, name) is None]
    if missing:
        return {
            "computed": False,
            "missing": missing,
            "reason": "Set these ROI figures on the project to see the model's business value: " + ", ".join(missing),
        }
    return None


def business_value(
    targets: ProjectTargets, *, problem_type: str, y_true, y_pred, positive_proba=None, classes=None
) -> dict:
    """The expected value on the test set (see the module docstring)."""
    refusal = _missing_figures(targets, problem_type)
    if refusal is not None:
        return refusal
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if problem_type == "binary":
        return _binary_value(targets, y_true, y_pred, positive_proba, classes)
    if problem_type == "multiclass":
        right = int((y_true == y_pred).sum())
        return value_from_counts(
            targets, problem_type="multiclass", counts={"right": right, "wrong": len(y_true) - right}
        )
    absolute_error = float(np.abs(y_true.astype(float) - y_pred.astype(float)).sum())
    return value_from_counts(
        targets, problem_type="regression", counts={"decisions": len(y_true), "sum_absolute_error": absolute_error}
    )


def value_from_counts(targets: ProjectTargets, *, problem_type: str, counts: dict) -> dict:
    """The value of decisions given by their counts (the module docstring's formulas): binary true_positive,
    false_positive, true_negative, false_negative; multiclass right, wrong; regression decisions,
    sum_absolute_error. Used for the expected value on the test set and the realised value on live outcomes."""
    refusal = _missing_figures(targets, problem_type)
    if refusal is not None:
        return refusal
    if problem_type == "binary":
        counts = {key: int(counts.get(key, 0)) for key in BINARY_COUNTS}
        return _result(targets, _binary_total(targets, **counts), sum(counts.values()), counts=counts)
    if problem_type == "multiclass":
        right, wrong = int(counts.get("right", 0)), int(counts.get("wrong", 0))
        total = targets.value_per_correct_decision * right - targets.cost_per_misclassification * wrong
        return _result(targets, total, right + wrong, counts={"right": right, "wrong": wrong})
    return _regression_value(targets, int(counts["decisions"]), float(counts["sum_absolute_error"]))


def _binary_value(targets, y_true, y_pred, positive_proba, classes) -> dict:
    positive = classes[1]
    is_positive, predicted_positive = y_true == positive, y_pred == positive
    counts = {
        "true_positive": int((is_positive & predicted_positive).sum()),
        "false_positive": int((~is_positive & predicted_positive).sum()),
        "true_negative": int((~is_positive & ~predicted_positive).sum()),
        "false_negative": int((is_positive & ~predicted_positive).sum()),
    }
    result = value_from_counts(targets, problem_type="binary", counts=counts)
    if positive_proba is not None:
        result["threshold"] = best_threshold(targets, is_positive, np.asarray(positive_proba, dtype=float))
    return result


def _binary_total(targets, *, true_positive, false_positive, true_negative, false_negative):
    return (
        targets.value_per_correct_decision * (true_positive + true_negative)
        - targets.cost_false_positive * false_positive
        - targets.cost_false_negative * false_negative
    )


def best_threshold(targets: ProjectTargets, is_positive: np.ndarray, positive_proba: np.ndarray) -> dict:
    """Sweep "positive when p >= threshold" over every distinct probability (plus one above them all: nothing
    positive) and keep the threshold of the highest total value (the highest such threshold on ties)."""
    order = np.argsort(-positive_proba, kind="stable")
    proba, positives = positive_proba[order], is_positive[order]
    # The last row of each group of equal probabilities: everything up to it is predicted positive.
    cuts = np.flatnonzero(np.append(proba[1:] != proba[:-1], True))
    true_positive = np.concatenate(([0], np.cumsum(positives)[cuts]))
    false_positive = np.concatenate(([0], np.cumsum(~positives)[cuts]))
    thresholds = np.concatenate(([np.nextafter(proba[0], np.inf)], proba[cuts]))
    total_positive, total_negative = int(positives.sum()), int((~positives).sum())
    values = _binary_total(
        targets,
        true_positive=true_positive,
        false_positive=false_positive,
        true_negative=total_negative - false_positive,
        false_negative=total_positive - true_positive,
    )
    best = int(np.argmax(values))
    predicted_default = positive_proba >= DEFAULT_THRESHOLD
    value_at_default = _binary_total(
        targets,
        true_positive=int((predicted_default & is_positive).sum()),
        false_positive=int((predicted_default & ~is_positive).sum()),
        true_negative=int((~predicted_default & ~is_positive).sum()),
        false_negative=int((~predicted_default & is_positive).sum()),
    )
    keep = thin(len(thresholds))
    n = len(positive_proba)
    return {
        "best": float(thresholds[best]),
        "value_at_best": float(values[best]),
        "value_per_decision_at_best": float(values[best]) / n,
        "default": DEFAULT_THRESHOLD,
        "value_at_default": float(value_at_default),
        "value_per_decision_at_default": float(value_at_default) / n,
        "gain_over_default": float(values[best] - value_at_default),
        "curve": {"thresholds": thresholds[keep], "values": values[keep]},
    }


def _regression_value(targets, decisions: int, absolute_error: float) -> dict:
    assumptions = []
    value_per_decision = targets.value_per_correct_decision
    if value_per_decision is None:
        value_per_decision = 0.0
        assumptions.append("No value per decision was given: only the cost of the errors counts.")
    total = value_per_decision * decisions - targets.cost_per_unit_error * absolute_error
    result = _result(targets, total, decisions, counts={"sum_absolute_error": absolute_error})
    result["assumptions"] = assumptions
    return result


def _result(targets: ProjectTargets, total: float, decisions: int, *, counts: dict) -> dict:
    return {
        "computed": True,
        "currency": targets.currency,
        "decisions": decisions,
        "total": float(total),
        "per_decision": float(total) / decisions,
        "counts": counts,
        "assumptions": [],
    }
