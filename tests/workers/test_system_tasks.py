"""The heartbeat task, run in-process: it writes its audit event under the task's id, through the service."""

import pytest

from apps.audit.models import AuditEvent
from apps.core.context import current_request_context
from workers.tasks.system import heartbeat_task


@pytest.mark.django_db
def test_heartbeat_writes_one_audit_event_with_the_task_id_as_request_id():
    result = heartbeat_task.apply(args=["unit-note"], task_id="task-0001")

    event = AuditEvent.objects.get()
    assert result.get() == str(event.pk)
    assert (event.action, event.object_type, event.actor_id) == ("system.worker_heartbeat", "worker", None)
    assert event.after == {"note": "unit-note"}
    assert event.request_id == "task-0001"


@pytest.mark.django_db
def test_heartbeat_leaves_no_request_context_behind():
    heartbeat_task.apply(args=["x"], task_id="task-0002")

    assert current_request_context().request_id == ""


@pytest.mark.django_db
def test_each_heartbeat_carries_its_own_task_id():
    heartbeat_task.apply(args=["first"], task_id="task-a")
    heartbeat_task.apply(args=["second"], task_id="task-b")

    assert list(AuditEvent.objects.order_by("seq").values_list("after__note", "request_id")) == [
        ("first", "task-a"),
        ("second", "task-b"),
    ]
