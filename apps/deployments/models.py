"""Deployments: a named endpoint serving versions of one registered model, its traffic routes and their history,
what the reconciler observed, the prediction log imported from the model servers, ground truth and explanations of
logged predictions (docs/adr/0011-deployments.md)."""

from django.conf import settings
from django.db import models
from django.db.models import Q

from apps.core.models import BaseModel
from apps.deployments.choices import (
    DeploymentStatus,
    Environment,
    ExplanationStatus,
    RolloutState,
    RouteRole,
    Strategy,
    TrafficChangeKind,
)


class Deployment(BaseModel):
    """What should run (routes, replicas, strategy: the desired state, changed by services only) and what the
    reconciler last saw running (status, url, replicas, applied revision)."""

    project = models.ForeignKey("projects.Project", on_delete=models.PROTECT, related_name="deployments")
    registered_model = models.ForeignKey(
        "registry.RegisteredModel", on_delete=models.PROTECT, related_name="deployments"
    )
    name = models.SlugField(max_length=63, unique=True, help_text="The endpoint's name, unique on the platform.")
    description = models.TextField(blank=True)
    environment = models.CharField(max_length=12, choices=Environment.choices, default=Environment.PRODUCTION)
    runner = models.CharField(max_length=12, default="local", help_text="local, docker or kubernetes.")
    replicas = models.PositiveSmallIntegerField(default=1)
    strategy = models.CharField(max_length=12, choices=Strategy.choices, default=Strategy.DIRECT)
    sticky_key = models.CharField(max_length=100, blank=True, help_text="A/B: the header or column keeping a client.")
    # Clients send this view's entity keys; the server fetches its features from the online store.
    feature_view = models.ForeignKey(
        "features.FeatureView", null=True, blank=True, on_delete=models.PROTECT, related_name="deployments"
    )
    # Canary policy: raise the new version's share by `canary_step_percent` every `canary_step_seconds` while its
    # error rate and p99 latency stay within the limits over at least `canary_min_requests` requests; else roll back.
    canary_step_percent = models.PositiveSmallIntegerField(default=10)
    canary_step_seconds = models.PositiveIntegerField(default=300)
    canary_max_error_rate = models.FloatField(default=0.02)
    canary_max_p99_ms = models.FloatField(null=True, blank=True, help_text="Empty: the project's latency budget.")
    canary_min_requests = models.PositiveIntegerField(default=20)
    rollout_state = models.CharField(max_length=12, choices=RolloutState.choices, default=RolloutState.NONE)
    rollout_step_started_at = models.DateTimeField(null=True, blank=True)
    # The version a blue-green or canary moves to (kept after it ends: the last rollout's target).
    rollout_version = models.ForeignKey(
        "registry.ModelVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # The desired state's revision: every change increments it; the reconciler records the one it applied.
    revision = models.PositiveIntegerField(default=1)
    applied_revision = models.PositiveIntegerField(default=0)
    status = models.CharField(
        max_length=10, choices=DeploymentStatus.choices, default=DeploymentStatus.PENDING, db_index=True
    )
    status_reason = models.TextField(blank=True)
    url = models.CharField(max_length=300, blank=True)
    observed = models.JSONField(default=dict, help_text="The runner's last status: replicas, readiness per version.")
    observed_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    stopped_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_stopped(self) -> bool:
        return self.stopped_at is not None


class DeploymentRoute(BaseModel):
    """One version the endpoint loads: live with a weight (0 = loaded, ready to take over) or shadow."""

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="routes")
    version = models.ForeignKey("registry.ModelVersion", on_delete=models.PROTECT, related_name="routes")
    role = models.CharField(max_length=8, choices=RouteRole.choices, default=RouteRole.LIVE)
    weight = models.PositiveSmallIntegerField(default=100)
    variant = models.CharField(max_length=50, help_text="The label of this route in logs and metrics.")

    class Meta:
        ordering = ["-weight", "variant"]
        constraints = [
            models.UniqueConstraint(fields=["deployment", "version"], name="one_route_per_version"),
            models.UniqueConstraint(fields=["deployment", "variant"], name="one_route_per_variant"),
            models.CheckConstraint(condition=Q(weight__lte=100), name="route_weight_at_most_100"),
        ]


