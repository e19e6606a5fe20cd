"""The deployments API: /api/v1/deployments/...

    GET  /deployments/                  visible deployments (?project=<uuid>)
    POST /deployments/                  deploy a version (one call: {version})
    GET  /deployments/<uuid>/           status, URL, replicas, routes, rollout, canary policy
    GET  /deployments/<uuid>/metrics/   requests, rate, errors, latency per version over the last 5 minutes
    GET  /deployments/<uuid>/history/   traffic changes, newest first
    POST /deployments/<uuid>/{rollout, switch, switch-back, rollback, advance, finish, ab, shadow, end, scale, stop,
                              start, canary}/

Reads go through apps.deployments.selectors.deployments (what the caller may not see is a 404), writes through
apps.deployments.services.deployments (input serializer -> service -> output serializer).
"""

from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from apps.core.exceptions import ApplicationError
from apps.deployments.api import serializers as io
from apps.deployments.models import Deployment
from apps.deployments.selectors import deployments as selectors
from apps.deployments.services import deployments as services
from apps.projects.selectors import project_get
from apps.registry.models import ModelVersion
from apps.registry.selectors import model_version_get

_ERRORS = {
    400: OpenApiResponse(description='Invalid input: {"message": ..., "errors": {field: [messages]}}'),
    403: OpenApiResponse(description="Your role does not allow this."),
    404: OpenApiResponse(description="No such deployment or version, or you may not see it."),
    409: OpenApiResponse(description="The deployment is not in a state that allows this."),
}


def _parsed(serializer_class, data):
    body = serializer_class(data=data)
    body.is_valid(raise_exception=True)
    return body.validated_data


def _version_of(deployment: Deployment, pk, field: str = "version") -> ModelVersion:
    version = deployment.registered_model.versions.filter(pk=pk).first()
    if version is None:
        message = f"Not a version of {deployment.registered_model.name}."
        raise ApplicationError(message, errors={field: [message]})
    return version


