from django.urls import path

from apps.registry import views

app_name = "registry"
urlpatterns = [
    path("", views.ModelListView.as_view(), name="list"),
    path("<uuid:pk>/", views.ModelDetailView.as_view(), name="model"),
    path("<uuid:pk>/rollback/", views.ModelRollbackView.as_view(), name="rollback"),
    path("register/", views.RegisterRunView.as_view(), name="register"),
    path("versions/<uuid:pk>/", views.VersionDetailView.as_view(), name="version"),
    path("versions/<uuid:pk>/edit/", views.VersionEditView.as_view(), name="version_edit"),
    path("versions/<uuid:pk>/stage/", views.VersionStageView.as_view(), name="version_stage"),
    path("versions/<uuid:pk>/promote/", views.PromotionOpenView.as_view(), name="promotion_open"),
    path("versions/<uuid:pk>/card/", views.ModelCardEditView.as_view(), name="card_edit"),
    path("versions/<uuid:pk>/card.html", views.ModelCardDocumentView.as_view(), name="card_document"),
    path("promotions/", views.PromotionListView.as_view(), name="promotions"),
    path("promotions/<uuid:pk>/", views.PromotionDetailView.as_view(), name="promotion"),
    path("promotions/<uuid:pk>/withdraw/", views.PromotionWithdrawView.as_view(), name="promotion_withdraw"),
    path(
        "promotions/<uuid:pk>/approve/",
        views.PromotionDecisionView.as_view(),
        {"decision": "approve"},
        name="promotion_approve",
    ),
    path(
        "promotions/<uuid:pk>/reject/",
        views.PromotionDecisionView.as_view(),
        {"decision": "reject"},
        name="promotion_reject",
    ),
]
