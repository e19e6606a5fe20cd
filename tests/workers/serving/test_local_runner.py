"""The local runner with real uvicorn processes serving a tiny signed LightGBM pipeline from a tmp artifact store."""

import http.client
import json
import os
import signal
import time
from pathlib import Path

import pytest

from tests.workers.serving.conftest import KEY, ROW
from workers.serving.runners.base import (
    CRASH_LOOP,
    DEGRADED,
    NOT_READY,
    READY,
    STOPPED,
    Endpoint,
    EndpointError,
)
from workers.serving.runners.local import LocalRunner


@pytest.fixture
def runner(tmp_path):
    runner = LocalRunner(tmp_path / "serving", ready_timeout=30, stop_grace=5, max_restarts=1, restart_window=60)
    yield runner
    for folder in (tmp_path / "serving").glob("*"):  # nothing outlives a failed test
        runner.stop(folder.name)


def endpoint(config: dict, *, replicas: int = 1, **environment: str) -> Endpoint:
    return Endpoint(
        id="churn-prod",
        config=config,
        replicas=replicas,
        environment={"MODEL_SIGNING_KEY": KEY.decode(), **environment},
    )


def answered_version(url: str) -> str:
    """The model version that answers an MLflow /invocations request."""
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        body = json.dumps({"dataframe_records": [ROW]})
        connection.request("POST", "/invocations", body=body, headers={"content-type": "application/json"})
        answer = connection.getresponse()
        payload = json.loads(answer.read())
    finally:
        connection.close()
    assert answer.status == 200, payload
    assert payload["predictions"][0] in ("yes", "no")
    return payload["model_version"]


def running(pid: int) -> bool:
    """Alive and not a zombie (a process another runner stopped stays a zombie until its parent, us, reaps it)."""
    try:
        return "\nState:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False


def test_replicas_start_answer_are_restarted_after_sigkill_and_stop_leaves_no_process(runner, artifacts):
    served = endpoint({"models": [artifacts.publish("churn", "1")]}, replicas=2)

    status = runner.ensure(served)

    assert status.state == READY, status.reason
    assert len(set(status.urls)) == 2
    assert all(replica.alive and replica.restarts == 0 for replica in status.replicas)
    assert [answered_version(url) for url in status.urls] == ["1", "1"]
    first_pids = [replica.pid for replica in status.replicas]
    assert [replica.pid for replica in runner.ensure(served).replicas] == first_pids  # nothing to do

    os.kill(first_pids[0], signal.SIGKILL)
    deadline = time.monotonic() + 5
    while runner.status("churn-prod").replicas[0].alive and time.monotonic() < deadline:
        time.sleep(0.05)
    killed = runner.status("churn-prod")
    assert killed.state == DEGRADED
    assert "exited with code -9" in killed.replicas[0].reason

    status = runner.ensure(served)

    assert status.state == READY, status.reason
    restarted, untouched = status.replicas
    assert (restarted.restarts, restarted.last_exit_code) == (1, -9)
    assert restarted.pid not in first_pids and untouched.pid == first_pids[1]
    assert [answered_version(url) for url in status.urls] == ["1", "1"]

    fewer = runner.ensure(endpoint(served.config, replicas=1))

    assert [replica.pid for replica in fewer.replicas] == [restarted.pid]
    assert not running(untouched.pid)

    runner.stop("churn-prod")

    for pid in {*first_pids, restarted.pid}:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert runner.status("churn-prod").state == STOPPED
    runner.stop("churn-prod")  # idempotent


