"""The registry API: /api/v1/projects/<project_pk>/{models, models/<model_pk>/versions, promotions}.

Each viewset is project-scoped (a project the caller may not see answers 404); reads go through the selectors,
writes through the services (input serializer -> service -> output serializer), which check the policy and hold
every rule of the workflow.
"""

from functools import cached_property

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.response import Response

from apps.core.exceptions import ApplicationError
from apps.experiments.models import Run
from apps.projects.api.base import ProjectScopedViewSet
from apps.registry import selectors, services
from apps.registry.api.serializers import (
    ApproveInputSerializer,
    CardUpdateInputSerializer,
    ModelCardSerializer,
    ModelVersionDetailSerializer,
    ModelVersionSerializer,
    PromotionOpenInputSerializer,
    PromotionRequestDetailSerializer,
    PromotionRequestSerializer,
    RegisteredModelCreateInputSerializer,
    RegisteredModelSerializer,
    RegisteredModelUpdateInputSerializer,
    RejectInputSerializer,
    RollbackInputSerializer,
    StageInputSerializer,
    StageTransitionSerializer,
    VersionRegisterInputSerializer,
    VersionUpdateInputSerializer,
)
from apps.registry.choices import RequestStatus, Stage
from apps.registry.models import ModelVersion, PromotionRequest, RegisteredModel

_ERRORS = {
    400: OpenApiResponse(description='Invalid input: {"message": ..., "errors": {field: [messages]}}'),
    403: OpenApiResponse(description="Your role does not allow this (or separation of duties forbids it)."),
    404: OpenApiResponse(description="No such project or object, or you may not see it."),
}
_CONFLICT = {409: OpenApiResponse(description="The object is not in a state that allows this.")}


def _parsed(serializer_class, data):
    body = serializer_class(data=data)
    body.is_valid(raise_exception=True)
    return body.validated_data


# --- Registered models ----------------------------------------------------------------------------------------------
@extend_schema_view(
    list=extend_schema(summary="Registered models of the project, by name"),
    retrieve=extend_schema(summary="A registered model"),
)
class RegisteredModelViewSet(ProjectScopedViewSet):
    serializer_class = RegisteredModelSerializer
    lookup_value_converter = "uuid"

    def scoped_queryset(self, project):
        if project is None:
            return RegisteredModel.objects.none()
        return selectors.registered_model_list(actor=self.request.user, project=project)

    def _output(self, pk) -> dict:
        return RegisteredModelSerializer(self.get_queryset().get(pk=pk)).data

    def list(self, request, project_pk=None):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(RegisteredModelSerializer(page, many=True).data)

    def retrieve(self, request, project_pk=None, pk=None):
        return Response(RegisteredModelSerializer(self.get_object()).data)

    @extend_schema(
        summary="Create a registered model",
        request=RegisteredModelCreateInputSerializer,
        responses={201: RegisteredModelSerializer, **_ERRORS, **_CONFLICT},
    )
    def create(self, request, project_pk=None):
        data = _parsed(RegisteredModelCreateInputSerializer, request.data)
        model = services.registered_model_create(project=self.project, actor=request.user, **data)
        return Response(self._output(model.pk), status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Change a registered model's description (nothing else can be set)",
        request=RegisteredModelUpdateInputSerializer,
        responses={200: RegisteredModelSerializer, **_ERRORS},
    )
    def partial_update(self, request, project_pk=None, pk=None):
        model = self.get_object()
        data = _parsed(RegisteredModelUpdateInputSerializer, request.data)
        services.registered_model_update(registered_model=model, actor=request.user, **data)
        return Response(self._output(model.pk))

    @extend_schema(
        summary="Roll back: restore the previous production version and archive the current one",
        request=RollbackInputSerializer,
        responses={200: ModelVersionSerializer, **_ERRORS, **_CONFLICT},
    )
    @action(detail=True, methods=["post"])
    def rollback(self, request, project_pk=None, pk=None):
        model = self.get_object()
        data = _parsed(RollbackInputSerializer, request.data)
        restored = services.model_rollback(registered_model=model, actor=request.user, **data)
        return Response(
            ModelVersionSerializer(selectors.model_version_list(registered_model=model).get(pk=restored.pk)).data
        )

    @extend_schema(
        summary="The model's stage history: which version went to which stage, when, by whom, why (newest first)",
        responses={200: StageTransitionSerializer(many=True), **_ERRORS},
    )
    @action(detail=True, methods=["get"])
    def history(self, request, project_pk=None, pk=None):
        page = self.paginate_queryset(selectors.stage_history(registered_model=self.get_object()))
        return self.get_paginated_response(StageTransitionSerializer(page, many=True).data)


