from django.urls import path

from apps.monitoring import retraining_urls
from apps.monitoring.views import monitors as views

app_name = "monitoring"
DEPLOYMENT = "deployments/<uuid:deployment_pk>/"

urlpatterns = [
    path("", views.OverviewView.as_view(), name="overview"),
    path(DEPLOYMENT, views.DashboardView.as_view(), name="dashboard"),
    path(DEPLOYMENT + "monitor/", views.MonitorEditView.as_view(), name="monitor_edit"),
    path(DEPLOYMENT + "rules/", views.RuleCreateView.as_view(), name="rule_create"),
    path(DEPLOYMENT + "rules/<uuid:rule_pk>/toggle/", views.RuleToggleView.as_view(), name="rule_toggle"),
    path(DEPLOYMENT + "check/", views.CheckNowView.as_view(), name="check_now"),
    path("checks/<uuid:pk>/", views.CheckDetailView.as_view(), name="check"),
    path("checks/<uuid:pk>/report/", views.CheckReportView.as_view(), name="check_report"),
    path("alerts/", views.AlertListView.as_view(), name="alerts"),
    path("alerts/<uuid:pk>/", views.AlertDetailView.as_view(), name="alert"),
    path("alerts/<uuid:pk>/<slug:action>/", views.AlertActionView.as_view(), name="alert_action"),
    *retraining_urls.urlpatterns,
]
