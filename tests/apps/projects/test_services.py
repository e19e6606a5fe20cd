from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied
from django.http import Http404

from apps.accounts.choices import Role
from apps.accounts.models import Membership
from apps.audit.models import AuditEvent
from apps.core.exceptions import ApplicationError
from apps.projects.models import ProblemDefinition, Project
from apps.projects.services import (
    project_approve,
    project_create,
    project_mark_in_production,
    project_member_remove,
    project_member_set,
    project_retire,
    project_return_to_draft,
    project_submit,
    project_update_definition,
)
from tests.apps.projects.conftest import binary_payload, snapshot


def set_status(project, status, **fields):
    Project.objects.filter(pk=project.pk).update(status=status, **fields)
    project.refresh_from_db()
    return project


# --- Create ----------------------------------------------------------------------------------------------------
def test_stakeholder_files_a_definition_as_a_draft_and_becomes_its_stakeholder(make_user):
    filer = make_user(Role.STAKEHOLDER)
    project = project_create(actor=filer, data=binary_payload())

    project.refresh_from_db()
    assert (project.name, project.status, project.created_by) == ("Churn reduction", "draft", filer)
    definition = ProblemDefinition.objects.get(project=project)
    assert definition.primary_metric == "f1"
    assert definition.primary_threshold == 0.8
    assert definition.secondary_metrics == [{"metric": "recall", "threshold": 0.7}]
    assert definition.cost_false_negative == Decimal("120.00")
    assert definition.gdpr is True
    assert list(Membership.objects.filter(project=project).values_list("user__username", "role")) == [
        (filer.username, "stakeholder")
    ]
    events = list(AuditEvent.objects.filter(project=project).order_by("seq"))
    assert [e.action for e in events] == ["project.create", "membership.set"]
    assert events[0].actor == filer
    assert events[0].after["title"] == "Churn reduction"
    assert events[0].after["status"] == "draft"
    assert events[0].after["cost_false_negative"] == "120"
    assert events[0].after["secondary_metrics"] == [{"metric": "recall", "threshold": 0.7}]


def test_create_strips_text_and_fills_model_defaults(make_user):
    data = binary_payload(title="  Fraud alerts  ")
    del data["currency"], data["stakeholders"], data["secondary_metrics"]
    project = project_create(actor=make_user(Role.ADMIN), data=data)
    assert project.name == "Fraud alerts"
    assert (project.definition.currency, project.definition.stakeholders) == ("EUR", "")
    assert project.definition.secondary_metrics == []


def test_invalid_definition_creates_nothing(make_user):
    filer = make_user(Role.STAKEHOLDER)
    before = snapshot()
    with pytest.raises(ApplicationError) as raised:
        project_create(actor=filer, data=binary_payload(primary_threshold=1.5, cost_false_positive=None))
    assert raised.value.status == 400
    assert raised.value.errors == {
        "primary_threshold": ["F1 is a share: enter a value between 0 and 1."],
        "cost_false_positive": [
            "Binary classification needs the cost of each false positive to estimate the ROI: enter it."
        ],
    }
    assert snapshot() == before
    assert Membership.objects.count() == 0


def test_unknown_fields_are_refused(make_user):
    with pytest.raises(ApplicationError) as raised:
        project_create(actor=make_user(Role.STAKEHOLDER), data=binary_payload(status="approved"))
    assert raised.value.errors == {"status": ["This field is not part of a problem definition."]}
    assert Project.objects.count() == 0


@pytest.mark.parametrize("role", [Role.SCIENTIST, Role.REVIEWER, Role.COMPLIANCE])
def test_only_stakeholders_and_admins_file_definitions(make_user, role):
    before = snapshot()
    with pytest.raises(PermissionDenied):
        project_create(actor=make_user(role), data=binary_payload())
    assert snapshot() == before


# --- Update ----------------------------------------------------------------------------------------------------
def test_update_records_only_the_changed_fields(project):
    filer = project.created_by
    updated = project_update_definition(
        project=project, actor=filer, data={"title": "Churn, v2", "primary_threshold": 0.85, "scope": ""}
    )
    assert updated.name == "Churn, v2"
    assert updated.definition.primary_threshold == 0.85
    event = AuditEvent.objects.get(action="project.update")
    assert event.project_id == project.pk
    assert event.before == {"title": project.name, "primary_threshold": 0.8}
    assert event.after == {"title": "Churn, v2", "primary_threshold": 0.85}


def test_update_without_changes_writes_nothing(project):
    before = snapshot()
    project_update_definition(project=project, actor=project.created_by, data={"primary_threshold": 0.8})
    assert snapshot() == before


def test_update_validates_the_whole_resulting_definition(project):
    before = snapshot()
    with pytest.raises(ApplicationError) as raised:
        project_update_definition(
            project=project, actor=project.created_by, data={"problem_type": "regression", "primary_metric": "mae"}
        )
    assert raised.value.errors == {
        "cost_per_unit_error": ["Regression needs the cost per unit of prediction error to estimate the ROI: enter it."]
    }
    assert snapshot() == before
    project.definition.refresh_from_db()
    assert project.definition.problem_type == "binary"