class TrafficChange(BaseModel):
    """Every change of what the endpoint serves, by a person or by the platform (actor empty: canary steps and
    automatic rollbacks)."""

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="traffic_changes")
    kind = models.CharField(max_length=24, choices=TrafficChangeKind.choices)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    routes_before = models.JSONField(default=list)
    routes_after = models.JSONField(default=list)
    reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]


class MetricSample(models.Model):
    """Requests, errors and latency of one version over one reconcile interval (deltas of the servers' counters,
    summed over replicas)."""

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="metric_samples")
    version = models.ForeignKey("registry.ModelVersion", on_delete=models.CASCADE, related_name="+")
    role = models.CharField(max_length=8, choices=RouteRole.choices)
    observed_at = models.DateTimeField(db_index=True)
    seconds = models.FloatField(help_text="Length of the interval.")
    requests = models.PositiveIntegerField()
    errors = models.PositiveIntegerField()
    latency_sum = models.FloatField(help_text="Seconds.")
    latency_buckets = models.JSONField(help_text="Per-bucket counts (not cumulative), LATENCY_BUCKETS then +Inf.")

    class Meta:
        ordering = ["-observed_at"]
        indexes = [models.Index(fields=["deployment", "version", "observed_at"])]

    def __str__(self) -> str:
        return f"{self.deployment_id} v{self.version_id} {self.role} @ {self.observed_at:%Y-%m-%d %H:%M:%S}"


class Prediction(models.Model):
    """One answer of a model server, imported from its prediction log. The id is the server's prediction id."""

    id = models.CharField(primary_key=True, max_length=32)
    deployment = models.ForeignKey(Deployment, on_delete=models.PROTECT, related_name="predictions")
    version = models.ForeignKey("registry.ModelVersion", on_delete=models.PROTECT, related_name="predictions")
    variant = models.CharField(max_length=50, blank=True)
    shadow = models.BooleanField(default=False)
    shadow_of = models.CharField(max_length=32, blank=True, db_index=True)
    inputs = models.JSONField()
    outputs = models.JSONField()
    latency_ms = models.FloatField()
    predicted_at = models.DateTimeField()
    imported_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-predicted_at"]
        indexes = [models.Index(fields=["deployment", "-predicted_at"])]

    def __str__(self) -> str:
        return self.id


class GroundTruth(models.Model):
    """The actual outcome of a prediction, posted by whoever learns it (often weeks later)."""

    prediction = models.OneToOneField(Prediction, primary_key=True, on_delete=models.PROTECT, related_name="truth")
    actual = models.JSONField()
    observed_at = models.DateTimeField(help_text="When the outcome happened (default: when it was posted).")
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.prediction_id}: {self.actual!r}"


class PredictionLogCursor(models.Model):
    """How far the importer has read one prediction-log file of a deployment (the file's name without `.part`)."""

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="log_cursors")
    file_name = models.CharField(max_length=200)
    offset = models.BigIntegerField(default=0)
    finished = models.BooleanField(default=False, help_text="The file was complete (.jsonl) and read to its end.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["deployment", "file_name"], name="one_cursor_per_log_file")]

    def __str__(self) -> str:
        return f"{self.file_name}@{self.offset}"


class PredictionExplanation(BaseModel):
    """SHAP contributions of a logged prediction, computed on a worker with the exact version that made it."""

    prediction = models.ForeignKey(Prediction, on_delete=models.PROTECT, related_name="explanations")
    status = models.CharField(max_length=10, choices=ExplanationStatus.choices, default=ExplanationStatus.QUEUED)
    result = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
