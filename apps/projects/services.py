"""Projects use cases: file and edit a problem definition, move a project through its lifecycle, manage members.

Lifecycle: draft -> submitted -> approved -> in_production -> retired; a submitted project may be returned to
draft with a reason; anything but a retired project may be retired. Each change is one audited transaction.
"""

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.http import Http404
from django.utils import timezone

from apps.accounts.choices import ProjectRole
from apps.accounts.models import Membership
from apps.accounts.permissions import Action, require
from apps.accounts.services import membership_remove, membership_set
from apps.audit.services import audit_record
from apps.core.exceptions import ApplicationError
from apps.projects.choices import ProjectStatus
from apps.projects.lifecycle import (
    APPROVE,
    MARK_IN_PRODUCTION,
    RETIRE,
    RETURN,
    SUBMIT,
    Transition,
    separation_of_duties_violation,
)
from apps.projects.models import ProblemDefinition, Project
from apps.projects.validation import DEFINITION_FIELDS, PAYLOAD_FIELDS, TEXT_FIELDS, definition_errors

INVALID_DEFINITION_MESSAGE = "The problem definition is not complete yet: correct the fields marked."


# --- Problem definitions ---------------------------------------------------------------------------------------
def _model_defaults() -> dict[str, Any]:
    defaults: dict[str, Any] = {"title": ""}
    for name in DEFINITION_FIELDS:
        model_field = ProblemDefinition._meta.get_field(name)
        defaults[name] = model_field.get_default() if model_field.has_default() else None
    for name in TEXT_FIELDS:
        if defaults[name] is None:
            defaults[name] = ""
    return defaults


def _current_payload(project: Project) -> dict[str, Any]:
    definition = project.definition
    return {"title": project.name, **{name: getattr(definition, name) for name in DEFINITION_FIELDS}}


def _normalized(data: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(data) - set(PAYLOAD_FIELDS))
    if unknown:
        raise ApplicationError(
            "Some fields are not part of a problem definition.",
            errors={name: ["This field is not part of a problem definition."] for name in unknown},
        )
    cleaned = dict(data)
    for name in TEXT_FIELDS & set(cleaned):
        cleaned[name] = "" if cleaned[name] is None else str(cleaned[name]).strip()
    if "secondary_metrics" in cleaned:
        items = cleaned["secondary_metrics"]
        if items is None:
            cleaned["secondary_metrics"] = []
        elif isinstance(items, list | tuple):
            cleaned["secondary_metrics"] = [_secondary_item(item) for item in items]
    return cleaned


def _secondary_item(item: Any) -> Any:
    """Thresholds are stored as JSON numbers; anything malformed is left for the validation to name."""
    threshold = item.get("threshold") if isinstance(item, dict) else None
    if isinstance(threshold, int | float | Decimal) and not isinstance(threshold, bool):
        return {**item, "threshold": float(threshold)}
    return item


def _validated(payload: dict[str, Any]) -> None:
    errors = definition_errors(payload)
    if errors:
        raise ApplicationError(INVALID_DEFINITION_MESSAGE, errors=errors)


def project_create(*, actor, data: dict[str, Any]) -> Project:
    """File a problem definition: a draft project whose creator becomes its business stakeholder."""
    require(actor, Action.PROJECT_CREATE)
    payload = {**_model_defaults(), **_normalized(data)}
    _validated(payload)
    with transaction.atomic():
        project = Project.objects.create(name=payload["title"], created_by=actor)
        ProblemDefinition.objects.create(project=project, **{name: payload[name] for name in DEFINITION_FIELDS})
        audit_record(
            actor=actor,
            action="project.create",
            obj=project,
            project=project,
            after={"status": project.status, **payload},
        )
        membership_set(actor=None, project=project, user=actor, role=ProjectRole.STAKEHOLDER)
    return project


def project_update_definition(*, project: Project, actor, data: dict[str, Any]) -> Project:
    """Change some fields of a draft's definition. The whole definition must still be valid afterwards."""
    require(actor, Action.PROJECT_EDIT, project)
    changes = _normalized(data)
    with transaction.atomic():
        locked = Project.objects.select_for_update().get(pk=project.pk)
        # Locked on its own: PostgreSQL refuses FOR UPDATE on the nullable side of the reverse one-to-one join.
        locked.definition = ProblemDefinition.objects.select_for_update().get(project=locked)
        if locked.status != ProjectStatus.DRAFT:
            raise ApplicationError("Only a draft project can be edited.", status=409)
        current = _current_payload(locked)
        payload = {**current, **changes}
        _validated(payload)
        changed = [name for name in PAYLOAD_FIELDS if payload[name] != current[name]]
        if not changed:
            return locked
        definition = locked.definition
        for name in changed:
            if name == "title":
                locked.name = payload["title"]
            else:
                setattr(definition, name, payload[name])
        locked.save(update_fields=["name", "updated_at"])  # the project changed, even when only its definition did
        definition_changed = [name for name in changed if name != "title"]
        if definition_changed:
            definition.save(update_fields=[*definition_changed, "updated_at"])
        audit_record(
            actor=actor,
            action="project.update",
            obj=locked,
            project=locked,
            before={name: current[name] for name in changed},
            after={name: payload[name] for name in changed},
        )
    locked.definition.refresh_from_db()
    return locked


