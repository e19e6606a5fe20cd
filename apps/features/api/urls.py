from django.urls import path

from apps.features.api.views import (
    EntityViewSet,
    FeatureViewSet,
    FeatureViewViewSet,
    OnlineFeaturesView,
    PersonalFeatureExceptionViewSet,
    TrainingSetViewSet,
)

TRAINING_SETS = "projects/<uuid:project_pk>/training-sets/"
EXCEPTIONS = "projects/<uuid:project_pk>/feature-exceptions/"

urlpatterns = [
    path("features/", FeatureViewSet.as_view({"get": "list", "post": "define"}), name="feature-list"),
    path("features/online", OnlineFeaturesView.as_view(), name="feature-online"),
    path("features/entities/", EntityViewSet.as_view({"get": "list", "post": "create"}), name="feature-entity-list"),
    path("features/views/", FeatureViewViewSet.as_view({"get": "list", "post": "create"}), name="feature-view-list"),
    path("features/views/<str:name>/sync/", FeatureViewViewSet.as_view({"post": "sync"}), name="feature-view-sync"),
    path(
        "features/versions/<uuid:pk>/materialise/",
        FeatureViewSet.as_view({"post": "materialise"}),
        name="feature-version-materialise",
    ),
    path(
        "features/materialisations/<uuid:pk>/",
        FeatureViewSet.as_view({"get": "materialisation"}),
        name="feature-materialisation-detail",
    ),
    path("features/<uuid:pk>/", FeatureViewSet.as_view({"get": "retrieve"}), name="feature-detail"),
    path(TRAINING_SETS, TrainingSetViewSet.as_view({"get": "list", "post": "create"}), name="training-set-list"),
    path(TRAINING_SETS + "<uuid:pk>/", TrainingSetViewSet.as_view({"get": "retrieve"}), name="training-set-detail"),
    path(
        EXCEPTIONS,
        PersonalFeatureExceptionViewSet.as_view({"get": "list", "post": "create"}),
        name="feature-exception-list",
    ),
]
