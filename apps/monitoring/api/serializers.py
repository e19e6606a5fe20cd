"""Input and output serializers of the monitoring API. Inputs only parse; apps/monitoring/services decide."""

from rest_framework import serializers

from apps.monitoring.choices import Figure, Operator, Severity, WindowKind
from apps.monitoring.models import Alert, AlertRule, Monitor, MonitorCheck


class AlertRuleSerializer(serializers.ModelSerializer):
    class Meta:
        model = AlertRule
        fields = ["id", "figure", "metric", "operator", "threshold", "severity", "enabled"]


class MonitorSerializer(serializers.ModelSerializer):
    deployment_id = serializers.UUIDField(source="deployment.pk")
    reference_version_number = serializers.IntegerField(
        source="reference_version.number", allow_null=True, default=None
    )
    rules = AlertRuleSerializer(many=True)

    class Meta:
        model = Monitor
        fields = [
            "id",
            "deployment_id",
            "reference_version_number",
            "window_kind",
            "window_hours",
            "window_predictions",
            "performance_days",
            "schedule_minutes",
            "drift_column_threshold",
            "max_rows",
            "enabled",
            "rules",
        ]


class MonitorUpdateInputSerializer(serializers.Serializer):
    reference_version_number = serializers.IntegerField(required=False, allow_null=True, min_value=1)
    window_kind = serializers.ChoiceField(choices=WindowKind.choices, required=False)
    window_hours = serializers.IntegerField(required=False)
    window_predictions = serializers.IntegerField(required=False)
    performance_days = serializers.IntegerField(required=False)
    schedule_minutes = serializers.IntegerField(required=False)
    drift_column_threshold = serializers.FloatField(required=False, allow_null=True)
    max_rows = serializers.IntegerField(required=False)
    enabled = serializers.BooleanField(required=False)


class RuleInputSerializer(serializers.Serializer):
    figure = serializers.ChoiceField(choices=Figure.choices)
    metric = serializers.CharField(required=False, allow_blank=True, default="")
    operator = serializers.ChoiceField(choices=Operator.choices)
    threshold = serializers.FloatField()
    severity = serializers.ChoiceField(choices=Severity.choices, default=Severity.WARNING)
    enabled = serializers.BooleanField(default=True)


class RuleUpdateInputSerializer(serializers.Serializer):
    threshold = serializers.FloatField(required=False)
    severity = serializers.ChoiceField(choices=Severity.choices, required=False)
    enabled = serializers.BooleanField(required=False)


class CheckSerializer(serializers.ModelSerializer):
    version_number = serializers.IntegerField(source="version.number", allow_null=True, default=None)
    has_report = serializers.SerializerMethodField()

    class Meta:
        model = MonitorCheck
        fields = [
            "id",
            "status",
            "created_at",
            "started_at",
            "finished_at",
            "version_number",
            "window_start",
            "window_end",
            "rows",
            "sampled_rows",
            "figures",
            "concept_drift",
            "drift",
            "performance",
            "health",
            "value",
            "has_report",
            "error",
        ]

    def get_has_report(self, check) -> bool:
        return bool(check.report_key)


class AlertSerializer(serializers.ModelSerializer):
    deployment_id = serializers.UUIDField(source="monitor.deployment_id")
    deployment_name = serializers.CharField(source="monitor.deployment.name")
    rule = AlertRuleSerializer()
    check_id = serializers.UUIDField(source="check_run_id")
    acknowledged_by = serializers.CharField(source="acknowledged_by.username", allow_null=True, default=None)
    resolved_by = serializers.CharField(source="resolved_by.username", allow_null=True, default=None)

    class Meta:
        model = Alert
        fields = [
            "id",
            "deployment_id",
            "deployment_name",
            "rule",
            "check_id",
            "severity",
            "status",
            "value",
            "threshold",
            "message",
            "created_at",
            "last_seen_at",
            "acknowledged_by",
            "acknowledged_at",
            "resolved_by",
            "resolved_at",
            "note",
        ]


class AlertNoteInputSerializer(serializers.Serializer):
    note = serializers.CharField(required=False, allow_blank=True, default="")


class HealthRowSerializer(serializers.Serializer):
    deployment_id = serializers.UUIDField(source="deployment.pk")
    name = serializers.CharField(source="deployment.name")
    status = serializers.CharField(source="deployment.status")
    project = serializers.CharField(source="deployment.project.name")
    open_alerts = serializers.IntegerField()
    last_check_at = serializers.DateTimeField(source="last_check.created_at", allow_null=True, default=None)
    figures = serializers.JSONField(source="last_check.figures", allow_null=True, default=None)
