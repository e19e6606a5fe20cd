"""Included at /api/v1/ (config/urls.py): /notifications/ and /webhooks/."""

from rest_framework.routers import SimpleRouter

from apps.notifications.api.views import NotificationViewSet, WebhookViewSet

router = SimpleRouter(use_regex_path=False)
router.register("notifications", NotificationViewSet, basename="notification")
router.register("webhooks", WebhookViewSet, basename="webhook")

urlpatterns = router.urls