# --- Versions -------------------------------------------------------------------------------------------------------
@extend_schema_view(
    list=extend_schema(summary="Versions of the model, newest first"),
    retrieve=extend_schema(
        summary="A version: artifact, hashes, input signature, metrics snapshot and lineage",
        responses={200: ModelVersionDetailSerializer, **_ERRORS},
    ),
)
class ModelVersionViewSet(ProjectScopedViewSet):
    serializer_class = ModelVersionSerializer
    lookup_value_converter = "uuid"

    @cached_property
    def registered_model(self) -> RegisteredModel:
        return selectors.registered_model_get(actor=self.request.user, pk=self.kwargs["model_pk"], project=self.project)

    def scoped_queryset(self, project):
        if project is None:
            return ModelVersion.objects.none()
        return selectors.model_version_list(registered_model=self.registered_model)

    def _version(self, pk) -> ModelVersion:
        return selectors.model_version_get(actor=self.request.user, pk=pk, registered_model=self.registered_model)

    def list(self, request, project_pk=None, model_pk=None):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(ModelVersionSerializer(page, many=True).data)

    def retrieve(self, request, project_pk=None, model_pk=None, pk=None):
        return Response(ModelVersionDetailSerializer(self._version(pk)).data)

    @extend_schema(
        summary="Register a succeeded run as the next version (its artifact is copied and verified)",
        request=VersionRegisterInputSerializer,
        responses={201: ModelVersionDetailSerializer, **_ERRORS, **_CONFLICT},
    )
    def create(self, request, project_pk=None, model_pk=None):
        data = _parsed(VersionRegisterInputSerializer, request.data)
        run = Run.objects.filter(pk=data.pop("run"), experiment__project=self.project).first()
        if run is None:
            message = "Choose a run of this project."
            raise ApplicationError(message, errors={"run": [message]})
        version = services.model_version_register(
            run=run, actor=request.user, registered_model=self.registered_model, **data
        )
        return Response(ModelVersionDetailSerializer(self._version(version.pk)).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Change a version's description or tags (a stage, hash or approver cannot be set)",
        request=VersionUpdateInputSerializer,
        responses={200: ModelVersionDetailSerializer, **_ERRORS},
    )
    def partial_update(self, request, project_pk=None, model_pk=None, pk=None):
        version = self._version(pk)
        data = _parsed(VersionUpdateInputSerializer, request.data)
        services.model_version_update(version=version, actor=request.user, **data)
        return Response(ModelVersionDetailSerializer(self._version(pk)).data)

    @extend_schema(
        summary="Move the version to staging, or archive it (production only through a promotion request)",
        request=StageInputSerializer,
        responses={200: ModelVersionDetailSerializer, **_ERRORS, **_CONFLICT},
    )
    @action(detail=True, methods=["post"])
    def stage(self, request, project_pk=None, model_pk=None, pk=None):
        version = self._version(pk)
        data = _parsed(StageInputSerializer, request.data)
        change = services.version_move_to_staging if data["stage"] == Stage.STAGING else services.version_archive
        change(version=version, actor=request.user, reason=data["reason"])
        return Response(ModelVersionDetailSerializer(self._version(pk)).data)

    @extend_schema(
        summary="The version's model card: generated and written sections",
        responses={200: ModelCardSerializer, **_ERRORS},
    )
    def card(self, request, project_pk=None, model_pk=None, pk=None):
        return Response(ModelCardSerializer(self._version(pk)).data)

    @extend_schema(
        summary="Write the model card's human sections (generated sections are read-only)",
        request=CardUpdateInputSerializer,
        responses={200: ModelCardSerializer, **_ERRORS},
    )
    def card_update(self, request, project_pk=None, model_pk=None, pk=None):
        version = self._version(pk)
        data = _parsed(CardUpdateInputSerializer, request.data)
        services.model_card_update(version=version, actor=request.user, written=data["written"])
        return Response(ModelCardSerializer(self._version(pk)).data)


