from django.urls import include, path

from apps.deployments.api.views import DeploymentViewSet

DEPLOYMENT = "deployments/<uuid:pk>/"
ACTIONS = (
    "rollout",
    "switch",
    "rollback",
    "advance",
    "finish",
    "ab",
    "shadow",
    "end",
    "scale",
    "stop",
    "start",
    "canary",
)

urlpatterns = [
    path("deployments/", DeploymentViewSet.as_view({"get": "list", "post": "create"}), name="deployment-list"),
    path(DEPLOYMENT, DeploymentViewSet.as_view({"get": "retrieve"}), name="deployment-detail"),
    path(DEPLOYMENT + "metrics/", DeploymentViewSet.as_view({"get": "metrics"}), name="deployment-metrics"),
    path(DEPLOYMENT + "history/", DeploymentViewSet.as_view({"get": "history"}), name="deployment-history"),
    path(
        DEPLOYMENT + "switch-back/", DeploymentViewSet.as_view({"post": "switch_back"}), name="deployment-switch-back"
    ),
    path(
        DEPLOYMENT + "feature-view/",
        DeploymentViewSet.as_view({"post": "feature_view"}),
        name="deployment-feature-view",
    ),
    *[
        path(DEPLOYMENT + f"{name}/", DeploymentViewSet.as_view({"post": name}), name=f"deployment-{name}")
        for name in ACTIONS
    ],
    path("", include("apps.deployments.api.prediction_urls")),
]