@pytest.mark.parametrize("status", ["submitted", "approved", "in_production", "retired"])
def test_only_a_draft_can_be_edited(project, status):
    set_status(project, status)
    before = snapshot()
    with pytest.raises(ApplicationError) as raised:
        project_update_definition(project=project, actor=project.created_by, data={"title": "New title"})
    assert (raised.value.status, raised.value.message) == (409, "Only a draft project can be edited.")
    assert snapshot() == before


@pytest.mark.parametrize("role", [Role.SCIENTIST, Role.REVIEWER, Role.COMPLIANCE])
def test_members_other_than_stakeholders_cannot_edit(project, member, role):
    before = snapshot()
    with pytest.raises(PermissionDenied):
        project_update_definition(project=project, actor=member(role), data={"title": "Taken over"})
    assert snapshot() == before


# --- Lifecycle -------------------------------------------------------------------------------------------------
def test_stakeholder_submits_a_draft(project, stakeholder):
    submitted = project_submit(project=project, actor=stakeholder)
    submitted.refresh_from_db()
    assert submitted.status == "submitted"
    assert submitted.submitted_by == stakeholder
    assert submitted.submitted_at is not None
    event = AuditEvent.objects.get(action="project.submit")
    assert (event.actor, event.project_id, event.object_id) == (stakeholder, project.pk, str(project.pk))
    assert (event.before, event.after) == ({"status": "draft"}, {"status": "submitted"})


@pytest.mark.parametrize("status", ["submitted", "approved", "in_production", "retired"])
def test_only_a_draft_can_be_submitted(project, status):
    set_status(project, status)
    before = snapshot()
    with pytest.raises(ApplicationError) as raised:
        project_submit(project=project, actor=project.created_by)
    assert (raised.value.status, raised.value.message) == (409, "Only a draft project can be submitted.")
    assert snapshot() == before


def test_reviewer_approves_a_submitted_project(project, reviewer):
    project_submit(project=project, actor=project.created_by)
    approved = project_approve(project=project, actor=reviewer)
    approved.refresh_from_db()
    assert (approved.status, approved.approved_by) == ("approved", reviewer)
    assert approved.approved_at is not None
    event = AuditEvent.objects.get(action="project.approve")
    assert (event.actor, event.before, event.after) == (reviewer, {"status": "submitted"}, {"status": "approved"})


@pytest.mark.parametrize("status", ["draft", "approved", "in_production", "retired"])
def test_only_a_submitted_project_can_be_approved(project, reviewer, status):
    set_status(project, status)
    before = snapshot()
    with pytest.raises(ApplicationError) as raised:
        project_approve(project=project, actor=reviewer)
    assert (raised.value.status, raised.value.message) == (409, "Only a submitted project can be approved.")
    assert snapshot() == before


def test_reviewer_cannot_approve_own_project(project):
    filer = project.created_by
    Membership.objects.filter(project=project, user=filer).update(role=Role.REVIEWER)
    set_status(project, "submitted", submitted_by=filer)
    before = snapshot()
    with pytest.raises(ApplicationError) as raised:
        project_approve(project=project, actor=filer)
    assert raised.value.status == 403
    assert raised.value.message == "You filed or submitted this project, so someone else must approve it."
    assert snapshot() == before


def test_admin_cannot_approve_a_project_they_submitted(project, admin_user):
    project_submit(project=project, actor=admin_user)
    before = snapshot()
    with pytest.raises(ApplicationError) as raised:
        project_approve(project=project, actor=admin_user)
    assert raised.value.status == 403
    assert snapshot() == before


@pytest.mark.parametrize("role", [Role.STAKEHOLDER, Role.SCIENTIST, Role.COMPLIANCE])
def test_only_reviewers_approve(project, member, role):
    set_status(project, "submitted", submitted_by=project.created_by)
    before = snapshot()
    with pytest.raises(PermissionDenied):
        project_approve(project=project, actor=member(role))
    assert snapshot() == before


def test_reviewer_returns_a_submitted_project_with_a_reason(project, reviewer):
    project_submit(project=project, actor=project.created_by)
    returned = project_return_to_draft(project=project, actor=reviewer, reason="  Add the baseline.  ")
    returned.refresh_from_db()
    assert (returned.status, returned.status_note) == ("draft", "Add the baseline.")
    assert (returned.submitted_at, returned.submitted_by) == (None, None)
    event = AuditEvent.objects.get(action="project.return_to_draft")
    assert event.after == {"status": "draft", "reason": "Add the baseline."}


def test_returning_to_draft_needs_a_reason(project, reviewer):
    set_status(project, "submitted")
    before = snapshot()
    with pytest.raises(ApplicationError) as raised:
        project_return_to_draft(project=project, actor=reviewer, reason="   ")
    assert raised.value.errors == {"reason": ["Say what should change before the project is submitted again."]}
    assert snapshot() == before