# --- Promotion requests ---------------------------------------------------------------------------------------------
@extend_schema_view(
    list=extend_schema(summary="Promotion requests of the project, newest first"),
    retrieve=extend_schema(
        summary="A promotion request with its gates and every decision",
        responses={200: PromotionRequestDetailSerializer, **_ERRORS},
    ),
)
class PromotionRequestViewSet(ProjectScopedViewSet):
    serializer_class = PromotionRequestSerializer
    lookup_value_converter = "uuid"

    def scoped_queryset(self, project):
        if project is None:
            return PromotionRequest.objects.none()
        return selectors.promotion_request_list(actor=self.request.user, project=project)

    def _detail(self, pk) -> dict:
        request = selectors.promotion_request_get(actor=self.request.user, pk=pk, project=self.project)
        return PromotionRequestDetailSerializer(request).data

    def list(self, request, project_pk=None):
        requests = self.get_queryset()
        wanted = request.query_params.get("status")
        if wanted:
            if wanted not in RequestStatus.values:
                message = f"Choose one of: {', '.join(RequestStatus.values)}."
                raise ApplicationError(message, errors={"status": [message]})
            requests = requests.filter(status=wanted)
        page = self.paginate_queryset(requests)
        return self.get_paginated_response(PromotionRequestSerializer(page, many=True).data)

    def retrieve(self, request, project_pk=None, pk=None):
        return Response(self._detail(pk))

    @extend_schema(
        summary="Ask for a staging version to go to production; gates are evaluated, reviewers notified",
        request=PromotionOpenInputSerializer,
        responses={201: PromotionRequestDetailSerializer, **_ERRORS, **_CONFLICT},
    )
    def create(self, request, project_pk=None):
        data = _parsed(PromotionOpenInputSerializer, request.data)
        version = ModelVersion.objects.filter(pk=data["version"], registered_model__project=self.project).first()
        if version is None:
            message = "Choose a version of a model of this project."
            raise ApplicationError(message, errors={"version": [message]})
        opened = services.promotion_request_open(
            version=version, actor=request.user, justification=data["justification"]
        )
        return Response(self._detail(opened.pk), status=status.HTTP_201_CREATED)

    def _request(self, pk) -> PromotionRequest:
        return selectors.promotion_request_get(actor=self.request.user, pk=pk, project=self.project)

    @extend_schema(
        summary="Approve (reviewers; never your own request or a version you trained)",
        request=ApproveInputSerializer,
        responses={200: PromotionRequestDetailSerializer, **_ERRORS, **_CONFLICT},
    )
    @action(detail=True, methods=["post"])
    def approve(self, request, project_pk=None, pk=None):
        data = _parsed(ApproveInputSerializer, request.data)
        services.promotion_approve(request=self._request(pk), actor=request.user, **data)
        return Response(self._detail(pk))

    @extend_schema(
        summary="Reject with a reason (reviewers; the same separation of duties)",
        request=RejectInputSerializer,
        responses={200: PromotionRequestDetailSerializer, **_ERRORS, **_CONFLICT},
    )
    @action(detail=True, methods=["post"])
    def reject(self, request, project_pk=None, pk=None):
        data = _parsed(RejectInputSerializer, request.data)
        services.promotion_reject(request=self._request(pk), actor=request.user, **data)
        return Response(self._detail(pk))

    @extend_schema(
        summary="Withdraw your own open request",
        request=None,
        responses={200: PromotionRequestDetailSerializer, **_ERRORS, **_CONFLICT},
    )
    @action(detail=True, methods=["post"])
    def withdraw(self, request, project_pk=None, pk=None):
        services.promotion_withdraw(request=self._request(pk), actor=request.user)
        return Response(self._detail(pk))
