"""Every metric an experiment reports or ranks by, computed one way for tuning, evaluation and monitoring.

`score(name, ...)` is the single entry point: the search scores trials with it, evaluation fills its tables with it.
Names are those of workers.ml.training.spec.METRICS. Binary scores use the probability of the positive class (the
second of `classes`); multiclass log loss and one-vs-rest ROC AUC use the full probability matrix.
`REPORTED_METRICS` lists what an evaluation reports per problem type: the rankable METRICS plus a few that are only
shown (macro precision and recall, one-vs-rest ROC AUC for multiclass).
"""

from collections.abc import Sequence

import numpy as np
from sklearn import metrics as skm

from workers.ml.training.spec import LOWER_IS_BETTER, METRICS

REPORTED_METRICS: dict[str, tuple[str, ...]] = {
    **METRICS,
    "multiclass": (*METRICS["multiclass"], "precision_macro", "recall_macro", "roc_auc_ovr"),
}
# Metrics that need class probabilities (a model without predict_proba reports None for them).
PROBABILITY_METRICS = frozenset({"roc_auc", "pr_auc", "log_loss", "roc_auc_ovr"})


def _positive_proba(y_proba: np.ndarray) -> np.ndarray:
    y_proba = np.asarray(y_proba)
    return y_proba[:, 1] if y_proba.ndim == 2 else y_proba


def score(
    name: str,
    y_true=None,
    *,
    y_pred=None,
    y_proba=None,
    classes: Sequence | None = None,
    X=None,
    cluster_labels=None,
) -> float:
    """One metric. Classification needs y_true, y_pred and (for roc_auc, pr_auc, log_loss) y_proba with columns in
    the order of `classes`; regression needs y_true and y_pred; clustering needs X (the prepared matrix) and
    cluster_labels."""
    if name == "accuracy":
        return float(skm.accuracy_score(y_true, y_pred))
    if name == "balanced_accuracy":
        return float(skm.balanced_accuracy_score(y_true, y_pred))
    if name in ("precision", "recall", "f1"):
        function = {"precision": skm.precision_score, "recall": skm.recall_score, "f1": skm.f1_score}[name]
        return float(function(y_true, y_pred, pos_label=classes[1], zero_division=0))
    if name in ("f1_macro", "f1_weighted", "precision_macro", "recall_macro"):
        function = {"f1": skm.f1_score, "precision": skm.precision_score, "recall": skm.recall_score}
        kind, average = name.split("_")
        return float(function[kind](y_true, y_pred, average=average, zero_division=0))
    if name == "roc_auc":
        return float(skm.roc_auc_score(np.asarray(y_true) == classes[1], _positive_proba(y_proba)))
    if name == "pr_auc":
        return float(skm.average_precision_score(np.asarray(y_true) == classes[1], _positive_proba(y_proba)))
    if name == "roc_auc_ovr":
        return float(skm.roc_auc_score(y_true, y_proba, multi_class="ovr", average="macro", labels=list(classes)))
    if name == "log_loss":
        return float(skm.log_loss(y_true, y_proba, labels=list(classes)))
    if name == "rmse":
        return float(skm.root_mean_squared_error(y_true, y_pred))
    if name == "mae":
        return float(skm.mean_absolute_error(y_true, y_pred))
    if name == "mape":
        return float(skm.mean_absolute_percentage_error(y_true, y_pred))
    if name == "r2":
        return float(skm.r2_score(y_true, y_pred))
    if name == "silhouette":
        return float(
            skm.silhouette_score(X, cluster_labels, sample_size=min(len(cluster_labels), 10_000), random_state=0)
        )
    if name == "davies_bouldin":
        return float(skm.davies_bouldin_score(X, cluster_labels))
    if name == "calinski_harabasz":
        return float(skm.calinski_harabasz_score(X, cluster_labels))
    known = sorted({metric for names in REPORTED_METRICS.values() for metric in names})
    raise ValueError(f"Unknown metric {name!r}; known: {known}.")


def higher_is_better(name: str) -> bool:
    return name not in LOWER_IS_BETTER