@pytest.mark.parametrize("reason", ["Not ready", ""])
def test_only_a_submitted_project_can_be_returned(project, reviewer, reason):
    before = snapshot()
    with pytest.raises(ApplicationError) as raised:
        project_return_to_draft(project=project, actor=reviewer, reason=reason)
    assert (raised.value.status, raised.value.message) == (409, "Only a submitted project can be returned to draft.")
    assert snapshot() == before


def test_reviewer_marks_an_approved_project_in_production(project, reviewer):
    set_status(project, "approved")
    live = project_mark_in_production(project=project, actor=reviewer)
    live.refresh_from_db()
    assert live.status == "in_production"
    assert live.in_production_at is not None
    event = AuditEvent.objects.get(action="project.mark_in_production")
    assert (event.before, event.after) == ({"status": "approved"}, {"status": "in_production"})


@pytest.mark.parametrize("status", ["draft", "submitted", "in_production", "retired"])
def test_only_an_approved_project_goes_into_production(project, reviewer, status):
    set_status(project, status)
    before = snapshot()
    with pytest.raises(ApplicationError) as raised:
        project_mark_in_production(project=project, actor=reviewer)
    assert raised.value.status == 409
    assert snapshot() == before


@pytest.mark.parametrize("status", ["draft", "submitted", "approved", "in_production"])
def test_stakeholder_retires_a_project_from_any_live_state(project, stakeholder, status):
    set_status(project, status)
    retired = project_retire(project=project, actor=stakeholder, reason="Replaced by a vendor product.")
    retired.refresh_from_db()
    assert (retired.status, retired.status_note) == ("retired", "Replaced by a vendor product.")
    assert retired.retired_at is not None
    event = AuditEvent.objects.get(action="project.retire")
    assert (event.before, event.after) == (
        {"status": status},
        {"status": "retired", "reason": "Replaced by a vendor product."},
    )


def test_retiring_needs_no_reason(project, stakeholder):
    retired = project_retire(project=project, actor=stakeholder)
    assert (retired.status, retired.status_note) == ("retired", "")


def test_a_retired_project_cannot_be_retired_again(project, stakeholder):
    set_status(project, "retired")
    before = snapshot()
    with pytest.raises(ApplicationError) as raised:
        project_retire(project=project, actor=stakeholder)
    assert (raised.value.status, raised.value.message) == (409, "This project is already retired.")
    assert snapshot() == before


def test_non_member_cannot_make_any_transition(project, outsider):
    before = snapshot()
    for service in (project_submit, project_approve, project_mark_in_production, project_retire):
        with pytest.raises(PermissionDenied):
            service(project=project, actor=outsider)
    with pytest.raises(PermissionDenied):
        project_return_to_draft(project=project, actor=outsider, reason="x")
    assert snapshot() == before


# --- Members ---------------------------------------------------------------------------------------------------
def test_stakeholder_adds_a_member_by_username(project, make_user):
    scientist = make_user(Role.SCIENTIST, username="ada")
    membership = project_member_set(project=project, actor=project.created_by, username="ADA", role="scientist")
    assert (membership.user, membership.role) == (scientist, "scientist")
    event = AuditEvent.objects.get(action="membership.set")
    assert (event.actor, event.project_id, event.after) == (
        project.created_by,
        project.pk,
        {"user": "ada", "role": "scientist"},
    )


def test_adding_an_unknown_user_names_the_username_field(project):
    before = (snapshot(), Membership.objects.count())
    with pytest.raises(ApplicationError) as raised:
        project_member_set(project=project, actor=project.created_by, username="nobody", role="scientist")
    assert raised.value.errors == {"username": ["No user is called “nobody”: check the spelling."]}
    assert (snapshot(), Membership.objects.count()) == before


def test_scientist_cannot_manage_members(project, member, make_user):
    scientist = member(Role.SCIENTIST)
    make_user(Role.SCIENTIST, username="friend")
    before = (snapshot(), Membership.objects.count())
    with pytest.raises(PermissionDenied):
        project_member_set(project=project, actor=scientist, username="friend", role="reviewer")
    assert (snapshot(), Membership.objects.count()) == before


def test_stakeholder_removes_a_member(project, member):
    scientist = member(Role.SCIENTIST)
    membership = Membership.objects.get(project=project, user=scientist)
    project_member_remove(project=project, actor=project.created_by, membership_id=membership.pk)
    assert not Membership.objects.filter(pk=membership.pk).exists()
    assert AuditEvent.objects.filter(action="membership.remove", project=project).count() == 1


def test_removing_a_membership_of_another_project_is_not_found(project, project_factory, make_user):
    other = project_factory()
    foreign = Membership.objects.create(project=other, user=make_user(Role.SCIENTIST), role="scientist")
    before = (snapshot(), Membership.objects.count())
    with pytest.raises(Http404):
        project_member_remove(project=project, actor=project.created_by, membership_id=foreign.pk)
    assert (snapshot(), Membership.objects.count()) == before
