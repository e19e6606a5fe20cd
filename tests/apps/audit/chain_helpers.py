"""Building valid audit chains fast, and tampering with them the way an attacker with database access would."""

from contextlib import contextmanager
from datetime import timedelta

from django.db import connection
from django.utils import timezone

from apps.audit.chain import GENESIS_HASH, event_hash
from apps.audit.models import AuditEvent


def chain_head() -> tuple[int, str]:
    head = AuditEvent.objects.order_by("-seq").values_list("seq", "hash").first()
    return head if head else (0, GENESIS_HASH)


def build_chain(
    count: int,
    *,
    actor=None,
    project=None,
    action: str = "test.event",
    object_type: str = "test.thing",
    occurred_at=None,
    batch_size: int = 5000,
) -> int:
    """Append `count` valid events after the current head with bulk_create; returns the new head seq.

    Each event's hash is computed with apps.audit.chain.event_hash exactly as audit_record does, so the result
    verifies. Rows are built and written batch by batch, so even 100_000 events stay cheap in memory.
    """
    last_seq, prev_hash = chain_head()
    start = occurred_at or timezone.now()
    batch = []
    for i in range(count):
        seq = last_seq + 1 + i
        fields = {
            "seq": seq,
            "occurred_at": start + timedelta(microseconds=i),
            "actor_id": actor.pk if actor is not None else None,
            "actor_username": actor.get_username() if actor is not None else "",
            "action": action,
            "object_type": object_type,
            "object_id": str(seq),
            "project_id": project.pk if project is not None else None,
            "before": None,
            "after": {"n": seq, "note": "bulk"},
            "request_id": f"req-{seq}",
            "client_ip": "10.0.0.1",
        }
        digest = event_hash(prev_hash, fields)
        batch.append(AuditEvent(**fields, prev_hash=prev_hash, hash=digest))
        prev_hash = digest
        if len(batch) >= batch_size:
            AuditEvent.objects.bulk_create(batch, batch_size=batch_size)
            batch = []
    if batch:
        AuditEvent.objects.bulk_create(batch, batch_size=batch_size)
    return last_seq + count


@contextmanager
def append_only_trigger_disabled():
    """What a superuser can do on PostgreSQL: switch the append-only trigger off. SQLite has no trigger."""
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER ALL")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE audit_auditevent ENABLE TRIGGER ALL")


def raw_sql(sql: str, params=None) -> int:
    """Run SQL behind Django's back (no model save, no signals); returns the affected row count."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount
