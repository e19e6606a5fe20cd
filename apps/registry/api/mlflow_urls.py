"""/api/2.0/mlflow/: the read-only subset of MLflow's registry REST API (apps/registry/api/mlflow.py)."""

from django.urls import path

from apps.registry.api.mlflow import (
    ModelVersionGetView,
    ModelVersionSearchView,
    RegisteredModelAliasView,
    RegisteredModelGetView,
    RegisteredModelSearchView,
)

urlpatterns = [
    path("registered-models/get", RegisteredModelGetView.as_view(), name="mlflow-registered-model-get"),
    path("registered-models/search", RegisteredModelSearchView.as_view(), name="mlflow-registered-model-search"),
    path("registered-models/alias", RegisteredModelAliasView.as_view(), name="mlflow-registered-model-alias"),
    path("model-versions/get", ModelVersionGetView.as_view(), name="mlflow-model-version-get"),
    path("model-versions/search", ModelVersionSearchView.as_view(), name="mlflow-model-version-search"),
]
