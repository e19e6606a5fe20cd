"""The `local` runner: model-server processes on loopback ports, supervised from the portal's worker.

Each endpoint has a folder (var/serving/<endpoint id>/) holding everything needed to find its processes again after
the runner's own process restarts:
    deployment.json     the server's deployment file (SERVING_CONFIG), replaced atomically
    admin-token         the SERVING_ADMIN_TOKEN its replicas accept on POST /admin/reload (mode 0600)
    state.json          per replica: port, restarts, last exit code, which deployment file it serves, reload error
    replica-<i>.pid     the pid of replica i (its own process group), removed when it is stopped or found dead
    replica-<i>.log     its stdout and stderr, appended across restarts
    predictions/        the prediction log (SERVING_LOG_DIR) unless the endpoint's environment names another
A pid is only trusted while /proc/<pid>/cmdline is still this app on this port (so a recycled pid is never signalled
or adopted): the runner is for Linux hosts, like the portal's workers.
"""

import fcntl
import hashlib
import http.client
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
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

ROOT = Path(__file__).resolve().parents[3]
APP = "workers.serving.app:app"
HOST = "127.0.0.1"
# The server is started with a small environment of its own, never the worker's (database URLs, cloud secrets).
INHERITED_VARIABLES = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "PYTHONPATH", "VIRTUAL_ENV")
LOG_TAIL_CHARS = 2000
HEALTH_TIMEOUT = 2.0
POLL_SECONDS = 0.1


@dataclass
class ReplicaRecord:
    """What state.json remembers of one replica (the pid is in its pid file)."""

    port: int
    restarts: int = 0
    restart_times: list[float] = field(default_factory=list)  # wall clock, so they outlive the runner process
    last_exit_code: int | None = None
    config_sha256: str = ""  # the deployment file it last loaded
    reload_error: str = ""


@dataclass(frozen=True)
class Health:
    answered: bool
    ready: bool
    reason: str = ""


