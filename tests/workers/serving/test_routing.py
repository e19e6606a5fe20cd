"""Traffic routing inside the model server: direct, blue-green, canary, A/B and shadow, never to a version that is
not ready, and the admin reload that switches between them while requests keep being answered."""

import asyncio
import copy
import json
import math
import random

import pytest

from tests.support.async_run import run_async
from tests.workers.serving.conftest import KEY, ROW, Running, v2_body
from workers.serving.app import create_app
from workers.serving.config import (
    ConfigError,
    Limits,
    Settings,
    check_traffic_ready,
    load_deployment,
    parse_deployment,
)
from workers.serving.routing import Router

TOKEN = "admin-secret"
LOOPBACK = ("127.0.0.1", 50123)
DECISIONS = 10_000


def within_binomial_bound(hits: int, *, trials: int, share: float, sigmas: float = 4.5) -> bool:
    """|hits - n p| <= 4.5 standard deviations: a correct router fails this about once in 150,000 runs."""
    return abs(hits - trials * share) <= sigmas * math.sqrt(trials * share * (1 - share))


def tamper(artifacts, entry):
    data = artifacts.store.root.joinpath(entry["artifact_key"]).read_bytes()
    artifacts.store.put_bytes(entry["artifact_key"], data[:-1] + bytes([data[-1] ^ 1]))


def routes(*pairs):
    return [{"version": version, "weight": weight} for version, weight in pairs]


@pytest.fixture
def versions(artifacts):
    return artifacts.publish("churn", "1"), artifacts.publish("churn", "2", seed=1)


def router_for(app, seed: int = 7) -> Router:
    return Router(app.router.traffic, app.registry, rng=random.Random(seed))


def serve_traffic(serve, entries, traffic):
    """An app for the deployment file {models: entries, traffic}."""
    app = serve(entries)
    deployment = parse_deployment({"models": entries, "traffic": traffic})
    app.registry.reload(deployment)
    app.router = Router(deployment.traffic, app.registry, rng=random.Random(3))
    return app


def run_requests(app, requests):
    """requests: a list of (method, path, kwargs); answers in order, inside one running lifespan."""

    async def go():
        async with Running(app) as client:
            return [await client.request(method, path, **kwargs) for method, path, kwargs in requests]

    return run_async(go())


def infer(headers=None, path="/v2/models/churn/infer"):
    return ("POST", path, {"json_body": v2_body(), "headers": headers})


def logged(tmp_path):
    return [json.loads(line) for path in (tmp_path / "log").glob("*.jsonl") for line in path.read_text().splitlines()]


# --- the traffic section of the deployment file -------------------------------------------------------------------


def entry(version):
    return {
        "name": "churn",
        "version": version,
        "artifact_store": "file:///tmp/store",
        "artifact_key": f"models/churn/v{version}/model.joblib",
        "sha256": "a" * 64,
        "signature": "b" * 64,
        "problem_type": "binary",
        "input_signature": {"columns": [{"name": "age", "kind": "numeric", "dtype": "float64", "nullable": False}]},
    }


