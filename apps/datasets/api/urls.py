from django.urls import path

from apps.datasets.api.views import DataConnectionViewSet, DatasetVersionViewSet, DatasetViewSet, IngestionJobViewSet

DATASETS = "projects/<uuid:project_pk>/datasets/"
DATASET = DATASETS + "<uuid:pk>/"
VERSIONS = "projects/<uuid:project_pk>/datasets/<uuid:dataset_pk>/versions/"
VERSION = VERSIONS + "<int:number>/"
JOBS = "projects/<uuid:project_pk>/ingestion-jobs/"
CONNECTIONS = "projects/<uuid:project_pk>/connections/"

urlpatterns = [
    path(DATASETS, DatasetViewSet.as_view({"get": "list", "post": "create"}), name="dataset-list"),
    path(DATASET, DatasetViewSet.as_view({"get": "retrieve", "patch": "partial_update"}), name="dataset-detail"),
    path(DATASET + "uploads/", DatasetViewSet.as_view({"post": "uploads"}), name="dataset-uploads"),
    path(DATASET + "ingestions/", DatasetViewSet.as_view({"post": "ingestions"}), name="dataset-ingestions"),
    path(DATASET + "rules/", DatasetViewSet.as_view({"get": "rules", "put": "rules"}), name="dataset-rules"),
    path(
        DATASET + "column-marks/",
        DatasetViewSet.as_view({"get": "column_marks", "patch": "column_marks"}),
        name="dataset-column-marks",
    ),
    path(VERSIONS, DatasetVersionViewSet.as_view({"get": "list"}), name="dataset-version-list"),
    path(VERSION, DatasetVersionViewSet.as_view({"get": "retrieve"}), name="dataset-version-detail"),
    path(VERSION + "override/", DatasetVersionViewSet.as_view({"post": "override"}), name="dataset-version-override"),
    path(VERSION + "compare/", DatasetVersionViewSet.as_view({"get": "compare"}), name="dataset-version-compare"),
    path(VERSION + "download/", DatasetVersionViewSet.as_view({"get": "download"}), name="dataset-version-download"),
    path(JOBS, IngestionJobViewSet.as_view({"get": "list"}), name="ingestion-job-list"),
    path(JOBS + "<uuid:pk>/", IngestionJobViewSet.as_view({"get": "retrieve"}), name="ingestion-job-detail"),
    path(JOBS + "<uuid:pk>/cancel/", IngestionJobViewSet.as_view({"post": "cancel"}), name="ingestion-job-cancel"),
    path(CONNECTIONS, DataConnectionViewSet.as_view({"get": "list", "post": "create"}), name="connection-list"),
    path(
        CONNECTIONS + "<uuid:pk>/",
        DataConnectionViewSet.as_view({"get": "retrieve", "patch": "partial_update", "delete": "destroy"}),
        name="connection-detail",
    ),
]
