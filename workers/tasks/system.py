"""Platform tasks that are not about one area: a heartbeat the worker integration test and operators use."""

from celery import shared_task


@shared_task(name="system.heartbeat", queue="default", acks_late=True)
def heartbeat_task(note: str = "") -> str:
    """Record that a worker picked up work, through the audit service, proving broker, worker and database."""
    from apps.core.services import worker_heartbeat_record

    event = worker_heartbeat_record(note=note)
    return str(event.pk)
