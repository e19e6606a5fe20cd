from django.urls import path

from apps.audit import views

app_name = "audit"
urlpatterns = [
    path("", views.AuditEventListView.as_view(), name="list"),
    path("export/", views.AuditEventExportView.as_view(), name="export"),
    path("<int:seq>/", views.AuditEventDetailView.as_view(), name="detail"),
]
