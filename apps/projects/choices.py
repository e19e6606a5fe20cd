from django.db import models


class ProjectStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    SUBMITTED = "submitted", "Submitted"
    APPROVED = "approved", "Approved for development"
    IN_PRODUCTION = "in_production", "In production"
    RETIRED = "retired", "Retired"


class ProblemType(models.TextChoices):
    BINARY = "binary", "Binary classification"
    MULTICLASS = "multiclass", "Multiclass classification"
    REGRESSION = "regression", "Regression"
    CLUSTERING = "clustering", "Clustering"


class Metric(models.TextChoices):
    ACCURACY = "accuracy", "Accuracy"
    PRECISION = "precision", "Precision"
    RECALL = "recall", "Recall"
    F1 = "f1", "F1"
    ROC_AUC = "roc_auc", "ROC AUC"
    PR_AUC = "pr_auc", "PR AUC (average precision)"
    F1_MACRO = "f1_macro", "F1 (macro)"
    F1_WEIGHTED = "f1_weighted", "F1 (weighted)"
    LOG_LOSS = "log_loss", "Log loss"
    RMSE = "rmse", "RMSE"
    MAE = "mae", "MAE"
    MAPE = "mape", "MAPE"
    R2 = "r2", "R²"
    SILHOUETTE = "silhouette", "Silhouette"
    DAVIES_BOULDIN = "davies_bouldin", "Davies–Bouldin"
    CALINSKI_HARABASZ = "calinski_harabasz", "Calinski–Harabasz"


METRICS_BY_PROBLEM_TYPE: dict[str, list[str]] = {
    ProblemType.BINARY: [
        Metric.ACCURACY,
        Metric.PRECISION,
        Metric.RECALL,
        Metric.F1,
        Metric.ROC_AUC,
        Metric.PR_AUC,
        Metric.LOG_LOSS,
    ],
    ProblemType.MULTICLASS: [Metric.ACCURACY, Metric.F1_MACRO, Metric.F1_WEIGHTED, Metric.LOG_LOSS],
    ProblemType.REGRESSION: [Metric.RMSE, Metric.MAE, Metric.MAPE, Metric.R2],
    ProblemType.CLUSTERING: [Metric.SILHOUETTE, Metric.DAVIES_BOULDIN, Metric.CALINSKI_HARABASZ],
}

# Metrics where a smaller value is better; a threshold on them reads "<=".
LOWER_IS_BETTER = {Metric.LOG_LOSS, Metric.RMSE, Metric.MAE, Metric.MAPE, Metric.DAVIES_BOULDIN}

# The range a threshold may take, inclusive; None is unbounded.
METRIC_RANGES: dict[str, tuple[float | None, float | None]] = {
    Metric.ACCURACY: (0, 1),
    Metric.PRECISION: (0, 1),
    Metric.RECALL: (0, 1),
    Metric.F1: (0, 1),
    Metric.ROC_AUC: (0, 1),
    Metric.PR_AUC: (0, 1),
    Metric.F1_MACRO: (0, 1),
    Metric.F1_WEIGHTED: (0, 1),
    Metric.LOG_LOSS: (0, None),
    Metric.RMSE: (0, None),
    Metric.MAE: (0, None),
    Metric.MAPE: (0, None),
    Metric.R2: (None, 1),
    Metric.SILHOUETTE: (-1, 1),
    Metric.DAVIES_BOULDIN: (0, None),
    Metric.CALINSKI_HARABASZ: (0, None),
}
