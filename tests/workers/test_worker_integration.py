"""A real `celery worker` process, on the real broker, runs a task that writes to the test database.

The worker comes from tests/support/celery_worker.py (broker choice, database URL, start and stop are explained
there); this module proves the plumbing with the system heartbeat task.
"""

import uuid

import pytest

from apps.audit.models import AuditEvent
from config.celery import app
from workers.tasks.system import heartbeat_task


def wait_for(predicate, timeout: float = 30, interval: float = 0.2):
    from tests.support.celery_worker import wait_for as wait  # imported here: the plugin module loads first

    return wait(predicate, timeout=timeout, interval=interval)


pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

POLL_SECONDS = 30


def wait_for_heartbeat(note: str, worker) -> AuditEvent | None:
    return (
        wait_for(
            lambda: (
                AuditEvent.objects.filter(action="system.worker_heartbeat", after__note=note).first()
                or not worker.alive()
            ),
            timeout=POLL_SECONDS,
            interval=0.25,
        )
        and AuditEvent.objects.filter(action="system.worker_heartbeat", after__note=note).first()
    )


def test_real_worker_runs_heartbeat_from_the_broker_and_writes_the_audit_event(celery_worker_process):
    note = f"integration-{uuid.uuid4().hex}"

    with app.connection_for_write(transport_options=celery_worker_process.transport_options) as conn:
        result = heartbeat_task.apply_async(args=[note], connection=conn)
    event = wait_for_heartbeat(note, celery_worker_process)

    assert event is not None, f"no heartbeat within {POLL_SECONDS}s; worker log:\n{celery_worker_process.log()}"
    assert event.action == "system.worker_heartbeat"
    assert event.after == {"note": note}
    assert event.request_id == result.id  # written by the task, under its own id
    assert event.actor_id is None
    # Exactly once, though a shared broker may hold other heartbeats left by an interrupted run.
    assert AuditEvent.objects.filter(after__note=note).count() == 1


def test_worker_log_shows_it_was_the_worker_process_that_ran_the_task(celery_worker_process):
    note = f"integration-{uuid.uuid4().hex}"

    with app.connection_for_write(transport_options=celery_worker_process.transport_options) as conn:
        result = heartbeat_task.apply_async(args=[note], connection=conn)
    event = wait_for_heartbeat(note, celery_worker_process)
    assert event is not None, celery_worker_process.log()
    finished = wait_for(
        lambda: f"Task system.heartbeat[{result.id}] succeeded" in celery_worker_process.log(10**6), timeout=10
    )
    assert finished, celery_worker_process.log()

    celery_worker_process.stop()

    assert celery_worker_process.process.returncode == 0, celery_worker_process.log()
