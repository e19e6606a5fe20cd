"""The `docker` runner: one container per replica from the serving image (platform/serving/Dockerfile), started
through the Docker API (the docker SDK, imported only when no client is given).

Containers are found again by their labels (mlplatform.endpoint=<id>, mlplatform.replica=<i>), so a restarted runner
adopts what runs. Docker restarts a replica that exits with an error (restart policy on-failure, `max_restarts`
times); a replica that used them all stays exited: CRASH_LOOP, until the endpoint changes or is stopped.

Each endpoint has a folder on the host (state_dir/<endpoint id>/):
    config/deployment.json  the server's deployment file; `config/` is bind-mounted read-only. The folder, not the
                            file: a file bind mount pins the inode, and the file is replaced by a rename.
    admin-token             the SERVING_ADMIN_TOKEN its replicas accept (mode 0600)
    state.json              per replica: which deployment file it serves, the last reload error
The prediction log of replica i goes to <log folder>/replica-<i>/ on the host (bind-mounted read-write), where
<log folder> is the endpoint's SERVING_LOG_DIR, else log_dir_host/<endpoint id>: one folder per replica because
every container's server has the same pid, which the log file names include.

Paths are bind-mount sources, so they are paths on the Docker host: a runner inside a container must see
state_dir and log_dir_host at the same paths as the host does (mount them at identical paths).

The admin endpoint answers loopback clients only, so reload runs a short Python script INSIDE the container
(`exec_run`); readiness is probed the same way, which also works when no port is published.
"""

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workers.serving.runners.base import (
    CRASH_LOOP,
    ENDPOINT_ID,
    STOPPED,
    Endpoint,
    EndpointError,
    EndpointStatus,
    ReplicaStatus,
    Runner,
    endpoint_state,
)
from workers.serving.runners.local import _admin_token, _locked, _write_atomically

PORT = 8080
CONFIG_MOUNT = "/etc/mlplatform/serving"
LOG_MOUNT = "/var/lib/mlplatform/predictions"
LABEL_ENDPOINT = "mlplatform.endpoint"
LABEL_REPLICA = "mlplatform.replica"
LABEL_RUNNER = "mlplatform.runner"
LABEL_SPEC = "mlplatform.spec-sha256"  # what the container was created with: a change replaces it
DEFAULT_USER = "10001:10001"  # the image's user
NANOSECONDS = 1_000_000_000
PROBE_TIMEOUT = 2.0
# The image's CMD, spelled out so a container does not depend on how the image was built. All interfaces inside the
# container: what is reachable from outside is decided by the published ports (loopback by default).
COMMAND = ["uvicorn", "workers.serving.app:app", "--host", "0.0.0.0", "--port", str(PORT)]  # noqa: S104
COMMAND += ["--lifespan", "on", "--no-access-log"]
# Run inside the container with its own Python; the token is read from the container's environment, so it never
# appears on an exec command line (which `docker inspect` shows).
HEALTH_SCRIPT = (
    "import http.client,sys\n"
    f"c=http.client.HTTPConnection('127.0.0.1',{PORT},timeout={PROBE_TIMEOUT})\n"
    "c.request('GET','/v2/health/ready')\n"
    "r=c.getresponse()\n"
    "sys.stdout.write(str(r.status)+' '+r.read().decode(errors='replace'))\n"
    "sys.exit(r.status!=200)\n"
)
RELOAD_SCRIPT = (
    "import http.client,os,sys\n"
    f"c=http.client.HTTPConnection('127.0.0.1',{PORT},timeout=%(timeout)s)\n"
    "c.request('POST','/admin/reload',headers={'Authorization':'Bearer '+os.environ['SERVING_ADMIN_TOKEN']})\n"
    "r=c.getresponse()\n"
    "sys.stdout.write(str(r.status)+' '+r.read().decode(errors='replace'))\n"
)
RUNNING_STATES = ("running",)
DOCKER_ERRORS_HINT = "is the Docker daemon reachable (DOCKER_HOST) and the image built or pullable?"


class DockerRunnerError(RuntimeError):
    """The Docker API refused something; the message names the replica and the image."""


def container_name(endpoint_id: str, index: int) -> str:
    return f"mlp-serving-{endpoint_id}-{index}"