@extend_schema_view(
    list=extend_schema(
        summary="Deployments you may see, by name",
        parameters=[OpenApiParameter("project", str, description="Only this project's (uuid).")],
    ),
    retrieve=extend_schema(summary="A deployment: status, URL, replicas, routes, rollout"),
)
class DeploymentViewSet(viewsets.GenericViewSet):
    serializer_class = io.DeploymentSerializer
    lookup_value_converter = "uuid"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Deployment.objects.none()
        return selectors.deployment_list(actor=self.request.user).select_related("rollout_version")

    def get_object(self) -> Deployment:
        return selectors.deployment_get(actor=self.request.user, pk=self.kwargs["pk"])

    def _output(self, deployment: Deployment) -> Response:
        return Response(io.DeploymentSerializer(self.get_object() if deployment is None else deployment).data)

    def _fresh(self, pk) -> Response:
        return Response(io.DeploymentSerializer(selectors.deployment_get(actor=self.request.user, pk=pk)).data)

    def list(self, request):
        deployments = self.get_queryset()
        if request.query_params.get("project"):
            try:
                project = project_get(actor=request.user, pk=request.query_params["project"])
            except Http404:
                return Response({"message": "No such project.", "errors": {"project": ["No such project."]}}, 400)
            deployments = deployments.filter(project=project)
        page = self.paginate_queryset(deployments)
        return self.get_paginated_response(io.DeploymentSerializer(page, many=True).data)

    def retrieve(self, request, pk=None):
        return Response(io.DeploymentSerializer(self.get_object()).data)

    @extend_schema(
        summary="Deploy a version to a new endpoint (production versions; staging ones into a staging endpoint)",
        request=io.DeployInputSerializer,
        responses={201: io.DeploymentSerializer, **_ERRORS},
    )
    def create(self, request):
        data = _parsed(io.DeployInputSerializer, request.data)
        try:
            version = model_version_get(actor=request.user, pk=data.pop("version"))
        except Http404:
            raise ApplicationError("No such version.", errors={"version": ["No such version."]}) from None
        deployment = services.deployment_create(version=version, actor=request.user, **data)
        return Response(
            io.DeploymentSerializer(selectors.deployment_get(actor=request.user, pk=deployment.pk)).data,
            status=status.HTTP_201_CREATED,
        )

    @extend_schema(
        summary="Requests, rate, errors and latency per version over the last 5 minutes",
        responses={200: io.VersionFiguresSerializer(many=True), **_ERRORS},
    )
    @action(detail=True, methods=["get"])
    def metrics(self, request, pk=None):
        figures = selectors.live_figures(deployment=self.get_object())
        return Response(io.VersionFiguresSerializer(figures, many=True).data)

    @extend_schema(
        summary="Traffic changes, newest first", responses={200: io.TrafficChangeSerializer(many=True), **_ERRORS}
    )
    @action(detail=True, methods=["get"])
    def history(self, request, pk=None):
        page = self.paginate_queryset(selectors.traffic_history(deployment=self.get_object()))
        return self.get_paginated_response(io.TrafficChangeSerializer(page, many=True).data)

    # --- changes ------------------------------------------------------------------------------------------------
    @extend_schema(
        summary="Serve another version: direct, blue-green (switches once ready) or canary (stepwise, auto-rollback)",
        request=io.RolloutInputSerializer,
        responses={200: io.DeploymentSerializer, **_ERRORS},
    )
    @action(detail=True, methods=["post"])
    def rollout(self, request, pk=None):
        deployment = self.get_object()
        data = _parsed(io.RolloutInputSerializer, request.data)
        services.deployment_rollout(
            deployment=deployment,
            version=_version_of(deployment, data["version"]),
            actor=request.user,
            strategy=data["strategy"],
            reason=data["reason"],
        )
        return self._fresh(pk)

    @extend_schema(
        summary="Blue-green: switch now (refused until the new version is ready on every replica)",
        request=None,
        responses={200: io.DeploymentSerializer, **_ERRORS},
    )
    @action(detail=True, methods=["post"])
    def switch(self, request, pk=None):
        deployment = self.get_object()
        ready = set(deployment.observed.get("ready_versions", []))
        services.blue_green_switch(deployment=deployment, actor=request.user, ready_versions=ready)
        return self._fresh(pk)

    @extend_schema(
        summary="Blue-green: switch back to the previous version at once",
        request=io.DeploymentReasonInputSerializer,
        responses={200: io.DeploymentSerializer, **_ERRORS},
    )
    @action(detail=True, methods=["post"], url_path="switch-back")
    def switch_back(self, request, pk=None):
        data = _parsed(io.DeploymentReasonInputSerializer, request.data)
        services.blue_green_switch_back(deployment=self.get_object(), actor=request.user, reason=data["reason"])
        return self._fresh(pk)

    @extend_schema(
        summary="Abandon a canary or a blue-green in progress: all traffic back to the stable version",
        request=io.DeploymentReasonInputSerializer,
        responses={200: io.DeploymentSerializer, **_ERRORS},
    )
    @action(detail=True, methods=["post"])
    def rollback(self, request, pk=None):
        data = _parsed(io.DeploymentReasonInputSerializer, request.data)
        services.rollout_rollback(deployment=self.get_object(), actor=request.user, reason=data["reason"])
        return self._fresh(pk)

    @extend_schema(
        summary="Canary: raise its share one step now",
        request=None,
        responses={200: io.DeploymentSerializer, **_ERRORS},
    )
    @action(detail=True, methods=["post"])
    def advance(self, request, pk=None):
        services.canary_advance(deployment=self.get_object(), actor=request.user)
        return self._fresh(pk)

    @extend_schema(
        summary="Blue-green: unload the idle version", request=None, responses={200: io.DeploymentSerializer, **_ERRORS}
    )
    @action(detail=True, methods=["post"])
    def finish(self, request, pk=None):
        services.rollout_finish(deployment=self.get_object(), actor=request.user)
        return self._fresh(pk)

    @extend_schema(
        summary="Start an A/B test: a fixed, sticky split between the live version and another",
        request=io.ABInputSerializer,
        responses={200: io.DeploymentSerializer, **_ERRORS},
    )
    @action(detail=True, methods=["post"])
    def ab(self, request, pk=None):
        deployment = self.get_object()
        data = _parsed(io.ABInputSerializer, request.data)
        version = _version_of(deployment, data.pop("version"))
        services.ab_test_start(deployment=deployment, version=version, actor=request.user, **data)
        return self._fresh(pk)

    @extend_schema(
        summary="Shadow a version: it gets a copy of live traffic, its answers are logged, never returned",
        request=io.ShadowInputSerializer,
        responses={200: io.DeploymentSerializer, **_ERRORS},
    )
    @action(detail=True, methods=["post"])
    def shadow(self, request, pk=None):
        deployment = self.get_object()
        data = _parsed(io.ShadowInputSerializer, request.data)
        version = _version_of(deployment, data["version"])
        services.shadow_start(deployment=deployment, version=version, actor=request.user, reason=data["reason"])
        return self._fresh(pk)

    @extend_schema(
        summary="End an A/B test or a shadow, keeping one version",
        request=io.EndExperimentInputSerializer,
        responses={200: io.DeploymentSerializer, **_ERRORS},
    )
    @action(detail=True, methods=["post"])
    def end(self, request, pk=None):
        deployment = self.get_object()
        data = _parsed(io.EndExperimentInputSerializer, request.data)
        keep = _version_of(deployment, data["keep"], field="keep")
        services.experiment_end(deployment=deployment, actor=request.user, keep=keep, reason=data["reason"])
        return self._fresh(pk)

    @extend_schema(
        summary="Change the number of replicas",
        request=io.ScaleInputSerializer,
        responses={200: io.DeploymentSerializer, **_ERRORS},
    )
    @action(detail=True, methods=["post"])
    def scale(self, request, pk=None):
        data = _parsed(io.ScaleInputSerializer, request.data)
        services.deployment_scale(deployment=self.get_object(), actor=request.user, replicas=data["replicas"])
        return self._fresh(pk)

    @extend_schema(
        summary="Stop every replica (the routes are kept)",
        request=io.DeploymentReasonInputSerializer,
        responses={200: io.DeploymentSerializer, **_ERRORS},
    )
    @action(detail=True, methods=["post"])
    def stop(self, request, pk=None):
        data = _parsed(io.DeploymentReasonInputSerializer, request.data)
        services.deployment_stop(deployment=self.get_object(), actor=request.user, reason=data["reason"])
        return self._fresh(pk)

    @extend_schema(
        summary="Start a stopped deployment", request=None, responses={200: io.DeploymentSerializer, **_ERRORS}
    )
    @action(detail=True, methods=["post"])
    def start(self, request, pk=None):
        services.deployment_start(deployment=self.get_object(), actor=request.user)
        return self._fresh(pk)

    @extend_schema(
        summary="Set the canary policy (step, interval, error and latency limits, minimum requests)",
        request=io.CanaryPolicySerializer,
        responses={200: io.DeploymentSerializer, **_ERRORS},
    )
    @action(detail=True, methods=["post"])
    def canary(self, request, pk=None):
        data = _parsed(io.CanaryPolicySerializer, request.data)
        services.canary_configure(deployment=self.get_object(), actor=request.user, **data)
        return self._fresh(pk)

    @extend_schema(
        summary="Fetch a feature view's features from the online store by the entity keys clients send (or stop)",
        request=io.FeatureViewInputSerializer,
        responses={200: io.DeploymentSerializer, **_ERRORS},
    )
    @action(detail=True, methods=["post"], url_path="feature-view")
    def feature_view(self, request, pk=None):
        from apps.features.models import FeatureView

        deployment = self.get_object()
        name = _parsed(io.FeatureViewInputSerializer, request.data)["view"]
        view = None
        if name is not None:
            view = FeatureView.objects.select_related("entity").filter(name=name).first()
            if view is None:
                raise ApplicationError("No such feature view.", errors={"view": [f"No feature view named {name!r}."]})
        services.deployment_feature_view_set(deployment=deployment, actor=request.user, view=view)
        return self._fresh(pk)
