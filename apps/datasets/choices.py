from django.db import models


class SourceKind(models.TextChoices):
    UPLOAD = "upload", "File upload"
    S3 = "s3", "Object in the S3 store"
    SQL = "sql", "SQL query"


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


FINISHED_JOB_STATUSES = {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED}


class ValidationStatus(models.TextChoices):
    PASSED = "passed", "Passed"
    FAILED = "failed", "Failed"


class SemanticType(models.TextChoices):
    NUMERIC = "numeric", "Numeric"
    CATEGORICAL = "categorical", "Categorical"
    DATETIME = "datetime", "Date/time"
    TEXT = "text", "Text"
    ID = "id", "Identifier"
    BOOLEAN = "boolean", "Boolean"


class ConnectionEngine(models.TextChoices):
    POSTGRESQL = "postgresql", "PostgreSQL"
