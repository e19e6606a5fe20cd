from django.urls import path

from apps.projects import views

app_name = "projects"
urlpatterns = [
    path("", views.ProjectListView.as_view(), name="list"),
    path("new/", views.ProjectCreateView.as_view(), name="create"),
    path("<uuid:pk>/", views.ProjectDetailView.as_view(), name="detail"),
    path("<uuid:pk>/edit/", views.ProjectEditView.as_view(), name="edit"),
    path("<uuid:pk>/members/", views.ProjectMemberSetView.as_view(), name="member_set"),
    path(
        "<uuid:pk>/members/<uuid:membership_pk>/remove/",
        views.ProjectMemberRemoveView.as_view(),
        name="member_remove",
    ),
    *[
        path(f"<uuid:pk>/{name}/", views.ProjectTransitionView.as_view(transition=name), name=name)
        for name in ("submit", "approve", "return", "mark_in_production", "retire")
    ],
]
