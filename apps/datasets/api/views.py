"""The datasets API: /api/v1/projects/<project_pk>/{datasets, datasets/<id>/versions, ingestion-jobs, connections}.

Each viewset is project-scoped (a project the caller may not see answers 404); reads go through the selectors,
writes through the services (input serializer -> service -> output serializer), which check the policy.
"""

import json
import re

from django.http import HttpResponseRedirect, StreamingHttpResponse
from django.utils.http import content_disposition_header
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.parsers import MultiPartParser
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response

from apps.accounts.permissions import Action, require
from apps.core.exceptions import ApplicationError
from apps.datasets import selectors, services
from apps.datasets.api.serializers import (
    ColumnMarksSerializer,
    DataConnectionInputSerializer,
    DataConnectionSerializer,
    DatasetCreateInputSerializer,
    DatasetFilterSerializer,
    DatasetSerializer,
    DatasetUpdateInputSerializer,
    DatasetVersionDetailSerializer,
    DatasetVersionSerializer,
    IngestionInputSerializer,
    IngestionJobFilterSerializer,
    IngestionJobSerializer,
    OverrideInputSerializer,
    UploadInputSerializer,
    ValidationRulesSerializer,
    VersionCompareSerializer,
)
from apps.datasets.models import DataConnection, Dataset, DatasetVersion, IngestionJob
from apps.datasets.uploads import install_upload_limit
from apps.projects.api.base import ProjectScopedViewSet

_ERRORS = {
    400: OpenApiResponse(description='Invalid input: {"message": ..., "errors": {field: [messages]}}'),
    403: OpenApiResponse(description="Your role does not allow this."),
    404: OpenApiResponse(description="No such project or object, or you may not see it."),
}
_CONFLICT = {409: OpenApiResponse(description="The object is not in a state that allows this.")}
_TOO_LARGE = {413: OpenApiResponse(description="The file is over DATASET_MAX_UPLOAD_BYTES (refused before reading).")}


def _artifact_store():
    from apps.core.artifacts import artifact_store

    return artifact_store()


