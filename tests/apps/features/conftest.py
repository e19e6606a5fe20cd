"""Fixtures of the feature store tests: a project's event data and spine as real dataset versions, an entity and a
view, a defined feature. Uses `file_store`, `sent_tasks`, `scientist` and `dataset` of tests/workers/tasks."""

import pytest

from apps.accounts.choices import Role
from apps.datasets import services as dataset_services
from apps.features import services
from tests.apps.features.helpers import events_frame, ingest_frame, spine_frame

PASSTHROUGH = {"kind": "passthrough", "column": "amount"}


@pytest.fixture
def events(project, scientist, file_store):
    """The purchases dataset (a version exists); its `email` column is marked personal."""
    dataset = dataset_services.dataset_create(project=project, actor=scientist, name="purchases")
    ingest_frame(dataset, scientist, events_frame())
    dataset_services.dataset_column_marks_set(
        dataset=dataset, actor=scientist, marks={"email": {"personal": True}, "amount": {"sensitive": True}}
    )
    dataset.refresh_from_db()
    return dataset


@pytest.fixture
def spine_version(project, scientist, file_store):
    dataset = dataset_services.dataset_create(project=project, actor=scientist, name="spine")
    return ingest_frame(dataset, scientist, spine_frame(), name="spine.parquet")


@pytest.fixture
def view(scientist):
    entity = services.entity_create(actor=scientist, name="customer", join_keys=["customer_id"])
    return services.feature_view_create(actor=scientist, name="customer_stats", entity=entity, tags=["churn"])


@pytest.fixture
def define(scientist, view, events):
    """define(name, transformation, **overrides) -> FeatureVersion."""

    def make(name: str = "amount", transformation: dict | None = None, *, actor=None, **overrides):
        fields = {
            "actor": actor or scientist,
            "view": view,
            "name": name,
            "dataset": events,
            "timestamp_column": "event_time",
            "entity_columns": ["customer_id"],
            "transformation": dict(transformation or PASSTHROUGH),
        } | overrides
        return services.feature_define(**fields)

    return make


@pytest.fixture
def compliance(member):
    return member(Role.COMPLIANCE)
