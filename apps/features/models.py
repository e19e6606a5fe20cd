"""The feature catalog (entities, feature views, features and their immutable versions) and the feature store's
background work (materialisations, training sets, online syncs), each a row with a status."""

from django.conf import settings
from django.db import models

from apps.core.models import BaseModel
from apps.features.choices import JobStatus, ValueType


class Entity(BaseModel):
    """What features describe (a customer, an account), identified by one or more join keys."""

    name = models.CharField(max_length=100, unique=True)
    join_keys = models.JSONField(help_text="The key column names, in order, e.g. ['customer_id'].")
    description = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "entities"

    def __str__(self) -> str:
        return self.name


class FeatureView(BaseModel):
    """A group of features of one entity, synced to the online store together."""

    name = models.CharField(max_length=100, unique=True)
    entity = models.ForeignKey(Entity, on_delete=models.PROTECT, related_name="views")
    description = models.TextField(blank=True)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    tags = models.JSONField(default=list, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Feature(BaseModel):
    """A named feature of a view; its definition lives in its versions (the newest one is current)."""

    view = models.ForeignKey(FeatureView, on_delete=models.PROTECT, related_name="features")
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    tags = models.JSONField(default=list, blank=True)
    value_type = models.CharField(max_length=10, choices=ValueType.choices, default=ValueType.FLOAT)

    class Meta:
        ordering = ["view__name", "name"]
        constraints = [models.UniqueConstraint(fields=["view", "name"], name="unique_feature_name_per_view")]

    def __str__(self) -> str:
        return f"{self.view.name}:{self.name}"


class FeatureVersion(BaseModel):
    """One immutable definition of a feature. A changed definition is a new version; old ones stay usable.

    The source is a dataset (not one of its versions): materialisation reads the dataset's newest usable version.
    """

    feature = models.ForeignKey(Feature, on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField()
    dataset = models.ForeignKey("datasets.Dataset", on_delete=models.PROTECT, related_name="feature_versions")
    source_columns = models.JSONField(help_text="The dataset columns the value is computed from.")
    timestamp_column = models.CharField(max_length=200)
    entity_columns = models.JSONField(help_text="Dataset columns holding the entity's join keys, in the same order.")
    transformation = models.JSONField(help_text="The transformation spec, as validated by the engine.")
    expression_tree = models.JSONField(null=True, blank=True, help_text="The parsed tree of an expression.")
    # Copied from the source columns' marks when the version was defined: later marks do not change a definition.
    personal = models.BooleanField(default=False)
    sensitive = models.BooleanField(default=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["feature", "-number"]
        constraints = [models.UniqueConstraint(fields=["feature", "number"], name="unique_version_number_per_feature")]

    def __str__(self) -> str:
        return f"{self.feature} v{self.number}"


class JobRow(BaseModel):
    """What every background operation records: status, timestamps, error and the Celery task id."""

    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED, db_index=True)
    error = models.TextField(blank=True)
    task_id = models.CharField(max_length=64, blank=True)
    queued_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True


class MaterialisationJob(JobRow):
    """Compute a feature version's values over [range_start, range_end) from one dataset version into Parquet."""

    feature_version = models.ForeignKey(FeatureVersion, on_delete=models.PROTECT, related_name="materialisations")
    dataset_version = models.ForeignKey("datasets.DatasetVersion", on_delete=models.PROTECT, related_name="+")
    range_start = models.DateTimeField(null=True, blank=True, help_text="Empty: from the first event.")
    range_end = models.DateTimeField()
    rows = models.BigIntegerField(default=0)
    artifact_keys = models.JSONField(default=list, blank=True)
    statistics = models.JSONField(default=dict, blank=True)
    max_event_timestamp = models.DateTimeField(null=True, blank=True, help_text="The newest event materialised.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["-queued_at"]

    def __str__(self) -> str:
        return f"Materialisation {self.pk} ({self.status})"


class TrainingSet(JobRow):
    """A point-in-time correct join of a spine dataset version with catalog feature versions; its result is a new
    version of `output_dataset`, usable in the experiment form."""

    project = models.ForeignKey("projects.Project", on_delete=models.PROTECT, related_name="training_sets")
    name = models.CharField(max_length=200)
    spine_version = models.ForeignKey("datasets.DatasetVersion", on_delete=models.PROTECT, related_name="+")
    spine_key_columns = models.JSONField(help_text="Spine columns matched, in order, to the entity's join keys.")
    spine_timestamp_column = models.CharField(max_length=200)
    label_column = models.CharField(max_length=200, blank=True)
    output_dataset = models.ForeignKey("datasets.Dataset", on_delete=models.PROTECT, related_name="+")
    ingestion_job = models.ForeignKey(
        "datasets.IngestionJob", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    result_version = models.ForeignKey(
        "datasets.DatasetVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="training_sets"
    )
    lineage = models.JSONField(default=dict, blank=True)
    feature_versions = models.ManyToManyField(FeatureVersion, through="TrainingSetFeature", related_name="+")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["-queued_at"]

    def __str__(self) -> str:
        return self.name


class TrainingSetFeature(BaseModel):
    """One feature version in a training set, under its output column name, with its maximum age."""

    training_set = models.ForeignKey(TrainingSet, on_delete=models.CASCADE, related_name="items")
    feature_version = models.ForeignKey(FeatureVersion, on_delete=models.PROTECT, related_name="training_set_items")
    output_name = models.CharField(max_length=200)
    max_age_seconds = models.PositiveIntegerField(null=True, blank=True, help_text="Empty: any age.")

    class Meta:
        ordering = ["output_name"]
        constraints = [
            models.UniqueConstraint(fields=["training_set", "output_name"], name="unique_output_name_per_training_set")
        ]


class PersonalFeatureException(BaseModel):
    """A compliance officer's written permission for a personal feature version in a project's training sets."""

    project = models.ForeignKey("projects.Project", on_delete=models.PROTECT, related_name="+")
    feature_version = models.ForeignKey(FeatureVersion, on_delete=models.PROTECT, related_name="exceptions")
    reason = models.TextField()
    granted_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["project", "feature_version"], name="unique_exception_per_project")
        ]


class OnlineSync(JobRow):
    """Write the latest value per entity of a view's features into the online store (Redis)."""

    view = models.ForeignKey(FeatureView, on_delete=models.PROTECT, related_name="online_syncs")
    rows = models.BigIntegerField(default=0)
    features = models.JSONField(default=dict, blank=True, help_text="{feature name: feature version id} synced.")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["-queued_at"]

    def __str__(self) -> str:
        return f"Online sync of {self.view.name} ({self.status})"