def container_spec(
    endpoint: Endpoint,
    index: int,
    *,
    image: str,
    config_dir: Path,
    log_dir: Path,
    admin_token: str,
    network: str | None = None,
    publish_host: str | None = "127.0.0.1",
    max_restarts: int = 3,
    user: str = DEFAULT_USER,
    memory: str | None = None,
    cpus: float | None = None,
) -> dict[str, Any]:
    """The keyword arguments given to `client.containers.run` for replica `index` of `endpoint`.

    `config_dir` holds deployment.json (mounted read-only), `log_dir` is this replica's prediction log folder on the
    host. The port is published on `publish_host` only (loopback by default; None publishes nothing, for runners
    that reach the server over `network`), on a port Docker picks."""
    environment = dict(endpoint.environment)
    environment |= {
        "SERVING_CONFIG": f"{CONFIG_MOUNT}/deployment.json",
        "SERVING_LOG_DIR": LOG_MOUNT,  # the host folder is the endpoint's, mounted here
        "SERVING_ADMIN_TOKEN": admin_token,
    }
    spec: dict[str, Any] = {
        "image": image,
        "command": list(COMMAND),
        "name": container_name(endpoint.id, index),
        "labels": {LABEL_ENDPOINT: endpoint.id, LABEL_REPLICA: str(index), LABEL_RUNNER: "docker"},
        "environment": environment,
        "volumes": {
            str(config_dir): {"bind": CONFIG_MOUNT, "mode": "ro"},
            str(log_dir): {"bind": LOG_MOUNT, "mode": "rw"},
        },
        "ports": {f"{PORT}/tcp": (publish_host, None)} if publish_host else {},
        "restart_policy": {"Name": "on-failure", "MaximumRetryCount": max_restarts},
        "healthcheck": {
            "test": ["CMD", "python", "-c", HEALTH_SCRIPT],
            "interval": 10 * NANOSECONDS,
            "timeout": 3 * NANOSECONDS,
            "retries": 3,
            "start_period": 60 * NANOSECONDS,
        },
        "user": user,
        "read_only": True,
        "tmpfs": {"/tmp": "rw,noexec,nosuid,size=64m"},  # noqa: S108 - the container's own tmpfs, not the host's
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges:true"],
        "detach": True,
    }
    if network:
        spec["network"] = network
    if memory:
        spec["mem_limit"] = memory
    if cpus:
        spec["nano_cpus"] = int(cpus * NANOSECONDS)
    spec["labels"][LABEL_SPEC] = spec_sha256(spec)
    return spec


def spec_sha256(spec: dict[str, Any]) -> str:
    """A digest of everything the container is created with (its labels aside): equal digests, same container."""
    relevant = {key: value for key, value in spec.items() if key != "labels"}
    return hashlib.sha256(json.dumps(relevant, sort_keys=True, default=str).encode()).hexdigest()


@dataclass(frozen=True)
class Probe:
    answered: bool
    ready: bool
    reason: str = ""