def test_reload_switches_versions_and_back_and_a_refused_one_keeps_serving(runner, artifacts, tmp_path):
    first = artifacts.publish("churn", "1")
    second = artifacts.publish("churn", "2", seed=1)
    tampered = artifacts.publish("churn", "3", key=b"not-the-signing-key")
    (url,) = runner.ensure(endpoint({"models": [first]})).urls
    assert answered_version(url) == "1"

    to_second = runner.reload(endpoint({"models": [first, second], "default": {"name": "churn", "version": "2"}}))
    assert (to_second.state, to_second.replicas[0].reload_error) == (READY, "")
    assert answered_version(url) == "2"
    back = runner.reload(endpoint({"models": [first]}))
    assert (back.state, back.replicas[0].reload_error) == (READY, "")
    assert answered_version(url) == "1"
    pid = back.replicas[0].pid
    changed = runner.ensure(endpoint({"models": [second]}))  # ensure reloads a running replica, never restarts it
    assert (changed.replicas[0].pid, answered_version(url)) == (pid, "2")

    switch = {"strategy": "blue_green", "routes": [{"version": "1", "weight": 0}, {"version": "3", "weight": 100}]}
    refused = runner.reload(endpoint({"models": [first, tampered], "traffic": switch}))

    assert refused.state == READY  # the old version takes the traffic the failed one cannot
    assert "reload refused (409)" in refused.replicas[0].reload_error
    assert "version 3" in refused.replicas[0].reload_error
    assert answered_version(url) == "1"

    # A new runner process (the worker restarted) adopts the replica from its pid file, and can stop it.
    adopting = LocalRunner(tmp_path / "serving", stop_grace=5)
    adopted = adopting.status("churn-prod")
    assert adopted.replicas[0].pid == refused.replicas[0].pid and adopted.state == READY
    assert adopted.replicas[0].reload_error == refused.replicas[0].reload_error
    adopting.stop("churn-prod")
    assert not running(refused.replicas[0].pid)


def test_a_version_that_cannot_load_is_reported_not_ready_with_the_reason(runner, artifacts):
    tampered = artifacts.publish("churn", "1", key=b"not-the-signing-key")

    status = runner.ensure(endpoint({"models": [tampered]}))

    (replica,) = status.replicas
    assert status.state == NOT_READY
    assert replica.alive and not replica.ready  # the server keeps running: a reload can still fix it
    assert replica.reason.startswith("not ready: version 1: ")
    assert "signature" in replica.reason.lower(), replica.reason


def test_a_replica_that_keeps_dying_is_restarted_then_reported_as_a_crash_loop(runner, artifacts):
    broken = endpoint({"models": [artifacts.publish("churn", "1")]}, SERVING_MAX_BATCH_ROWS="0")

    first = runner.ensure(broken)

    (replica,) = first.replicas
    assert first.state == NOT_READY and not replica.alive
    assert replica.reason.startswith("exited with code 3")  # uvicorn's "startup failed"
    assert "SERVING_MAX_BATCH_ROWS: a positive integer is required" in replica.reason  # the log's tail

    second = runner.ensure(broken)
    third = runner.ensure(broken)  # backs off: no third start within the window

    assert second.replicas[0].restarts == third.replicas[0].restarts == 1
    assert second.state == third.state == CRASH_LOOP
    assert third.reason.startswith("crash loop: 1 restarts in 60s, then exited with code 3")


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"id": "../escape"}, "id:"),
        ({"replicas": 0}, "replicas:"),
        ({"config": {"models": []}}, "config.models:"),
        ({"environment": {}}, "environment.MODEL_SIGNING_KEY:"),
        ({"environment": {"MODEL_SIGNING_KEY": "k", "SERVING_CONFIG": "/etc/x"}}, "environment.SERVING_CONFIG:"),
    ],
)
def test_an_unusable_endpoint_is_refused_naming_the_field(artifacts, changes, field):
    given = {
        "id": "churn-prod",
        "config": {"models": [artifacts.publish("churn", "1")]},
        "environment": {"MODEL_SIGNING_KEY": "k"},
        **changes,
    }
    with pytest.raises(EndpointError) as refused:
        Endpoint(**given)
    assert str(refused.value).startswith(field)


def test_an_endpoint_never_started_is_stopped_and_ids_cannot_leave_the_state_folder(runner, tmp_path):
    assert runner.status("never-started").state == STOPPED
    runner.stop("never-started")
    with pytest.raises(EndpointError, match=r"^id:"):
        runner.status("../../etc")
    assert not (tmp_path / "serving").exists()
