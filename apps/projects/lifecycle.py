"""The project lifecycle as data: which transitions exist, from which states, under which permission.

Services enforce it (apps/projects/services.py); pages and the API read it to offer only the transitions a user
may make. draft -> submitted -> approved -> in_production -> retired; submitted -> draft (returned with a reason);
draft, submitted, approved and in_production -> retired.
"""

from dataclasses import dataclass

from apps.accounts.permissions import Action
from apps.projects.choices import ProjectStatus


@dataclass(frozen=True)
class Transition:
    name: str  # URL name and API action
    label: str  # button text
    action: Action  # permission, and the audit event's action
    sources: frozenset[str]
    target: str
    wrong_state: str  # the message when the project is not in a source state
    reason: str = "none"  # "none", "optional" or "required"
    style: str = ""  # CSS class of the button


SUBMIT = Transition(
    "submit",
    "Submit for review",
    Action.PROJECT_SUBMIT,
    frozenset({ProjectStatus.DRAFT}),
    ProjectStatus.SUBMITTED,
    "Only a draft project can be submitted.",
)
APPROVE = Transition(
    "approve",
    "Approve for development",
    Action.PROJECT_APPROVE,
    frozenset({ProjectStatus.SUBMITTED}),
    ProjectStatus.APPROVED,
    "Only a submitted project can be approved.",
)
RETURN = Transition(
    "return",
    "Return to draft",
    Action.PROJECT_RETURN,
    frozenset({ProjectStatus.SUBMITTED}),
    ProjectStatus.DRAFT,
    "Only a submitted project can be returned to draft.",
    reason="required",
    style="button-secondary",
)
MARK_IN_PRODUCTION = Transition(
    "mark_in_production",
    "Mark as in production",
    Action.PROJECT_MARK_IN_PRODUCTION,
    frozenset({ProjectStatus.APPROVED}),
    ProjectStatus.IN_PRODUCTION,
    "Only a project approved for development can be marked as in production.",
)
RETIRE = Transition(
    "retire",
    "Retire",
    Action.PROJECT_RETIRE,
    frozenset({ProjectStatus.DRAFT, ProjectStatus.SUBMITTED, ProjectStatus.APPROVED, ProjectStatus.IN_PRODUCTION}),
    ProjectStatus.RETIRED,
    "This project is already retired.",
    reason="optional",
    style="button-danger",
)
TRANSITIONS: dict[str, Transition] = {t.name: t for t in (SUBMIT, APPROVE, RETURN, MARK_IN_PRODUCTION, RETIRE)}

SELF_APPROVAL_MESSAGE = "You filed or submitted this project, so someone else must approve it."


def separation_of_duties_violation(transition: Transition, *, actor, project) -> str | None:
    """Why `actor` may not make `transition` on `project` whatever their role, or None. No exceptions, not even
    for admins: who filed or submitted a project never approves it."""
    if transition is APPROVE and actor.pk in {project.created_by_id, project.submitted_by_id}:
        return SELF_APPROVAL_MESSAGE
    return None


# How the history on the project page names each audit event of a project.
EVENT_LABELS = {
    "project.create": "Filed",
    "project.update": "Definition edited",
    Action.PROJECT_SUBMIT.value: "Submitted for review",
    Action.PROJECT_APPROVE.value: "Approved for development",
    Action.PROJECT_RETURN.value: "Returned to draft",
    Action.PROJECT_MARK_IN_PRODUCTION.value: "Marked as in production",
    Action.PROJECT_RETIRE.value: "Retired",
}
