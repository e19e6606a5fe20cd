from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

api_v1 = [
    path("auth/", include("apps.accounts.api.urls")),
    path("", include("apps.projects.api.urls")),
    path("", include("apps.audit.api.urls")),
    path("", include("apps.datasets.api.urls")),
    path("", include("apps.experiments.api.urls")),
    path("", include("apps.registry.api.urls")),
    path("", include("apps.notifications.api.urls")),
    path("", include("apps.deployments.api.urls")),
    path("", include("apps.monitoring.api.urls")),
    path("", include("apps.features.api.urls")),
]

urlpatterns = [
    path("", include("apps.core.urls")),
    path("accounts/", include("apps.accounts.urls")),
    path("projects/", include("apps.projects.urls")),
    path("audit/", include("apps.audit.urls")),
    path("datasets/", include("apps.datasets.urls")),
    path("experiments/", include("apps.experiments.urls")),
    path("models/", include("apps.registry.urls")),
    path("notifications/", include("apps.notifications.urls")),
    path("deployments/", include("apps.deployments.urls")),
    path("monitoring/", include("apps.monitoring.urls")),
    path("features/", include("apps.features.urls")),
    path("api/v1/", include(api_v1)),
    path("api/2.0/mlflow/", include("apps.registry.api.mlflow_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
]
