"""Every reported metric against scikit-learn on fixed data."""

import numpy as np
import pytest
from sklearn import metrics as skm

from workers.ml.evaluation.metrics import REPORTED_METRICS, score
from workers.ml.training.spec import METRICS

Y_TRUE = np.array(["no", "yes", "yes", "no", "yes", "no", "yes", "yes"])
Y_PRED = np.array(["no", "yes", "no", "no", "yes", "yes", "yes", "no"])
P_YES = np.array([0.1, 0.9, 0.4, 0.2, 0.8, 0.6, 0.7, 0.45])
PROBA = np.column_stack([1 - P_YES, P_YES])
CLASSES = ("no", "yes")

M_TRUE = np.array(["a", "b", "c", "a", "b", "c", "a", "c"])
M_PRED = np.array(["a", "b", "b", "a", "c", "c", "a", "a"])
M_PROBA = np.array(
    [
        [0.7, 0.2, 0.1],
        [0.1, 0.8, 0.1],
        [0.2, 0.5, 0.3],
        [0.6, 0.3, 0.1],
        [0.2, 0.3, 0.5],
        [0.1, 0.2, 0.7],
        [0.5, 0.25, 0.25],
        [0.4, 0.3, 0.3],
    ]
)
M_CLASSES = ("a", "b", "c")

R_TRUE = np.array([3.0, 5.0, 2.5, 7.0, 4.0])
R_PRED = np.array([2.5, 5.5, 2.0, 8.0, 4.0])

BINARY_EXPECTED = {
    "accuracy": skm.accuracy_score(Y_TRUE, Y_PRED),
    "balanced_accuracy": skm.balanced_accuracy_score(Y_TRUE, Y_PRED),
    "precision": skm.precision_score(Y_TRUE, Y_PRED, pos_label="yes"),
    "recall": skm.recall_score(Y_TRUE, Y_PRED, pos_label="yes"),
    "f1": skm.f1_score(Y_TRUE, Y_PRED, pos_label="yes"),
    "roc_auc": skm.roc_auc_score(Y_TRUE == "yes", P_YES),
    "pr_auc": skm.average_precision_score(Y_TRUE == "yes", P_YES),
    "log_loss": skm.log_loss(Y_TRUE, PROBA, labels=list(CLASSES)),
}
MULTICLASS_EXPECTED = {
    "accuracy": skm.accuracy_score(M_TRUE, M_PRED),
    "balanced_accuracy": skm.balanced_accuracy_score(M_TRUE, M_PRED),
    "f1_macro": skm.f1_score(M_TRUE, M_PRED, average="macro"),
    "f1_weighted": skm.f1_score(M_TRUE, M_PRED, average="weighted"),
    "log_loss": skm.log_loss(M_TRUE, M_PROBA, labels=list(M_CLASSES)),
    "precision_macro": skm.precision_score(M_TRUE, M_PRED, average="macro"),
    "recall_macro": skm.recall_score(M_TRUE, M_PRED, average="macro"),
    "roc_auc_ovr": skm.roc_auc_score(M_TRUE, M_PROBA, multi_class="ovr", labels=list(M_CLASSES)),
}
REGRESSION_EXPECTED = {
    "rmse": np.sqrt(np.mean((R_TRUE - R_PRED) ** 2)),
    "mae": np.mean(np.abs(R_TRUE - R_PRED)),
    "mape": np.mean(np.abs(R_TRUE - R_PRED) / np.abs(R_TRUE)),
    "r2": 1 - np.sum((R_TRUE - R_PRED) ** 2) / np.sum((R_TRUE - R_TRUE.mean()) ** 2),
}


def test_reported_metrics_extend_the_rankable_ones():
    for problem_type, names in METRICS.items():
        assert set(names) <= set(REPORTED_METRICS[problem_type])
    assert set(REPORTED_METRICS["multiclass"]) == set(MULTICLASS_EXPECTED)
    assert set(REPORTED_METRICS["binary"]) == set(BINARY_EXPECTED)
    assert set(REPORTED_METRICS["regression"]) == set(REGRESSION_EXPECTED)


@pytest.mark.parametrize("name", sorted(BINARY_EXPECTED))
def test_binary_metric_matches_sklearn(name):
    value = score(name, Y_TRUE, y_pred=Y_PRED, y_proba=PROBA, classes=CLASSES)
    assert value == pytest.approx(BINARY_EXPECTED[name], abs=1e-12)


def test_binary_metrics_by_hand():
    # TP = 3 (rows 1, 4, 6), FP = 1 (row 5), FN = 2 (rows 2, 7), TN = 2 (rows 0, 3).
    assert score("accuracy", Y_TRUE, y_pred=Y_PRED, classes=CLASSES) == pytest.approx(5 / 8)
    assert score("precision", Y_TRUE, y_pred=Y_PRED, classes=CLASSES) == pytest.approx(3 / 4)
    assert score("recall", Y_TRUE, y_pred=Y_PRED, classes=CLASSES) == pytest.approx(3 / 5)
    assert score("balanced_accuracy", Y_TRUE, y_pred=Y_PRED, classes=CLASSES) == pytest.approx((3 / 5 + 2 / 3) / 2)


@pytest.mark.parametrize("name", sorted(MULTICLASS_EXPECTED))
def test_multiclass_metric_matches_sklearn(name):
    value = score(name, M_TRUE, y_pred=M_PRED, y_proba=M_PROBA, classes=M_CLASSES)
    assert value == pytest.approx(MULTICLASS_EXPECTED[name], abs=1e-12)


@pytest.mark.parametrize("name", sorted(REGRESSION_EXPECTED))
def test_regression_metric_matches_a_hand_computation(name):
    assert score(name, R_TRUE, y_pred=R_PRED) == pytest.approx(REGRESSION_EXPECTED[name], abs=1e-12)


def test_clustering_metrics_match_sklearn():
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(0, 0.3, (30, 2)), rng.normal(3, 0.3, (30, 2))])
    labels = np.repeat([0, 1], 30)
    assert score("silhouette", X=X, cluster_labels=labels) == pytest.approx(skm.silhouette_score(X, labels))
    assert score("davies_bouldin", X=X, cluster_labels=labels) == pytest.approx(skm.davies_bouldin_score(X, labels))
    assert score("calinski_harabasz", X=X, cluster_labels=labels) == pytest.approx(
        skm.calinski_harabasz_score(X, labels)
    )


def test_unknown_metric_names_the_known_ones():
    with pytest.raises(ValueError, match=r"Unknown metric 'auc'.*roc_auc_ovr"):
        score("auc", Y_TRUE, y_pred=Y_PRED)
