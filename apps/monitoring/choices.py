from django.db import models


class WindowKind(models.TextChoices):
    """Which logged predictions a check looks at."""

    HOURS = "hours", "The last N hours"
    PREDICTIONS = "predictions", "The last N predictions"


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class Figure(models.TextChoices):
    """What an alert rule watches (the check records each of them)."""

    DRIFT_SHARE = "drift_share", "Share of drifted input columns"
    PREDICTION_DRIFT = "prediction_drift_score", "Prediction drift score"
    METRIC = "metric", "A performance metric (from ground truth)"
    LATENCY_P99 = "latency_p99_ms", "p99 latency (ms)"
    ERROR_RATE = "error_rate", "Error rate"
    REALISED_VALUE = "realised_value_per_decision", "Realised value per decision"


class Operator(models.TextChoices):
    ABOVE = "above", "above"
    BELOW = "below", "below"


class Severity(models.TextChoices):
    INFO = "info", "Info"
    WARNING = "warning", "Warning"
    CRITICAL = "critical", "Critical"


class AlertStatus(models.TextChoices):
    OPEN = "open", "Open"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    RESOLVED = "resolved", "Resolved"


class RetrainingTrigger(models.TextChoices):
    DRIFT_ALERT = "drift_alert", "A drift alert"
    PERFORMANCE_ALERT = "performance_alert", "A performance alert"
    SCHEDULE = "schedule", "The schedule"
    MANUAL = "manual", "By hand"


class RetrainingStatus(models.TextChoices):
    TRAINING = "training", "Training"  # the experiment runs
    REQUESTED = "requested", "Promotion requested"  # best run registered, request open: a reviewer decides
    FAILED = "failed", "Failed"
