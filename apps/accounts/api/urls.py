"""Included at /api/v1/auth/ (config/urls.py)."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from apps.accounts.api import views

# Path converters instead of regular expressions: /tokens/<uuid:pk>/, /users/<int:pk>/.
router = SimpleRouter(use_regex_path=False)
router.register("tokens", views.ApiTokenViewSet, basename="api-token")
router.register("users", views.UserViewSet, basename="api-user")

urlpatterns = [
    path("token/", views.ApiTokenObtainView.as_view(), name="api-token-create"),
    path("me/", views.MeView.as_view(), name="api-me"),
    *router.urls,
]
