"""Retraining API routes, under a registered model of the registry API (apps/registry/api/urls.py):
/api/v1/projects/<project_pk>/models/<model_pk>/{retraining-policy, retrainings}/. The lead includes `urlpatterns`
under /api/v1/."""

from django.urls import path

from apps.monitoring.api.retraining import RetrainingPolicyViewSet, RetrainingRunViewSet

MODEL = "projects/<uuid:project_pk>/models/<uuid:model_pk>/"
RETRAININGS = MODEL + "retrainings/"

urlpatterns = [
    path(
        MODEL + "retraining-policy/",
        RetrainingPolicyViewSet.as_view({"get": "retrieve", "put": "update"}),
        name="retraining-policy",
    ),
    path(RETRAININGS, RetrainingRunViewSet.as_view({"get": "list", "post": "create"}), name="retraining-list"),
    path(RETRAININGS + "<uuid:pk>/", RetrainingRunViewSet.as_view({"get": "retrieve"}), name="retraining-detail"),
]