@pytest.mark.parametrize(
    ("traffic", "message"),
    [
        ({"strategy": "rainbow", "routes": routes(("1", 100))}, "traffic.strategy: one of direct"),
        ({"strategy": "direct", "routes": routes(("9", 100))}, "traffic.routes[0].version: '9' is not a listed"),
        ({"strategy": "canary", "routes": routes(("1", 90), ("2", 20))}, "the weights sum to 110, not 100"),
        ({"strategy": "canary", "routes": routes(("1", 101), ("2", -1))}, "routes[0].weight: an integer from 0"),
        ({"strategy": "canary", "routes": [{"version": "1", "weight": True}]}, "routes[0].weight"),
        ({"strategy": "canary", "routes": routes(("1", 50), ("1", 50))}, "version '1' is routed twice"),
        ({"strategy": "direct", "routes": routes(("1", 50), ("2", 50))}, "direct sends all traffic to one"),
        ({"strategy": "blue_green", "routes": routes(("1", 50), ("2", 50))}, "blue_green switches at once"),
        ({"strategy": "canary", "routes": routes(("1", 100))}, "canary splits traffic: at least two routes"),
        ({"strategy": "ab", "routes": routes(("1", 50), ("2", 50))}, "traffic.sticky_key: ab needs"),
        (
            {"strategy": "canary", "routes": routes(("1", 50), ("2", 50)), "sticky_key": "user"},
            "traffic.sticky_key: only the ab strategy",
        ),
        ({"strategy": "shadow", "routes": routes(("1", 100))}, "traffic.shadow: the shadow strategy needs"),
        (
            {"strategy": "shadow", "routes": routes(("1", 100)), "shadow": {"version": "9"}},
            "traffic.shadow.version: one of the listed versions",
        ),
        (
            {"strategy": "shadow", "routes": routes(("1", 100), ("2", 0)), "shadow": {"version": "2"}},
            "traffic.shadow.version: '2' also takes live traffic",
        ),
        ({"strategy": "direct", "routes": routes(("1", 100)), "split": 1}, "traffic.split: unknown field"),
        ({"strategy": "direct", "routes": []}, "traffic.routes: a non-empty list"),
    ],
)
def test_bad_traffic_sections_name_the_field(traffic, message):
    with pytest.raises(ConfigError) as raised:
        parse_deployment({"models": [entry("1"), entry("2")], "traffic": traffic})
    assert message in str(raised.value)


def test_without_a_traffic_section_the_default_version_takes_everything():
    deployment = parse_deployment({"models": [entry("1"), entry("2")], "default": {"name": "churn", "version": "2"}})
    assert deployment.traffic.strategy == "direct"
    assert [(route.version, route.weight) for route in deployment.traffic.routes] == [("2", 100)]


def test_a_route_to_a_version_that_did_not_load_is_named():
    traffic = parse_deployment(
        {"models": [entry("1"), entry("2")], "traffic": {"strategy": "canary", "routes": routes(("1", 80), ("2", 20))}}
    ).traffic
    check_traffic_ready(traffic, ready={("churn", "1"), ("churn", "2")}, failures={})
    with pytest.raises(ConfigError, match=r"traffic.routes\[1\].version: churn version 2 is not ready \(tampered\)"):
        check_traffic_ready(traffic, ready={("churn", "1")}, failures={("churn", "2"): "tampered"})


# --- routing decisions --------------------------------------------------------------------------------------------


def test_canary_share_is_within_a_binomial_bound(versions, serve):
    app = serve_traffic(serve, list(versions), {"strategy": "canary", "routes": routes(("1", 90), ("2", 10))})
    router = router_for(app)
    chosen = [router.choose().loaded.spec.version for _ in range(DECISIONS)]
    assert within_binomial_bound(chosen.count("2"), trials=DECISIONS, share=0.10)
    assert chosen.count("1") + chosen.count("2") == DECISIONS


def test_ab_split_is_within_a_binomial_bound_and_sticky_by_key(versions, serve):
    traffic = {
        "strategy": "ab",
        "routes": [{"version": "1", "weight": 30, "variant": "A"}, {"version": "2", "weight": 70, "variant": "B"}],
        "sticky_key": "x-user-id",
    }
    app = serve_traffic(serve, list(versions), traffic)
    router, restarted = router_for(app, seed=1), router_for(app, seed=2)
    variants = {f"user-{index}": router.choose(f"user-{index}").variant for index in range(DECISIONS)}
    assert within_binomial_bound(list(variants.values()).count("B"), trials=DECISIONS, share=0.70)
    for key in list(variants)[:200]:
        assert {router.choose(key).variant for _ in range(5)} == {variants[key]}
        assert restarted.choose(key).variant == variants[key]  # another process, another RNG: same variant