class DockerRunner(Runner):
    def __init__(
        self,
        client: Any = None,
        *,
        image: str,
        state_dir: str | Path,
        log_dir_host: str | Path,
        network: str | None = None,
        publish_host: str | None = "127.0.0.1",
        max_restarts: int = 3,
        ready_timeout: float = 120.0,
        stop_grace: float = 10.0,
        user: str | None = None,
        memory: str | None = None,
        cpus: float | None = None,
        poll_seconds: float = 0.5,
    ):
        self._client = client
        self.image = image
        self.state_dir = Path(state_dir)
        self.log_dir_host = Path(log_dir_host)
        self.network = network
        self.publish_host = publish_host
        self.max_restarts = max_restarts
        self.ready_timeout = ready_timeout
        self.stop_grace = stop_grace
        # The runner's own user by default, so the portal's worker can read (and remove) the prediction logs the
        # server writes; never root.
        self.user = user or (f"{os.getuid()}:{os.getgid()}" if os.getuid() != 0 else DEFAULT_USER)
        self.memory = memory
        self.cpus = cpus
        self.poll_seconds = poll_seconds

    @property
    def client(self):
        if self._client is None:
            import docker  # the SDK is needed only where this runner is chosen

            try:
                self._client = docker.from_env()
            except docker.errors.DockerException as exc:
                raise DockerRunnerError(
                    f"docker: cannot reach the Docker daemon ({exc}); {DOCKER_ERRORS_HINT}"
                ) from None
        return self._client

    # --- the interface -------------------------------------------------------------------------------------------

    def ensure(self, endpoint: Endpoint) -> EndpointStatus:
        """Write the deployment file, remove containers beyond `endpoint.replicas`, replace a container whose spec
        changed (image, environment, limits), reload a running one whose deployment file changed, start one that
        stopped cleanly, leave a crash-looped one alone (same spec and file: it would crash again), create missing
        ones, and wait until the started ones answer their health check, exit, or `ready_timeout` passes."""
        folder = self._made_folder(endpoint.id)
        with _locked(folder):
            config_sha256 = _write_config(folder, endpoint.config)
            token = _admin_token(folder)
            records = _read_records(folder)
            containers = self._containers(endpoint.id)
            for index in sorted(set(containers) - set(range(endpoint.replicas))):
                self._remove(containers.pop(index))
                records.pop(str(index), None)
            started = []
            for index in range(endpoint.replicas):
                record = records.setdefault(str(index), {"config_sha256": "", "reload_error": ""})
                spec = self._spec(endpoint, index, token)
                container = containers.get(index)
                status = _state(container).get("Status") if container is not None else None
                changed = record["config_sha256"] != config_sha256
                if container is not None and container.labels.get(LABEL_SPEC) != spec["labels"][LABEL_SPEC]:
                    container = self._removed(container)  # created with another image, environment or limits
                elif container is not None and status not in (*RUNNING_STATES, "restarting") and changed:
                    container = self._removed(container)  # exited: a fresh one, with a fresh restart budget
                if container is None:
                    started.append(self._run(spec, index, endpoint.id))
                    record.update(config_sha256=config_sha256, reload_error="")
                elif status in RUNNING_STATES:
                    if changed:
                        self._reload_container(container, record, config_sha256)
                elif status != "restarting" and not self._crash_looped(container):
                    self._start(container, index, endpoint.id)  # stopped cleanly, or by someone else
                    started.append(container)
            _write_records(folder, records)
            self._wait_until_answering(started)
            return self._status(endpoint.id, records)

    def status(self, endpoint_id: str) -> EndpointStatus:
        return self._status(endpoint_id, _read_records(self._folder(endpoint_id)))

    def stop(self, endpoint_id: str) -> None:
        """Stop (SIGTERM, SIGKILL after `stop_grace` seconds) and remove every container of the endpoint; the host
        folders keep the deployment file and the prediction logs. Stopping a stopped endpoint does nothing."""
        folder = self._folder(endpoint_id)
        for container in self._containers(endpoint_id).values():
            self._remove(container)
        (folder / "state.json").unlink(missing_ok=True)  # the containers are gone: nothing to remember of them

    def reload(self, endpoint: Endpoint) -> EndpointStatus:
        """Replace the deployment file and ask every running replica to re-read it (POST /admin/reload, sent from
        inside its container). A replica that refuses keeps serving what it had; `reload_error` says why.
        Exited replicas read the new file when the next `ensure` starts them."""
        folder = self._made_folder(endpoint.id)
        with _locked(folder):
            config_sha256 = _write_config(folder, endpoint.config)
            records = _read_records(folder)
            for index, container in self._containers(endpoint.id).items():
                record = records.setdefault(str(index), {"config_sha256": "", "reload_error": ""})
                if _state(container).get("Status") in RUNNING_STATES:
                    self._reload_container(container, record, config_sha256)
            _write_records(folder, records)
            return self._status(endpoint.id, records)

    # --- containers ----------------------------------------------------------------------------------------------

    def _spec(self, endpoint: Endpoint, index: int, token: str) -> dict[str, Any]:
        return container_spec(
            endpoint,
            index,
            image=self.image,
            config_dir=self._folder(endpoint.id) / "config",
            log_dir=self._log_dir(endpoint, index),
            admin_token=token,
            network=self.network,
            publish_host=self.publish_host,
            max_restarts=self.max_restarts,
            user=self.user,
            memory=self.memory,
            cpus=self.cpus,
        )

    def _log_dir(self, endpoint: Endpoint, index: int) -> Path:
        """Made here, by the runner's user: a missing bind-mount source would be created by the daemon, as root."""
        base = endpoint.environment.get("SERVING_LOG_DIR") or self.log_dir_host / endpoint.id
        folder = Path(base) / f"replica-{index}"
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def _containers(self, endpoint_id: str) -> dict[int, Any]:
        """The endpoint's containers by replica index, running or not."""
        found = self._call(
            f"cannot list the containers of {endpoint_id}",
            self.client.containers.list,
            all=True,
            filters={"label": [f"{LABEL_ENDPOINT}={endpoint_id}", f"{LABEL_RUNNER}=docker"]},
        )
        return {int(container.labels[LABEL_REPLICA]): container for container in found}

    def _run(self, spec: dict[str, Any], index: int, endpoint_id: str) -> Any:
        return self._call(
            f"cannot start replica {index} of {endpoint_id} from image {spec['image']}",
            self.client.containers.run,
            **spec,
        )

    def _start(self, container: Any, index: int, endpoint_id: str) -> None:
        self._call(f"cannot restart replica {index} of {endpoint_id}", container.start)

    def _removed(self, container: Any) -> None:
        self._remove(container)
        return None

    def _remove(self, container: Any) -> None:
        if _state(container).get("Status") in RUNNING_STATES:
            self._call(f"cannot stop container {container.name}", container.stop, timeout=int(self.stop_grace))
        self._call(f"cannot remove container {container.name}", container.remove, force=True)

    def _crash_looped(self, container: Any) -> bool:
        """Exited with an error after Docker restarted it `max_restarts` times (the restart policy gave up)."""
        state = _state(container)
        exited = state.get("Status") in ("exited", "dead")
        return exited and state.get("ExitCode", 0) != 0 and _restart_count(container) >= self.max_restarts

    def _call(self, what: str, function, *args, **kwargs):
        """Docker SDK errors become DockerRunnerError naming what was being done."""
        from docker.errors import DockerException  # imported only where this runner is used

        try:
            return function(*args, **kwargs)
        except DockerException as exc:
            raise DockerRunnerError(f"docker: {what}: {_explanation(exc)}") from None

    def _exec(self, container: Any, script: str) -> tuple[int | None, str]:
        result = self._call(
            f"cannot run a command in {container.name}",
            container.exec_run,
            ["python", "-c", script],
            user=self.user,
        )
        output = result.output.decode(errors="replace") if isinstance(result.output, bytes) else str(result.output)
        return result.exit_code, output

    def _probe(self, container: Any) -> Probe:
        """GET /v2/health/ready from inside the container: "200 {...}" once ready."""
        exit_code, output = self._exec(container, HEALTH_SCRIPT)
        status, _, body = output.partition(" ")
        if not status.isdigit():
            reason = output.strip().splitlines()[-1] if output.strip() else f"exit code {exit_code}"
            return Probe(answered=False, ready=False, reason=f"not answering /v2/health/ready ({reason})")
        if status == "200":
            return Probe(answered=True, ready=True)
        return Probe(answered=True, ready=False, reason=f"not ready: {_not_ready_reason(body)}")

    def _wait_until_answering(self, started: list[Any]) -> None:
        """Until each started container answers /v2/health/ready (200 or not: the server answers once it tried to
        load every version), stops running, or `ready_timeout` passes."""
        pending = list(started)
        deadline = time.monotonic() + self.ready_timeout
        while pending and time.monotonic() < deadline:
            still = []
            for container in pending:
                self._call(f"cannot inspect {container.name}", container.reload)
                if _state(container).get("Status") in RUNNING_STATES and not self._probe(container).answered:
                    still.append(container)
            pending = still
            if pending:
                time.sleep(self.poll_seconds)

    # --- reload and status ---------------------------------------------------------------------------------------

    def _reload_container(self, container: Any, record: dict[str, str], config_sha256: str) -> None:
        _, output = self._exec(container, RELOAD_SCRIPT % {"timeout": self.ready_timeout})
        status, _, body = output.partition(" ")
        if not status.isdigit():
            last_line = output.strip().splitlines()[-1] if output.strip() else "no output"
            record["reload_error"] = f"reload: {container.name} did not answer ({last_line})."
            return
        if status in ("200", "409"):  # 409: applied, but a routed version did not load and gets no traffic
            record["config_sha256"] = config_sha256
        record["reload_error"] = "" if status == "200" else f"reload refused ({status}): {_error_of(body)}"

    def _status(self, endpoint_id: str, records: dict[str, dict[str, str]]) -> EndpointStatus:
        containers = self._containers(endpoint_id)
        replicas = [
            self._replica_status(index, container, records.get(str(index), {}))
            for index, container in sorted(containers.items())
        ]
        crash_loop = any(replica.reason.startswith("crash loop") for replica in replicas)
        state = endpoint_state(replicas, crash_loop=crash_loop)
        reason = next((replica.reason for replica in replicas if not replica.ready), "")
        if state == STOPPED:
            reason = "no replica runs."
        elif state == CRASH_LOOP:
            reason = next(replica.reason for replica in replicas if replica.reason.startswith("crash loop"))
        return EndpointStatus(endpoint_id=endpoint_id, state=state, replicas=tuple(replicas), reason=reason)

    def _replica_status(self, index: int, container: Any, record: dict[str, str]) -> ReplicaStatus:
        state = _state(container)
        alive = state.get("Status") in RUNNING_STATES
        # A running container's ExitCode is not its last exit's: known only while it is down.
        exit_code = state.get("ExitCode") if not alive and _has_exited_once(state) else None
        if alive:
            probe = self._probe(container)
        else:
            how = f"{state.get('Status', 'unknown')} with code {exit_code}" if exit_code is not None else "not started"
            if state.get("Status") == "restarting":
                how = "restarting after it exited"
            if self._crash_looped(container):
                how = f"crash loop: {_restart_count(container)} restarts, then {how}"
            probe = Probe(answered=False, ready=False, reason=f"{how}; log tail:\n{self._log_tail(container)}")
        return ReplicaStatus(
            index=index,
            url=self._url(container),
            pid=state.get("Pid") or None,
            alive=alive,
            ready=probe.ready,
            restarts=_restart_count(container),
            last_exit_code=exit_code,
            reason=probe.reason,
            reload_error=record.get("reload_error", ""),
        )

    def _url(self, container: Any) -> str:
        """The published loopback address when there is one, else the container's name on the network."""
        bindings = (container.attrs.get("NetworkSettings") or {}).get("Ports") or {}
        for binding in bindings.get(f"{PORT}/tcp") or []:
            if binding.get("HostPort"):
                return f"http://{binding.get('HostIp') or '127.0.0.1'}:{binding['HostPort']}"
        return f"http://{container.name}:{PORT}"

    def _log_tail(self, container: Any) -> str:
        try:
            logs = self._call(f"cannot read the log of {container.name}", container.logs, tail=40)
        except DockerRunnerError as exc:
            return str(exc)
        return logs.decode(errors="replace") if isinstance(logs, bytes) else str(logs)

    # --- state files ---------------------------------------------------------------------------------------------

    def _folder(self, endpoint_id: str) -> Path:
        if not isinstance(endpoint_id, str) or not ENDPOINT_ID.fullmatch(endpoint_id):
            raise EndpointError("id: 1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit.")
        return self.state_dir / endpoint_id

    def _made_folder(self, endpoint_id: str) -> Path:
        folder = self._folder(endpoint_id)
        (folder / "config").mkdir(parents=True, exist_ok=True)
        return folder


