from django.urls import path

from apps.accounts import views

app_name = "accounts"
urlpatterns = [
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", views.logout_view, name="logout"),
    path("settings/", views.UserSettingsView.as_view(), name="settings"),
    path("tokens/<uuid:pk>/revoke/", views.ApiTokenRevokeView.as_view(), name="token_revoke"),
    path("users/", views.UserListView.as_view(), name="user_list"),
    path("users/new/", views.UserCreateView.as_view(), name="user_create"),
    path("users/<int:pk>/", views.UserDetailView.as_view(), name="user_detail"),
    path("users/<int:pk>/role/", views.UserRoleChangeView.as_view(), name="user_role_change"),
    path("users/<int:pk>/active/", views.UserActiveSetView.as_view(), name="user_set_active"),
    path("users/<int:pk>/tokens/revoke/", views.UserTokensRevokeView.as_view(), name="user_tokens_revoke"),
]
