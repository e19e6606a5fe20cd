from django.db import transaction

from apps.audit.services import audit_record


def worker_heartbeat_record(*, note: str = ""):
    """A worker proves it can reach the database: one audit event, written by the worker process."""
    with transaction.atomic():
        return audit_record(actor=None, action="system.worker_heartbeat", object_type="worker", after={"note": note})
