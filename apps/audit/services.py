"""Writing the audit trail. Every service that changes state calls `audit_record` inside its own transaction."""

import hashlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from apps.accounts.permissions import Action, require
from apps.audit.chain import GENESIS_HASH, event_hash, json_safe
from apps.audit.export import ExportDigest, ExportFormat, digest_rows, encode_body, export_filename
from apps.audit.models import AuditEvent
from apps.audit.selectors import audit_chain_head, audit_export_rows, audit_filters_as_json
from apps.core.context import current_request_context
from apps.core.exceptions import ApplicationError

logger = logging.getLogger(__name__)

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


# --- Exports ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AuditExport:
    """An export pinned to the chain: the events that pass `filters` with seq <= `upto`, and the digest of its body."""

    actor: Any
    fmt: ExportFormat
    filters: dict[str, Any]
    upto: int
    digest: ExportDigest

    @property
    def filename(self) -> str:
        return export_filename(self.fmt, self.upto)

    def rows(self) -> Iterator[tuple]:
        return audit_export_rows(actor=self.actor, filters=self.filters, upto=self.upto)

    def body(self) -> Iterator[bytes]:
        """The body again, byte for byte what the digest covers; a difference (the table changed under the export,
        which the append-only trigger forbids) is logged, since the headers are already sent."""
        sha = hashlib.sha256()
        for chunk in encode_body(self.rows(), self.fmt):
            sha.update(chunk)
            yield chunk
        if sha.hexdigest() != self.digest.sha256:
            logger.error(
                "audit export %s streamed bytes with SHA-256 %s, not the announced %s: run manage.py audit_verify",
                self.filename,
                sha.hexdigest(),
                self.digest.sha256,
            )


def _export_pin(*, actor, fmt: str, filters: dict[str, Any], upto: int | None) -> AuditExport:
    """Check the actor may export, pin `upto` to the chain and compute the digest (a first pass over the rows)."""
    require(actor, Action.AUDIT_EXPORT, project=filters.get("project"))
    head_seq, _head_hash = audit_chain_head()
    if upto is None:
        upto = head_seq
    elif upto > head_seq:
        raise ApplicationError(
            "The export cannot go past the newest event.",
            errors={"upto": [f"The newest event is #{head_seq}; choose a seq up to it."]},
        )
    fmt = ExportFormat(fmt)
    digest = digest_rows(audit_export_rows(actor=actor, filters=filters, upto=upto), fmt)
    return AuditExport(actor=actor, fmt=fmt, filters=filters, upto=upto, digest=digest)


def audit_export_start(*, actor, fmt: str, filters: dict[str, Any], upto: int | None = None) -> AuditExport:
    """Start an export: pin it, compute its digest, and record the export itself before a byte is sent.

    The export's own event gets a seq above `upto`, so it is never in the file it describes.
    """
    export = _export_pin(actor=actor, fmt=fmt, filters=filters, upto=upto)
    with transaction.atomic():
        audit_record(
            actor=actor,
            action="audit.export",
            object_type="audit.auditevent",
            project=filters.get("project"),
            after={
                "format": export.fmt.value,
                "filters": audit_filters_as_json(filters),
                "upto": export.upto,
                "count": export.digest.count,
                "sha256": export.digest.sha256,
            },
        )
    return export


def audit_export_sidecar(*, actor, fmt: str, filters: dict[str, Any], upto: int) -> AuditExport:
    """The digest of an export pinned at `upto`, for its sha256sum sidecar. Reveals no event; not audited."""
    return _export_pin(actor=actor, fmt=fmt, filters=filters, upto=upto)
