"""The model registry: registered models, their versions (from finished runs), model cards, stages with their full
history, and promotion requests decided by reviewers (docs/adr/0008-model-registry.md)."""

from django.conf import settings
from django.db import models
from django.db.models import Q

from apps.core.models import BaseModel
from apps.registry.choices import Decision, RequestStatus, Stage, VersionStatus


class RegisteredModel(BaseModel):
    project = models.ForeignKey("projects.Project", on_delete=models.PROTECT, related_name="registered_models")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["project", "name"], name="unique_model_name_per_project")]

    def __str__(self) -> str:
        return self.name


class ModelVersion(BaseModel):
    """One registered model version: an immutable copy of a finished run's signed artifact and its record."""

    registered_model = models.ForeignKey(RegisteredModel, on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField(help_text="Numbered per registered model, from 1.")
    run = models.ForeignKey("experiments.Run", on_delete=models.PROTECT, related_name="model_versions")
    status = models.CharField(max_length=24, choices=VersionStatus.choices, default=VersionStatus.PENDING)
    status_reason = models.TextField(blank=True, help_text="Why registration failed.")
    stage = models.CharField(max_length=12, choices=Stage.choices, default=Stage.NONE, db_index=True)
    artifact_key = models.CharField(max_length=1024, blank=True, help_text="The registry's own copy.")
    artifact_sha256 = models.CharField(max_length=64)
    artifact_signature = models.CharField(max_length=128)
    artifact_size = models.BigIntegerField(null=True, blank=True)
    input_signature = models.JSONField(default=dict)
    # Validation, test, CV, fairness, latency (operational), business value: copied from the run when registered.
    metrics = models.JSONField(default=dict)
    # SHA-256 of the canonical JSON of `metrics`: an approval binds to it together with the artifact hash.
    metrics_sha256 = models.CharField(max_length=64)
    # Project and problem definition, dataset version and hash, features, spec, seed, libraries, who trained it.
    lineage = models.JSONField(default=dict)
    tags = models.JSONField(default=list, blank=True)
    description = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["registered_model", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["registered_model", "number"], name="unique_version_number_per_model"),
            # Two concurrent approvals of two versions cannot both win.
            models.UniqueConstraint(
                fields=["registered_model"], condition=Q(stage="production"), name="one_production_version_per_model"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.registered_model.name} v{self.number}"


class StageTransition(BaseModel):
    """Which version was in which stage, when, by whose decision: the stage history, never edited."""

    version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="transitions")
    from_stage = models.CharField(max_length=12, choices=Stage.choices)
    to_stage = models.CharField(max_length=12, choices=Stage.choices)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    reason = models.TextField(blank=True)
    promotion_request = models.ForeignKey(
        "PromotionRequest", null=True, blank=True, on_delete=models.PROTECT, related_name="transitions"
    )
    is_rollback = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.version}: {self.from_stage} -> {self.to_stage}"


class ModelCard(BaseModel):
    """The model card of a version: generated sections from its record, and the sections people write."""

    version = models.OneToOneField(ModelVersion, on_delete=models.PROTECT, related_name="card")
    generated = models.JSONField(default=dict, help_text="{section: content} made from the version's record.")
    written = models.JSONField(default=dict, help_text="{section: text} written by data scientists.")
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    def __str__(self) -> str:
        return f"Model card of {self.version}"


class PromotionRequest(BaseModel):
    """A request to put a staging version into production, decided by reviewers against automatic gates."""

    version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="promotion_requests")
    requester = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    justification = models.TextField()
    status = models.CharField(max_length=10, choices=RequestStatus.choices, default=RequestStatus.OPEN, db_index=True)
    required_approvals = models.PositiveSmallIntegerField(default=1)
    # What the request binds to: an approval is void if the version's artifact or metrics no longer hash to these.
    artifact_sha256 = models.CharField(max_length=64)
    metrics_sha256 = models.CharField(max_length=64)
    # The gates as evaluated when the request was opened: [{name, label, passed, value, threshold, detail}].
    gates = models.JSONField(default=list)
    champion = models.ForeignKey(
        ModelVersion,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The production version when the request was opened.",
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["version"], condition=Q(status="open"), name="one_open_request_per_version")
        ]

    def __str__(self) -> str:
        return f"Promotion of {self.version} ({self.status})"


class Approval(BaseModel):
    """One reviewer's decision on a request, with the gates as they stood at that moment."""

    request = models.ForeignKey(PromotionRequest, on_delete=models.PROTECT, related_name="approvals")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    decision = models.CharField(max_length=10, choices=Decision.choices)
    comment = models.TextField()
    gates = models.JSONField(default=list, help_text="The gates re-evaluated at decision time.")
    artifact_sha256 = models.CharField(max_length=64)
    metrics_sha256 = models.CharField(max_length=64)
    # An admin may approve over failing gates only with a written reason, shown wherever the approval is.
    gate_override_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["created_at"]
        constraints = [
            models.UniqueConstraint(fields=["request", "reviewer"], name="one_decision_per_reviewer_per_request")
        ]

    def __str__(self) -> str:
        return f"{self.decision} by {self.reviewer_id} on {self.request_id}"
