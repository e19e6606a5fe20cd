"""Writing the audit trail. Every service that changes state calls `audit_record` inside its own transaction."""

from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from apps.audit.chain import GENESIS_HASH, event_hash, json_safe
from apps.audit.models import AuditEvent
from apps.core.context import current_request_context

# Any constant works; it names the one PostgreSQL advisory lock that serialises appends to the chain.
_CHAIN_LOCK_KEY = 0x6D6C_6175_6469_74  # "mlaudit"


def _lock_chain() -> None:
    """Serialise appends so two transactions never link to the same predecessor.

    PostgreSQL: a transaction-scoped advisory lock, released at commit or rollback. SQLite: every write transaction
    already holds the database write lock from BEGIN (transaction_mode IMMEDIATE in settings).
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_CHAIN_LOCK_KEY])


def _chain_head() -> tuple[int, str]:
    last = AuditEvent.objects.order_by("-seq").values_list("seq", "hash").first()
    return last if last else (0, GENESIS_HASH)


def object_reference(obj) -> tuple[str, str]:
    if obj is None:
        return "", ""
    return obj._meta.label_lower, str(obj.pk)


def audit_record(
    *,
    actor,
    action: str,
    obj=None,
    object_type: str = "",
    object_id: str = "",
    project=None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event to the chain, in the caller's transaction (it commits or rolls back with the change)."""
    if obj is not None:
        object_type, object_id = object_reference(obj)
    context = current_request_context()
    actor_id = actor.pk if actor is not None and getattr(actor, "is_authenticated", False) else None
    with transaction.atomic():
        _lock_chain()
        last_seq, prev_hash = _chain_head()
        fields = {
            "seq": last_seq + 1,
            "occurred_at": timezone.now(),
            "actor_id": actor_id,
            "actor_username": actor.get_username() if actor_id else "",
            "action": action,
            "object_type": object_type,
            "object_id": str(object_id),
            "project_id": project.pk if project is not None else None,
            "before": json_safe(before),
            "after": json_safe(after),
            "request_id": context.request_id,
            "client_ip": context.client_ip,
        }
        return AuditEvent.objects.create(**fields, prev_hash=prev_hash, hash=event_hash(prev_hash, fields))
