from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.response import Response

from apps.accounts.models import Membership
from apps.projects.api.base import ProjectScopedViewSet, VisibleProjectsViewSet
from apps.projects.api.serializers import (
    ProblemDefinitionInputSerializer,
    ProjectFilterSerializer,
    ProjectMemberSerializer,
    ProjectMemberSetInputSerializer,
    ProjectSerializer,
    ReasonInputSerializer,
    RoiEstimateSerializer,
)
from apps.projects.roi import expected_roi
from apps.projects.selectors import project_get, project_list, project_members
from apps.projects.services import (
    project_approve,
    project_create,
    project_mark_in_production,
    project_member_remove,
    project_member_set,
    project_retire,
    project_return_to_draft,
    project_submit,
    project_update_definition,
)

_ERRORS = {
    400: OpenApiResponse(description='Invalid input: {"message": ..., "errors": {field: [messages]}}'),
    403: OpenApiResponse(description="Your role does not allow this."),
    404: OpenApiResponse(description="No such project, or you may not see it."),
}
_TRANSITION_ERRORS = {**_ERRORS, 409: OpenApiResponse(description="The project is not in a state that allows this.")}


@extend_schema_view(
    list=extend_schema(summary="Projects you may see", parameters=[ProjectFilterSerializer]),
    retrieve=extend_schema(
        summary="A project with its problem definition", responses={200: ProjectSerializer, **_ERRORS}
    ),
)
class ProjectViewSet(VisibleProjectsViewSet):
    """Problem definitions and their lifecycle: draft -> submitted -> approved -> in production -> retired."""

    serializer_class = ProjectSerializer

    def _project_output(self, project) -> dict:
        return ProjectSerializer(project_get(actor=self.request.user, pk=project.pk)).data

    def list(self, request):
        filters = ProjectFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        projects = project_list(actor=request.user, filters=filters.validated_data)
        page = self.paginate_queryset(projects)
        return self.get_paginated_response(ProjectSerializer(page, many=True).data)

    def retrieve(self, request, pk=None):
        return Response(ProjectSerializer(self.get_object()).data)

    @extend_schema(
        summary="File a problem definition (creates a draft project)",
        request=ProblemDefinitionInputSerializer,
        responses={201: ProjectSerializer, **_ERRORS},
    )
    def create(self, request):
        data = ProblemDefinitionInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        project = project_create(actor=request.user, data=data.validated_data)
        return Response(self._project_output(project), status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Change fields of a draft's problem definition",
        request=ProblemDefinitionInputSerializer(partial=True),
        responses={200: ProjectSerializer, **_TRANSITION_ERRORS},
    )
    def partial_update(self, request, pk=None):
        project = self.get_object()
        data = ProblemDefinitionInputSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        project = project_update_definition(project=project, actor=request.user, data=data.validated_data)
        return Response(self._project_output(project))

    @extend_schema(
        summary="Submit a draft for review", request=None, responses={200: ProjectSerializer, **_TRANSITION_ERRORS}
    )
    @action(detail=True, methods=["post"])
    def submit(self, request, pk=None):
        project = project_submit(project=self.get_object(), actor=request.user)
        return Response(self._project_output(project))

    @extend_schema(
        summary="Approve a submitted project for development (not by who filed or submitted it)",
        request=None,
        responses={200: ProjectSerializer, **_TRANSITION_ERRORS},
    )
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        project = project_approve(project=self.get_object(), actor=request.user)
        return Response(self._project_output(project))

    @extend_schema(
        summary="Return a submitted project to draft, with a reason",
        request=ReasonInputSerializer,
        responses={200: ProjectSerializer, **_TRANSITION_ERRORS},
    )
    @action(detail=True, methods=["post"], url_path="return", url_name="return")
    def return_to_draft(self, request, pk=None):
        project = self.get_object()
        body = ReasonInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        project = project_return_to_draft(project=project, actor=request.user, reason=body.validated_data["reason"])
        return Response(self._project_output(project))

    @extend_schema(
        summary="Mark an approved project as in production",
        request=None,
        responses={200: ProjectSerializer, **_TRANSITION_ERRORS},
    )
    @action(detail=True, methods=["post"], url_path="mark-in-production", url_name="mark-in-production")
    def mark_in_production(self, request, pk=None):
        project = project_mark_in_production(project=self.get_object(), actor=request.user)
        return Response(self._project_output(project))

    @extend_schema(
        summary="Retire a project, with an optional reason",
        request=ReasonInputSerializer,
        responses={200: ProjectSerializer, **_TRANSITION_ERRORS},
    )
    @action(detail=True, methods=["post"])
    def retire(self, request, pk=None):
        project = self.get_object()
        body = ReasonInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        project = project_retire(project=project, actor=request.user, reason=body.validated_data["reason"])
        return Response(self._project_output(project))

    @extend_schema(
        summary="The expected ROI computed from the definition's targets",
        responses={200: RoiEstimateSerializer, **_ERRORS},
    )
    @action(detail=True, methods=["get"])
    def roi(self, request, pk=None):
        estimate = expected_roi(self.get_object().definition)
        return Response(RoiEstimateSerializer(estimate.as_dict()).data)


@extend_schema_view(
    list=extend_schema(summary="Members of a project and their roles"),
    create=extend_schema(
        summary="Add a member, or change a member's role",
        request=ProjectMemberSetInputSerializer,
        responses={201: ProjectMemberSerializer, **_ERRORS},
    ),
    destroy=extend_schema(summary="Remove a member", responses={204: None, **_TRANSITION_ERRORS}),
)
class ProjectMemberViewSet(ProjectScopedViewSet):
    serializer_class = ProjectMemberSerializer
    lookup_value_converter = "uuid"

    def scoped_queryset(self, project):
        if project is None:
            return Membership.objects.none()
        return project_members(project=project)

    def list(self, request, project_pk=None):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(ProjectMemberSerializer(page, many=True).data)

    def create(self, request, project_pk=None):
        body = ProjectMemberSetInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        membership = project_member_set(project=self.project, actor=request.user, **body.validated_data)
        return Response(ProjectMemberSerializer(membership).data, status=status.HTTP_201_CREATED)

    def destroy(self, request, project_pk=None, pk=None):
        project_member_remove(project=self.project, actor=request.user, membership_id=pk)
        return Response(status=status.HTTP_204_NO_CONTENT)
