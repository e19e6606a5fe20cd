"""The prediction pages' routes (apps.deployments.views.predictions). Included by apps/deployments/urls.py at
/deployments/, inside its "deployments" namespace (the templates name them deployments:<name>)."""

from django.urls import path

from apps.deployments.views import predictions as views

PREDICTION = "<uuid:deployment_pk>/predictions/<str:pk>/"

urlpatterns = [
    path("<uuid:pk>/predictions/log/", views.prediction_log_partial, name="prediction_log"),
    path(PREDICTION, views.PredictionDetailView.as_view(), name="prediction_detail"),
    path(PREDICTION + "explain/", views.PredictionExplainView.as_view(), name="prediction_explain"),
    path(
        PREDICTION + "explanations/<uuid:explanation_pk>/",
        views.PredictionExplanationStatusView.as_view(),
        name="prediction_explanation",
    ),
]
