"""A real `celery worker` process for integration tests, on the real broker, against the test database.

Load with `pytest_plugins = ["tests.support.celery_worker"]` and use the `celery_worker_process` fixture in a test
marked `django_db(transaction=True)` (the worker only sees committed rows). Override `celery_worker_env` to pass
settings to the worker (e.g. ARTIFACT_STORE pointing at the test's folder).

The broker is CELERY_BROKER_URL when set (Redis in CI), else Celery's filesystem transport in a temporary folder
(passed to the worker as MLPLATFORM_VAR_DIR; this process's Celery app is pointed at the same folder for the test, so
tasks dispatched by the code under test — `send_task` after commit — reach the worker). The worker opens the test
database through DATABASE_URL: PostgreSQL, or SQLite only when the test database is a file (an in-memory database is
private to this process, and the fixture skips with the reason).
"""

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection

BASE_DIR = Path(__file__).resolve().parents[2]
READY_SECONDS = 30


def test_database_url() -> str | None:
    """The test database as a URL another process can open, or None when it cannot (in-memory SQLite)."""
    db = settings.DATABASES["default"]
    name = str(db["NAME"])
    if connection.vendor == "postgresql":
        credentials = quote(db.get("USER") or "", safe="")
        if db.get("PASSWORD"):
            credentials += ":" + quote(db["PASSWORD"], safe="")
        host = db.get("HOST") or "127.0.0.1"
        port = db.get("PORT") or 5432
        return f"postgres://{credentials}@{host}:{port}/{quote(name, safe='')}"
    if connection.vendor == "sqlite" and "memory" not in name and name != "":
        return f"sqlite:///{name}"
    return None


test_database_url.__test__ = False  # a helper, not a test


def uses_filesystem_broker() -> bool:
    return not os.environ.get("CELERY_BROKER_URL")


def wait_for(predicate: Callable[[], Any], timeout: float = 30, interval: float = 0.2) -> Any:
    """Call `predicate` until it returns something truthy (returned) or `timeout` seconds pass (its last value)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def stop(process: subprocess.Popen) -> None:
    """SIGTERM asks for a warm shutdown; a worker that does not exit in time is killed."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


@dataclass
class WorkerProcess:
    process: subprocess.Popen
    log_path: Path
    transport_options: dict
    var_dir: Path

    def log(self, tail: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-tail:]

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        stop(self.process)


@pytest.fixture
def celery_broker(tmp_path, monkeypatch):
    """The broker this process and the worker share; the filesystem transport gets a private folder."""
    from config.celery import app

    monkeypatch.setattr(app.conf, "task_always_eager", False)  # tasks must go through the broker
    var_dir = tmp_path / "var"
    celery_dir = var_dir / "celery"
    for name in ("queue", "processed", "control"):
        (celery_dir / name).mkdir(parents=True)
    options: dict = {}
    if uses_filesystem_broker():
        # The same folders the worker's settings derive from MLPLATFORM_VAR_DIR (config/settings.py).
        options = {
            "data_folder_in": str(celery_dir / "queue"),
            "data_folder_out": str(celery_dir / "queue"),
            "processed_folder": str(celery_dir / "processed"),
            "control_folder": str(celery_dir / "control"),
        }
        monkeypatch.setattr(app.conf, "broker_transport_options", options)
        # Connections and producers are pooled per app: drop the pools so new ones use the folders above.
        monkeypatch.setattr(app, "_pool", None)
        monkeypatch.setattr(app.amqp, "_producer_pool", None)
    return {"var_dir": var_dir, "transport_options": options}


@pytest.fixture
def celery_worker_env() -> dict[str, str]:
    """Extra environment for the worker process (override in a test module)."""
    return {}


@pytest.fixture
def celery_worker_process(celery_broker, celery_worker_env, tmp_path):
    """Start `celery -A config worker -Q default,training` (solo pool), wait until it is ready, yield it, stop it."""
    database_url = test_database_url()
    if database_url is None:
        pytest.skip(
            "the test database is in-memory SQLite, which a worker process cannot open: run with DATABASE_URL "
            "(PostgreSQL, the target) or give DATABASES['default']['TEST']['NAME'] a file"
        )
    env = {key: value for key, value in os.environ.items() if key != "CELERY_TASK_ALWAYS_EAGER"}
    env.update(
        DATABASE_URL=database_url,
        MLPLATFORM_VAR_DIR=str(celery_broker["var_dir"]),
        DJANGO_SETTINGS_MODULE="config.settings",
        PYTHONUNBUFFERED="1",
    )
    env.update(celery_worker_env)
    log_path = tmp_path / "worker.log"
    log = log_path.open("w")
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "config",
        "worker",
        "--pool",
        "solo",
        "-Q",
        "default,training",
        "--loglevel",
        "INFO",
        "--hostname",
        f"integration-{uuid.uuid4().hex[:8]}@%h",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    ]
    process = subprocess.Popen(command, cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT)
    worker = WorkerProcess(
        process=process,
        log_path=log_path,
        transport_options=celery_broker["transport_options"],
        var_dir=celery_broker["var_dir"],
    )
    try:
        ready = wait_for(lambda: " ready." in worker.log(10**6) or not worker.alive(), timeout=READY_SECONDS)
        if not ready or not worker.alive():
            pytest.fail(f"the worker did not start within {READY_SECONDS}s; log:\n{worker.log()}")
        yield worker
    finally:
        stop(process)
        log.close()
