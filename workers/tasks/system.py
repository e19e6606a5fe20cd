"""Platform tasks that are not about one area: a heartbeat the worker integration test and operators use."""

from celery import shared_task

from workers.tasks.base import ContextTask


@shared_task(name="system.heartbeat", base=ContextTask, acks_late=True)
def heartbeat_task(note: str = "") -> str:
    """Record that a worker picked up work, through the audit service, proving broker, worker and database.

    The audit event carries the task id as its request id (see ContextTask). It goes to the default queue
    (CELERY_TASK_DEFAULT_QUEUE); a `queue=` task attribute is deprecated in Celery 5.
    """
    from apps.core.services import worker_heartbeat_record

    event = worker_heartbeat_record(note=note)
    return str(event.pk)
