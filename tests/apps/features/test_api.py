"""The feature store API: online reads equal the offline values, the permission matrix (a denied call changes
nothing), and errors next to their fields."""

import pandas as pd
import pytest
import redis

from apps.features import services
from apps.features.models import FeatureVersion
from tests.apps.features.helpers import materialise, run_task, state

pytestmark = pytest.mark.django_db

ONLINE_DB = "redis://127.0.0.1:6379/13"
MEAN_7D = {"kind": "window", "column": "amount", "function": "mean", "window": "7d"}
KINDS = ["anonymous", "non_member", "stakeholder", "scientist", "reviewer", "compliance", "admin"]


@pytest.fixture
def online_store(settings):
    """The online store on this suite's own Redis database (flushed before and after)."""
    client = redis.Redis.from_url(ONLINE_DB)
    try:
        client.ping()
    except redis.ConnectionError:
        pytest.skip("Redis does not answer on 127.0.0.1:6379")
    client.flushdb()
    settings.FEATURES_ONLINE_REDIS_URL = ONLINE_DB
    yield client
    client.flushdb()


@pytest.fixture
def materialised(define, scientist, sent_tasks):
    """Two features of the view, materialised over all the events."""
    versions = [define("amount_7d", MEAN_7D), define("amount")]
    for version in versions:
        materialise(services.materialisation_request(actor=scientist, feature_version=version))
    return versions


def _offline_latest(version: FeatureVersion) -> dict[int, tuple]:
    """Per customer, the offline value of its newest event and that event's time (read from the partitions)."""
    from apps.core.artifacts import artifact_store
    from apps.features.selectors import partition_keys

    frames = [
        pd.read_parquet(_buffer(artifact_store().get_bytes(key)))
        for key in partition_keys(feature_version_id=version.pk)
    ]
    frame = pd.concat(frames).sort_values("event_timestamp", kind="stable")
    latest = frame.groupby("customer_id").tail(1)
    return {
        int(row.customer_id): (getattr(row, version.feature.name), row.event_timestamp)
        for row in latest.itertuples(index=False)
    }


def _buffer(data: bytes):
    import io

    return io.BytesIO(data)


def test_online_values_equal_the_offline_latest_values(
    materialised, scientist, api_client_as, online_store, django_capture_on_commit_callbacks, sent_tasks
):
    from workers.tasks.features import sync_online_task

    view = materialised[0].feature.view
    sync = services.online_sync_request(actor=scientist, view=view)
    assert run_task(sync_online_task, sync.pk) == "succeeded"
    sync.refresh_from_db()
    assert sync.rows == 3

    client = api_client_as(scientist)
    batch = client.post(
        "/api/v1/features/online",
        {"view": "customer_stats", "entities": [{"customer_id": 1}, {"customer_id": 2}, {"customer_id": 3}]},
    )
    assert batch.status_code == 200, batch.json()
    offline = {version.feature.name: _offline_latest(version) for version in materialised}
    for result in batch.json()["results"]:
        customer = int(result["entity"]["customer_id"])
        for name, values in offline.items():
            assert result["features"][name] == pytest.approx(values[customer][0])
        newest = max(values[customer][1] for values in offline.values())
        assert pd.Timestamp(result["event_timestamp"]).tz_convert(None) == newest
        assert result["age_seconds"] > 0

    one = client.get("/api/v1/features/online", {"view": "customer_stats", "customer_id": 1, "features": "amount"})
    assert one.status_code == 200
    assert one.json()["results"][0]["features"] == {"amount": 50.0}
    unknown = client.get("/api/v1/features/online", {"view": "customer_stats", "customer_id": 99})
    assert unknown.json()["results"][0] == {
        "entity": {"customer_id": "99"},
        "features": {"amount": None, "amount_7d": None},
        "event_timestamp": None,
        "age_seconds": None,
    }


def test_online_read_errors_name_their_field(materialised, scientist, api_client_as, online_store):
    client = api_client_as(scientist)
    missing_key = client.post("/api/v1/features/online", {"view": "customer_stats", "entities": [{"x": 1}]})
    unknown_feature = client.get(
        "/api/v1/features/online", {"view": "customer_stats", "customer_id": 1, "features": "nope"}
    )
    assert missing_key.status_code == 400 and "entities" in missing_key.json()["errors"]
    assert unknown_feature.status_code == 400 and "features" in unknown_feature.json()["errors"]


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("anonymous", 401),
        ("non_member", 403),
        ("stakeholder", 403),
        ("scientist", 200),
        ("reviewer", 200),
        ("compliance", 403),
        ("admin", 200),
    ],
)
def test_online_read_permission_matrix(materialised, caller, api_client_as, online_store, kind, expected):
    response = api_client_as(caller(kind)).get("/api/v1/features/online", {"view": "customer_stats", "customer_id": 1})
    assert response.status_code == expected


