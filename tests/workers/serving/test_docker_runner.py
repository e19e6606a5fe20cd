"""The docker runner: what it asks Docker for (container_spec), its scripts run against a real model server, the
serving image's Dockerfile, and the runner driven against an in-test fake of the Docker SDK's client (there is no
Docker daemon on these machines)."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from docker.errors import ImageNotFound
from docker.models.containers import ExecResult

from tests.workers.serving.conftest import KEY
from workers.serving.runners import docker as docker_runner
from workers.serving.runners.base import CRASH_LOOP, NOT_READY, READY, STOPPED, Endpoint, EndpointError
from workers.serving.runners.docker import (
    HEALTH_SCRIPT,
    LABEL_ENDPOINT,
    LABEL_REPLICA,
    LABEL_SPEC,
    RELOAD_SCRIPT,
    DockerRunner,
    DockerRunnerError,
    container_spec,
)
from workers.serving.runners.local import LocalRunner

ROOT = Path(__file__).resolve().parents[3]
CONFIG = {
    "models": [
        {
            "name": "churn",
            "version": "1",
            "artifact_store": "file:///srv/artifacts",
            "artifact_key": "models/churn/v1/model.joblib",
            "sha256": "a" * 64,
            "signature": "b" * 64,
            "input_signature": {"columns": [{"name": "age", "kind": "numeric"}]},
            "problem_type": "binary",
        }
    ]
}


def endpoint(config=CONFIG, *, replicas: int = 1, **environment: str) -> Endpoint:
    return Endpoint(
        id="churn-prod", config=config, replicas=replicas, environment={"MODEL_SIGNING_KEY": "k" * 32, **environment}
    )


def version_two():
    return {"models": [{**CONFIG["models"][0], "version": "2"}]}


# --- the container spec ---------------------------------------------------------------------------------------------


def spec_for(served: Endpoint, index: int = 0, tmp_path: Path = Path("/srv/serving"), **options):
    return container_spec(
        served,
        index,
        image="registry.example.com/mlplatform-serving:1.2",
        config_dir=tmp_path / "churn-prod" / "config",
        log_dir=tmp_path / "logs" / "churn-prod" / f"replica-{index}",
        admin_token="t0ken",
        **options,
    )


def test_container_spec_runs_the_server_from_the_image_labelled_non_root_and_read_only(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgres://portal-secret@db/mlplatform")

    spec = spec_for(endpoint(SERVING_MAX_BATCH_ROWS="500"), index=1)

    assert spec["image"] == "registry.example.com/mlplatform-serving:1.2"
    assert spec["command"][:2] == ["uvicorn", "workers.serving.app:app"]
    assert spec["name"] == "mlp-serving-churn-prod-1"
    assert {key: spec["labels"][key] for key in (LABEL_ENDPOINT, LABEL_REPLICA)} == {
        LABEL_ENDPOINT: "churn-prod",
        LABEL_REPLICA: "1",
    }
    assert spec["user"] == "10001:10001"
    assert spec["read_only"] is True
    assert spec["cap_drop"] == ["ALL"]
    assert spec["security_opt"] == ["no-new-privileges:true"]
    assert spec["detach"] is True
    assert "network" not in spec
    # The environment is the endpoint's plus what the runner owns; nothing of the runner's own process.
    assert spec["environment"] == {
        "MODEL_SIGNING_KEY": "k" * 32,
        "SERVING_MAX_BATCH_ROWS": "500",
        "SERVING_CONFIG": "/etc/mlplatform/serving/deployment.json",
        "SERVING_LOG_DIR": "/var/lib/mlplatform/predictions",
        "SERVING_ADMIN_TOKEN": "t0ken",
    }


def test_container_spec_mounts_the_config_folder_read_only_and_the_replica_log_folder_read_write():
    spec = spec_for(endpoint(), index=0)

    assert spec["volumes"] == {
        "/srv/serving/churn-prod/config": {"bind": "/etc/mlplatform/serving", "mode": "ro"},
        "/srv/serving/logs/churn-prod/replica-0": {"bind": "/var/lib/mlplatform/predictions", "mode": "rw"},
    }


def test_container_spec_publishes_on_loopback_only_restarts_on_failure_a_bounded_number_of_times():
    spec = spec_for(endpoint(), max_restarts=5)

    assert spec["ports"] == {"8080/tcp": ("127.0.0.1", None)}
    assert spec["restart_policy"] == {"Name": "on-failure", "MaximumRetryCount": 5}
    assert spec["healthcheck"]["test"][:3] == ["CMD", "python", "-c"]
    assert "/v2/health/ready" in spec["healthcheck"]["test"][3]


def test_container_spec_without_a_published_port_joins_the_network_and_sets_limits():
    spec = spec_for(endpoint(), publish_host=None, network="mlplatform", memory="1g", cpus=1.5)

    assert spec["ports"] == {}
    assert spec["network"] == "mlplatform"
    assert spec["mem_limit"] == "1g"
    assert spec["nano_cpus"] == 1_500_000_000


def test_the_spec_digest_changes_with_what_the_container_is_created_with_only():
    base = spec_for(endpoint())["labels"][LABEL_SPEC]

    assert spec_for(endpoint())["labels"][LABEL_SPEC] == base
    assert spec_for(endpoint(version_two()))["labels"][LABEL_SPEC] == base  # the file is reloaded, not recreated
    assert spec_for(endpoint(SERVING_MAX_BATCH_ROWS="9"))["labels"][LABEL_SPEC] != base
    assert spec_for(endpoint(), memory="2g")["labels"][LABEL_SPEC] != base


# --- the scripts it runs inside a container, against a real server ---------------------------------------------------


@pytest.fixture
def real_server(tmp_path, artifacts):
    """A real model server (started by the local runner): its port and admin token."""
    runner = LocalRunner(tmp_path / "serving", ready_timeout=30, stop_grace=5)
    served = Endpoint(
        id="scripts",
        config={"models": [artifacts.publish("churn", "1")]},
        environment={"MODEL_SIGNING_KEY": KEY.decode()},
    )
    status = runner.ensure(served)
    assert status.state == READY, status.reason
    token = (tmp_path / "serving" / "scripts" / "admin-token").read_text()
    yield int(status.replicas[0].url.rsplit(":", 1)[1]), token
    runner.stop("scripts")


def run_in_container(script: str, port: int, token: str) -> str:
    """What `exec_run(["python", "-c", script])` prints, with the container's port replaced by the test server's."""
    script = script.replace(f"'127.0.0.1',{docker_runner.PORT},", f"'127.0.0.1',{port},")
    done = subprocess.run(
        [sys.executable, "-c", script], env={"SERVING_ADMIN_TOKEN": token}, capture_output=True, timeout=30
    )
    return done.stdout.decode()


def test_the_health_and_reload_scripts_speak_to_the_real_server_with_the_admin_token(real_server):
    port, token = real_server

    health = run_in_container(HEALTH_SCRIPT, port, token)
    reloaded = run_in_container(RELOAD_SCRIPT % {"timeout": 10}, port, token)
    refused = run_in_container(RELOAD_SCRIPT % {"timeout": 10}, port, "not-the-token")

    assert health.startswith("200 ")
    assert reloaded.startswith("200 ")
    assert json.loads(reloaded.partition(" ")[2])["failures"] == []
    assert refused.startswith("401 ")


# --- the serving image ------------------------------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(instruction, arguments) of platform/serving/Dockerfile, continuation lines joined, comments dropped."""
    text = (ROOT / "platform" / "serving" / "Dockerfile").read_text()
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line.strip() else "")
        for line in joined.splitlines()
        if line.strip()
    ]


