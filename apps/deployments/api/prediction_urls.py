"""The prediction-log API's routes (apps.deployments.api.predictions); included under /api/v1/."""

from django.urls import path

from apps.deployments.api.predictions import (
    DeploymentPredictionListView,
    ExplanationDetailView,
    GroundTruthBulkView,
    PredictionDetailView,
    PredictionExplanationCreateView,
    PredictionGroundTruthView,
)

PREDICTION = "predictions/<str:pk>/"

urlpatterns = [
    path(
        "deployments/<uuid:pk>/predictions/", DeploymentPredictionListView.as_view(), name="deployment-prediction-list"
    ),
    path(PREDICTION, PredictionDetailView.as_view(), name="prediction-detail"),
    path(PREDICTION + "ground-truth/", PredictionGroundTruthView.as_view(), name="prediction-ground-truth"),
    path("ground-truth/", GroundTruthBulkView.as_view(), name="ground-truth-bulk"),
    path(PREDICTION + "explanations/", PredictionExplanationCreateView.as_view(), name="prediction-explanation-create"),
    path("explanations/<uuid:pk>/", ExplanationDetailView.as_view(), name="explanation-detail"),
]
