"""Monitoring: a monitor per deployment (reference, window, schedule, alert rules), its checks (drift, performance
from ground truth, service health, realised value), the alerts they raise, the reference data computed once per
version, and retraining policies with their runs (docs/adr/0012-monitoring.md)."""

from django.conf import settings
from django.db import models
from django.db.models import Q

from apps.core.models import BaseModel
from apps.monitoring.choices import (
    AlertStatus,
    Figure,
    JobStatus,
    Operator,
    RetrainingStatus,
    RetrainingTrigger,
    Severity,
    WindowKind,
)


class Monitor(BaseModel):
    """Created with its deployment; what a check compares, how often, and the rules that raise alerts."""

    deployment = models.OneToOneField("deployments.Deployment", on_delete=models.CASCADE, related_name="monitor")
    # Empty: the training data of the version serving most traffic at check time.
    reference_version = models.ForeignKey(
        "registry.ModelVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    window_kind = models.CharField(max_length=12, choices=WindowKind.choices, default=WindowKind.HOURS)
    window_hours = models.PositiveIntegerField(default=24)
    window_predictions = models.PositiveIntegerField(default=10_000)
    # Ground truth arrives late: performance and realised value look further back than drift does.
    performance_days = models.PositiveIntegerField(default=30)
    schedule_minutes = models.PositiveIntegerField(default=60, help_text="How often a check runs.")
    periodic_task = models.OneToOneField(
        "django_celery_beat.PeriodicTask", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    drift_column_threshold = models.FloatField(
        null=True, blank=True, help_text="Per-column test threshold; empty: Evidently's default per method."
    )
    max_rows = models.PositiveIntegerField(default=100_000, help_text="Current rows sampled per check at most.")
    enabled = models.BooleanField(default=True)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")

    def __str__(self) -> str:
        return f"Monitor of {self.deployment_id}"


class AlertRule(BaseModel):
    """`figure` `operator` `threshold` raises an alert of `severity` (one open alert per rule at a time)."""

    monitor = models.ForeignKey(Monitor, on_delete=models.CASCADE, related_name="rules")
    figure = models.CharField(max_length=32, choices=Figure.choices)
    metric = models.CharField(max_length=40, blank=True, help_text="For the metric figure: which metric.")
    operator = models.CharField(max_length=8, choices=Operator.choices)
    threshold = models.FloatField()
    severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.WARNING)
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["figure", "metric", "operator"]

    def __str__(self) -> str:
        name = self.metric if self.figure == Figure.METRIC else self.figure
        return f"{name} {self.operator} {self.threshold:g}"


class ReferenceProfile(BaseModel):
    """The reference data of one model version (a sample of its training rows with the model's predictions and the
    statistics drift checks reuse), computed once on a worker and stored as an artifact."""

    version = models.OneToOneField("registry.ModelVersion", on_delete=models.CASCADE, related_name="reference")
    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED)
    artifact_key = models.CharField(max_length=1024, blank=True)
    rows = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"Reference of {self.version_id}"


class MonitorCheck(BaseModel):
    """One check: what the window held, the figures computed, the report."""

    monitor = models.ForeignKey(Monitor, on_delete=models.CASCADE, related_name="checks")
    version = models.ForeignKey(
        "registry.ModelVersion", null=True, on_delete=models.PROTECT, related_name="+", help_text="The reference's."
    )
    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED, db_index=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    window_start = models.DateTimeField(null=True, blank=True)
    window_end = models.DateTimeField(null=True, blank=True)
    rows = models.PositiveIntegerField(default=0, help_text="Logged predictions in the window.")
    sampled_rows = models.PositiveIntegerField(default=0, help_text="Rows the drift check used.")
    drift = models.JSONField(default=dict, blank=True)
    performance = models.JSONField(default=dict, blank=True)
    health = models.JSONField(default=dict, blank=True)
    value = models.JSONField(default=dict, blank=True)
    figures = models.JSONField(default=dict, blank=True, help_text="{figure key: number} the alert rules read.")
    concept_drift = models.BooleanField(default=False)
    report_key = models.CharField(max_length=1024, blank=True, help_text="Evidently's HTML report.")
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Check {self.pk} of {self.monitor_id}"


class Alert(BaseModel):
    rule = models.ForeignKey(AlertRule, on_delete=models.PROTECT, related_name="alerts")
    monitor = models.ForeignKey(Monitor, on_delete=models.CASCADE, related_name="alerts")
    check_run = models.ForeignKey(MonitorCheck, on_delete=models.PROTECT, related_name="alerts")
    severity = models.CharField(max_length=10, choices=Severity.choices)
    status = models.CharField(max_length=12, choices=AlertStatus.choices, default=AlertStatus.OPEN, db_index=True)
    value = models.FloatField()
    threshold = models.FloatField()
    message = models.TextField()
    last_seen_at = models.DateTimeField(help_text="The latest check that still breached the rule.")
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # An alert does not repeat while open: one open (or acknowledged) alert per rule.
            models.UniqueConstraint(
                fields=["rule"], condition=~Q(status=AlertStatus.RESOLVED), name="one_unresolved_alert_per_rule"
            )
        ]

    def __str__(self) -> str:
        return self.message


class RetrainingPolicy(BaseModel):
    """When to retrain a registered model and on whose behalf (the owner launches, registers and requests)."""

    registered_model = models.OneToOneField(
        "registry.RegisteredModel", on_delete=models.CASCADE, related_name="retraining_policy"
    )
    on_drift_alert = models.BooleanField(default=True)
    on_performance_alert = models.BooleanField(default=True)
    schedule_days = models.PositiveIntegerField(null=True, blank=True, help_text="Empty: no scheduled retraining.")
    periodic_task = models.OneToOneField(
        "django_celery_beat.PeriodicTask", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    enabled = models.BooleanField(default=True)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    def __str__(self) -> str:
        return f"Retraining of {self.registered_model_id}"


class RetrainingRun(BaseModel):
    policy = models.ForeignKey(RetrainingPolicy, on_delete=models.CASCADE, related_name="runs")
    trigger = models.CharField(max_length=20, choices=RetrainingTrigger.choices)
    alert = models.ForeignKey(Alert, null=True, blank=True, on_delete=models.SET_NULL, related_name="retrainings")
    champion = models.ForeignKey("registry.ModelVersion", on_delete=models.PROTECT, related_name="+")
    dataset_version = models.ForeignKey("datasets.DatasetVersion", on_delete=models.PROTECT, related_name="+")
    experiment = models.ForeignKey(
        "experiments.Experiment", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    status = models.CharField(
        max_length=10, choices=RetrainingStatus.choices, default=RetrainingStatus.TRAINING, db_index=True
    )
    new_version = models.ForeignKey(
        "registry.ModelVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    promotion_request = models.ForeignKey(
        "registry.PromotionRequest", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    comparison = models.JSONField(default=dict, blank=True, help_text="Challenger vs champion on the same data.")
    error = models.TextField(blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # One retraining at a time per model: alerts and schedules arriving meanwhile join it.
            models.UniqueConstraint(
                fields=["policy"], condition=Q(status=RetrainingStatus.TRAINING), name="one_training_retraining"
            )
        ]

    def __str__(self) -> str:
        return f"Retraining {self.pk}"