# --- Datasets ---------------------------------------------------------------------------------------------------
@extend_schema_view(
    list=extend_schema(summary="Datasets of the project", parameters=[DatasetFilterSerializer]),
    retrieve=extend_schema(summary="A dataset", responses={200: DatasetSerializer, **_ERRORS}),
)
class DatasetViewSet(ProjectScopedViewSet):
    """Datasets: named collections of immutable versions, with validation rules and column marks."""

    serializer_class = DatasetSerializer
    lookup_value_converter = "uuid"

    def scoped_queryset(self, project):
        if project is None:
            return Dataset.objects.none()
        return selectors.dataset_list(actor=self.request.user, project=project)

    def initial(self, request, *args, **kwargs):
        # Before authentication: SessionAuthentication's CSRF check reads request.POST, which parses the body.
        if self.action == "uploads":
            install_upload_limit(request)
        super().initial(request, *args, **kwargs)

    def _output(self, dataset) -> dict:
        return DatasetSerializer(self.get_queryset().get(pk=dataset.pk)).data

    def list(self, request, project_pk=None):
        filters = DatasetFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        datasets = selectors.dataset_list(actor=request.user, project=self.project, filters=filters.validated_data)
        page = self.paginate_queryset(datasets)
        return self.get_paginated_response(DatasetSerializer(page, many=True).data)

    def retrieve(self, request, project_pk=None, pk=None):
        return Response(DatasetSerializer(self.get_object()).data)

    @extend_schema(
        summary="Create a dataset", request=DatasetCreateInputSerializer, responses={201: DatasetSerializer, **_ERRORS}
    )
    def create(self, request, project_pk=None):
        body = DatasetCreateInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        dataset = services.dataset_create(project=self.project, actor=request.user, **body.validated_data)
        return Response(self._output(dataset), status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Change a dataset's description",
        request=DatasetUpdateInputSerializer,
        responses={200: DatasetSerializer, **_ERRORS},
    )
    def partial_update(self, request, project_pk=None, pk=None):
        dataset = self.get_object()
        body = DatasetUpdateInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        dataset = services.dataset_update(dataset=dataset, actor=request.user, **body.validated_data)
        return Response(self._output(dataset))

    @extend_schema(
        summary="Upload a file as a new version (multipart 'file'); answers with the queued ingestion job",
        request={"multipart/form-data": UploadInputSerializer},
        responses={202: IngestionJobSerializer, **_ERRORS, **_TOO_LARGE},
    )
    @action(detail=True, methods=["post"], parser_classes=[MultiPartParser])
    def uploads(self, request, project_pk=None, pk=None):
        dataset = self.get_object()
        # Refuse before the body is read by anyone who may not ingest (the service checks again).
        require(request.user, Action.DATASET_INGEST, dataset.project)
        body = UploadInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        upload = body.validated_data["file"]
        job = services.ingestion_start_upload(
            dataset=dataset, actor=request.user, stream=upload, display_name=upload.name, size=upload.size
        )
        return Response(IngestionJobSerializer(job).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        summary="Ingest a new version from an S3 object or a SQL query; answers with the queued ingestion job",
        request=IngestionInputSerializer,
        responses={202: IngestionJobSerializer, **_ERRORS},
    )
    @action(detail=True, methods=["post"])
    def ingestions(self, request, project_pk=None, pk=None):
        dataset = self.get_object()
        body = IngestionInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        if data["source"] == "s3":
            job = services.ingestion_start_s3(dataset=dataset, actor=request.user, uri=data.get("uri", ""))
        else:
            connection = None
            if data.get("connection"):
                connection = DataConnection.objects.filter(project=dataset.project, pk=data["connection"]).first()
            if connection is None:
                require(request.user, Action.DATASET_INGEST, dataset.project)
                message = "Choose a connection of this project."
                raise ApplicationError(message, errors={"connection": [message]})
            job = services.ingestion_start_sql(
                dataset=dataset, actor=request.user, connection=connection, query=data.get("query", "")
            )
        return Response(IngestionJobSerializer(job).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        methods=["GET"], summary="The dataset's validation rules", responses={200: ValidationRulesSerializer, **_ERRORS}
    )
    @extend_schema(
        methods=["PUT"],
        summary="Replace the dataset's validation rules",
        request=ValidationRulesSerializer,
        responses={200: ValidationRulesSerializer, **_ERRORS},
    )
    @action(detail=True, methods=["get", "put"])
    def rules(self, request, project_pk=None, pk=None):
        from workers.ml.data.specs import ValidationRules  # stdlib only

        dataset = self.get_object()
        if request.method == "PUT":
            dataset = services.dataset_rules_set(dataset=dataset, actor=request.user, rules=_plain(request.data))
        return Response(ValidationRules.from_dict(dataset.validation_rules or {}).as_dict())

    @extend_schema(
        methods=["GET"], summary="The dataset's column marks", responses={200: ColumnMarksSerializer, **_ERRORS}
    )
    @extend_schema(
        methods=["PATCH"],
        summary="Mark columns personal, sensitive (protected attribute) or excluded from training",
        request=ColumnMarksSerializer,
        responses={200: ColumnMarksSerializer, **_ERRORS},
    )
    @action(detail=True, methods=["get", "patch"], url_path="column-marks", url_name="column-marks")
    def column_marks(self, request, project_pk=None, pk=None):
        dataset = self.get_object()
        if request.method == "PATCH":
            data = _plain(request.data)
            if not isinstance(data, dict) or "marks" not in data:
                raise ApplicationError("Send the marks.", errors={"marks": ["This field is required."]})
            dataset = services.dataset_column_marks_set(dataset=dataset, actor=request.user, marks=data["marks"])
        return Response({"marks": dataset.column_marks})


def _plain(data):
    """request.data as plain JSON types (a QueryDict from a form post becomes a dict of single values)."""
    if hasattr(data, "dict"):
        return data.dict()
    return data


# --- Versions ---------------------------------------------------------------------------------------------------
class BinaryRenderer(BaseRenderer):
    """Lets a download be asked for with Accept: application/octet-stream (the body is streamed, not rendered)."""

    media_type = "application/octet-stream"
    format = "bin"
    charset = None

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if isinstance(data, bytes):
            return data
        return json.dumps(data).encode()


_CONTENT_TYPES = {
    "csv": "text/csv",
    "tsv": "text/tab-separated-values",
    "jsonl": "application/x-ndjson",
    "parquet": "application/vnd.apache.parquet",
    "sql": "application/sql",
}


