"""The retraining API, under a registered model: /api/v1/projects/<project_pk>/models/<model_pk>/...

- retraining-policy/: GET the policy (404 while the model has none), PUT to create or change it (the caller becomes
  its owner);
- retrainings/: GET the model's retraining runs (paginated, newest first), POST to start one by hand;
- retrainings/<pk>/: GET one run with its comparison.

A model the caller may not see answers 404; writes go through apps/monitoring/services/retraining.py, which checks
the policy (403) and holds every rule.
"""

from functools import cached_property

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from apps.monitoring.models import RetrainingPolicy, RetrainingRun
from apps.monitoring.selectors import retraining_policy_of, retraining_run_get, retraining_run_list
from apps.monitoring.services.retraining import MAX_SCHEDULE_DAYS, retraining_policy_set, retraining_start_by_hand
from apps.projects.api.base import ProjectScopedViewSet
from apps.registry.models import RegisteredModel
from apps.registry.selectors import registered_model_get

_ERRORS = {
    400: OpenApiResponse(description='Invalid input: {"message": ..., "errors": {field: [messages]}}'),
    403: OpenApiResponse(description="Your role does not allow this."),
    404: OpenApiResponse(description="No such project, model or retraining, or you may not see it."),
    409: OpenApiResponse(description="The model or policy is not in a state that allows this."),
}


class RetrainingPolicySerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.username", read_only=True)
    periodic_task = serializers.CharField(source="periodic_task.name", read_only=True, default=None)

    class Meta:
        model = RetrainingPolicy
        fields = [
            "id",
            "registered_model",
            "on_drift_alert",
            "on_performance_alert",
            "schedule_days",
            "enabled",
            "owner",
            "periodic_task",
            "created_at",
            "updated_at",
        ]


class RetrainingPolicyInputSerializer(serializers.Serializer):
    on_drift_alert = serializers.BooleanField()
    on_performance_alert = serializers.BooleanField()
    schedule_days = serializers.IntegerField(
        allow_null=True, min_value=1, max_value=MAX_SCHEDULE_DAYS, help_text="Empty: no scheduled retraining."
    )
    enabled = serializers.BooleanField()


class RetrainingRunSerializer(serializers.ModelSerializer):
    champion_number = serializers.IntegerField(source="champion.number", read_only=True)
    new_version_number = serializers.IntegerField(source="new_version.number", read_only=True, default=None)
    dataset_version_number = serializers.IntegerField(source="dataset_version.number", read_only=True)

    class Meta:
        model = RetrainingRun
        fields = [
            "id",
            "trigger",
            "status",
            "alert",
            "champion",
            "champion_number",
            "dataset_version",
            "dataset_version_number",
            "experiment",
            "new_version",
            "new_version_number",
            "promotion_request",
            "error",
            "created_at",
            "finished_at",
        ]


class RetrainingRunDetailSerializer(RetrainingRunSerializer):
    class Meta(RetrainingRunSerializer.Meta):
        fields = [*RetrainingRunSerializer.Meta.fields, "comparison"]


class _ModelScopedViewSet(ProjectScopedViewSet):
    @cached_property
    def registered_model(self) -> RegisteredModel:
        return registered_model_get(actor=self.request.user, pk=self.kwargs["model_pk"], project=self.project)


class RetrainingPolicyViewSet(_ModelScopedViewSet):
    serializer_class = RetrainingPolicySerializer

    def scoped_queryset(self, project):
        if project is None:
            return RetrainingPolicy.objects.none()
        return RetrainingPolicy.objects.filter(registered_model=self.registered_model)

    @extend_schema(summary="The model's retraining policy", responses={200: RetrainingPolicySerializer, **_ERRORS})
    def retrieve(self, request, project_pk=None, model_pk=None):
        policy = retraining_policy_of(registered_model=self.registered_model)
        if policy is None:
            return Response(
                {"message": "This model has no retraining policy yet: PUT one.", "errors": {}},
                status=status.HTTP_404_NOT_FOUND,
            )
        return Response(RetrainingPolicySerializer(policy).data)

    @extend_schema(
        summary="Create or change the model's retraining policy (you become its owner)",
        request=RetrainingPolicyInputSerializer,
        responses={200: RetrainingPolicySerializer, **_ERRORS},
    )
    def update(self, request, project_pk=None, model_pk=None):
        model = self.registered_model
        body = RetrainingPolicyInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        retraining_policy_set(registered_model=model, actor=request.user, **body.validated_data)
        return Response(RetrainingPolicySerializer(retraining_policy_of(registered_model=model)).data)


class RetrainingRunViewSet(_ModelScopedViewSet):
    serializer_class = RetrainingRunSerializer
    lookup_value_converter = "uuid"

    def scoped_queryset(self, project):
        if project is None:
            return RetrainingRun.objects.none()
        return retraining_run_list(actor=self.request.user, registered_model=self.registered_model)

    @extend_schema(summary="The model's retrainings, newest first")
    def list(self, request, project_pk=None, model_pk=None):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(RetrainingRunSerializer(page, many=True).data)

    @extend_schema(
        summary="A retraining, with its comparison of the new version and the production version",
        responses={200: RetrainingRunDetailSerializer, **_ERRORS},
    )
    def retrieve(self, request, project_pk=None, model_pk=None, pk=None):
        run = retraining_run_get(actor=request.user, pk=pk, registered_model=self.registered_model)
        return Response(RetrainingRunDetailSerializer(run).data)

    @extend_schema(
        summary="Start a retraining by hand (or get the one already training)",
        request=None,
        responses={201: RetrainingRunDetailSerializer, **_ERRORS},
    )
    def create(self, request, project_pk=None, model_pk=None):
        model = self.registered_model
        run = retraining_start_by_hand(registered_model=model, actor=request.user)
        run = retraining_run_get(actor=request.user, pk=run.pk, registered_model=model)
        return Response(RetrainingRunDetailSerializer(run).data, status=status.HTTP_201_CREATED)