def test_the_serving_image_runs_the_model_server_as_a_non_root_user_without_django():
    instructions = dockerfile_instructions()
    runtime = instructions[max(i for i, (name, _) in enumerate(instructions) if name == "FROM") :]

    users = [arguments for name, arguments in runtime if name == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root")
    command = json.loads(next(arguments for name, arguments in reversed(runtime) if name == "CMD"))
    assert command[:2] == ["uvicorn", "workers.serving.app:app"]
    healthcheck = next(arguments for name, arguments in runtime if name == "HEALTHCHECK")
    assert "/v2/health/ready" in healthcheck
    copied = " ".join(arguments for name, arguments in instructions if name == "COPY")
    assert "pyproject.toml" not in copied and "apps" not in copied.split()  # no portal, no Django
    requirements = (ROOT / "platform" / "serving" / "requirements.in").read_text().split()
    assert "django" not in {line.lower() for line in requirements}
    assert {"uvicorn", "lightgbm", "scikit-learn", "boto3"} <= set(requirements)


# --- the runner against a fake Docker client --------------------------------------------------------------------------


class FakeContainer:
    """What the runner uses of docker.models.containers.Container. `health` and `reload_answer` are (status, body)
    the in-container scripts print; None: the server does not answer."""

    def __init__(self, client: "FakeClient", spec: dict):
        self.client = client
        self.spec = spec
        self.name = spec["name"]
        self.labels = dict(spec["labels"])
        self.health: tuple[int, dict] | None = (200, {"ready": True})
        self.reload_answer: tuple[int, dict] | None = (200, {"failures": []})
        self.scripts: list[str] = []
        self.attrs = {
            "State": {"Status": "running", "ExitCode": 0, "Pid": 4242, "FinishedAt": "0001-01-01T00:00:00Z"},
            "RestartCount": 0,
            "NetworkSettings": {"Ports": {"8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(49000 + len(client))}]}},
        }

    def reload(self):
        pass

    def exec_run(self, command, user=None):
        assert command[:2] == ["python", "-c"] and user == self.client.expected_user
        self.scripts.append(command[2])
        answer = self.reload_answer if "/admin/reload" in command[2] else self.health
        if answer is None:
            return ExecResult(1, b"Traceback (most recent call last):\nConnectionRefusedError: [Errno 111] refused\n")
        status, body = answer
        return ExecResult(0 if status == 200 else 1, f"{status} {json.dumps(body)}".encode())

    def exited(self, code: int, *, restarts: int = 0):
        self.attrs["State"] = {"Status": "exited", "ExitCode": code, "Pid": 0, "FinishedAt": "2026-01-01T00:00:00Z"}
        self.attrs["RestartCount"] = restarts

    def start(self):
        self.attrs["State"] |= {"Status": "running", "Pid": 4243}
        self.client.started.append(self.name)

    def stop(self, timeout):
        self.exited(0, restarts=self.attrs["RestartCount"])

    def remove(self, force):
        self.client.containers_by_name.pop(self.name)
        self.client.removed.append(self.name)

    def logs(self, tail):
        return b"ValueError: SERVING_MAX_BATCH_ROWS: a positive integer is required\n"


class FakeContainers:
    def __init__(self, client: "FakeClient"):
        self.client = client

    def run(self, **spec):
        if self.client.missing_image:
            raise ImageNotFound("No such image: " + spec["image"])
        assert spec["name"] not in self.client.containers_by_name, "Docker refuses a second container of that name"
        container = FakeContainer(self.client, spec)
        self.client.containers_by_name[spec["name"]] = container
        self.client.runs.append(spec)
        return container

    def list(self, all, filters):
        assert all is True
        wanted = dict(label.split("=", 1) for label in filters["label"])
        found = self.client.containers_by_name.values()
        return [c for c in found if all and wanted.items() <= c.labels.items()]


class FakeClient:
    def __init__(self, expected_user: str):
        self.containers = FakeContainers(self)
        self.containers_by_name: dict[str, FakeContainer] = {}
        self.runs: list[dict] = []
        self.removed: list[str] = []
        self.started: list[str] = []
        self.missing_image = False
        self.expected_user = expected_user

    def __len__(self):
        return len(self.containers_by_name)

    def container(self, index: int) -> FakeContainer:
        return self.containers_by_name[f"mlp-serving-churn-prod-{index}"]


@pytest.fixture
def client():
    return FakeClient(expected_user="10001:10001")


@pytest.fixture
def runner(client, tmp_path):
    return make_runner(client, tmp_path)


def make_runner(client, tmp_path) -> DockerRunner:
    return DockerRunner(
        client,
        image="mlplatform-serving:test",
        state_dir=tmp_path / "serving",
        log_dir_host=tmp_path / "predictions",
        user="10001:10001",
        max_restarts=2,
        ready_timeout=2,
        poll_seconds=0.01,
    )


def test_ensure_runs_one_container_per_replica_as_specified_and_reports_them_ready(runner, client, tmp_path):
    served = endpoint(replicas=2)

    status = runner.ensure(served)

    assert status.state == READY
    assert [replica.url for replica in status.replicas] == ["http://127.0.0.1:49000", "http://127.0.0.1:49001"]
    token = (tmp_path / "serving" / "churn-prod" / "admin-token").read_text()
    assert client.runs == [
        container_spec(
            served,
            index,
            image="mlplatform-serving:test",
            config_dir=tmp_path / "serving" / "churn-prod" / "config",
            log_dir=tmp_path / "predictions" / "churn-prod" / f"replica-{index}",
            admin_token=token,
            max_restarts=2,
        )
        for index in (0, 1)
    ]
    written = json.loads((tmp_path / "serving" / "churn-prod" / "config" / "deployment.json").read_text())
    assert written == CONFIG
    assert (tmp_path / "predictions" / "churn-prod" / "replica-1").is_dir()


def test_ensure_is_idempotent_and_a_restarted_runner_adopts_the_containers(runner, client, tmp_path):
    runner.ensure(endpoint(replicas=2))

    again = make_runner(client, tmp_path).ensure(endpoint(replicas=2))

    assert again.state == READY
    assert len(client.runs) == 2
    assert client.removed == []
    assert all("/admin/reload" not in script for c in client.containers_by_name.values() for script in c.scripts)


def test_a_changed_file_is_reloaded_inside_each_running_container_without_recreating_it(runner, client, tmp_path):
    runner.ensure(endpoint(replicas=2))

    status = runner.ensure(endpoint(version_two(), replicas=2))

    assert status.state == READY
    assert len(client.runs) == 2
    for index in (0, 1):
        reloads = [script for script in client.container(index).scripts if "/admin/reload" in script]
        assert len(reloads) == 1
        assert "SERVING_ADMIN_TOKEN" in reloads[0] and runner_token(tmp_path) not in reloads[0]
    written = json.loads((tmp_path / "serving" / "churn-prod" / "config" / "deployment.json").read_text())
    assert written["models"][0]["version"] == "2"


def runner_token(tmp_path) -> str:
    return (tmp_path / "serving" / "churn-prod" / "admin-token").read_text()


def test_a_refused_reload_is_reported_and_retried_by_the_next_ensure(runner, client):
    runner.ensure(endpoint())
    client.container(0).reload_answer = (400, {"error": "models[0].sha256: a non-empty string is required."})

    refused = runner.reload(endpoint(version_two()))
    client.container(0).reload_answer = (200, {"failures": []})
    retried = runner.ensure(endpoint(version_two()))

    assert refused.replicas[0].reload_error == (
        "reload refused (400): models[0].sha256: a non-empty string is required."
    )
    assert retried.replicas[0].reload_error == ""
    assert sum("/admin/reload" in script for script in client.container(0).scripts) == 2


def test_a_changed_environment_replaces_the_container_and_fewer_replicas_remove_the_extra(runner, client):
    runner.ensure(endpoint(replicas=2))

    status = runner.ensure(endpoint(replicas=1, SERVING_MAX_BATCH_ROWS="10"))

    assert status.state == READY and len(status.replicas) == 1
    assert sorted(client.removed) == ["mlp-serving-churn-prod-0", "mlp-serving-churn-prod-1"]
    assert client.runs[-1]["environment"]["SERVING_MAX_BATCH_ROWS"] == "10"
    assert list(client.containers_by_name) == ["mlp-serving-churn-prod-0"]


def test_a_version_that_does_not_load_is_not_ready_naming_it(runner, client):
    runner.ensure(endpoint())
    client.container(0).health = (503, {"not_ready_routes": [{"version": "1", "reason": "signature mismatch"}]})

    status = runner.status("churn-prod")

    assert status.state == NOT_READY
    assert status.reason == "not ready: version 1: signature mismatch"


def test_a_container_docker_gave_up_restarting_is_a_crash_loop_left_alone_until_the_file_changes(runner, client):
    runner.ensure(endpoint())
    client.container(0).exited(3, restarts=2)

    looping = runner.ensure(endpoint())
    replaced = runner.ensure(endpoint(version_two()))

    assert looping.state == CRASH_LOOP
    assert looping.reason.startswith("crash loop: 2 restarts, then exited with code 3; log tail:\n")
    assert "SERVING_MAX_BATCH_ROWS" in looping.reason
    assert looping.replicas[0].last_exit_code == 3 and not looping.replicas[0].alive
    assert client.started == []
    assert replaced.state == READY and client.removed == ["mlp-serving-churn-prod-0"] and len(client.runs) == 2


def test_a_container_that_stopped_cleanly_is_started_again(runner, client):
    runner.ensure(endpoint())
    client.container(0).exited(0)

    status = runner.ensure(endpoint())

    assert client.started == ["mlp-serving-churn-prod-0"]
    assert status.state == READY and len(client.runs) == 1


def test_stop_removes_every_container_and_is_idempotent(runner, client):
    runner.ensure(endpoint(replicas=2))

    runner.stop("churn-prod")
    runner.stop("churn-prod")

    assert client.containers_by_name == {}
    assert runner.status("churn-prod").state == STOPPED
    assert runner.status("churn-prod").reason == "no replica runs."


def test_a_missing_image_is_an_error_naming_the_replica_and_the_image(runner, client):
    client.missing_image = True

    with pytest.raises(DockerRunnerError) as raised:
        runner.ensure(endpoint())

    assert str(raised.value) == (
        "docker: cannot start replica 0 of churn-prod from image mlplatform-serving:test: "
        "No such image: mlplatform-serving:test"
    )


def test_an_endpoint_id_cannot_leave_the_state_folder(runner):
    with pytest.raises(EndpointError, match=r"^id: "):
        runner.status("../etc")
