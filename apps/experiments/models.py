from django.conf import settings
from django.db import models

from apps.core.models import BaseModel
from apps.experiments.choices import ExperimentStatus, LogLevel, RunStatus


class Experiment(BaseModel):
    """One launch: a dataset version, a spec (workers.ml.training.spec.ExperimentSpec.as_dict()) and a run per
    candidate algorithm."""

    project = models.ForeignKey("projects.Project", on_delete=models.PROTECT, related_name="experiments")
    number = models.PositiveIntegerField(help_text="Numbered per project, from 1.")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    dataset_version = models.ForeignKey("datasets.DatasetVersion", on_delete=models.PROTECT, related_name="experiments")
    spec = models.JSONField(help_text="The validated spec, with every candidate algorithm.")
    status = models.CharField(
        max_length=10, choices=ExperimentStatus.choices, default=ExperimentStatus.QUEUED, db_index=True
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["project", "number"], name="unique_experiment_number_per_project")
        ]

    def __str__(self) -> str:
        return self.name or f"Experiment {self.number}"


class Run(BaseModel):
    """One candidate algorithm of an experiment: tuned, trained, evaluated and explained on a worker."""

    experiment = models.ForeignKey(Experiment, on_delete=models.PROTECT, related_name="runs")
    number = models.PositiveIntegerField(help_text="Numbered per experiment, from 1.")
    algorithm = models.CharField(max_length=50)
    spec = models.JSONField(help_text="The experiment's spec with this run's single algorithm.")
    seed = models.BigIntegerField()
    dataset_sha256 = models.CharField(max_length=64, help_text="The dataset version's hash when the run was made.")

    # Lifecycle (the job row the worker claims; see docs/adr/0007-training-runs.md)
    status = models.CharField(max_length=10, choices=RunStatus.choices, default=RunStatus.QUEUED, db_index=True)
    task_id = models.CharField(max_length=64, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    cancel_requested = models.BooleanField(default=False)
    queued_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    error_code = models.CharField(max_length=50, blank=True)

    # Live progress
    progress = models.FloatField(default=0.0)
    progress_message = models.CharField(max_length=200, blank=True)
    trials_done = models.PositiveIntegerField(default=0)
    trials_total = models.PositiveIntegerField(default=0)
    best_score = models.FloatField(null=True, blank=True, help_text="Best tuning score so far (primary metric).")

    # Results
    params = models.JSONField(default=dict, blank=True, help_text="The chosen hyperparameters.")
    trials = models.JSONField(default=list, blank=True, help_text="Tuning history: [{number, params, score, ...}].")
    metrics = models.JSONField(default=dict, blank=True, help_text="Evaluation (workers.ml.evaluation).")
    primary_score = models.FloatField(
        null=True,
        blank=True,
        help_text="Primary metric on the validation rows (the CV mean when there are none): ranks runs.",
    )
    test_score = models.FloatField(null=True, blank=True, help_text="Primary metric on the held-out test rows.")
    cv = models.JSONField(
        default=dict, blank=True, help_text="Cross-validation on the training share: mean and std per metric."
    )
    artifact_key = models.CharField(max_length=1024, blank=True)
    artifact_sha256 = models.CharField(max_length=64, blank=True)
    artifact_signature = models.CharField(max_length=128, blank=True, help_text="HMAC-SHA256 of the artifact.")
    artifact_size = models.BigIntegerField(null=True, blank=True)
    input_signature = models.JSONField(default=dict, blank=True)
    environment = models.JSONField(default=dict, blank=True, help_text="Python and ML library versions.")
    timings = models.JSONField(default=dict, blank=True, help_text="Seconds per stage.")

    class Meta:
        ordering = ["experiment", "number"]
        constraints = [models.UniqueConstraint(fields=["experiment", "number"], name="unique_run_number")]
        indexes = [models.Index(fields=["status", "heartbeat_at"], name="run_status_heartbeat")]

    def __str__(self) -> str:
        return f"Run {self.number} ({self.algorithm})"

    @property
    def is_active(self) -> bool:
        return self.status in (RunStatus.QUEUED, RunStatus.RUNNING)


class RunLogLine(models.Model):
    """A line of a run's log, shown live on the run page."""

    id = models.BigAutoField(primary_key=True)
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="log_lines")
    at = models.DateTimeField(auto_now_add=True)
    level = models.CharField(max_length=10, choices=LogLevel.choices, default=LogLevel.INFO)
    message = models.TextField()

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"[{self.level}] {self.message[:80]}"