class LocalRunner(Runner):
    def __init__(
        self,
        state_dir: str | Path = ROOT / "var" / "serving",
        *,
        ready_timeout: float = 30.0,
        stop_grace: float = 10.0,
        max_restarts: int = 3,
        restart_window: float = 60.0,
        python: str = sys.executable,
    ):
        self.state_dir = Path(state_dir)
        self.ready_timeout = ready_timeout
        self.stop_grace = stop_grace
        self.max_restarts = max_restarts
        self.restart_window = restart_window
        self.python = python
        self._children: dict[int, subprocess.Popen] = {}  # the processes this runner started: their exit codes

    # --- the interface -------------------------------------------------------------------------------------------

    def ensure(self, endpoint: Endpoint) -> EndpointStatus:
        """Write the deployment file, stop replicas beyond `endpoint.replicas`, give running replicas a changed file
        (reload), start missing or dead ones (unless they keep dying: crash loop), and wait until the started ones
        answer their health check (or die, or `ready_timeout` passes)."""
        folder = self._folder(endpoint.id)
        folder.mkdir(parents=True, exist_ok=True)
        with _locked(folder):
            config_sha256 = _write_config(folder, endpoint.config)
            token = _admin_token(folder)
            records = self._records(folder)
            for index in range(endpoint.replicas, len(records)):
                self._stop_replica(folder, index, records[index])
            del records[endpoint.replicas :]
            started = []
            for index in range(endpoint.replicas):
                if index == len(records):
                    records.append(ReplicaRecord(port=_free_port()))
                    started.append(self._start(folder, index, records[index], endpoint, token, config_sha256))
                    continue
                record = records[index]
                if self._live_pid(folder, index, record) is not None:
                    if record.config_sha256 != config_sha256:
                        self._reload_replica(record, token, config_sha256)
                    continue
                self._forget_dead(folder, index, record)
                if self._keeps_dying(record):
                    continue
                record.restarts += 1
                record.restart_times.append(time.time())
                started.append(self._start(folder, index, records[index], endpoint, token, config_sha256))
            _write_records(folder, records)
            self._wait_until_answering(started)
            return self._status(endpoint.id, folder, records)

    def status(self, endpoint_id: str) -> EndpointStatus:
        folder = self._folder(endpoint_id)
        return self._status(endpoint_id, folder, self._records(folder))

    def stop(self, endpoint_id: str) -> None:
        """SIGTERM each replica's process group, SIGKILL it after `stop_grace` seconds, remove the pid files and the
        replica state (the folder keeps the deployment file and the logs). Stopping a stopped endpoint does nothing."""
        folder = self._folder(endpoint_id)
        if not folder.is_dir():
            return
        with _locked(folder):
            for index, record in enumerate(self._records(folder)):
                self._stop_replica(folder, index, record)
            (folder / "state.json").unlink(missing_ok=True)

    def reload(self, endpoint: Endpoint) -> EndpointStatus:
        """Replace the deployment file atomically and ask every live replica to re-read it (POST /admin/reload).
        A replica that refuses (400: nothing changed; 409: a routed version did not load and gets no traffic)
        keeps serving what it had, and its status says why in `reload_error`. Dead replicas read the new file when
        the next `ensure` restarts them."""
        folder = self._folder(endpoint.id)
        folder.mkdir(parents=True, exist_ok=True)
        with _locked(folder):
            config_sha256 = _write_config(folder, endpoint.config)
            token = _admin_token(folder)
            records = self._records(folder)
            for index, record in enumerate(records):
                if self._live_pid(folder, index, record) is not None:
                    self._reload_replica(record, token, config_sha256)
            _write_records(folder, records)
            return self._status(endpoint.id, folder, records)

    # --- processes -----------------------------------------------------------------------------------------------

    def _start(
        self, folder: Path, index: int, record: ReplicaRecord, endpoint: Endpoint, token: str, config_sha256: str
    ) -> tuple[int, ReplicaRecord]:
        environment = {name: os.environ[name] for name in INHERITED_VARIABLES if name in os.environ}
        environment["SERVING_LOG_DIR"] = str(folder / "predictions")
        environment |= endpoint.environment
        environment |= {"SERVING_CONFIG": str(folder / "deployment.json"), "SERVING_ADMIN_TOKEN": token}
        # --lifespan on: a server that cannot build itself (a bad environment) exits at once instead of answering
        # 500s, so the runner sees it die and counts it towards a crash loop.
        command = [self.python, "-m", "uvicorn", APP, "--host", HOST, "--port", str(record.port)]
        command += ["--lifespan", "on", "--no-access-log"]
        with open(folder / f"replica-{index}.log", "ab") as log:
            log.write(f"--- starting replica {index} on port {record.port} at {time.ctime()}\n".encode())
            log.flush()
            process = subprocess.Popen(  # noqa: S603 - a fixed command; only the port (a number) varies
                command,
                cwd=ROOT,
                env=environment,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stop signals the server and anything it spawned
            )
        self._children[process.pid] = process
        _write_atomically(folder / f"replica-{index}.pid", f"{process.pid}\n".encode())
        record.config_sha256 = config_sha256
        record.reload_error = ""
        return process.pid, record

    def _live_pid(self, folder: Path, index: int, record: ReplicaRecord) -> int | None:
        """The replica's pid while that process is alive and still this app on this port, else None."""
        pid = _read_pid(folder / f"replica-{index}.pid")
        if pid is None:
            return None
        child = self._children.get(pid)
        if child is not None and child.poll() is not None:
            return None
        return pid if _is_replica_process(pid, record.port) else None

    def _forget_dead(self, folder: Path, index: int, record: ReplicaRecord) -> None:
        """Record how the replica ended (known only for a process this runner started) and drop its pid file."""
        pid_file = folder / f"replica-{index}.pid"
        pid = _read_pid(pid_file)
        if pid is None:
            return
        child = self._children.pop(pid, None)
        record.last_exit_code = child.returncode if child is not None else None
        pid_file.unlink(missing_ok=True)

    def _recent_restarts(self, record: ReplicaRecord) -> int:
        since = time.time() - self.restart_window
        record.restart_times = [moment for moment in record.restart_times if moment >= since]
        return len(record.restart_times)

    def _keeps_dying(self, record: ReplicaRecord) -> bool:
        """Back off: after `max_restarts` restarts within `restart_window` seconds a dead replica stays dead (crash
        loop) until the oldest of them leaves the window."""
        return self._recent_restarts(record) >= self.max_restarts

    def _wait_until_answering(self, started: list[tuple[int, ReplicaRecord]]) -> None:
        """Until each started replica answers /v2/health/ready (200 or not: a server answers only once it has
        tried to load every version, so a 4xx is final too), dies, or `ready_timeout` passes."""
        pending = list(started)
        deadline = time.monotonic() + self.ready_timeout
        while pending and time.monotonic() < deadline:
            pending = [
                (pid, record)
                for pid, record in pending
                if self._children[pid].poll() is None and not _health(record.port).answered
            ]
            if pending:
                time.sleep(POLL_SECONDS)

    def _stop_replica(self, folder: Path, index: int, record: ReplicaRecord) -> None:
        pid = self._live_pid(folder, index, record)
        if pid is not None:
            self._terminate(pid)
        self._forget_dead(folder, index, record)

    def _terminate(self, pid: int) -> None:
        for signal_number, wait_seconds in ((signal.SIGTERM, self.stop_grace), (signal.SIGKILL, self.stop_grace)):
            _signal_group(pid, signal_number)
            deadline = time.monotonic() + wait_seconds
            while time.monotonic() < deadline:
                if self._ended(pid):
                    return
                time.sleep(POLL_SECONDS)

    def _ended(self, pid: int) -> bool:
        """A child of this runner has ended once reaped; an adopted one once it is gone or a zombie (its parent,
        not us, reaps it)."""
        child = self._children.get(pid)
        return child.poll() is not None if child is not None else _exited(pid)

    # --- reload and status ---------------------------------------------------------------------------------------

    def _reload_replica(self, record: ReplicaRecord, token: str, config_sha256: str) -> None:
        try:
            status, payload = _http("POST", record.port, "/admin/reload", timeout=self.ready_timeout, token=token)
        except OSError as exc:
            record.reload_error = f"reload: the replica on port {record.port} did not answer ({exc})."
            return
        if status in (200, 409):  # 409: applied, but a routed version did not load and gets no traffic
            record.config_sha256 = config_sha256
        record.reload_error = "" if status == 200 else f"reload refused ({status}): {payload.get('error', payload)}"

    def _status(self, endpoint_id: str, folder: Path, records: list[ReplicaRecord]) -> EndpointStatus:
        replicas = [self._replica_status(folder, index, record) for index, record in enumerate(records)]
        crash_loop = any(replica.reason.startswith("crash loop") for replica in replicas)
        state = endpoint_state(replicas, crash_loop=crash_loop)
        reason = next((replica.reason for replica in replicas if not replica.ready), "")
        if state == STOPPED:
            reason = "no replica runs."
        elif state == CRASH_LOOP:
            reason = next(replica.reason for replica in replicas if replica.reason.startswith("crash loop"))
        return EndpointStatus(endpoint_id=endpoint_id, state=state, replicas=tuple(replicas), reason=reason)

    def _replica_status(self, folder: Path, index: int, record: ReplicaRecord) -> ReplicaStatus:
        pid = self._live_pid(folder, index, record)
        exit_code = record.last_exit_code
        if pid is None:
            last_pid = _read_pid(folder / f"replica-{index}.pid")
            child = self._children.get(last_pid) if last_pid is not None else None
            exit_code = _exit_code_of(child) if child is not None else exit_code
            how = "exited" if exit_code is None else f"exited with code {exit_code}"
            if self._recent_restarts(record) >= self.max_restarts:
                how = f"crash loop: {len(record.restart_times)} restarts in {self.restart_window:g}s, then {how}"
            health = Health(answered=False, ready=False, reason=f"{how}; log tail:\n{_log_tail(folder, index)}")
        else:
            health = _health(record.port)
            if not health.answered:
                health = Health(False, False, f"{health.reason}; log tail:\n{_log_tail(folder, index)}")
        return ReplicaStatus(
            index=index,
            url=f"http://{HOST}:{record.port}",
            pid=pid,
            alive=pid is not None,
            ready=health.ready,
            restarts=record.restarts,
            last_exit_code=exit_code,
            reason=health.reason,
            reload_error=record.reload_error,
        )

    # --- state files ---------------------------------------------------------------------------------------------

    def _folder(self, endpoint_id: str) -> Path:
        if not isinstance(endpoint_id, str) or not ENDPOINT_ID.fullmatch(endpoint_id):
            raise EndpointError("id: 1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit.")
        return self.state_dir / endpoint_id

    def _records(self, folder: Path) -> list[ReplicaRecord]:
        try:
            data = json.loads((folder / "state.json").read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        return [ReplicaRecord(**entry) for entry in data["replicas"]]


def _write_records(folder: Path, records: list[ReplicaRecord]) -> None:
    data = {"replicas": [asdict(record) for record in records]}
    _write_atomically(folder / "state.json", json.dumps(data, indent=1).encode())


def _write_config(folder: Path, config: dict[str, Any]) -> str:
    """Replace deployment.json in one rename (a server never reads half a file); its SHA-256."""
    data = json.dumps(config, indent=1, sort_keys=True).encode()
    _write_atomically(folder / "deployment.json", data)
    return hashlib.sha256(data).hexdigest()


def _write_atomically(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(temporary, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)


def _admin_token(folder: Path) -> str:
    """The endpoint's admin token, made once: replicas started later, or adopted, accept the same one."""
    path = folder / "admin-token"
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text(encoding="utf-8").strip()
    token = secrets.token_urlsafe(32)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(token)
    return token


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """One runner at a time per endpoint (two workers reconciling it would both start the missing replica)."""
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text(encoding="utf-8").strip())
    except (FileNotFoundError, ValueError):
        return None


def _is_replica_process(pid: int, port: int) -> bool:
    """Alive (a zombie has an empty command line) and running this app on this port."""
    try:
        arguments = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    port_given = any(
        arguments[position : position + 2] == [b"--port", str(port).encode()] for position in range(len(arguments))
    )
    return APP.encode() in arguments and port_given


def _exited(pid: int) -> bool:
    """Gone, or a zombie: a process that is still releasing its memory and files (its command line already reads
    empty) has not exited yet."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rpartition(")")[2].split()[0] in ("Z", "X")  # the state follows the command name "(...)"


def _signal_group(pid: int, signal_number: int) -> None:
    try:
        if os.getpgid(pid) == pid:  # started with start_new_session: the group leader
            os.killpg(pid, signal_number)
        else:
            os.kill(pid, signal_number)
    except ProcessLookupError:
        pass


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _http(method: str, port: int, path: str, *, timeout: float, token: str = "") -> tuple[int, dict[str, Any]]:
    connection = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        connection.request(method, path, headers=headers)
        answer = connection.getresponse()
        body = answer.read()
    finally:
        connection.close()
    try:
        payload = json.loads(body)
    except ValueError:
        payload = {"error": body.decode(errors="replace")}
    return answer.status, payload if isinstance(payload, dict) else {"error": payload}


def _health(port: int) -> Health:
    try:
        status, payload = _http("GET", port, "/v2/health/ready", timeout=HEALTH_TIMEOUT)
    except OSError as exc:
        return Health(answered=False, ready=False, reason=f"not answering /v2/health/ready on port {port} ({exc})")
    if status == 200:
        return Health(answered=True, ready=True)
    routes = payload.get("not_ready_routes") or []
    why = "; ".join(f"version {route['version']}: {route['reason']}" for route in routes)
    return Health(answered=True, ready=False, reason=f"not ready: {why or payload}")


def _log_tail(folder: Path, index: int) -> str:
    try:
        with open(folder / f"replica-{index}.log", "rb") as log:
            log.seek(0, os.SEEK_END)
            log.seek(max(0, log.tell() - LOG_TAIL_CHARS))
            return log.read().decode(errors="replace")
    except FileNotFoundError:
        return ""


EXITING_WAIT_SECONDS = 1.0


def _exit_code_of(child: subprocess.Popen) -> int | None:
    """How a child of this runner ended. One that no longer looks like a replica (its /proc entry is being torn
    down) but cannot be reaped yet is still exiting: wait a moment for it rather than report an unknown code."""
    try:
        return child.wait(timeout=EXITING_WAIT_SECONDS)
    except subprocess.TimeoutExpired:
        return None
