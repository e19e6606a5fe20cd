"""Fixtures of the notifications tests: a local HTTP receiver for webhooks, an admin."""

import pytest

from apps.accounts.choices import Role
from tests.apps.notifications.receiver import running_receiver
from tests.factories import UserFactory

# A public address (example.com's): resolving a literal needs no network, and nothing is sent to it in these tests.
PUBLIC_URL = "https://93.184.215.14/hooks/mlplatform"


@pytest.fixture
def receiver():
    with running_receiver() as state:
        yield state


@pytest.fixture
def allow_private(settings):
    """The test switch: webhooks may call the local receiver."""
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True


@pytest.fixture
def admin(db):
    return UserFactory(role=Role.ADMIN, username="platform-admin")
