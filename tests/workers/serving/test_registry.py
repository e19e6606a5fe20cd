"""Signed artifacts only: a tampered or wrongly signed one is refused, reported not ready, and never replaces the
version already serving."""

from tests.support.async_run import run_async
from tests.workers.serving.conftest import Running, v2_body
from workers.serving.config import parse_deployment


def get(app, path):
    async def go():
        async with Running(app) as client:
            return await client.get(path)

    return run_async(go())


def infer(app, path):
    async def go():
        async with Running(app) as client:
            return await client.post(path, v2_body())

    return run_async(go())


def tamper(artifacts, entry):
    """Rewrite the stored bytes (with a matching store checksum, as an attacker with write access could)."""
    data = artifacts.store.root.joinpath(entry["artifact_key"]).read_bytes()
    artifacts.store.put_bytes(entry["artifact_key"], data[:-1] + bytes([data[-1] ^ 1]))


def test_a_tampered_artifact_is_refused_and_the_others_keep_serving(artifacts, serve):
    good, bad = artifacts.publish("churn", "1"), artifacts.publish("fraud", "1", seed=1)
    tamper(artifacts, bad)
    app = serve([good, bad])
    assert app.registry.get("fraud") is None
    ready = get(app, "/v2/models/fraud/ready")
    assert ready.status == 400
    assert ready.json()["reason"] == "ArtifactTampered: The artifact's SHA-256 does not match the recorded one."
    refused = infer(app, "/v2/models/fraud/infer")
    assert refused.status == 503 and "not ready" in refused.json()["error"]
    assert infer(app, "/v2/models/churn/infer").status == 200
    assert get(app, "/v2/health/ready").json() == {"ready": True}  # the default (first) version serves


def test_a_wrong_signature_is_refused(artifacts, serve):
    entry = artifacts.publish("churn", "1", key=b"someone-else")
    app = serve([entry])
    assert app.registry.failures == {("churn", "1"): "ArtifactTampered: The artifact's signature does not verify."}
    assert get(app, "/v2/health/ready").status == 400
    assert get(app, "/ping").status == 404


def test_a_failed_reload_keeps_the_old_version_serving(artifacts, serve):
    entry = artifacts.publish("churn", "1")
    app = serve([entry])
    old = app.registry.get("churn", "1")
    replacement = {**entry, "artifact_key": "models/churn/v1/other.joblib", "sha256": "0" * 64}
    failures = app.registry.reload(parse_deployment({"models": [replacement]}))
    assert list(failures) == [("churn", "1")] and "ObjectNotFound" in failures[("churn", "1")]
    assert app.registry.get("churn", "1") is old
    assert infer(app, "/v2/models/churn/versions/1/infer").status == 200


def test_a_reload_loads_new_versions_before_swapping_and_drops_removed_ones(artifacts, serve):
    first = artifacts.publish("churn", "1")
    app = serve([first])
    unchanged = app.registry.get("churn", "1")
    second = artifacts.publish("churn", "2", seed=1)
    assert (
        app.registry.reload(parse_deployment({"models": [first, second], "default": {"name": "churn", "version": "2"}}))
        == {}
    )
    assert app.registry.get("churn", "1") is unchanged  # same digest: not loaded again
    assert app.registry.get("churn").spec.version == "2"  # the one listed last
    assert app.registry.default().spec.version == "2"
    app.registry.reload(parse_deployment({"models": [second]}))
    assert app.registry.get("churn", "1") is None
    assert infer(app, "/v2/models/churn/versions/1/infer").status == 404


def test_versions_load_from_an_s3_compatible_store_named_by_the_environment(s3_server, s3_store, serve, monkeypatch):
    """The runner passes the portal's S3_ENDPOINT_URL, S3_REGION and AWS credentials to the server."""
    from tests.workers.serving.conftest import Artifacts

    monkeypatch.setenv("S3_ENDPOINT_URL", s3_server.endpoint_url)
    monkeypatch.setenv("S3_REGION", s3_server.region)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_key)
    entry = Artifacts(store=s3_store).publish("churn", "1")
    assert entry["artifact_store"].startswith("s3://")

    app = serve([entry])

    assert app.registry.failures == {}
    assert infer(app, "/v2/models/churn/infer").status == 200