def _define_body(events) -> dict:
    return {
        "view": "customer_stats",
        "name": "amount_api",
        "dataset": str(events.pk),
        "timestamp_column": "event_time",
        "entity_columns": ["customer_id"],
        "transformation": {"kind": "log", "column": "amount"},
    }


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("anonymous", 401),
        ("non_member", 404),
        ("stakeholder", 404),
        ("scientist", 201),
        ("reviewer", 403),
        ("compliance", 403),
        ("admin", 201),
    ],
)
def test_define_permission_matrix(view, events, caller, api_client_as, kind, expected):
    before = state()
    response = api_client_as(caller(kind)).post("/api/v1/features/", _define_body(events), format="json")
    assert response.status_code == expected, response.json()
    if expected != 201:
        assert state() == before
    else:
        assert FeatureVersion.objects.get(pk=response.json()["id"]).transformation == {
            "kind": "log",
            "column": "amount",
        }


def test_define_errors_are_next_to_their_fields(view, events, scientist, api_client_as):
    body = _define_body(events) | {"transformation": {"kind": "expression", "expression": "amount.__class__"}}
    response = api_client_as(scientist).post("/api/v1/features/", body, format="json")
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["transformation.expression"]


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("anonymous", 401),
        ("non_member", 403),
        ("stakeholder", 404),
        ("scientist", 202),
        ("reviewer", 403),
        ("compliance", 403),
        ("admin", 202),
    ],
)
def test_materialise_permission_matrix(define, caller, api_client_as, sent_tasks, kind, expected):
    version = define("amount")
    before = state()
    response = api_client_as(caller(kind)).post(f"/api/v1/features/versions/{version.pk}/materialise/", {})
    assert response.status_code == expected
    if expected != 202:
        assert state() == before


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("anonymous", 401),
        ("non_member", 404),
        ("stakeholder", 404),  # the catalog (its feature versions) is not theirs to see,
        ("scientist", 202),
        ("reviewer", 403),
        ("compliance", 403),
        ("admin", 202),
    ],
)
def test_training_set_permission_matrix(
    materialised, project, spine_version, caller, api_client_as, sent_tasks, kind, expected
):
    body = {
        "spine_version": str(spine_version.pk),
        "spine_key_columns": ["cust"],
        "spine_timestamp_column": "as_of",
        "label_column": "churned",
        "features": [{"feature_version": str(materialised[0].pk), "max_age_seconds": 86400}],
        "output_dataset": "churn_training",
    }
    before = state()
    response = api_client_as(caller(kind)).post(f"/api/v1/projects/{project.pk}/training-sets/", body, format="json")
    assert response.status_code == expected, response.json()
    if expected != 202:
        assert state() == before
    else:
        assert response.json()["features"][0]["max_age_seconds"] == 86400


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("anonymous", 401),
        ("non_member", 404),
        ("stakeholder", 404),
        ("scientist", 403),
        ("reviewer", 403),
        ("compliance", 201),
        ("admin", 403),
    ],
)
def test_personal_exception_permission_matrix(define, project, caller, api_client_as, kind, expected):
    email = define("email", {"kind": "passthrough", "column": "email"})
    body = {"feature_version": str(email.pk), "reason": "The contract with the customer allows it."}
    before = state()
    response = api_client_as(caller(kind)).post(f"/api/v1/projects/{project.pk}/feature-exceptions/", body)
    assert response.status_code == expected
    if expected != 201:
        assert state() == before


def test_the_catalog_is_searchable_by_tag_owner_and_entity(materialised, scientist, api_client_as):
    client = api_client_as(scientist)
    names = lambda **query: [f["name"] for f in client.get("/api/v1/features/", query).json()["results"]]  # noqa: E731
    assert names() == ["amount", "amount_7d"]
    assert names(q="7d") == ["amount_7d"]
    assert names(tag="churn") == ["amount", "amount_7d"]
    assert names(owner=scientist.username, entity="customer") == ["amount", "amount_7d"]
    assert names(entity="nobody") == []
