"""The model server driven in-process: both protocols, validation, ids, logging, metrics, explanations."""

import asyncio
import json
import math

import pytest

from tests.support.async_run import run_async
from tests.workers.serving.conftest import ROW, Running, v2_body


def run(coroutine):
    return run_async(coroutine)


@pytest.fixture
def app(artifacts, serve):
    return serve([artifacts.publish("churn", "1")])


def call(app, method, path, **kwargs):
    async def go():
        async with Running(app) as client:
            return await client.request(method, path, **kwargs)

    return run(go())


def infer(app, body, path="/v2/models/churn/infer"):
    return call(app, "POST", path, json_body=body)


def invocations(app, body):
    return call(app, "POST", "/invocations", json_body=body)


# --- Open Inference Protocol V2 -----------------------------------------------------------------------------------


def test_v2_health_and_metadata(app):
    assert call(app, "GET", "/v2/health/live").json() == {"live": True}
    assert call(app, "GET", "/v2/health/ready").json() == {"ready": True}
    assert call(app, "GET", "/v2/models/churn/ready").json() == {"name": "churn", "ready": True}
    metadata = call(app, "GET", "/v2/models/churn/versions/1").json()
    assert metadata["name"] == "churn" and metadata["versions"] == ["1"]
    assert [(tensor["name"], tensor["datatype"]) for tensor in metadata["inputs"]] == [
        ("age", "FP64"),
        ("income", "FP64"),
        ("colour", "BYTES"),
        ("member", "BOOL"),
    ]


def test_v2_infer_answers_with_one_prediction_id_per_row_and_the_version(app):
    body = {
        "id": "request-7",
        "inputs": [
            {"name": "age", "shape": [2, 1], "datatype": "FP64", "data": [[41.0], [23]]},
            {"name": "income", "shape": [2], "datatype": "FP64", "data": [0.5, None]},
            {"name": "colour", "shape": [2], "datatype": "BYTES", "data": ["red", "blue"]},
            {"name": "member", "shape": [2], "datatype": "BOOL", "data": [True, False]},
        ],
    }
    answer = infer(app, body, "/v2/models/churn/versions/1/infer")
    assert answer.status == 200, answer.body
    payload = answer.json()
    assert (payload["model_name"], payload["model_version"], payload["id"]) == ("churn", "1", "request-7")
    ids = payload["parameters"]["prediction_ids"]
    assert len(ids) == 2 and len(set(ids)) == 2
    assert answer.headers["x-prediction-id"] == ",".join(ids)
    assert (answer.headers["x-model-name"], answer.headers["x-model-version"]) == ("churn", "1")
    predict, proba = payload["outputs"]
    assert predict == {"name": "predict", "shape": [2], "datatype": "BYTES", "data": predict["data"]}
    assert set(predict["data"]) <= {"yes", "no"}
    assert proba["shape"] == [2, 2] and proba["parameters"] == {"classes": ["no", "yes"]}
    assert math.isclose(sum(proba["data"][:2]), 1.0)


@pytest.mark.parametrize(
    ("body", "status", "named"),
    [
        ({"inputs": []}, 400, "inputs"),
        ({"instances": [ROW]}, 400, "inputs"),
        (v2_body({**ROW, "height": 1.8}), 400, "height"),
        (v2_body({name: ROW[name] for name in ("age", "colour", "member")}), 400, "income"),
        (v2_body({**ROW, "age": "forty"}), 400, "age"),
        (v2_body({**ROW, "colour": "purple"}), 400, "colour"),
        (v2_body({**ROW, "member": None}), 400, "member"),
        ({"inputs": [{"name": "age", "shape": [1], "datatype": "FP64", "data": ["41"]}]}, 400, "age"),
        ({"inputs": [{"name": "age", "shape": [3], "datatype": "FP64", "data": [41]}]}, 400, "age"),
        ({"inputs": [{"name": "age", "shape": [1], "datatype": "FLOAT", "data": [41]}]}, 400, "datatype"),
    ],
)
def test_v2_bad_bodies_get_a_4xx_naming_the_field(app, body, status, named):
    answer = infer(app, body)
    assert answer.status == status
    assert set(answer.json()) == {"error"}
    assert named in answer.json()["error"]


