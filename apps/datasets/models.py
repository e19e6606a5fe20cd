from django.conf import settings
from django.db import models

from apps.core.models import BaseModel
from apps.datasets.choices import ConnectionEngine, JobStatus, SourceKind, ValidationStatus


class Dataset(BaseModel):
    """A named collection of immutable versions in one project, with its validation rules and column marks."""

    project = models.ForeignKey("projects.Project", on_delete=models.PROTECT, related_name="datasets")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    # The rules each new version is validated against (workers.ml.data.validation.ValidationRules.as_dict()).
    # Empty means "the previous version's schema, when there is one", so schema drift is caught by default.
    validation_rules = models.JSONField(default=dict, blank=True)
    # {column: {"personal": bool, "sensitive": bool, "excluded": bool}}; copied into each new version.
    column_marks = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["project", "name"], name="unique_dataset_name_per_project")]

    def __str__(self) -> str:
        return self.name


class DatasetVersion(BaseModel):
    """One immutable snapshot: the original bytes, a normalised Parquet copy, and what was learned about them."""

    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64, help_text="SHA-256 of the original bytes, as received.")
    source_kind = models.CharField(max_length=10, choices=SourceKind.choices)
    source_display = models.CharField(
        max_length=500, help_text="File name, object URI or connection name; display only."
    )
    file_format = models.CharField(max_length=20)
    original_key = models.CharField(max_length=1024)
    original_size = models.BigIntegerField()
    parquet_key = models.CharField(max_length=1024)
    parquet_sha256 = models.CharField(max_length=64)
    parquet_size = models.BigIntegerField()
    row_count = models.BigIntegerField()
    column_count = models.PositiveIntegerField()
    schema = models.JSONField(help_text="[{name, dtype, nullable, semantic_type}]")
    profile = models.JSONField(help_text="[{name, missing_share, distinct, min, max, mean, ..., histogram}]")
    pii_findings = models.JSONField(default=list, help_text="[{column, kind, share, reason}]")
    column_marks = models.JSONField(default=dict, help_text="The dataset's column marks when this version was made.")
    validation_rules = models.JSONField(default=dict, help_text="The rules this version was validated against.")
    validation_status = models.CharField(max_length=10, choices=ValidationStatus.choices)
    validation_report = models.JSONField(default=dict)
    override_reason = models.TextField(blank=True)
    overridden_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    overridden_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["dataset", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["dataset", "number"], name="unique_version_number_per_dataset"),
            models.UniqueConstraint(fields=["dataset", "sha256"], name="unique_version_content_per_dataset"),
        ]

    def __str__(self) -> str:
        return f"{self.dataset.name} v{self.number}"

    @property
    def usable_for_training(self) -> bool:
        return self.validation_status == ValidationStatus.PASSED or bool(self.override_reason)


class DataConnection(BaseModel):
    """A read-only database a project may pull datasets from. The password is stored encrypted, never shown back."""

    project = models.ForeignKey("projects.Project", on_delete=models.PROTECT, related_name="data_connections")
    name = models.CharField(max_length=100)
    engine = models.CharField(max_length=20, choices=ConnectionEngine.choices, default=ConnectionEngine.POSTGRESQL)
    host = models.CharField(max_length=255)
    port = models.PositiveIntegerField(default=5432)
    database = models.CharField(max_length=100)
    username = models.CharField(max_length=100)
    encrypted_password = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["project", "name"], name="unique_connection_name_per_project")]

    def __str__(self) -> str:
        return self.name


class IngestionJob(BaseModel):
    """One background ingestion: from a source to a new (or an identical existing) dataset version."""

    project = models.ForeignKey("projects.Project", on_delete=models.PROTECT, related_name="ingestion_jobs")
    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="ingestion_jobs")
    source_kind = models.CharField(max_length=10, choices=SourceKind.choices)
    source_display = models.CharField(
        max_length=500, help_text="File name, object URI or connection name; display only."
    )
    staging_key = models.CharField(max_length=1024, blank=True, help_text="Where an upload waits for the worker.")
    s3_uri = models.CharField(max_length=1024, blank=True)
    connection = models.ForeignKey(DataConnection, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    query = models.TextField(blank=True)
    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED, db_index=True)
    progress = models.FloatField(default=0.0)
    progress_message = models.CharField(max_length=200, blank=True)
    error = models.TextField(blank=True)
    error_code = models.CharField(max_length=50, blank=True)
    task_id = models.CharField(max_length=64, blank=True)
    queued_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    version = models.ForeignKey(DatasetVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    deduplicated = models.BooleanField(default=False, help_text="The content matched an existing version.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["-queued_at"]

    def __str__(self) -> str:
        return f"Ingestion {self.pk} ({self.status})"
