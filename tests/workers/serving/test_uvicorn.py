"""The server as deployed: `uvicorn workers.serving.app:app` in its own process, configured by the environment."""

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import pytest

from tests.workers.serving.conftest import KEY, ROW

ROOT = Path(__file__).resolve().parents[3]
JSON_HEADERS = {"content-type": "application/json"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def request(url: str, body: dict | None = None):
    """(status, headers, JSON body) of one request to the loopback server."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        data = None if body is None else json.dumps(body).encode()
        connection.request("GET" if body is None else "POST", parts.path, body=data, headers=JSON_HEADERS)
        answer = connection.getresponse()
        return answer.status, {name.lower(): value for name, value in answer.getheaders()}, json.loads(answer.read())
    finally:
        connection.close()


@pytest.fixture
def server(artifacts, tmp_path):
    config = tmp_path / "deployment.json"
    config.write_text(json.dumps({"models": [artifacts.publish("churn", "1")]}))
    port = free_port()
    env = {
        **os.environ,
        "SERVING_CONFIG": str(config),
        "MODEL_SIGNING_KEY": KEY.decode(),
        "SERVING_LOG_DIR": str(tmp_path / "log"),
    }
    command = [sys.executable, "-m", "uvicorn", "workers.serving.app:app", "--host", "127.0.0.1", "--port", str(port)]
    output = open(tmp_path / "uvicorn.log", "wb")  # noqa: SIM115 - closed after the process ends
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if request(f"{base}/v2/health/ready")[0] == 200:
                break
        except OSError:
            time.sleep(0.1)
    else:
        process.kill()
        process.wait()
        output.close()
        pytest.fail(f"the server did not start: {(tmp_path / 'uvicorn.log').read_text()[-2000:]}")
    yield base, process, tmp_path / "log"
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=15)
    output.close()


def test_uvicorn_serves_both_protocols_and_logs_every_prediction_by_shutdown(server):
    base, process, log_dir = server
    status, headers, payload = request(f"{base}/invocations", {"dataframe_records": [ROW, ROW]})
    assert status == 200 and payload["model_version"] == "1"
    assert headers["x-prediction-id"] == ",".join(payload["prediction_ids"])
    status, _, payload = request(f"{base}/invocations", {"dataframe_records": [{**ROW, "colour": "purple"}]})
    assert (status, payload["error_code"]) == (400, "BAD_REQUEST")
    status, _, infer = request(
        f"{base}/v2/models/churn/infer",
        {
            "inputs": [
                {
                    "name": name,
                    "shape": [1],
                    "datatype": {"colour": "BYTES", "member": "BOOL"}.get(name, "FP64"),
                    "data": [value],
                }
                for name, value in ROW.items()
            ]
        },
    )
    assert status == 200 and infer["model_version"] == "1"
    process.send_signal(signal.SIGTERM)
    # uvicorn shuts down gracefully (lifespan shutdown), then re-raises the signal it caught.
    assert process.wait(timeout=15) in (0, -signal.SIGTERM)
    (log_file,) = log_dir.glob("*.jsonl")
    logged = [json.loads(line)["prediction_id"] for line in log_file.read_text().splitlines()]
    assert len(logged) == 3 and logged[2] == infer["parameters"]["prediction_ids"][0]