def test_ab_requests_keep_their_variant_by_header_and_are_logged_with_it(versions, serve, tmp_path):
    traffic = {
        "strategy": "ab",
        "routes": [{"version": "1", "weight": 50, "variant": "A"}, {"version": "2", "weight": 50, "variant": "B"}],
        "sticky_key": "X-User-Id",
    }
    app = serve_traffic(serve, list(versions), traffic)
    users = [f"user-{index}" for index in range(12)]
    answers = run_requests(app, [infer({"x-user-id": user}) for user in users * 2])
    assert all(answer.status == 200 for answer in answers)
    first, second = answers[: len(users)], answers[len(users) :]
    assert [a.json()["model_version"] for a in first] == [a.json()["model_version"] for a in second]
    assert {a.json()["model_version"] for a in first} == {"1", "2"}  # 12 users, both variants (odds 1 in 2000)
    records = {record["prediction_id"]: record for record in logged(tmp_path)}
    for answer in answers:
        (prediction_id,) = answer.json()["parameters"]["prediction_ids"]
        record = records[prediction_id]
        assert record["variant"] == {"1": "A", "2": "B"}[record["version"]] and record["shadow"] is False


def test_a_request_naming_its_version_is_not_routed(versions, serve, tmp_path):
    app = serve_traffic(serve, list(versions), {"strategy": "canary", "routes": routes(("1", 0), ("2", 100))})
    (named,) = run_requests(app, [infer(path="/v2/models/churn/versions/1/infer")])
    assert named.json()["model_version"] == "1"
    (record,) = logged(tmp_path)
    assert record["variant"] is None and record["shadow"] is False


def test_a_version_that_is_not_ready_gets_no_traffic(artifacts, versions, serve):
    tamper(artifacts, versions[1])
    app = serve_traffic(serve, list(versions), {"strategy": "canary", "routes": routes(("1", 50), ("2", 50))})
    router = router_for(app)
    assert {router.choose().loaded.spec.version for _ in range(1000)} == {"1"}
    *answers, ready, metrics = run_requests(
        app,
        [infer(), ("POST", "/invocations", {"json_body": {"dataframe_records": [ROW]}})] * 10
        + [("GET", "/v2/health/ready", {}), ("GET", "/metrics", {})],
    )
    assert {(answer.status, answer.headers["x-model-version"]) for answer in answers} == {(200, "1")}
    assert ready.status == 200
    (not_ready,) = ready.json()["not_ready_routes"]
    assert (not_ready["version"], not_ready["role"]) == ("2", "live")
    assert not_ready["reason"].startswith("ArtifactTampered")
    lines = metrics.body.decode().splitlines()
    labels = 'model="churn",version="{}",role="live",variant="{}"'
    assert f"mlp_serving_route_weight{{{labels.format(2, 2)}}} 50.0" in lines
    assert f"mlp_serving_route_effective_weight{{{labels.format(2, 2)}}} 0.0" in lines
    assert f"mlp_serving_route_effective_weight{{{labels.format(1, 1)}}} 100.0" in lines
    assert f"mlp_serving_route_ready{{{labels.format(2, 2)}}} 0.0" in lines


def test_with_no_routed_version_ready_requests_are_refused_not_sent_elsewhere(artifacts, versions, serve):
    tamper(artifacts, versions[1])
    app = serve_traffic(serve, list(versions), {"strategy": "direct", "routes": routes(("2", 100))})
    answer, ping, ready, other = run_requests(
        app,
        [
            infer(),
            ("GET", "/ping", {}),
            ("GET", "/v2/models/churn/ready", {}),
            infer(path="/v2/models/churn/versions/1/infer"),
        ],
    )
    assert answer.status == 503 and "No routed version of 'churn' is ready" in answer.json()["error"]
    assert ping.status == 404 and ready.status == 400 and ready.json()["ready"] is False
    assert other.status == 200  # a client may still name a loaded version


# --- shadow -------------------------------------------------------------------------------------------------------


