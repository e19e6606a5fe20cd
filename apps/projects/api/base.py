"""Base classes for the projects API and for every API resource that lives inside a project.

Visibility comes from the selectors, before any handler runs: a project the user may not see answers 404, so its
existence is not leaked. Subclasses of ProjectScopedViewSet implement `scoped_queryset(project)`; they never
override `get_queryset`, so they cannot forget the scoping.
"""

from functools import cached_property

from rest_framework import viewsets

from apps.projects.models import Project
from apps.projects.selectors import project_get, project_visible_queryset


class VisibleProjectsViewSet(viewsets.GenericViewSet):
    """A viewset over the projects the requesting user may see (/api/v1/projects/<uuid>/...)."""

    lookup_value_converter = "uuid"

    def get_queryset(self):
        return project_visible_queryset(actor=self.request.user)


class ProjectScopedViewSet(viewsets.GenericViewSet):
    """A viewset over objects of one project (/api/v1/projects/<project_pk>/<things>/...).

    `self.project` is the project of the URL, already checked to be visible to the user (404 otherwise).
    """

    project_lookup_kwarg = "project_pk"

    @cached_property
    def project(self) -> Project:
        return project_get(actor=self.request.user, pk=self.kwargs[self.project_lookup_kwarg])

    def scoped_queryset(self, project: Project):
        raise NotImplementedError("A ProjectScopedViewSet implements scoped_queryset(project).")

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # drf-spectacular builds the schema without a request user
            return self.scoped_queryset(None).none()
        return self.scoped_queryset(self.project)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "get_queryset" in cls.__dict__:
            raise TypeError(f"{cls.__name__} must implement scoped_queryset(project), not get_queryset().")
