"""Input serializers parse types only; the rules of a definition live in apps/projects/validation.py and are applied
by the services. Output serializers shape what the API returns."""

from rest_framework import serializers

from apps.accounts.choices import ProjectRole
from apps.accounts.models import Membership
from apps.projects.choices import Metric, ProblemType, ProjectStatus
from apps.projects.models import ProblemDefinition, Project
from apps.projects.validation import (
    DEFINITION_FIELDS,
    MSG_BUSINESS_PROBLEM_REQUIRED,
    MSG_PRIMARY_METRIC_REQUIRED,
    MSG_PRIMARY_THRESHOLD_REQUIRED,
    MSG_PROBLEM_TYPE_REQUIRED,
    MSG_TITLE_REQUIRED,
)


def _money(**kwargs):
    return serializers.DecimalField(
        max_digits=14, decimal_places=kwargs.pop("decimal_places", 2), required=False, allow_null=True, **kwargs
    )


def _text(**kwargs):
    return serializers.CharField(required=False, allow_blank=True, **kwargs)


def _number(**kwargs):
    return serializers.FloatField(required=False, allow_null=True, **kwargs)


def _count(**kwargs):
    return serializers.IntegerField(required=False, allow_null=True, **kwargs)


METRIC_CODES = ", ".join(Metric.values)


class SecondaryMetricSerializer(serializers.Serializer):
    # A plain string, not an enum in the schema: the same choice set is already the primary_metric enum, and
    # drf-spectacular warns about one choice set under two names unless ENUM_NAME_OVERRIDES names it (MetricEnum).
    # The membership of the metric in Metric and in the problem type's metrics is checked by the validation.
    metric = serializers.CharField(help_text=f"A metric code that measures the problem type: {METRIC_CODES}.")
    threshold = serializers.FloatField()


class ProblemDefinitionInputSerializer(serializers.Serializer):
    """A problem definition to file (POST) or the fields to change (PATCH). Money is in `currency`."""

    title = serializers.CharField(allow_blank=True, error_messages={"required": MSG_TITLE_REQUIRED})
    business_problem = serializers.CharField(
        allow_blank=True, error_messages={"required": MSG_BUSINESS_PROBLEM_REQUIRED}
    )
    scope = _text()
    problem_type = serializers.ChoiceField(
        choices=ProblemType.choices, error_messages={"required": MSG_PROBLEM_TYPE_REQUIRED}
    )
    primary_metric = serializers.ChoiceField(
        choices=Metric.choices,
        error_messages={"required": MSG_PRIMARY_METRIC_REQUIRED},
        help_text="Must measure the problem type (see METRICS_BY_PROBLEM_TYPE in the docs).",
    )
    primary_threshold = serializers.FloatField(
        error_messages={"required": MSG_PRIMARY_THRESHOLD_REQUIRED},
        help_text="The value the primary metric must reach (>= for most metrics, <= for errors and log loss).",
    )
    secondary_metrics = SecondaryMetricSerializer(many=True, required=False, allow_null=True)
    baseline_metric_value = _number(help_text="The current process measured with the primary metric.")
    baseline_description = _text()
    currency = serializers.CharField(required=False, help_text="Three-letter code in capitals, e.g. EUR.")
    value_per_correct_decision = _money()
    cost_false_positive = _money(help_text="Binary classification.")
    cost_false_negative = _money(help_text="Binary classification.")
    cost_per_misclassification = _money(help_text="Multiclass classification.")
    cost_per_unit_error = _money(decimal_places=4, help_text="Regression: cost per unit of absolute error.")
    expected_yearly_decisions = _count()
    implementation_cost = _money()
    target_payback_months = _count()
    expected_correct_rate = _number(help_text="Share of decisions the model is expected to get right, 0..1.")
    baseline_correct_rate = _number(help_text="Share of decisions the current process gets right, 0..1.")
    false_positive_share = _number(help_text="Binary: share of the errors that are false positives (default 0.5).")
    expected_mean_abs_error = _number(help_text="Regression: the model's expected mean absolute error.")
    baseline_mean_abs_error = _number(help_text="Regression: the current process's mean absolute error.")
    latency_budget_p99_ms = _count()
    throughput_per_second = _count()
    data_availability_notes = _text()
    personal_data = serializers.BooleanField(required=False)
    gdpr = serializers.BooleanField(required=False)
    hipaa = serializers.BooleanField(required=False)
    high_risk = serializers.BooleanField(required=False)
    ethical_considerations = _text()
    fairness_max_difference = serializers.FloatField(
        required=False,
        help_text="The largest demographic parity or equalized odds difference a production model may show, 0..1 "
        "(default 0.1).",
    )
    required_approvals = serializers.IntegerField(
        required=False,
        help_text="Reviewer approvals a promotion to production needs, 1..10 (default 1; GDPR, HIPAA or high-risk "
        "use raise it to at least 2).",
    )
    stakeholders = _text(help_text="Who is affected or accountable, one per line.")


