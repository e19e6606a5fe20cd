"""Fixtures for the experiments backend tests. tests/apps/experiments/conftest.py re-exports them; the training task
tests import the ones they use."""

import pytest

from apps.experiments import services
from tests.apps.experiments.experiment_helpers import QUICK, ingest


@pytest.fixture
def version(dataset, scientist, file_store):
    """A real, validated version of the churn data in the configured (local) store."""
    return ingest(dataset, scientist)


@pytest.fixture
def launch(project, scientist, version, sent_tasks, django_capture_on_commit_callbacks):
    """launch(data=QUICK, actor=scientist, ...) -> the experiment; dispatches after commit into `sent_tasks`."""

    def make(data: dict | None = None, *, actor=None, dataset_version=None, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return services.experiment_launch(
                project=project,
                actor=actor or scientist,
                dataset_version=dataset_version or version,
                data=dict(QUICK if data is None else data),
                **kwargs,
            )

    return make
