from django.urls import path

from apps.registry.api.views import ModelVersionViewSet, PromotionRequestViewSet, RegisteredModelViewSet

MODELS = "projects/<uuid:project_pk>/models/"
MODEL = MODELS + "<uuid:pk>/"
VERSIONS = MODELS + "<uuid:model_pk>/versions/"
VERSION = VERSIONS + "<uuid:pk>/"
PROMOTIONS = "projects/<uuid:project_pk>/promotions/"
PROMOTION = PROMOTIONS + "<uuid:pk>/"

urlpatterns = [
    path(MODELS, RegisteredModelViewSet.as_view({"get": "list", "post": "create"}), name="registered-model-list"),
    path(
        MODEL,
        RegisteredModelViewSet.as_view({"get": "retrieve", "patch": "partial_update"}),
        name="registered-model-detail",
    ),
    path(MODEL + "rollback/", RegisteredModelViewSet.as_view({"post": "rollback"}), name="registered-model-rollback"),
    path(MODEL + "history/", RegisteredModelViewSet.as_view({"get": "history"}), name="registered-model-history"),
    path(VERSIONS, ModelVersionViewSet.as_view({"get": "list", "post": "create"}), name="model-version-list"),
    path(
        VERSION,
        ModelVersionViewSet.as_view({"get": "retrieve", "patch": "partial_update"}),
        name="model-version-detail",
    ),
    path(VERSION + "stage/", ModelVersionViewSet.as_view({"post": "stage"}), name="model-version-stage"),
    path(
        VERSION + "card/",
        ModelVersionViewSet.as_view({"get": "card", "patch": "card_update"}),
        name="model-version-card",
    ),
    path(PROMOTIONS, PromotionRequestViewSet.as_view({"get": "list", "post": "create"}), name="promotion-list"),
    path(PROMOTION, PromotionRequestViewSet.as_view({"get": "retrieve"}), name="promotion-detail"),
    path(PROMOTION + "approve/", PromotionRequestViewSet.as_view({"post": "approve"}), name="promotion-approve"),
    path(PROMOTION + "reject/", PromotionRequestViewSet.as_view({"post": "reject"}), name="promotion-reject"),
    path(PROMOTION + "withdraw/", PromotionRequestViewSet.as_view({"post": "withdraw"}), name="promotion-withdraw"),
]
