from django.db import models


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


FINISHED_RUN_STATUSES = {RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED}
ACTIVE_RUN_STATUSES = {RunStatus.QUEUED, RunStatus.RUNNING}


class ExperimentStatus(models.TextChoices):
    """Derived from the runs by the services whenever a run changes (services.experiment_refresh_status)."""

    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"  # every run finished and at least one succeeded
    FAILED = "failed", "Failed"  # every run finished, none succeeded
    CANCELLED = "cancelled", "Cancelled"  # cancelled before any run succeeded


class LogLevel(models.TextChoices):
    INFO = "info", "Info"
    WARNING = "warning", "Warning"
    ERROR = "error", "Error"
