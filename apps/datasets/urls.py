from django.urls import path

from apps.datasets import views

app_name = "datasets"
urlpatterns = [
    path("", views.DatasetListView.as_view(), name="list"),
    path("new/", views.DatasetCreateView.as_view(), name="create"),
    path("<uuid:pk>/", views.DatasetDetailView.as_view(), name="detail"),
    path("<uuid:pk>/upload/", views.DatasetUploadView.as_view(), name="upload"),
    path("<uuid:pk>/import/s3/", views.DatasetImportS3View.as_view(), name="import_s3"),
    path("<uuid:pk>/import/sql/", views.DatasetImportSqlView.as_view(), name="import_sql"),
    path("<uuid:pk>/versions/<int:number>/", views.DatasetVersionDetailView.as_view(), name="version"),
    path(
        "<uuid:pk>/versions/<int:number>/override/",
        views.DatasetVersionOverrideView.as_view(),
        name="version_override",
    ),
    path("<uuid:pk>/compare/", views.DatasetCompareView.as_view(), name="compare"),
    path("<uuid:pk>/rules/", views.DatasetRulesView.as_view(), name="rules"),
    path("<uuid:pk>/columns/", views.DatasetColumnMarksView.as_view(), name="columns"),
    path("jobs/<uuid:pk>/", views.IngestionJobDetailView.as_view(), name="job"),
    path("jobs/<uuid:pk>/status/", views.IngestionJobStatusView.as_view(), name="job_status"),
    path("jobs/<uuid:pk>/cancel/", views.IngestionJobCancelView.as_view(), name="job_cancel"),
    path("connections/", views.DataConnectionListView.as_view(), name="connections"),
    path("connections/<uuid:pk>/delete/", views.DataConnectionDeleteView.as_view(), name="connection_delete"),
]