def test_v2_refuses_nan_and_infinity(app):
    for token in ("NaN", "Infinity", "-Infinity"):
        body = json.dumps(v2_body()).replace('"data": [41.0]', f'"data": [{token}]').encode()
        answer = call(app, "POST", "/v2/models/churn/infer", body=body, headers={"content-type": "application/json"})
        assert answer.status == 400
        assert answer.json()["error"].startswith("age: row 0: NaN and infinity are not allowed")


def test_unknown_model_and_version_are_404(app):
    assert infer(app, v2_body(), "/v2/models/other/infer").status == 404
    answer = infer(app, v2_body(), "/v2/models/churn/versions/9/infer")
    assert answer.status == 404 and "version '9'" in answer.json()["error"]


def test_body_limits_and_content_type_are_checked_before_parsing(artifacts, serve):
    app = serve([artifacts.publish("churn", "1")], max_body_bytes=2000, max_batch_rows=3)
    too_big = {"content-type": "application/json", "content-length": "5000"}
    assert call(app, "POST", "/v2/models/churn/infer", body=b"{}", headers=too_big).status == 413
    # No Content-Length (chunked): refused while reading.
    json_type = {"content-type": "application/json"}
    streamed = call(app, "POST", "/invocations", body=b" " * 3000 + b"{}", headers=json_type, send_length=False)
    assert streamed.status == 413
    csv = call(app, "POST", "/invocations", body=b"age\n41", headers={"content-type": "text/csv"})
    assert csv.status == 415
    assert csv.json() == {"error_code": "BAD_REQUEST", "message": "Content-Type: send application/json, not text/csv."}
    batch = invocations(app, {"dataframe_records": [ROW] * 4})
    assert batch.status == 413 and "over the limit of 3" in batch.json()["message"]
    invalid = call(app, "POST", "/invocations", body=b"{not json", headers={"content-type": "application/json"})
    assert invalid.status == 400 and invalid.json()["message"].startswith("body: not valid JSON")


# --- MLflow scoring server ----------------------------------------------------------------------------------------


def test_mlflow_ping_and_health(app):
    for path in ("/ping", "/health"):
        answer = call(app, "GET", path)
        assert (answer.status, answer.body) == (200, b"\n")


@pytest.mark.parametrize(
    "body",
    [
        {"dataframe_split": {"columns": list(ROW), "data": [list(ROW.values()), list(ROW.values())]}},
        {"dataframe_records": [ROW, ROW]},
        {"instances": [ROW, ROW]},
        {"inputs": {name: [value, value] for name, value in ROW.items()}},
        {"inputs": [ROW, ROW], "params": {}},
    ],
    ids=["dataframe_split", "dataframe_records", "instances", "inputs_columns", "inputs_records"],
)
def test_mlflow_invocations_accepts_each_input_format(app, body):
    answer = invocations(app, body)
    assert answer.status == 200, answer.body
    payload = answer.json()
    assert len(payload["predictions"]) == 2 and set(payload["predictions"]) <= {"yes", "no"}
    assert payload["predictions"][0] == payload["predictions"][1]
    assert len(payload["prediction_ids"]) == 2 and payload["model_version"] == "1"
    assert answer.headers["x-model-version"] == "1"


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"dataframe_records": [ROW], "instances": [ROW]}, "exactly one of"),
        ({}, "exactly one of"),
        ({"columns": ["age"], "data": [[1]]}, "columns: unknown field"),
        ({"dataframe_split": {"columns": list(ROW), "data": [[1, 2]]}}, "dataframe_split.data"),
        ({"dataframe_records": [{**ROW, "height": 2}]}, "height: unknown column"),
        ({"dataframe_records": [ROW, {"age": 3}]}, "income: row 1: this column is missing"),
        ({"dataframe_records": [{**ROW, "income": "high"}]}, "income: row 0: expected a number, got text 'high'"),
        ({"dataframe_records": [{**ROW, "age": True}]}, "age: row 0: expected a number, got the boolean true"),
        ({"dataframe_records": [{**ROW, "colour": "purple"}]}, "colour: row 0: 'purple' is not a category"),
        ({"dataframe_records": [{**ROW, "colour": 1.5}]}, "colour: row 0: expected a category"),
        ({"dataframe_records": [{**ROW, "age": None}]}, "age: row 0: a value is required"),
        ({"instances": [[41.0, 0.5, "red", True]]}, "this model takes named columns"),
    ],
)
def test_mlflow_bad_bodies_get_bad_request_naming_the_field(app, body, named):
    answer = invocations(app, body)
    assert answer.status == 400
    payload = answer.json()
    assert set(payload) == {"error_code", "message"} and payload["error_code"] == "BAD_REQUEST"
    assert named in payload["message"]


