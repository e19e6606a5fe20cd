"""Fixtures of the accounts tests: clean login-failure records, signed-in clients, tokens."""

import pytest
from axes.models import AccessAttempt, AccessFailureLog, AccessLog

from apps.accounts.services import api_token_create
from apps.audit.models import AuditEvent


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """PBKDF2 with Django's default cost makes every login in these tests take a third of a second."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _no_login_failures(db):
    """django-axes keeps its counters in database rows: start (and prove we start) every test with none."""
    AccessAttempt.objects.all().delete()
    AccessFailureLog.objects.all().delete()
    AccessLog.objects.all().delete()
    assert not AccessAttempt.objects.exists()
    yield


@pytest.fixture
def client_as(client):
    """client_as(user) -> Django's test client with `user` signed in (None = anonymous)."""

    def make(user):
        if user is not None:
            client.force_login(user)
        return client

    return make


@pytest.fixture
def make_token():
    """make_token(user, name="cli", **kwargs) -> (ApiToken, secret), created through the service."""

    def make(user, name: str = "cli", **kwargs):
        return api_token_create(user=user, name=name, **kwargs)

    return make


@pytest.fixture
def audit_count():
    return lambda: AuditEvent.objects.count()