def _download_name(version: DatasetVersion, artifact: str) -> tuple[str, str]:
    """(file name, content type) for a version's artifact, from server-made values only."""
    base = re.sub(r"[^A-Za-z0-9_-]+", "-", version.dataset.name).strip("-") or "dataset"
    if artifact == "parquet":
        return f"{base[:100]}-v{version.number}.parquet", _CONTENT_TYPES["parquet"]
    extension = version.original_key.rsplit("/", 1)[-1].removeprefix("original") or ".bin"
    if extension.endswith(".gz"):
        content_type = "application/gzip"
    else:
        content_type = _CONTENT_TYPES.get(extension.lstrip("."), "application/octet-stream")
    return f"{base[:100]}-v{version.number}{extension}", content_type


@extend_schema_view(
    list=extend_schema(summary="Versions of a dataset, newest first"),
    retrieve=extend_schema(
        summary="A version: schema, profile, PII flags, validation report, column marks, usable for training",
        responses={200: DatasetVersionDetailSerializer, **_ERRORS},
    ),
)
class DatasetVersionViewSet(ProjectScopedViewSet):
    serializer_class = DatasetVersionSerializer
    lookup_field = "number"
    lookup_value_converter = "int"

    def scoped_queryset(self, project):
        if project is None:
            return DatasetVersion.objects.none()
        dataset = selectors.dataset_get(actor=self.request.user, pk=self.kwargs["dataset_pk"], project=project)
        return selectors.dataset_version_list(dataset=dataset)

    def list(self, request, project_pk=None, dataset_pk=None):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(DatasetVersionSerializer(page, many=True).data)

    def retrieve(self, request, project_pk=None, dataset_pk=None, number=None):
        return Response(DatasetVersionDetailSerializer(self.get_object()).data)

    @extend_schema(
        summary="Allow a version that failed validation to be used for training, with a written reason",
        request=OverrideInputSerializer,
        responses={200: DatasetVersionDetailSerializer, **_ERRORS, **_CONFLICT},
    )
    @action(detail=True, methods=["post"])
    def override(self, request, project_pk=None, dataset_pk=None, number=None):
        version = self.get_object()
        body = OverrideInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        version = services.version_override_validation(
            version=version, actor=request.user, reason=body.validated_data["reason"]
        )
        return Response(DatasetVersionDetailSerializer(self.get_queryset().get(pk=version.pk)).data)

    @extend_schema(
        summary="Compare this version with another: schema differences and row-count change",
        parameters=[
            OpenApiParameter("with", OpenApiTypes.INT, required=True, description="The other version's number.")
        ],
        responses={200: VersionCompareSerializer, **_ERRORS},
    )
    @action(detail=True, methods=["get"])
    def compare(self, request, project_pk=None, dataset_pk=None, number=None):
        version = self.get_object()
        other_number = request.query_params.get("with", "")
        if not other_number.isdigit():
            raise ApplicationError(
                "Name the version to compare with.", errors={"with": ["A version number, e.g. ?with=1."]}
            )
        other = self.get_queryset().filter(number=int(other_number)).first()
        if other is None:
            raise ApplicationError(
                "No such version to compare with.", errors={"with": [f"The dataset has no version {other_number}."]}
            )
        return Response(selectors.version_compare(old=other, new=version))

    @extend_schema(
        summary="Download the original file or the normalised Parquet copy (a redirect to a presigned URL on S3)",
        parameters=[
            OpenApiParameter(
                "artifact", OpenApiTypes.STR, enum=["original", "parquet"], description="Which file (default original)."
            )
        ],
        responses={
            (200, "application/octet-stream"): OpenApiTypes.BINARY,
            302: OpenApiResponse(description="Redirect to a short-lived presigned URL (S3 store)."),
            **_ERRORS,
        },
    )
    @action(detail=True, methods=["get"], renderer_classes=[JSONRenderer, BinaryRenderer])
    def download(self, request, project_pk=None, dataset_pk=None, number=None):
        version = self.get_object()
        artifact = request.query_params.get("artifact", "original")
        if artifact not in ("original", "parquet"):
            raise ApplicationError("Unknown artifact.", errors={"artifact": ["Choose original or parquet."]})
        key = version.parquet_key if artifact == "parquet" else version.original_key
        size = version.parquet_size if artifact == "parquet" else version.original_size
        filename, content_type = _download_name(version, artifact)
        services.dataset_version_download_record(version=version, actor=request.user, artifact=artifact)
        store = _artifact_store()
        url = store.presigned_url(key, download_name=filename)
        if url:
            return HttpResponseRedirect(url)
        response = StreamingHttpResponse(store.iter_chunks(key), content_type=content_type)
        response["Content-Length"] = str(size)
        response["Content-Disposition"] = content_disposition_header(as_attachment=True, filename=filename)
        response["X-Content-Type-Options"] = "nosniff"
        return response


