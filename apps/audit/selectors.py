"""Reading the audit trail: who may see which events, filtering, the chain head."""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.db.models import QuerySet

from apps.accounts.models import Membership
from apps.accounts.permissions import POLICY, Action, can, global_role
from apps.audit.chain import GENESIS_HASH
from apps.audit.export import EXPORT_COLUMNS
from apps.audit.models import AuditEvent
from apps.projects.models import Project

# Rows fetched from the database at a time by an export (a server-side cursor on PostgreSQL).
EXPORT_CHUNK_SIZE = 2000

# The filter names shared by the HTML form, the API query string and the export.
FILTER_NAMES = ("project", "actor", "action", "object_type", "object_id", "date_from", "date_to")


@dataclass(frozen=True)
class AuditScope:
    """The events a user may see (or export): all of them, or those of some projects."""

    everything: bool
    project_ids: frozenset

    @property
    def allowed(self) -> bool:
        return self.everything or bool(self.project_ids)

    def covers(self, project_id) -> bool:
        return self.everything or project_id in self.project_ids


def audit_scope(*, actor, action: Action = Action.AUDIT_VIEW) -> AuditScope:
    """Where `actor` may do `action` (AUDIT_VIEW or AUDIT_EXPORT) according to the policy table.

    A platform-wide grant covers every event; otherwise the projects where the actor's membership role is one the
    policy grants the action to. Cached on the user object for the rest of the request.
    """
    cache = actor.__dict__.setdefault("_audit_scope_cache", {}) if actor is not None else {}
    if action in cache:
        return cache[action]
    if global_role(actor) is None:
        scope = AuditScope(everything=False, project_ids=frozenset())
    elif can(actor, action):
        scope = AuditScope(everything=True, project_ids=frozenset())
    else:
        project_ids = Membership.objects.filter(user=actor, role__in=POLICY[action].project_roles).values_list(
            "project_id", flat=True
        )
        scope = AuditScope(everything=False, project_ids=frozenset(project_ids))
    cache[action] = scope
    return scope


def audit_filter_projects(*, actor) -> QuerySet[Project]:
    """The projects `actor` may pick in the project filter."""
    scope = audit_scope(actor=actor)
    projects = Project.objects.order_by("name")
    if scope.everything:
        return projects
    return projects.filter(pk__in=scope.project_ids)


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def _apply_filters(events: QuerySet[AuditEvent], filters: dict[str, Any]) -> QuerySet[AuditEvent]:
    if filters.get("project") is not None:
        events = events.filter(project_id=filters["project"].pk)
    if filters.get("actor"):
        events = events.filter(actor_username=filters["actor"])
    action = filters.get("action")
    if action:
        events = events.filter(action__startswith=action) if action.endswith(".") else events.filter(action=action)
    if filters.get("object_type"):
        events = events.filter(object_type=filters["object_type"])
    if filters.get("object_id"):
        events = events.filter(object_id=filters["object_id"])
    if filters.get("date_from"):
        events = events.filter(occurred_at__gte=_day_start(filters["date_from"]))
    if filters.get("date_to"):
        events = events.filter(occurred_at__lt=_day_start(filters["date_to"] + timedelta(days=1)))
    return events


def audit_event_list(
    *, actor, filters: dict[str, Any] | None = None, scope_action: Action = Action.AUDIT_VIEW
) -> QuerySet[AuditEvent]:
    """The events `actor` may see, newest first, narrowed by `filters` (cleaned data of AuditFilterForm).

    `scope_action=AUDIT_EXPORT` restricts to what the actor may export instead of what they may see.
    """
    scope = audit_scope(actor=actor, action=scope_action)
    if not scope.allowed:
        return AuditEvent.objects.none()
    events = AuditEvent.objects.select_related("project").order_by("-seq")
    if not scope.everything:
        events = events.filter(project_id__in=scope.project_ids)
    return _apply_filters(events, filters or {})


def audit_event_get(*, actor, seq: int) -> AuditEvent:
    """One event the actor may see; AuditEvent.DoesNotExist otherwise (outside the scope is the same as absent)."""
    return audit_event_list(actor=actor).get(seq=seq)


def audit_export_rows(*, actor, filters: dict[str, Any], upto: int) -> Iterator[tuple]:
    """The exported columns of the events `actor` may export, seq <= `upto`, oldest first, streamed in chunks."""
    events = audit_event_list(actor=actor, filters=filters, scope_action=Action.AUDIT_EXPORT)
    return (
        events.filter(seq__lte=upto).order_by("seq").values_list(*EXPORT_COLUMNS).iterator(chunk_size=EXPORT_CHUNK_SIZE)
    )


def audit_chain_head() -> tuple[int, str]:
    """The seq and hash of the newest event (0 and the genesis hash for an empty chain)."""
    head = AuditEvent.objects.order_by("-seq").values_list("seq", "hash").first()
    return head if head else (0, GENESIS_HASH)


def audit_filters_as_json(filters: dict[str, Any]) -> dict[str, str]:
    """The filters that were set, as plain strings (for the export's own audit event and for query strings)."""
    out = {}
    for name in FILTER_NAMES:
        value = filters.get(name)
        if value in (None, ""):
            continue
        if isinstance(value, Project):
            value = value.pk
        elif isinstance(value, date):
            value = value.isoformat()
        out[name] = str(value)
    return out
