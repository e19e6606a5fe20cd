"""A deployment that declares a feature view: clients send the entity key, the server fetches the features from the
online store (real Redis) before validating and predicting, and logs what the model saw."""

import os
import uuid
from dataclasses import replace

import pandas as pd
import pytest

from tests.support.async_run import run_async
from tests.workers.serving.conftest import ROW, Running, settings_for
from workers.ml.features.online import write_latest
from workers.serving.app import create_app
from workers.serving.config import FeatureLookup, parse_deployment

REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/15"


@pytest.fixture
def redis_client(monkeypatch):
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.ConnectionError:
        if os.environ.get("REQUIRE_SERVICES"):
            raise
        pytest.skip(f"Redis does not answer at {REDIS_URL}")
    monkeypatch.setenv("FEATURES_ONLINE_REDIS_URL", REDIS_URL)
    view = f"customers-{uuid.uuid4().hex[:8]}"
    yield client, view
    for key in client.scan_iter(f"fs:{view}:*"):
        client.delete(key)


def app_with_features(artifacts, tmp_path, view: str):
    entry = artifacts.publish("churn", "1")
    settings = settings_for([entry], tmp_path / "log")
    lookup = FeatureLookup(view=view, entity_keys=("customer_id",), columns=("age", "income"))
    deployment = replace(parse_deployment({"models": [entry]}), features=lookup)
    return create_app(replace(settings, deployment=deployment))


def invocations(app, rows: list[dict]):
    async def go():
        async with Running(app) as client:
            answer = await client.post("/invocations", {"dataframe_records": rows})
            await app.logger.drain()
            return answer

    return run_async(go())


def logged(tmp_path) -> list[dict]:
    import json

    return [json.loads(line) for path in (tmp_path / "log").glob("*.jsonl*") for line in path.read_text().splitlines()]


def test_the_server_fetches_features_by_entity_key_and_predicts_as_with_them_sent(redis_client, artifacts, tmp_path):
    client, view = redis_client
    stored = pd.DataFrame(
        {
            "customer_id": [7, 7],
            "event_timestamp": pd.to_datetime(["2026-01-01", "2026-02-01"]),
            "age": [30.0, ROW["age"]],  # the later value is the one served
            "income": [9.0, ROW["income"]],
        }
    )
    write_latest(client, feature_view=view, entity_keys=["customer_id"], frame=stored)
    app = app_with_features(artifacts, tmp_path, view)

    by_key = invocations(app, [{"customer_id": 7, "colour": ROW["colour"], "member": ROW["member"]}])
    sent = invocations(app, [dict(ROW)])

    assert by_key.status == 200, by_key.json()
    assert by_key.json()["predictions"] == sent.json()["predictions"]
    record = next(entry for entry in logged(tmp_path) if entry["prediction_id"] in by_key.json()["prediction_ids"])
    assert record["inputs"]["age"] == ROW["age"] and "customer_id" not in record["inputs"]


def test_a_request_without_the_entity_key_is_refused_naming_it(redis_client, artifacts, tmp_path):
    app = app_with_features(artifacts, tmp_path, redis_client[1])
    answer = invocations(app, [{"colour": "red", "member": True}])
    assert answer.status == 400 and "customer_id" in answer.json()["message"]


def test_an_unknown_entity_gets_missing_features_which_the_signature_refuses(redis_client, artifacts, tmp_path):
    app = app_with_features(artifacts, tmp_path, redis_client[1])
    answer = invocations(app, [{"customer_id": 404, "colour": "red", "member": True}])
    assert answer.status == 400 and "age" in answer.json()["message"]


@pytest.mark.parametrize(
    "section,field",
    [
        ({"view": "", "entity_keys": ["id"], "columns": ["a"]}, "features.view"),
        ({"view": "v", "entity_keys": [], "columns": ["a"]}, "features.entity_keys"),
        ({"view": "v", "entity_keys": ["id"], "columns": ["id"]}, "features.columns"),
        ({"view": "v", "entity_keys": ["id"], "columns": ["a"], "url": "x"}, "features.url"),
    ],
)
def test_a_bad_features_section_is_refused_naming_the_field(artifacts, section, field):
    from workers.serving.config import ConfigError

    entry = artifacts.publish("churn", "1")
    with pytest.raises(ConfigError) as refused:
        parse_deployment({"models": [entry], "features": section})
    assert str(refused.value).startswith(field)


def test_a_features_section_needs_the_online_store_url(monkeypatch):
    from workers.serving.config import ConfigError
    from workers.serving.features import online_features

    monkeypatch.delenv("FEATURES_ONLINE_REDIS_URL", raising=False)
    with pytest.raises(ConfigError, match="FEATURES_ONLINE_REDIS_URL"):
        online_features(FeatureLookup(view="v", entity_keys=("id",), columns=("a",)), environ={})
