from django.urls import path

from apps.notifications import views

app_name = "notifications"
urlpatterns = [
    path("", views.InboxView.as_view(), name="inbox"),
    path("badge/", views.InboxBadgeView.as_view(), name="badge"),
    path("read-all/", views.NotificationReadAllView.as_view(), name="read_all"),
    path("<uuid:pk>/open/", views.NotificationOpenView.as_view(), name="open"),
    path("<uuid:pk>/read/", views.NotificationReadView.as_view(), name="read"),
    path("webhooks/", views.WebhookListView.as_view(), name="webhooks"),
    path("webhooks/<uuid:pk>/", views.WebhookDetailView.as_view(), name="webhook"),
    path("webhooks/<uuid:pk>/active/", views.WebhookActiveView.as_view(), name="webhook_active"),
    path("webhooks/<uuid:pk>/delete/", views.WebhookDeleteView.as_view(), name="webhook_delete"),
]
