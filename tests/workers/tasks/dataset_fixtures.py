"""Pytest fixtures for the datasets backend tests, loaded in a test module with
`pytest_plugins = ["tests.workers.tasks.dataset_fixtures"]`. None is autouse: once loaded, a plugin's fixtures are
visible to the whole session.
"""

import pytest

from apps.accounts.choices import Role
from apps.datasets import services
from apps.datasets.models import Dataset
from config.celery import app as celery_app


@pytest.fixture
def sent_tasks(monkeypatch):
    """Every task the code under test dispatches by name (nothing reaches a broker)."""
    sent: list[tuple[str, list, str]] = []

    def send_task(name, args=None, kwargs=None, queue=None, **options):
        sent.append((name, list(args or []), queue))

    monkeypatch.setattr(celery_app, "send_task", send_task)
    return sent


@pytest.fixture
def file_store(tmp_path, settings):
    """The configured artifact store, a fresh local folder for this test."""
    from apps.core.artifacts import artifact_store

    settings.ARTIFACT_STORE = f"file://{tmp_path / 'artifacts'}"
    (tmp_path / "artifacts").mkdir()
    return artifact_store()


@pytest.fixture
def scientist(member):
    return member(Role.SCIENTIST)


@pytest.fixture
def dataset(project, scientist) -> Dataset:
    return services.dataset_create(project=project, actor=scientist, name="churn", description="Monthly churn")
