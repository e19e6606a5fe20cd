"""config/urls.py plus the features pages and API (tests/apps/features/settings.py, until the lead wires them)."""

from django.urls import include, path

from config.urls import urlpatterns as project_urlpatterns

urlpatterns = [
    path("features/", include("apps.features.urls")),
    path("api/v1/", include("apps.features.api.urls")),
    *project_urlpatterns,
]
