from django.urls import path

from apps.features import views

app_name = "features"
urlpatterns = [
    path("", views.FeatureListView.as_view(), name="list"),
    path("define/", views.FeatureDefineView.as_view(), name="define"),
    path("<uuid:pk>/", views.FeatureDetailView.as_view(), name="detail"),
    path("versions/<uuid:pk>/materialise/", views.MaterialiseView.as_view(), name="materialise"),
    path("versions/<uuid:pk>/exception/", views.ExceptionGrantView.as_view(), name="exception"),
    path("materialisations/<uuid:pk>/status/", views.MaterialisationStatusView.as_view(), name="materialisation"),
    path("views/<uuid:pk>/sync/", views.OnlineSyncView.as_view(), name="sync"),
    path("training-sets/", views.TrainingSetProjectsView.as_view(), name="training_sets"),
    path("training-sets/new/", views.TrainingSetCreateView.as_view(), name="training_set_new"),
    path("training-sets/<uuid:pk>/", views.TrainingSetDetailView.as_view(), name="training_set"),
]
