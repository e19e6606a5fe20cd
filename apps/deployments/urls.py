from django.urls import include, path

from apps.deployments.views import deployments as views

app_name = "deployments"
urlpatterns = [
    path("", views.DeploymentListView.as_view(), name="list"),
    path("new/", views.DeploymentCreateView.as_view(), name="create"),
    path("<uuid:pk>/", views.DeploymentDetailView.as_view(), name="detail"),
    path("<uuid:pk>/live/", views.DeploymentLiveView.as_view(), name="live"),
    path("<uuid:pk>/manifests.yaml", views.DeploymentManifestsView.as_view(), name="manifests"),
    path("", include("apps.deployments.prediction_urls")),
    path("<uuid:pk>/<slug:action>/", views.DeploymentActionView.as_view(), name="action"),
]
