"""Reading projects. Visibility lives here: who may see a project follows Action.PROJECT_VIEW in the policy."""

from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import Http404

from apps.accounts.models import Membership
from apps.accounts.permissions import POLICY, Action, can, global_role
from apps.audit.models import AuditEvent
from apps.projects.lifecycle import TRANSITIONS, Transition, separation_of_duties_violation
from apps.projects.models import Project


def project_ids_granting(*, actor, action: Action):
    """The projects where `actor` may do `action`: None for every project (a global role grants it), else a subquery
    of the project ids the actor's memberships grant it in. Other apps filter their rows with it."""
    rule = POLICY[action]
    role = global_role(actor)
    if role is None:
        return Project.objects.none().values("pk")
    if role in rule.global_roles:
        return None
    return Membership.objects.filter(user=actor, role__in=rule.project_roles).values("project_id")


def row_by_pk(queryset, pk):
    """The row with this primary key, or None (also for something that is not a UUID)."""
    try:
        return queryset.filter(pk=pk).first()
    except (ValueError, TypeError, ValidationError):
        return None


def project_visible_queryset(*, actor) -> QuerySet[Project]:
    """The projects `actor` may see: all of them for the roles that see every project, else their memberships'."""
    rule = POLICY[Action.PROJECT_VIEW]
    role = global_role(actor)
    projects = Project.objects.select_related("definition", "created_by", "submitted_by", "approved_by")
    if role is None:
        return projects.none()
    if role in rule.global_roles:
        return projects.all()
    member_of = Membership.objects.filter(user=actor, role__in=rule.project_roles).values("project_id")
    return projects.filter(pk__in=member_of)


def project_list(*, actor, filters: dict[str, Any] | None = None) -> QuerySet[Project]:
    """Visible projects, newest first. Filters: status, problem_type, search (in the title)."""
    filters = filters or {}
    projects = project_visible_queryset(actor=actor)
    if filters.get("status"):
        projects = projects.filter(status=filters["status"])
    if filters.get("problem_type"):
        projects = projects.filter(definition__problem_type=filters["problem_type"])
    if filters.get("search"):
        projects = projects.filter(name__icontains=filters["search"].strip())
    return projects.order_by("-created_at", "-pk")


def project_get(*, actor, pk) -> Project:
    """One visible project; a project the actor may not see does not exist for them (404, never 403)."""
    project = project_visible_queryset(actor=actor).filter(pk=pk).first()
    if project is None:
        raise Http404("No such project.")
    return project


def project_members(*, project: Project) -> QuerySet[Membership]:
    return Membership.objects.filter(project=project).select_related("user").order_by("role", "user__username")


def project_history(*, project: Project, limit: int = 50) -> list[AuditEvent]:
    """The latest lifecycle and definition events of the project (from the audit trail), oldest first."""
    events = AuditEvent.objects.filter(project_id=project.pk, action__startswith="project.").order_by("-seq")[:limit]
    return list(reversed(events))


def project_transitions_available(*, actor, project: Project) -> list[Transition]:
    """The lifecycle steps `actor` may take on `project` now (to offer them as buttons)."""
    return [
        transition
        for transition in TRANSITIONS.values()
        if project.status in transition.sources
        and can(actor, transition.action, project)
        and separation_of_duties_violation(transition, actor=actor, project=project) is None
    ]
