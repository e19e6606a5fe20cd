from django.db import models


class ValueType(models.TextChoices):
    FLOAT = "float", "Floating point"
    INTEGER = "int", "Integer"
    STRING = "string", "String"
    BOOLEAN = "bool", "Boolean"
    TIMESTAMP = "timestamp", "Timestamp"


class JobStatus(models.TextChoices):
    """The status of every background operation of the feature store (materialisations, training sets, syncs)."""

    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


FINISHED_STATUSES = {JobStatus.SUCCEEDED, JobStatus.FAILED}
ACTIVE_STATUSES = {JobStatus.QUEUED, JobStatus.RUNNING}