def test_a_missing_value_is_accepted_where_the_training_rows_had_them(app):
    assert invocations(app, {"dataframe_records": [{**ROW, "income": None}]}).status == 200


# --- Logging, metrics, explanations -------------------------------------------------------------------------------


def test_predictions_are_logged_in_batches_off_the_request_path(app, tmp_path):
    async def go():
        async with Running(app) as client:
            first = await client.post("/invocations", {"dataframe_records": [ROW, ROW]})
            second = await client.post("/v2/models/churn/infer", v2_body())
            await asyncio.sleep(app.logger.interval * 3)
            written = list((tmp_path / "log").glob("*.jsonl.part"))
            return first, second, written

    first, second, written = run(go())
    assert len(written) == 1, "a drain wrote the batch while the server ran"
    finished = list((tmp_path / "log").glob("*.jsonl"))
    assert len(finished) == 1 and not list((tmp_path / "log").glob("*.part")), "shutdown finished the file"
    records = [json.loads(line) for line in finished[0].read_text().splitlines()]
    ids = first.json()["prediction_ids"] + second.json()["parameters"]["prediction_ids"]
    assert [record["prediction_id"] for record in records] == ids
    record = records[2]
    assert (record["model"], record["version"], record["inputs"]) == ("churn", "1", ROW)
    assert record["outputs"]["predict"] == second.json()["outputs"][0]["data"][0]
    assert record["latency_ms"] > 0 and record["time"] > 0


def test_metrics_count_requests_errors_and_latency_per_version(app):
    async def go():
        async with Running(app) as client:
            await client.post("/invocations", {"dataframe_records": [ROW]})
            await client.post("/v2/models/churn/infer", v2_body())
            await client.post("/v2/models/churn/infer", v2_body({**ROW, "colour": "purple"}))
            await client.post("/v2/models/nope/infer", v2_body())
            return await client.get("/metrics")

    answer = run(go())
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    lines = answer.body.decode().splitlines()
    assert 'mlp_serving_requests_total{model="churn",version="1",role="live"} 3' in lines
    assert 'mlp_serving_errors_total{model="churn",version="1",role="live"} 1' in lines
    assert 'mlp_serving_request_duration_seconds_bucket{model="churn",version="1",role="live",le="+Inf"} 3' in lines
    assert 'mlp_serving_request_duration_seconds_count{model="churn",version="1",role="live"} 3' in lines
    assert "mlp_serving_unrouted_errors_total 1" in lines


def test_explain_returns_shap_contributions_that_add_up_to_the_log_odds(app):
    answer = call(app, "POST", "/v2/models/churn/explain", json_body=v2_body())
    assert answer.status == 200, answer.body
    payload = answer.json()
    assert (payload["model_name"], payload["model_version"]) == ("churn", "1")
    (explanation,) = payload["explanations"]
    assert set(explanation["contributions"]) == set(ROW) and explanation["class"] == "yes"
    total = explanation["base_value"] + sum(explanation["contributions"].values())
    loaded = app.registry.get("churn")
    frame = loaded.validator.frame({name: [value] for name, value in ROW.items()})
    log_odds = loaded.pipeline[-1].predict(loaded.pipeline[:-1].transform(frame), raw_score=True)[0]
    assert math.isclose(total, log_odds, rel_tol=1e-6, abs_tol=1e-6)


def test_explain_validates_like_infer(app):
    answer = call(app, "POST", "/v2/models/churn/explain", json_body=v2_body({**ROW, "colour": "purple"}))
    assert answer.status == 400 and answer.json()["error"].startswith("colour:")