# --- Lifecycle -------------------------------------------------------------------------------------------------
def _transition(
    transition: Transition,
    *,
    project: Project,
    actor,
    stamp: Callable[[Project], list[str]],
    reason: str = "",
) -> Project:
    """Move `project` along `transition`: permission, source state, separation of duties, timestamps, audit."""
    require(actor, transition.action, project)
    reason = (reason or "").strip()
    with transaction.atomic():
        locked = Project.objects.select_for_update().get(pk=project.pk)
        if locked.status not in transition.sources:
            raise ApplicationError(transition.wrong_state, status=409)
        if transition.reason == "required" and not reason:
            raise ApplicationError(
                "Give a reason.", errors={"reason": ["Say what should change before the project is submitted again."]}
            )
        violation = separation_of_duties_violation(transition, actor=actor, project=locked)
        if violation:
            raise ApplicationError(violation, status=403)
        before = {"status": locked.status}
        locked.status = transition.target
        locked.status_note = reason
        fields = ["status", "status_note", "updated_at", *stamp(locked)]
        locked.save(update_fields=fields)
        after = {"status": locked.status}
        if transition.reason != "none":
            after["reason"] = reason
        audit_record(
            actor=actor, action=transition.action.value, obj=locked, project=locked, before=before, after=after
        )
    return locked


def project_submit(*, project: Project, actor) -> Project:
    def stamp(locked: Project) -> list[str]:
        locked.submitted_at, locked.submitted_by = timezone.now(), actor
        return ["submitted_at", "submitted_by"]

    return _transition(SUBMIT, project=project, actor=actor, stamp=stamp)


def project_approve(*, project: Project, actor) -> Project:
    """Approve a submitted project. Whoever filed or submitted it may not (separation of duties)."""

    def stamp(locked: Project) -> list[str]:
        locked.approved_at, locked.approved_by = timezone.now(), actor
        return ["approved_at", "approved_by"]

    return _transition(APPROVE, project=project, actor=actor, stamp=stamp)


def project_return_to_draft(*, project: Project, actor, reason: str) -> Project:
    def stamp(locked: Project) -> list[str]:
        locked.submitted_at, locked.submitted_by = None, None
        return ["submitted_at", "submitted_by"]

    return _transition(RETURN, project=project, actor=actor, stamp=stamp, reason=reason)


def project_mark_in_production(*, project: Project, actor) -> Project:
    def stamp(locked: Project) -> list[str]:
        locked.in_production_at = timezone.now()
        return ["in_production_at"]

    return _transition(MARK_IN_PRODUCTION, project=project, actor=actor, stamp=stamp)


def project_retire(*, project: Project, actor, reason: str = "") -> Project:
    def stamp(locked: Project) -> list[str]:
        locked.retired_at = timezone.now()
        return ["retired_at"]

    return _transition(RETIRE, project=project, actor=actor, stamp=stamp, reason=reason)


# --- Members ---------------------------------------------------------------------------------------------------
def project_member_set(*, project: Project, actor, username: str, role: str) -> Membership:
    """Add the user called `username` to the project with `role`, or change their role."""
    require(actor, Action.MEMBERSHIP_MANAGE, project)
    username = (username or "").strip()
    if not username:
        raise ApplicationError("Say who to add.", errors={"username": ["Enter the username of the person to add."]})
    user = get_user_model().objects.filter(username__iexact=username).first()
    if user is None:
        raise ApplicationError(
            "There is no such user.", errors={"username": [f"No user is called “{username}”: check the spelling."]}
        )
    return membership_set(actor=actor, project=project, user=user, role=role)


def project_member_remove(*, project: Project, actor, membership_id) -> None:
    require(actor, Action.MEMBERSHIP_MANAGE, project)
    membership = Membership.objects.select_related("user", "project").filter(project=project, pk=membership_id).first()
    if membership is None:
        raise Http404("No such member in this project.")
    membership_remove(actor=actor, membership=membership)
