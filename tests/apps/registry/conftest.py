import pytest

from apps.accounts.choices import Role
from tests.apps.experiments import experiment_fixtures

launch = experiment_fixtures.launch
version = experiment_fixtures.version


@pytest.fixture
def reviewer(member):
    return member(Role.REVIEWER)


@pytest.fixture
def second_reviewer(member):
    return member(Role.REVIEWER)


@pytest.fixture
def run_of(launch, file_store):
    """run_of(test_f1=..., p99_ms=..., fairness=..., actor=...) -> a succeeded run with a signed stored artifact."""
    from tests.apps.registry.registry_helpers import succeeded_run

    def make(**kwargs):
        return succeeded_run(launch, **kwargs)

    return make
