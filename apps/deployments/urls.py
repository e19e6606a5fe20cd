from django.urls import path

from apps.deployments.views import deployments as views

app_name = "deployments"
urlpatterns = [
    path("", views.DeploymentListView.as_view(), name="list"),
    path("new/", views.DeploymentCreateView.as_view(), name="create"),
    path("<uuid:pk>/", views.DeploymentDetailView.as_view(), name="detail"),
    path("<uuid:pk>/live/", views.DeploymentLiveView.as_view(), name="live"),
    path("<uuid:pk>/<str:action>/", views.DeploymentActionView.as_view(), name="action"),
]
