"""The feature store API under /api/v1/: the catalog (/features/...), training sets and personal-feature exceptions
of a project (/projects/<uuid>/training-sets/, /projects/<uuid>/feature-exceptions/), and online reads
(/features/online).

Reads go through the selectors (the catalog needs FEATURE_VIEW: anyone else gets 404), writes through the services
(input serializer -> service -> output serializer), which check the policy.
"""

from datetime import timedelta

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status, viewsets
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.exceptions import ApplicationError
from apps.datasets.models import DatasetVersion
from apps.datasets.selectors import dataset_get
from apps.features import selectors, services
from apps.features.api.serializers import (
    EntityCreateInputSerializer,
    EntitySerializer,
    ExceptionGrantInputSerializer,
    FeatureDefineInputSerializer,
    FeatureSerializer,
    FeatureVersionSerializer,
    FeatureViewCreateInputSerializer,
    FeatureViewSerializer,
    MaterialisationJobSerializer,
    MaterialiseInputSerializer,
    OnlineReadInputSerializer,
    OnlineResponseSerializer,
    OnlineSyncSerializer,
    PersonalFeatureExceptionSerializer,
    TrainingSetBuildInputSerializer,
    TrainingSetSerializer,
)
from apps.features.models import PersonalFeatureException, TrainingSet
from apps.projects.api.base import ProjectScopedViewSet


def _parsed(serializer_class, data) -> dict:
    body = serializer_class(data=data)
    body.is_valid(raise_exception=True)
    return body.validated_data