def test_shadow_answers_are_logged_with_the_flag_and_never_returned(versions, serve, tmp_path):
    traffic = {"strategy": "shadow", "routes": routes(("1", 100)), "shadow": {"version": "2"}}
    app = serve_traffic(serve, list(versions), traffic)

    async def go():
        async with Running(app) as client:
            answers = [await client.post("/v2/models/churn/infer", v2_body()) for _ in range(20)]
            answers.append(await client.post("/invocations", {"dataframe_records": [ROW, ROW]}))
            await app.shadows.wait()
            return answers, await client.get("/metrics")

    answers, metrics = run_async(go())
    assert {(answer.status, answer.headers["x-model-version"]) for answer in answers} == {(200, "1")}
    live_ids = [pid for a in answers[:-1] for pid in a.json()["parameters"]["prediction_ids"]]
    live_ids += answers[-1].json()["prediction_ids"]
    records = logged(tmp_path)
    live = [record for record in records if not record["shadow"]]
    shadow = [record for record in records if record["shadow"]]
    assert sorted(record["prediction_id"] for record in live) == sorted(live_ids)
    assert sorted(record["shadow_of"] for record in shadow) == sorted(live_ids)
    assert {(record["version"], record["variant"]) for record in shadow} == {("2", "2")}
    assert not {record["prediction_id"] for record in shadow} & set(live_ids)
    lines = metrics.body.decode().splitlines()
    assert 'mlp_serving_requests_total{model="churn",version="2",role="shadow"} 21' in lines
    assert 'mlp_serving_requests_total{model="churn",version="1",role="live"} 21' in lines
    assert not any(
        line.startswith('mlp_serving_requests_total{model="churn",version="2",role="live"') for line in lines
    )


def test_a_failing_shadow_is_counted_and_never_touches_the_live_answer(artifacts, serve, tmp_path):
    live = artifacts.publish("churn", "1")
    picky = artifacts.publish("churn", "2", seed=1)
    picky["input_signature"] = copy.deepcopy(picky["input_signature"])
    colour = next(column for column in picky["input_signature"]["columns"] if column["name"] == "colour")
    colour["categories"] = ["blue", "green"]  # the shadow refuses ROW's "red"
    traffic = {"strategy": "shadow", "routes": routes(("1", 100)), "shadow": {"version": "2"}}
    app = serve_traffic(serve, [live, picky], traffic)

    async def go():
        async with Running(app) as client:
            answers = [await client.post("/v2/models/churn/infer", v2_body()) for _ in range(5)]
            await app.shadows.wait()
            return answers, await client.get("/metrics")

    answers, metrics = run_async(go())
    assert {answer.status for answer in answers} == {200}
    lines = metrics.body.decode().splitlines()
    assert 'mlp_serving_errors_total{model="churn",version="2",role="shadow"} 5' in lines
    assert not any(line.startswith('mlp_serving_errors_total{model="churn",version="1"') for line in lines)
    assert not any(record["shadow"] for record in logged(tmp_path))


# --- admin reload and blue-green ----------------------------------------------------------------------------------


@pytest.fixture
def deployed(tmp_path, versions):
    """deployed(traffic, models=...) -> an app started from a deployment file it can re-read; write(...) rewrites
    that file."""
    path = tmp_path / "deployment.json"

    def write(traffic, models=versions):
        path.write_text(json.dumps({"models": list(models), "traffic": traffic}))

    def start(traffic, models=versions, token=TOKEN):
        write(traffic, models)
        settings = Settings(
            deployment=load_deployment(path),
            signing_key=KEY,
            log_dir=tmp_path / "log",
            limits=Limits(),
            config_path=path,
            admin_token=token,
        )
        return create_app(settings)

    start.write = write
    return start


def reload_request(token=TOKEN, client=LOOPBACK):
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return ("POST", "/admin/reload", {"headers": headers, "client": client})


def blue_green(live: str, versions=("1", "2")):
    return {
        "strategy": "blue_green",
        "routes": routes(*[(version, 100 if version == live else 0) for version in versions]),
    }


def switch_under_load(app, requests: int = 240):
    """Fires `requests` predictions spread over ~0.3 s with the admin reload in the middle; returns the reload's
    answer and the versions that answered, in order."""

    async def go():
        async with Running(app) as client:

            async def predict(index):
                await asyncio.sleep(index * 0.3 / requests)
                return await client.post("/v2/models/churn/infer", v2_body())

            async def reload_later():
                await asyncio.sleep(0.1)
                method, path, kwargs = reload_request()
                return await client.request(method, path, **kwargs)

            reloaded, *answers = await asyncio.gather(reload_later(), *(predict(index) for index in range(requests)))
            return reloaded, answers

    reloaded, answers = run_async(go())
    assert [answer.status for answer in answers] == [200] * requests, "no request fails during the switch"
    return reloaded, [answer.json()["model_version"] for answer in answers]


