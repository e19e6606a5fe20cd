"""Input and output serializers of the deployments API. Inputs only parse; apps/deployments/services decide."""

from rest_framework import serializers

from apps.deployments.choices import Environment
from apps.deployments.models import Deployment, DeploymentRoute, TrafficChange
from apps.deployments.services.deployments import MAX_REPLICAS, MAX_SPLIT_PERCENT, ROLLOUT_STRATEGIES


class RouteSerializer(serializers.ModelSerializer):
    version_id = serializers.UUIDField(source="version.pk")
    version_number = serializers.IntegerField(source="version.number")
    version_stage = serializers.CharField(source="version.stage")

    class Meta:
        model = DeploymentRoute
        fields = ["version_id", "version_number", "version_stage", "role", "weight", "variant"]


class CanaryPolicySerializer(serializers.Serializer):
    step_percent = serializers.IntegerField(min_value=1, max_value=MAX_SPLIT_PERCENT)
    step_seconds = serializers.IntegerField(min_value=10, max_value=86_400)
    max_error_rate = serializers.FloatField(min_value=0, max_value=0.99)
    max_p99_ms = serializers.FloatField(allow_null=True, required=False, default=None)
    min_requests = serializers.IntegerField(min_value=1, max_value=1_000_000)


class DeploymentSerializer(serializers.ModelSerializer):
    project_id = serializers.UUIDField(source="project.pk")
    registered_model_id = serializers.UUIDField(source="registered_model.pk")
    registered_model_name = serializers.CharField(source="registered_model.name")
    routes = RouteSerializer(many=True)
    replicas_observed = serializers.SerializerMethodField()
    ready_versions = serializers.SerializerMethodField()
    canary_policy = serializers.SerializerMethodField()
    rollout_version_number = serializers.IntegerField(source="rollout_version.number", allow_null=True, default=None)
    feature_view = serializers.CharField(source="feature_view.name", allow_null=True, default=None)

    class Meta:
        model = Deployment
        fields = [
            "id",
            "name",
            "description",
            "project_id",
            "registered_model_id",
            "registered_model_name",
            "environment",
            "runner",
            "replicas",
            "strategy",
            "sticky_key",
            "feature_view",
            "routes",
            "rollout_state",
            "rollout_version_number",
            "canary_policy",
            "status",
            "status_reason",
            "url",
            "replicas_observed",
            "ready_versions",
            "observed_at",
            "revision",
            "applied_revision",
            "created_at",
            "stopped_at",
        ]

    def get_replicas_observed(self, deployment) -> list[dict]:
        return deployment.observed.get("replicas", [])

    def get_ready_versions(self, deployment) -> list[int]:
        return deployment.observed.get("ready_versions", [])

    def get_canary_policy(self, deployment) -> dict:
        return {
            "step_percent": deployment.canary_step_percent,
            "step_seconds": deployment.canary_step_seconds,
            "max_error_rate": deployment.canary_max_error_rate,
            "max_p99_ms": deployment.canary_max_p99_ms,
            "min_requests": deployment.canary_min_requests,
        }


class TrafficChangeSerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor.username", allow_null=True, default=None)

    class Meta:
        model = TrafficChange
        fields = ["id", "kind", "actor", "routes_before", "routes_after", "reason", "created_at"]


class VersionFiguresSerializer(serializers.Serializer):
    version_number = serializers.IntegerField()
    role = serializers.CharField()
    requests = serializers.IntegerField()
    errors = serializers.IntegerField()
    requests_per_second = serializers.FloatField()
    error_rate = serializers.FloatField()
    p50_ms = serializers.FloatField(allow_null=True)
    p95_ms = serializers.FloatField(allow_null=True)
    p99_ms = serializers.FloatField(allow_null=True)
    mean_ms = serializers.FloatField(allow_null=True)


class DeployInputSerializer(serializers.Serializer):
    version = serializers.UUIDField(help_text="The model version to serve.")
    name = serializers.CharField(required=False, allow_blank=True, default="", max_length=63)
    environment = serializers.ChoiceField(choices=Environment.choices, default=Environment.PRODUCTION)
    replicas = serializers.IntegerField(min_value=1, max_value=MAX_REPLICAS, default=1)
    description = serializers.CharField(required=False, allow_blank=True, default="")


class RolloutInputSerializer(serializers.Serializer):
    version = serializers.UUIDField()
    strategy = serializers.ChoiceField(choices=list(ROLLOUT_STRATEGIES))
    reason = serializers.CharField(required=False, allow_blank=True, default="")


class ABInputSerializer(serializers.Serializer):
    version = serializers.UUIDField(help_text="Variant B; the live version is variant A.")
    share_percent = serializers.IntegerField(min_value=1, max_value=MAX_SPLIT_PERCENT)
    sticky_key = serializers.CharField(max_length=100)
    reason = serializers.CharField(required=False, allow_blank=True, default="")


class ShadowInputSerializer(serializers.Serializer):
    version = serializers.UUIDField()
    reason = serializers.CharField(required=False, allow_blank=True, default="")


class EndExperimentInputSerializer(serializers.Serializer):
    keep = serializers.UUIDField(help_text="The version that keeps serving all traffic.")
    reason = serializers.CharField(required=False, allow_blank=True, default="")


class DeploymentReasonInputSerializer(serializers.Serializer):
    reason = serializers.CharField(allow_blank=True)


class ScaleInputSerializer(serializers.Serializer):
    replicas = serializers.IntegerField(min_value=1, max_value=MAX_REPLICAS)


class FeatureViewInputSerializer(serializers.Serializer):
    view = serializers.CharField(allow_null=True, help_text="The feature view's name; null: clients send every input.")
