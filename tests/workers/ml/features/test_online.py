"""The Redis online store (database 14): latest values per entity, typed back, equal to the offline join."""

import os
import uuid
from datetime import UTC, datetime

import pandas as pd
import pytest
import redis

from workers.ml.features.offline import FeatureInput, point_in_time_join, write_partition
from workers.ml.features.online import entity_key, read_online, write_latest

REDIS_URL = os.environ.get("FEATURES_TEST_REDIS_URL", "redis://127.0.0.1:6379/14")


@pytest.fixture
def client():
    connection = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        connection.ping()
    except redis.ConnectionError:
        pytest.skip(f"Redis does not answer at {REDIS_URL} (the online store tests need it)")
    yield connection
    connection.close()


@pytest.fixture
def view(client):
    """A feature view name of this test alone; its keys are deleted afterwards."""
    name = f"test-{uuid.uuid4().hex[:12]}"
    yield name
    for key in client.scan_iter(f"fs:{name}:*"):
        client.delete(key)


def at(text: str) -> pd.Timestamp:
    return pd.Timestamp(f"2026-05-04 {text}")


def test_latest_values_are_typed_back_and_unknown_entities_are_empty(client, view):
    frame = pd.DataFrame(
        {
            "customer": [1, 1, 2],
            "event_timestamp": [at("01:00"), at("03:00"), at("02:00")],
            "spend": [1.5, 2.25, None],
            "orders": [1, 2, 3],
            "segment": ["gold", "silver", "gold:vip"],
        }
    )
    assert write_latest(client, feature_view=view, entity_keys=["customer"], frame=frame) == 2
    rows = read_online(
        client, feature_view=view, entity_rows=[{"customer": 1}, {"customer": 2}, {"customer": 3}],
        features=["spend", "orders", "segment"],
    )  # fmt: skip
    assert rows == [
        {"spend": 2.25, "orders": 2, "segment": "silver", "event_timestamp": datetime(2026, 5, 4, 3, tzinfo=UTC)},
        {"spend": None, "orders": 3, "segment": "gold:vip", "event_timestamp": datetime(2026, 5, 4, 2, tzinfo=UTC)},
        {"spend": None, "orders": None, "segment": None, "event_timestamp": None},
    ]
    assert type(rows[0]["orders"]) is int and type(rows[0]["spend"]) is float
    # One entity is read the same way as a batch.
    assert read_online(client, feature_view=view, entity_rows=[{"customer": 1}], features=["orders"])[0]["orders"] == 2


def test_an_older_write_never_overwrites_a_newer_value_and_the_same_instant_does(client, view):
    def write(moment, spend):
        frame = pd.DataFrame({"customer": ["c"], "event_timestamp": [moment], "spend": [spend]})
        write_latest(client, feature_view=view, entity_keys=["customer"], frame=frame)

    def read():
        return read_online(client, feature_view=view, entity_rows=[{"customer": "c"}], features=["spend"])[0]["spend"]

    write(at("03:00"), 3.0)
    write(at("02:00"), 2.0)  # late: older than what is stored
    assert read() == 3.0
    write(at("03:00"), 3.5)  # the same instant materialised again
    assert read() == 3.5
    write(at("04:00"), None)  # the newest value is missing
    assert read() is None


def test_keys_with_separators_do_not_collide(client, view):
    frame = pd.DataFrame(
        {"a": ["x:y", "x"], "b": ["z", "y:z"], "event_timestamp": [at("01:00"), at("01:00")], "v": [1, 2]}
    )
    write_latest(client, feature_view=view, entity_keys=["a", "b"], frame=frame)
    assert entity_key(view, ["x:y", "z"]) != entity_key(view, ["x", "y:z"])
    rows = read_online(client, feature_view=view, entity_rows=[{"a": "x:y", "b": "z"}, {"a": "x", "b": "y:z"}],
                       features=["v"])  # fmt: skip
    assert [row["v"] for row in rows] == [1, 2]


def test_online_values_equal_offline_values_for_the_same_timestamp(client, view, tmp_path):
    values = pd.DataFrame(
        {
            "customer": [1, 2, 1, 3, 2, 1],
            "event_timestamp": [at("01:00"), at("01:30"), at("02:00"), at("02:30"), at("02:30"), at("02:00")],
            "spend": [1.0, 2.0, 3.0, None, 5.0, 3.5],  # customer 1 twice at 02:00: the later row wins on both sides
            "orders": [1, 2, 3, 4, 5, 6],
        }
    )
    paths = {name: write_partition(values[["customer", "event_timestamp", name]], tmp_path / f"{name}.parquet")
             for name in ("spend", "orders")}  # fmt: skip
    write_latest(client, feature_view=view, entity_keys=["customer"], frame=values)
    now = at("03:00")
    spine = pd.DataFrame({"customer": [1, 2, 3, 4], "ts": [now] * 4})
    offline = point_in_time_join(
        spine, entity_keys=["customer"], timestamp="ts",
        features=[FeatureInput(name, [path]) for name, path in paths.items()],
    )  # fmt: skip
    online = read_online(
        client, feature_view=view, entity_rows=[{"customer": c} for c in (1, 2, 3, 4)], features=["spend", "orders"]
    )
    for offline_row, online_row in zip(offline.itertuples(), online, strict=True):
        for name in ("spend", "orders"):
            expected = getattr(offline_row, name)
            assert online_row[name] == (None if pd.isna(expected) else expected), (offline_row.customer, name)
    assert [row["spend"] for row in online] == [3.5, 5.0, None, None]
