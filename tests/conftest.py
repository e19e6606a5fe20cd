"""Shared fixtures: users by role, a project with a definition, members by role, API clients."""

import os

os.environ.setdefault("CACHE_KEY_PREFIX", "test-" + os.environ.get("PYTEST_XDIST_WORKER", "main"))

import pytest
from rest_framework.test import APIClient

from apps.accounts.choices import Role
from tests.factories import MembershipFactory, ProblemDefinitionFactory, ProjectFactory, UserFactory

# Shared fixture modules: a real S3-compatible server (SeaweedFS, started once per session on first use), a real
# Celery worker process, and dataset builders. None of their fixtures is autouse.
pytest_plugins = ["tests.support.seaweedfs", "tests.support.celery_worker", "tests.workers.tasks.dataset_fixtures"]

PROJECT_ROLES = [Role.STAKEHOLDER, Role.SCIENTIST, Role.REVIEWER, Role.COMPLIANCE]


@pytest.fixture(autouse=True)
def _fast_password_hasher(settings):
    # PBKDF2 is slow on purpose; tests only need passwords to round-trip.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _clean_cache():
    from django.core.cache import cache

    cache.clear()
    yield


@pytest.fixture
def user(db):
    return UserFactory()


@pytest.fixture
def make_user(db):
    def make(role: str = Role.SCIENTIST, **kwargs):
        return UserFactory(role=role, **kwargs)

    return make


@pytest.fixture
def admin_user(db):
    return UserFactory(role=Role.ADMIN, username="admin-user")


@pytest.fixture
def project(db):
    """A draft project with a full binary-classification definition, filed by a stakeholder who is a member."""
    definition = ProblemDefinitionFactory()
    project = definition.project
    MembershipFactory(user=project.created_by, project=project, role=Role.STAKEHOLDER)
    return project


@pytest.fixture
def member(db, project):
    """member(role) -> a new user with that role in `project` (and the same platform-wide role)."""

    def make(role: str):
        user = UserFactory(role=role)
        MembershipFactory(user=user, project=project, role=role)
        return user

    return make


@pytest.fixture
def outsider(db):
    """A data scientist with no membership in `project`."""
    return UserFactory(role=Role.SCIENTIST, username="outsider")


@pytest.fixture
def caller(member, outsider, admin_user):
    """caller(kind) -> the user of a permission matrix's column: "anonymous" (None), "non_member", "admin", or a
    project role (a new member of `project` with that role, read back fresh from the database)."""
    from apps.accounts.models import User

    def make(kind: str):
        if kind == "anonymous":
            return None
        if kind == "non_member":
            return outsider
        if kind == "admin":
            return admin_user
        return User.objects.get(pk=member(kind).pk)

    return make


@pytest.fixture
def api_client():
    return APIClient()


@pytest.fixture
def api_client_as(db):
    def make(user):
        client = APIClient()
        if user is not None:
            client.force_authenticate(user=user)
        return client

    return make


@pytest.fixture
def project_factory(db):
    return ProjectFactory