def test_blue_green_loads_beside_then_switches_and_switches_back_with_no_failed_request(versions, deployed):
    blue, green = versions
    app = deployed({"strategy": "direct", "routes": routes(("1", 100))}, models=[blue])

    deployed.write(blue_green("1"), models=[blue, green])  # green loaded beside blue, no traffic yet
    reloaded, answered = switch_under_load(app)
    assert reloaded.status == 200, reloaded.body
    assert set(answered) == {"1"}
    (ready,) = run_requests(app, [("GET", "/v2/models/churn/versions/2/ready", {})])
    assert ready.json() == {"name": "churn", "ready": True}

    deployed.write(blue_green("2"), models=[blue, green])  # the switch
    reloaded, answered = switch_under_load(app)
    assert reloaded.status == 200 and set(answered) == {"1", "2"}
    assert answered[-20:] == ["2"] * 20 and answered.index("2") > 0
    assert "1" not in answered[answered.index("2") :], "the switch is at once: no request goes back to blue"

    deployed.write(blue_green("1"), models=[blue, green])  # and back
    reloaded, answered = switch_under_load(app)
    assert reloaded.status == 200 and answered[-20:] == ["1"] * 20
    assert "2" not in answered[answered.index("1") :]


def test_a_reload_routing_to_a_version_that_failed_is_409_and_that_version_gets_nothing(artifacts, versions, deployed):
    blue, green = versions
    app = deployed({"strategy": "direct", "routes": routes(("1", 100))}, models=[blue])
    tamper(artifacts, green)
    deployed.write({"strategy": "canary", "routes": routes(("1", 50), ("2", 50))})
    reloaded, *answers = run_requests(app, [reload_request()] + [infer()] * 10)
    assert reloaded.status == 409
    payload = reloaded.json()
    assert payload["error"].startswith("traffic.routes[1].version: churn version 2 is not ready (ArtifactTampered")
    assert [failure["version"] for failure in payload["failures"]] == ["2"]
    assert {answer.json()["model_version"] for answer in answers} == {"1"}


def test_a_bad_deployment_file_changes_nothing(versions, deployed):
    app = deployed({"strategy": "direct", "routes": routes(("1", 100))})
    before = app.router
    deployed.write({"strategy": "canary", "routes": routes(("1", 90), ("2", 20))})
    (reloaded,) = run_requests(app, [reload_request()])
    assert reloaded.status == 400 and reloaded.json() == {"error": "traffic.routes: the weights sum to 110, not 100."}
    assert app.router is before


@pytest.mark.parametrize(
    ("token", "client", "status"),
    [
        (None, LOOPBACK, 401),
        ("wrong", LOOPBACK, 401),
        (TOKEN, ("10.0.0.5", 40000), 403),
        (TOKEN, None, 403),
    ],
    ids=["no-token", "wrong-token", "remote-client", "unknown-client"],
)
def test_admin_reload_is_refused_without_the_token_or_from_another_host(versions, deployed, token, client, status):
    app = deployed({"strategy": "direct", "routes": routes(("1", 100))})
    before = app.router
    deployed.write(blue_green("2"))
    (refused,) = run_requests(app, [reload_request(token, client)])
    assert refused.status == status and set(refused.json()) == {"error"}
    assert app.router is before and app.router.traffic.routes[0].version == "1"


def test_admin_reload_is_off_without_a_configured_token(versions, deployed):
    app = deployed({"strategy": "direct", "routes": routes(("1", 100))}, token="")
    (refused,) = run_requests(app, [reload_request("")])
    assert refused.status == 403 and "SERVING_ADMIN_TOKEN is not set" in refused.json()["error"]
