from django.urls import path

from apps.monitoring.api import retraining_urls, views

MONITOR = "deployments/<uuid:pk>/monitor/"

urlpatterns = [
    path(MONITOR, views.MonitorView.as_view(), name="monitor-detail"),
    path(MONITOR + "rules/", views.RuleCreateView.as_view(), name="monitor-rule-create"),
    path(MONITOR + "checks/", views.CheckListView.as_view(), name="monitor-check-list"),
    path("monitoring/rules/<uuid:pk>/", views.RuleDetailView.as_view(), name="monitor-rule-detail"),
    path("monitoring/checks/<uuid:pk>/", views.CheckDetailView.as_view(), name="monitor-check-detail"),
    path("monitoring/alerts/", views.AlertListView.as_view(), name="alert-list"),
    path("monitoring/alerts/<uuid:pk>/", views.AlertDetailView.as_view(), name="alert-detail"),
    path(
        "monitoring/alerts/<uuid:pk>/acknowledge/",
        views.AlertActionView.as_view(action_name="acknowledge"),
        name="alert-acknowledge",
    ),
    path(
        "monitoring/alerts/<uuid:pk>/resolve/",
        views.AlertActionView.as_view(action_name="resolve"),
        name="alert-resolve",
    ),
    path("monitoring/overview/", views.OverviewView.as_view(), name="monitoring-overview"),
    *retraining_urls.urlpatterns,
]
