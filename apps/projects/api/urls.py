from django.urls import path
from rest_framework.routers import SimpleRouter

from apps.projects.api.views import ProjectMemberViewSet, ProjectViewSet

router = SimpleRouter(use_regex_path=False)
router.register("projects", ProjectViewSet, basename="project")

urlpatterns = [
    *router.urls,
    path(
        "projects/<uuid:project_pk>/members/",
        ProjectMemberViewSet.as_view({"get": "list", "post": "create"}),
        name="project-member-list",
    ),
    path(
        "projects/<uuid:project_pk>/members/<uuid:pk>/",
        ProjectMemberViewSet.as_view({"delete": "destroy"}),
        name="project-member-detail",
    ),
]