# --- Ingestion jobs ---------------------------------------------------------------------------------------------
@extend_schema_view(
    list=extend_schema(
        summary="Ingestion jobs of the project, newest first", parameters=[IngestionJobFilterSerializer]
    ),
    retrieve=extend_schema(
        summary="An ingestion job: status, progress, error", responses={200: IngestionJobSerializer, **_ERRORS}
    ),
)
class IngestionJobViewSet(ProjectScopedViewSet):
    serializer_class = IngestionJobSerializer
    lookup_value_converter = "uuid"

    def scoped_queryset(self, project):
        if project is None:
            return IngestionJob.objects.none()
        return selectors.ingestion_job_list(actor=self.request.user, project=project)

    def list(self, request, project_pk=None):
        filters = IngestionJobFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        jobs = self.get_queryset()
        if filters.validated_data.get("dataset"):
            jobs = jobs.filter(dataset_id=filters.validated_data["dataset"])
        if filters.validated_data.get("status"):
            jobs = jobs.filter(status=filters.validated_data["status"])
        page = self.paginate_queryset(jobs)
        return self.get_paginated_response(IngestionJobSerializer(page, many=True).data)

    def retrieve(self, request, project_pk=None, pk=None):
        return Response(IngestionJobSerializer(self.get_object()).data)

    @extend_schema(
        summary="Cancel a queued or running ingestion job",
        request=None,
        responses={200: IngestionJobSerializer, **_ERRORS, **_CONFLICT},
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request, project_pk=None, pk=None):
        job = services.ingestion_job_cancel(job=self.get_object(), actor=request.user)
        return Response(IngestionJobSerializer(self.get_queryset().get(pk=job.pk)).data)


# --- Connections ------------------------------------------------------------------------------------------------
@extend_schema_view(
    list=extend_schema(summary="Read-only database connections of the project (passwords are never shown)"),
    retrieve=extend_schema(summary="A connection", responses={200: DataConnectionSerializer, **_ERRORS}),
    create=extend_schema(
        summary="Register a read-only PostgreSQL connection (the password is stored encrypted)",
        request=DataConnectionInputSerializer,
        responses={201: DataConnectionSerializer, **_ERRORS},
    ),
    partial_update=extend_schema(
        summary="Change a connection (omit password to keep it)",
        request=DataConnectionInputSerializer(partial=True),
        responses={200: DataConnectionSerializer, **_ERRORS},
    ),
    destroy=extend_schema(
        summary="Remove a connection no ingestion used", responses={204: None, **_ERRORS, **_CONFLICT}
    ),
)
class DataConnectionViewSet(ProjectScopedViewSet):
    serializer_class = DataConnectionSerializer
    lookup_value_converter = "uuid"

    def scoped_queryset(self, project):
        if project is None:
            return DataConnection.objects.none()
        return selectors.connection_list(actor=self.request.user, project=project)

    def _require_manage(self) -> None:
        """Connections are for those who manage them: a member with another role gets 403 (a non-member, 404)."""
        require(self.request.user, Action.CONNECTION_MANAGE, self.project)

    def list(self, request, project_pk=None):
        self._require_manage()
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(DataConnectionSerializer(page, many=True).data)

    def retrieve(self, request, project_pk=None, pk=None):
        self._require_manage()
        return Response(DataConnectionSerializer(self.get_object()).data)

    def create(self, request, project_pk=None):
        self._require_manage()
        body = DataConnectionInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        connection = services.connection_create(project=self.project, actor=request.user, **body.validated_data)
        return Response(DataConnectionSerializer(connection).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, project_pk=None, pk=None):
        self._require_manage()
        connection = self.get_object()
        body = DataConnectionInputSerializer(data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        connection = services.connection_update(connection=connection, actor=request.user, **body.validated_data)
        return Response(DataConnectionSerializer(connection).data)

    def destroy(self, request, project_pk=None, pk=None):
        self._require_manage()
        services.connection_delete(connection=self.get_object(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
