"""A real `celery worker` process, on the real broker, runs a task that writes to the test database.

The broker is CELERY_BROKER_URL when set (Redis in CI), else Celery's filesystem transport in a temporary folder
(passed to the worker as MLPLATFORM_VAR_DIR). The worker reaches the test database through DATABASE_URL, so this runs
on PostgreSQL, or on SQLite only when the test database is a file (an in-memory database is private to this process).
"""

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection

from apps.audit.models import AuditEvent
from config.celery import app
from workers.tasks.system import heartbeat_task

BASE_DIR = Path(__file__).resolve().parents[2]
POLL_SECONDS = 30

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


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


@pytest.fixture
def broker(tmp_path, monkeypatch):
    """The broker the worker and this process share; the filesystem transport gets a private folder."""
    monkeypatch.setattr(app.conf, "task_always_eager", False)  # the task must go through the broker
    var_dir = tmp_path / "var"
    celery_dir = var_dir / "celery"
    for name in ("queue", "processed", "control"):
        (celery_dir / name).mkdir(parents=True)
    # The same folders the worker's settings derive from MLPLATFORM_VAR_DIR (config/settings.py).
    options = (
        {
            "data_folder_in": str(celery_dir / "queue"),
            "data_folder_out": str(celery_dir / "queue"),
            "processed_folder": str(celery_dir / "processed"),
            "control_folder": str(celery_dir / "control"),
        }
        if uses_filesystem_broker()
        else {}
    )
    return {"var_dir": var_dir, "transport_options": options}


@pytest.fixture
def worker(broker, tmp_path):
    database_url = test_database_url()
    if database_url is None:
        pytest.skip(
            "the test database is in-memory SQLite, which a worker process cannot open: run with DATABASE_URL "
            "(PostgreSQL, the target) or give DATABASES['default']['TEST']['NAME'] a file"
        )
    env = {key: value for key, value in os.environ.items() if key != "CELERY_TASK_ALWAYS_EAGER"}
    env.update(
        DATABASE_URL=database_url,
        MLPLATFORM_VAR_DIR=str(broker["var_dir"]),
        DJANGO_SETTINGS_MODULE="config.settings",
        PYTHONUNBUFFERED="1",
    )
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
        "default",
        "--loglevel",
        "INFO",
        "--hostname",
        f"integration-{uuid.uuid4().hex[:8]}@%h",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    ]
    process = subprocess.Popen(command, cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield {"process": process, "log": log_path}
    finally:
        stop(process)
        log.close()


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


def wait_for_heartbeat(note: str, worker: dict) -> AuditEvent | None:
    deadline = time.monotonic() + POLL_SECONDS
    while time.monotonic() < deadline:
        event = AuditEvent.objects.filter(action="system.worker_heartbeat", after__note=note).first()
        if event is not None or worker["process"].poll() is not None:
            return event
        time.sleep(0.25)
    return None


def test_real_worker_runs_heartbeat_from_the_broker_and_writes_the_audit_event(broker, worker):
    note = f"integration-{uuid.uuid4().hex}"

    with app.connection_for_write(transport_options=broker["transport_options"]) as conn:
        result = heartbeat_task.apply_async(args=[note], connection=conn)
    event = wait_for_heartbeat(note, worker)

    log = worker["log"].read_text()
    assert event is not None, f"no heartbeat within {POLL_SECONDS}s; worker log:\n{log[-4000:]}"
    assert event.action == "system.worker_heartbeat"
    assert event.after == {"note": note}
    assert event.request_id == result.id  # written by the task, under its own id
    assert event.actor_id is None
    # Exactly once, though a shared broker may hold other heartbeats left by an interrupted run.
    assert AuditEvent.objects.filter(after__note=note).count() == 1


def test_worker_log_shows_it_was_the_worker_process_that_ran_the_task(broker, worker):
    note = f"integration-{uuid.uuid4().hex}"

    with app.connection_for_write(transport_options=broker["transport_options"]) as conn:
        result = heartbeat_task.apply_async(args=[note], connection=conn)
    event = wait_for_heartbeat(note, worker)
    assert event is not None, worker["log"].read_text()[-4000:]
    deadline = time.monotonic() + 10
    while f"Task system.heartbeat[{result.id}] succeeded" not in worker["log"].read_text():
        assert time.monotonic() < deadline, worker["log"].read_text()[-4000:]
        time.sleep(0.2)

    stop(worker["process"])

    assert worker["process"].returncode == 0, worker["log"].read_text()[-4000:]