def _state(container: Any) -> dict[str, Any]:
    return (container.attrs or {}).get("State") or {}


def _restart_count(container: Any) -> int:
    return int((container.attrs or {}).get("RestartCount") or 0)


def _has_exited_once(state: dict[str, Any]) -> bool:
    """Docker reports FinishedAt as the zero time until the container first stops."""
    finished = state.get("FinishedAt") or ""
    return bool(finished) and not finished.startswith("0001-01-01")


def _write_config(folder: Path, config: dict[str, Any]) -> str:
    """Replace config/deployment.json in one rename (the server never reads half a file); its SHA-256."""
    data = json.dumps(config, indent=1, sort_keys=True).encode()
    _write_atomically(folder / "config" / "deployment.json", data)
    return hashlib.sha256(data).hexdigest()


def _read_records(folder: Path) -> dict[str, dict[str, str]]:
    try:
        return json.loads((folder / "state.json").read_text(encoding="utf-8"))["replicas"]
    except FileNotFoundError:
        return {}


def _write_records(folder: Path, records: dict[str, dict[str, str]]) -> None:
    _write_atomically(folder / "state.json", json.dumps({"replicas": records}, indent=1).encode())


def _error_of(body: str) -> str:
    try:
        payload = json.loads(body)
    except ValueError:
        return body.strip()
    return str(payload.get("error", payload)) if isinstance(payload, dict) else str(payload)


def _not_ready_reason(body: str) -> str:
    try:
        payload = json.loads(body)
    except ValueError:
        return body.strip()
    routes = (payload.get("not_ready_routes") if isinstance(payload, dict) else None) or []
    return "; ".join(f"version {route['version']}: {route['reason']}" for route in routes) or str(payload)


def _explanation(exc: Exception) -> str:
    explanation = getattr(exc, "explanation", None)
    return str(explanation or exc)