class ProblemDefinitionSerializer(serializers.ModelSerializer):
    secondary_metrics = SecondaryMetricSerializer(many=True, read_only=True)

    class Meta:
        model = ProblemDefinition
        fields = list(DEFINITION_FIELDS)
        read_only_fields = fields


class ProjectSerializer(serializers.ModelSerializer):
    title = serializers.CharField(source="name", read_only=True)
    status_label = serializers.CharField(source="get_status_display", read_only=True)
    created_by = serializers.CharField(source="created_by.username", read_only=True)
    submitted_by = serializers.CharField(source="submitted_by.username", read_only=True, allow_null=True)
    approved_by = serializers.CharField(source="approved_by.username", read_only=True, allow_null=True)
    definition = ProblemDefinitionSerializer(read_only=True)

    class Meta:
        model = Project
        fields = [
            "id",
            "title",
            "status",
            "status_label",
            "status_note",
            "created_by",
            "created_at",
            "updated_at",
            "submitted_at",
            "submitted_by",
            "approved_at",
            "approved_by",
            "in_production_at",
            "retired_at",
            "definition",
        ]
        read_only_fields = fields


class ProjectFilterSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=ProjectStatus.choices, required=False)
    problem_type = serializers.ChoiceField(choices=ProblemType.choices, required=False)
    search = serializers.CharField(required=False, allow_blank=True, help_text="Text in the title.")


class ReasonInputSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, default="")


class RoiEstimateSerializer(serializers.Serializer):
    """The expected ROI computed from the definition's targets; amounts in `currency`, null when not computable."""

    computed = serializers.BooleanField()
    currency = serializers.CharField()
    yearly_value_model = serializers.DecimalField(max_digits=None, decimal_places=2, allow_null=True)
    yearly_value_baseline = serializers.DecimalField(max_digits=None, decimal_places=2, allow_null=True)
    yearly_gain = serializers.DecimalField(max_digits=None, decimal_places=2, allow_null=True)
    first_year_net = serializers.DecimalField(max_digits=None, decimal_places=2, allow_null=True)
    payback_months = serializers.DecimalField(max_digits=None, decimal_places=2, allow_null=True)
    target_payback_months = serializers.IntegerField(allow_null=True)
    meets_payback_target = serializers.BooleanField(allow_null=True)
    roi_percent = serializers.DecimalField(
        max_digits=None, decimal_places=2, allow_null=True, help_text="First-year net / implementation cost × 100."
    )
    assumptions = serializers.ListField(child=serializers.CharField())
    missing = serializers.ListField(child=serializers.CharField(), help_text="What is needed to compute the ROI.")


class ProjectMemberSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username", read_only=True)
    role_label = serializers.CharField(source="get_role_display", read_only=True)

    class Meta:
        model = Membership
        fields = ["id", "username", "role", "role_label", "created_at"]
        read_only_fields = fields


class ProjectMemberSetInputSerializer(serializers.Serializer):
    username = serializers.CharField(allow_blank=True)
    role = serializers.ChoiceField(choices=ProjectRole.choices)
