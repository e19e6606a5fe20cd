"""The experiments API: /api/v1/projects/<project_pk>/{experiments, runs}.

Each viewset is project-scoped (a project the caller may not see answers 404); reads go through the selectors,
writes through the services (input serializer -> service -> output serializer), which check the policy.
"""

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.response import Response

from apps.accounts.permissions import Action, require
from apps.core.exceptions import ApplicationError
from apps.datasets.models import DatasetVersion
from apps.experiments import selectors, services
from apps.experiments.api.serializers import (
    CompareQuerySerializer,
    ExperimentDetailSerializer,
    ExperimentLaunchInputSerializer,
    ExperimentSerializer,
    LaunchEnvelopeSerializer,
    LeaderboardEntrySerializer,
    RunCompareSerializer,
    RunDetailSerializer,
    RunFilterSerializer,
    RunLogLineSerializer,
    RunLogQuerySerializer,
    RunLogSerializer,
    RunSerializer,
)
from apps.experiments.models import Experiment, Run
from apps.projects.api.base import ProjectScopedViewSet

_ERRORS = {
    400: OpenApiResponse(description='Invalid input: {"message": ..., "errors": {field: [messages]}}'),
    403: OpenApiResponse(description="Your role does not allow this."),
    404: OpenApiResponse(description="No such project or object, or you may not see it."),
}
_CONFLICT = {409: OpenApiResponse(description="The object is not in a state that allows this.")}


def _plain(data):
    """request.data as plain JSON types (a QueryDict from a form post becomes a dict of single values)."""
    if hasattr(data, "dict"):
        return data.dict()
    return data


# --- Experiments ------------------------------------------------------------------------------------------------
@extend_schema_view(
    list=extend_schema(summary="Experiments of the project, newest first"),
    retrieve=extend_schema(
        summary="An experiment: its spec and its runs", responses={200: ExperimentDetailSerializer, **_ERRORS}
    ),
)
class ExperimentViewSet(ProjectScopedViewSet):
    """Experiments: a dataset version, a spec, and one training run per candidate algorithm."""

    serializer_class = ExperimentSerializer
    lookup_value_converter = "uuid"

    def scoped_queryset(self, project):
        if project is None:
            return Experiment.objects.none()
        return selectors.experiment_list(actor=self.request.user, project=project)

    def _detail(self, pk) -> dict:
        experiment = selectors.experiment_get(actor=self.request.user, pk=pk, project=self.project)
        return ExperimentDetailSerializer(experiment).data

    def list(self, request, project_pk=None):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(ExperimentSerializer(page, many=True).data)

    def retrieve(self, request, project_pk=None, pk=None):
        return Response(self._detail(pk))

    @extend_schema(
        summary="Launch an experiment: one run per candidate algorithm is queued for training",
        request=ExperimentLaunchInputSerializer,
        responses={201: ExperimentDetailSerializer, **_ERRORS, **_CONFLICT},
    )
    def create(self, request, project_pk=None):
        # Refuse whoever may not launch before saying anything about their input (the service checks again).
        require(request.user, Action.EXPERIMENT_LAUNCH, self.project)
        data = _plain(request.data)
        if not isinstance(data, dict):
            message = "Send the experiment as a JSON object."
            raise ApplicationError(message, errors={"non_field_errors": [message]})
        envelope = LaunchEnvelopeSerializer(data=data)
        envelope.is_valid(raise_exception=True)
        version = DatasetVersion.objects.filter(
            pk=envelope.validated_data["dataset_version"], dataset__project=self.project
        ).first()
        spec_data = {key: value for key, value in data.items() if key not in LaunchEnvelopeSerializer().fields}
        experiment = services.experiment_launch(
            project=self.project,
            actor=request.user,
            dataset_version=version,
            data=spec_data,
            name=envelope.validated_data["name"],
            description=envelope.validated_data["description"],
        )
        return Response(self._detail(experiment.pk), status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Cancel the experiment's queued and running runs (finished runs keep their results)",
        request=None,
        responses={200: ExperimentDetailSerializer, **_ERRORS, **_CONFLICT},
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request, project_pk=None, pk=None):
        experiment = selectors.experiment_get(actor=request.user, pk=pk, project=self.project)
        services.experiment_cancel(experiment=experiment, actor=request.user)
        return Response(self._detail(pk))

    @extend_schema(
        summary="The experiment's runs ranked by the primary metric (succeeded runs first, best first)",
        responses={200: LeaderboardEntrySerializer(many=True), **_ERRORS},
    )
    @action(detail=True, methods=["get"])
    def leaderboard(self, request, project_pk=None, pk=None):
        experiment = selectors.experiment_get(actor=request.user, pk=pk, project=self.project)
        return Response(LeaderboardEntrySerializer(selectors.leaderboard(experiment=experiment), many=True).data)


# --- Runs -------------------------------------------------------------------------------------------------------
@extend_schema_view(
    list=extend_schema(summary="Runs of the project's experiments", parameters=[RunFilterSerializer]),
    retrieve=extend_schema(
        summary="A run: progress, results, evaluation, explanations, reproducibility record and artifact",
        responses={200: RunDetailSerializer, **_ERRORS},
    ),
)
class RunViewSet(ProjectScopedViewSet):
    serializer_class = RunSerializer
    lookup_value_converter = "uuid"

    def scoped_queryset(self, project):
        if project is None:
            return Run.objects.none()
        return selectors.run_list(actor=self.request.user, project=project)

    def list(self, request, project_pk=None):
        filters = RunFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        runs = self.get_queryset()
        if filters.validated_data.get("experiment"):
            runs = runs.filter(experiment_id=filters.validated_data["experiment"])
        if filters.validated_data.get("status"):
            runs = runs.filter(status=filters.validated_data["status"])
        page = self.paginate_queryset(runs)
        return self.get_paginated_response(RunSerializer(page, many=True).data)

    def retrieve(self, request, project_pk=None, pk=None):
        return Response(RunDetailSerializer(self.get_object()).data)

    @extend_schema(
        summary="Cancel a queued or running run", request=None, responses={200: RunSerializer, **_ERRORS, **_CONFLICT}
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request, project_pk=None, pk=None):
        run = services.run_cancel(run=self.get_object(), actor=request.user)
        return Response(RunSerializer(self.get_queryset().get(pk=run.pk)).data)

    @extend_schema(
        summary="The run's log lines: the tail, or the lines after a given id (poll with ?after=<last_id>)",
        parameters=[RunLogQuerySerializer],
        responses={200: RunLogSerializer, **_ERRORS},
    )
    @action(detail=True, methods=["get"])
    def log(self, request, project_pk=None, pk=None):
        run = self.get_object()
        query = RunLogQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        lines = selectors.run_log_lines(
            run=run, after_id=query.validated_data.get("after"), limit=query.validated_data["limit"]
        )
        last_id = lines[-1].id if lines else query.validated_data.get("after")
        return Response(
            {"run_status": run.status, "lines": RunLogLineSerializer(lines, many=True).data, "last_id": last_id}
        )

    @extend_schema(
        summary="Compare 2 to 6 runs side by side (metrics per evaluation section)",
        parameters=[CompareQuerySerializer],
        responses={200: RunCompareSerializer, **_ERRORS},
    )
    @action(detail=False, methods=["get"])
    def compare(self, request, project_pk=None):
        query = CompareQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        ids = [part.strip() for part in query.validated_data["ids"].split(",") if part.strip()]
        comparison = selectors.runs_compare(actor=request.user, run_ids=ids, project=self.project)
        return Response(RunCompareSerializer(comparison).data)