# --- The catalog --------------------------------------------------------------------------------------------------
class EntityViewSet(viewsets.GenericViewSet):
    serializer_class = EntitySerializer

    def get_queryset(self):
        return selectors.entity_list(actor=self.request.user)

    def list(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(EntitySerializer(page, many=True).data)

    @extend_schema(request=EntityCreateInputSerializer, responses={201: EntitySerializer})
    def create(self, request):
        data = _parsed(EntityCreateInputSerializer, request.data)
        entity = services.entity_create(actor=request.user, **data)
        return Response(EntitySerializer(entity).data, status=status.HTTP_201_CREATED)


class FeatureViewViewSet(viewsets.GenericViewSet):
    serializer_class = FeatureViewSerializer

    def get_queryset(self):
        return selectors.view_list(actor=self.request.user)

    def list(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(FeatureViewSerializer(page, many=True).data)

    @extend_schema(request=FeatureViewCreateInputSerializer, responses={201: FeatureViewSerializer})
    def create(self, request):
        selectors.view_list(actor=request.user)  # the catalog is visible, or 404
        data = _parsed(FeatureViewCreateInputSerializer, request.data)
        view = services.feature_view_create(actor=request.user, **data)
        return Response(FeatureViewSerializer(view).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={202: OnlineSyncSerializer}, summary="Sync the view to the online store")
    def sync(self, request, name=None):
        view = selectors.view_get(actor=request.user, name=name)
        sync = services.online_sync_request(actor=request.user, view=view)
        return Response(OnlineSyncSerializer(sync).data, status=status.HTTP_202_ACCEPTED)


class FeatureViewSet(viewsets.GenericViewSet):
    serializer_class = FeatureSerializer
    lookup_value_converter = "uuid"

    def get_queryset(self):
        filters = {key: self.request.query_params.get(key) for key in ("q", "tag", "owner", "entity", "view")}
        return selectors.feature_list(actor=self.request.user, filters=filters)

    @extend_schema(
        parameters=[OpenApiParameter(name, str, required=False) for name in ("q", "tag", "owner", "entity", "view")]
    )
    def list(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(FeatureSerializer(page, many=True).data)

    def retrieve(self, request, pk=None):
        return Response(FeatureSerializer(selectors.feature_get(actor=request.user, pk=pk)).data)

    @extend_schema(request=FeatureDefineInputSerializer, responses={201: FeatureVersionSerializer})
    def define(self, request):
        selectors.view_list(actor=request.user)  # the catalog is visible, or 404
        data = _parsed(FeatureDefineInputSerializer, request.data)
        data["dataset"] = dataset_get(actor=request.user, pk=data["dataset"])
        version = services.feature_define(actor=request.user, **data)
        return Response(FeatureVersionSerializer(version).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=MaterialiseInputSerializer, responses={202: MaterialisationJobSerializer})
    def materialise(self, request, pk=None):
        version = selectors.feature_version_get(actor=request.user, pk=pk)
        data = _parsed(MaterialiseInputSerializer, request.data)
        job = services.materialisation_request(actor=request.user, feature_version=version, end=data["end"])
        return Response(MaterialisationJobSerializer(job).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses=MaterialisationJobSerializer)
    def materialisation(self, request, pk=None):
        return Response(MaterialisationJobSerializer(selectors.materialisation_get(actor=request.user, pk=pk)).data)


# --- Training sets and exceptions of a project --------------------------------------------------------------------
class TrainingSetViewSet(ProjectScopedViewSet):
    serializer_class = TrainingSetSerializer
    lookup_value_converter = "uuid"

    def scoped_queryset(self, project):
        if project is None:
            return TrainingSet.objects.none()
        return selectors.training_set_list(actor=self.request.user, project=project).prefetch_related("items")

    def list(self, request, project_pk=None):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(TrainingSetSerializer(page, many=True).data)

    def retrieve(self, request, project_pk=None, pk=None):
        return Response(TrainingSetSerializer(self.get_object()).data)

    @extend_schema(request=TrainingSetBuildInputSerializer, responses={202: TrainingSetSerializer})
    def create(self, request, project_pk=None):
        data = _parsed(TrainingSetBuildInputSerializer, request.data)
        spine = DatasetVersion.objects.filter(pk=data["spine_version"], dataset__project=self.project).first()
        if spine is None:
            message = "Choose a dataset version of this project."
            raise ApplicationError(message, errors={"spine_version": [message]})
        features = [
            {
                "feature_version": selectors.feature_version_get(actor=request.user, pk=item["feature_version"]),
                "output_name": item["output_name"],
                "max_age": timedelta(seconds=item["max_age_seconds"]) if item["max_age_seconds"] else None,
            }
            for item in data["features"]
        ]
        training_set = services.training_set_build(
            actor=request.user,
            project=self.project,
            spine_version=spine,
            spine_key_columns=data["spine_key_columns"],
            spine_timestamp_column=data["spine_timestamp_column"],
            label_column=data["label_column"],
            features=features,
            output_dataset_name=data["output_dataset"],
            name=data["name"],
        )
        return Response(TrainingSetSerializer(training_set).data, status=status.HTTP_202_ACCEPTED)


class PersonalFeatureExceptionViewSet(ProjectScopedViewSet):
    serializer_class = PersonalFeatureExceptionSerializer

    def scoped_queryset(self, project):
        if project is None:
            return PersonalFeatureException.objects.none()
        return PersonalFeatureException.objects.filter(project=project).select_related("granted_by")

    def list(self, request, project_pk=None):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(PersonalFeatureExceptionSerializer(page, many=True).data)

    @extend_schema(request=ExceptionGrantInputSerializer, responses={201: PersonalFeatureExceptionSerializer})
    def create(self, request, project_pk=None):
        data = _parsed(ExceptionGrantInputSerializer, request.data)
        version = selectors.feature_version_get(actor=request.user, pk=data["feature_version"])
        exception = services.personal_feature_exception_grant(
            actor=request.user, project=self.project, feature_version=version, reason=data["reason"]
        )
        return Response(PersonalFeatureExceptionSerializer(exception).data, status=status.HTTP_201_CREATED)


# --- Online reads -------------------------------------------------------------------------------------------------
class OnlineFeaturesView(APIView):
    """GET /api/v1/features/online?view=<view>&<key>=<value>[&features=a,b] and the batch POST."""

    @extend_schema(
        parameters=[
            OpenApiParameter("view", str, required=True),
            OpenApiParameter("features", str, required=False, description="Comma-separated; default: all."),
        ],
        responses=OnlineResponseSerializer,
        summary="Online feature values of one entity (its keys as query parameters), with freshness",
    )
    def get(self, request):
        params = request.query_params
        features = [name.strip() for name in params.get("features", "").split(",") if name.strip()]
        entity = {key: value for key, value in params.items() if key not in {"view", "features"}}
        answer = selectors.online_values(
            actor=request.user, view_name=params.get("view", ""), entity_rows=[entity], features=features
        )
        return Response(OnlineResponseSerializer(answer).data)

    @extend_schema(
        request=OnlineReadInputSerializer,
        responses=OnlineResponseSerializer,
        summary="Online feature values of a batch of entities, with freshness",
    )
    def post(self, request):
        data = _parsed(OnlineReadInputSerializer, request.data)
        answer = selectors.online_values(
            actor=request.user, view_name=data["view"], entity_rows=data["entities"], features=data["features"]
        )
        return Response(OnlineResponseSerializer(answer).data)
