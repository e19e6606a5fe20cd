"""Retraining pages. The lead includes `urlpatterns` inside the "monitoring" namespace at /monitoring/:
monitoring:retraining_policy, monitoring:retraining_start, monitoring:retraining_run."""

from django.urls import path

from apps.monitoring.views import retraining as views

urlpatterns = [
    path("models/<uuid:model_pk>/retraining/", views.RetrainingPolicyView.as_view(), name="retraining_policy"),
    path("models/<uuid:model_pk>/retraining/start/", views.RetrainingStartView.as_view(), name="retraining_start"),
    path("retrainings/<uuid:pk>/", views.RetrainingRunDetailView.as_view(), name="retraining_run"),
]
