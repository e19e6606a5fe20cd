from django.urls import path

from apps.experiments import views

app_name = "experiments"
urlpatterns = [
    path("", views.ExperimentListView.as_view(), name="list"),
    path("new/", views.ExperimentLaunchView.as_view(), name="launch"),
    path("<uuid:pk>/", views.ExperimentDetailView.as_view(), name="detail"),
    path("<uuid:pk>/cancel/", views.ExperimentCancelView.as_view(), name="cancel"),
    path("runs/compare/", views.RunCompareView.as_view(), name="compare"),
    path("runs/<uuid:pk>/", views.RunDetailView.as_view(), name="run"),
    path("runs/<uuid:pk>/status/", views.RunStatusView.as_view(), name="run_status"),
    path("runs/<uuid:pk>/cancel/", views.RunCancelView.as_view(), name="run_cancel"),
]
