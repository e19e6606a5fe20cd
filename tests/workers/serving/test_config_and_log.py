"""The deployment file and environment are checked field by field; the prediction log rotates and finishes files."""

import asyncio
import json

import pytest

from tests.support.async_run import run_async
from workers.serving.config import ConfigError, parse_deployment, settings_from_env
from workers.serving.prediction_log import JsonLinesSink, PredictionLogger


def entry(**changes):
    base = {
        "name": "churn",
        "version": "1",
        "artifact_store": "file:///tmp/store",
        "artifact_key": "models/churn/v1/model.joblib",
        "sha256": "a" * 64,
        "signature": "b" * 64,
        "problem_type": "binary",
        "input_signature": {"columns": [{"name": "age", "kind": "numeric", "dtype": "float64", "nullable": False}]},
    }
    return {**base, **changes}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"models": []}, "models: a non-empty list"),
        ({"models": [entry(sha256="")]}, "models[0].sha256: a non-empty string is required."),
        ({"models": [entry(problem_type="clustering")]}, "models[0].problem_type: one of binary"),
        ({"models": [entry(input_signature={})]}, "models[0].input_signature"),
        ({"models": [entry(), entry()]}, "churn version 1 is listed twice"),
        ({"models": [entry()], "default": {"name": "churn", "version": "2"}}, "default:"),
    ],
)
def test_bad_deployment_files_name_the_field(data, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_deployment(data)


def test_settings_come_from_the_environment(tmp_path):
    config = tmp_path / "deployment.json"
    config.write_text(json.dumps({"models": [entry()]}))
    environ = {"SERVING_CONFIG": str(config), "MODEL_SIGNING_KEY": "k", "SERVING_LOG_DIR": str(tmp_path)}
    settings = settings_from_env({**environ, "SERVING_MAX_BATCH_ROWS": "7"})
    assert settings.signing_key == b"k" and settings.limits.max_batch_rows == 7
    assert settings.deployment.default == ("churn", "1")
    with pytest.raises(ConfigError, match="MODEL_SIGNING_KEY must be set"):
        settings_from_env({**environ, "MODEL_SIGNING_KEY": ""})
    with pytest.raises(ConfigError, match="SERVING_MAX_BODY_BYTES: a positive integer is required, got '-1'"):
        settings_from_env({**environ, "SERVING_MAX_BODY_BYTES": "-1"})
    config.write_text("{")
    with pytest.raises(ConfigError, match="is not valid JSON"):
        settings_from_env(environ)


def test_the_sink_rotates_by_size_and_finishes_files_on_close(tmp_path):
    sink = JsonLinesSink(tmp_path, rotate_bytes=100, rotate_seconds=3600)
    for index in range(3):
        sink.write([{"prediction_id": f"p{index}", "padding": "x" * 80}])
    assert len(list(tmp_path.glob("*.jsonl"))) == 2 and len(list(tmp_path.glob("*.jsonl.part"))) == 1
    sink.close()
    files = sorted(tmp_path.glob("*.jsonl"), key=lambda path: int(path.stem.rsplit("-", 1)[1]))
    assert [json.loads(path.read_text())["prediction_id"] for path in files] == ["p0", "p1", "p2"]


def test_the_sink_rotates_by_age(tmp_path):
    sink = JsonLinesSink(tmp_path, rotate_bytes=10**9, rotate_seconds=0.0)
    sink.write([{"n": 1}])
    sink.write([{"n": 2}])
    sink.close()
    assert len(list(tmp_path.glob("*.jsonl"))) == 2


class CountingSink(JsonLinesSink):
    def __init__(self, folder):
        super().__init__(folder, rotate_bytes=10**9, rotate_seconds=3600)
        self.batches = []

    def write(self, records):
        self.batches.append(len(records))
        super().write(records)


def test_the_logger_writes_batches_and_drops_the_oldest_when_full(tmp_path):
    sink = CountingSink(tmp_path)
    logger = PredictionLogger(sink, max_queue=3, interval=0.01)

    async def go():
        logger.start()
        for index in range(5):
            logger.log({"n": index})  # all queued before the first drain
        await asyncio.sleep(0.1)
        await logger.stop()

    run_async(go())
    assert sink.batches == [3] and logger.dropped == 2
    (finished,) = tmp_path.glob("*.jsonl")
    assert [json.loads(line)["n"] for line in finished.read_text().splitlines()] == [2, 3, 4]
