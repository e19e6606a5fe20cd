"""The audit hash chain: canonical content of an event and its hash. Used to write events and to verify them."""

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder

GENESIS_HASH = "0" * 64

# The fields that the hash covers, in the canonical document. Adding a field here would break old chains.
CHAINED_FIELDS = (
    "seq",
    "occurred_at",
    "actor_id",
    "actor_username",
    "action",
    "object_type",
    "object_id",
    "project_id",
    "before",
    "after",
    "request_id",
    "client_ip",
)


def json_safe(value: Any) -> Any:
    """Decimals, dates, UUIDs... as the plain JSON values the database gives back, so hashes survive a round trip."""
    if value is None:
        return None
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def format_timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def canonical_content(fields: dict[str, Any]) -> str:
    document = {}
    for name in CHAINED_FIELDS:
        value = fields.get(name)
        if name == "occurred_at":
            value = format_timestamp(value)
        elif name in {"actor_id", "project_id"} and value is not None:
            value = str(value)
        document[name] = value
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def event_hash(prev_hash: str, fields: dict[str, Any]) -> str:
    return hashlib.sha256(f"{prev_hash}\n{canonical_content(fields)}".encode()).hexdigest()


def fields_of(event) -> dict[str, Any]:
    """The chained fields of a stored AuditEvent."""
    return {name: getattr(event, name) for name in CHAINED_FIELDS}
