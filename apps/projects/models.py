from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models

from apps.core.models import BaseModel
from apps.projects.choices import LOWER_IS_BETTER, Metric, ProblemType, ProjectStatus
from apps.projects.validation import FAIRNESS_LIMIT_DEFAULT, REQUIRED_APPROVALS_DEFAULT

_NON_NEGATIVE = [MinValueValidator(Decimal("0"))]


class Project(BaseModel):
    """A business problem carried through the platform. Its content is the ProblemDefinition."""

    name = models.CharField(max_length=200)
    status = models.CharField(max_length=20, choices=ProjectStatus.choices, default=ProjectStatus.DRAFT, db_index=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    submitted_at = models.DateTimeField(null=True, blank=True)
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    in_production_at = models.DateTimeField(null=True, blank=True)
    retired_at = models.DateTimeField(null=True, blank=True)
    status_note = models.TextField(blank=True, help_text="The reason given with the last status change.")

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name


class ProblemDefinition(BaseModel):
    """What the stakeholder asked for: the problem, how success is measured, what it is worth, and its limits."""

    project = models.OneToOneField(Project, on_delete=models.CASCADE, related_name="definition")

    # The problem
    business_problem = models.TextField()
    scope = models.TextField(blank=True)
    problem_type = models.CharField(max_length=20, choices=ProblemType.choices)

    # Success
    primary_metric = models.CharField(max_length=30, choices=Metric.choices)
    primary_threshold = models.FloatField()
    secondary_metrics = models.JSONField(default=list, blank=True)  # [{"metric": "recall", "threshold": 0.7}]
    baseline_metric_value = models.FloatField(null=True, blank=True)
    baseline_description = models.TextField(blank=True)

    # ROI targets (money in `currency`)
    currency = models.CharField(max_length=3, default="EUR")
    value_per_correct_decision = models.DecimalField(
        max_digits=14, decimal_places=2, null=True, blank=True, validators=_NON_NEGATIVE
    )
    cost_false_positive = models.DecimalField(
        max_digits=14, decimal_places=2, null=True, blank=True, validators=_NON_NEGATIVE
    )
    cost_false_negative = models.DecimalField(
        max_digits=14, decimal_places=2, null=True, blank=True, validators=_NON_NEGATIVE
    )
    cost_per_misclassification = models.DecimalField(
        max_digits=14, decimal_places=2, null=True, blank=True, validators=_NON_NEGATIVE
    )
    cost_per_unit_error = models.DecimalField(
        max_digits=14, decimal_places=4, null=True, blank=True, validators=_NON_NEGATIVE
    )
    expected_yearly_decisions = models.PositiveBigIntegerField(null=True, blank=True)
    implementation_cost = models.DecimalField(
        max_digits=14, decimal_places=2, null=True, blank=True, validators=_NON_NEGATIVE
    )
    target_payback_months = models.PositiveIntegerField(null=True, blank=True)
    # Assumptions behind the expected ROI (shares of decisions, 0..1; regression: mean absolute error)
    expected_correct_rate = models.FloatField(null=True, blank=True)
    baseline_correct_rate = models.FloatField(null=True, blank=True)
    false_positive_share = models.FloatField(null=True, blank=True)
    expected_mean_abs_error = models.FloatField(null=True, blank=True)
    baseline_mean_abs_error = models.FloatField(null=True, blank=True)

    # Constraints
    latency_budget_p99_ms = models.PositiveIntegerField(null=True, blank=True)
    throughput_per_second = models.PositiveIntegerField(null=True, blank=True)
    data_availability_notes = models.TextField(blank=True)

    # Regulation and ethics
    personal_data = models.BooleanField(default=False)
    gdpr = models.BooleanField(default=False)
    hipaa = models.BooleanField(default=False)
    high_risk = models.BooleanField(default=False, help_text="High-risk use, e.g. under the EU AI Act.")
    ethical_considerations = models.TextField(blank=True)
    # What the model registry's gates and approvals hold a model of this project to (docs/adr/0008-model-registry.md).
    fairness_max_difference = models.FloatField(
        default=FAIRNESS_LIMIT_DEFAULT,
        help_text="The largest demographic parity or equalized odds difference a production model may show.",
    )
    required_approvals = models.PositiveSmallIntegerField(
        default=REQUIRED_APPROVALS_DEFAULT,
        help_text="Reviewer approvals a promotion to production needs (regulatory flags raise it to 2).",
    )
    stakeholders = models.TextField(blank=True, help_text="Who is affected or accountable, one per line.")

    def __str__(self) -> str:
        return f"Definition of {self.project_id}"

    @staticmethod
    def target_text(metric: str, threshold) -> str:
        """A success criterion as people write it: "F1 ≥ 0.8", "RMSE ≤ 12"."""
        label = Metric(metric).label if metric in Metric.values else metric
        return f"{label} {'≤' if metric in LOWER_IS_BETTER else '≥'} {threshold:g}"

    @property
    def primary_target(self) -> str:
        return self.target_text(self.primary_metric, self.primary_threshold)

    @property
    def secondary_targets(self) -> list[str]:
        return [self.target_text(item["metric"], item["threshold"]) for item in self.secondary_metrics or []]
