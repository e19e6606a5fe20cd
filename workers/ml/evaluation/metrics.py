"""Every metric an experiment reports or ranks by, computed one way for tuning, evaluation and monitoring.

`score(name, ...)` is the single entry point: the search scores trials with it, evaluation fills its tables with it.
Names are those of workers.ml.training.spec.METRICS. Binary scores use the probability of the positive class (the
second of `classes`); multiclass log loss uses the full probability matrix.
"""

from collections.abc import Sequence

import numpy as np
from sklearn import metrics as skm

from workers.ml.training.spec import LOWER_IS_BETTER, METRICS


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
    if name in ("f1_macro", "f1_weighted"):
        return float(skm.f1_score(y_true, y_pred, average=name.split("_")[1], zero_division=0))
    if name == "roc_auc":
        return float(skm.roc_auc_score(np.asarray(y_true) == classes[1], _positive_proba(y_proba)))
    if name == "pr_auc":
        return float(skm.average_precision_score(np.asarray(y_true) == classes[1], _positive_proba(y_proba)))
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
    raise ValueError(f"Unknown metric {name!r}; known: {sorted({m for names in METRICS.values() for m in names})}.")


def higher_is_better(name: str) -> bool:
    return name not in LOWER_IS_BETTER
