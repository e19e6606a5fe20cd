import pytest
from django.http import Http404

from apps.accounts.choices import Role
from apps.accounts.models import Membership
from apps.projects.models import ProblemDefinition, Project
from apps.projects.selectors import (
    project_get,
    project_history,
    project_list,
    project_members,
    project_transitions_available,
)
from apps.projects.services import project_submit
from tests.factories import ProblemDefinitionFactory


def make_project(name, *, status="draft", problem_type="binary", members=()):
    definition = ProblemDefinitionFactory(project__name=name, project__status=status)
    if problem_type != "binary":
        ProblemDefinition.objects.filter(pk=definition.pk).update(problem_type=problem_type)
    for user, role in members:
        Membership.objects.create(project=definition.project, user=user, role=role)
    return definition.project


@pytest.mark.parametrize("role", [Role.ADMIN, Role.COMPLIANCE])
def test_admins_and_compliance_see_every_project(make_user, role):
    first, second = make_project("A"), make_project("B")
    assert set(project_list(actor=make_user(role))) == {first, second}


@pytest.mark.parametrize("role", [Role.STAKEHOLDER, Role.SCIENTIST, Role.REVIEWER])
def test_other_roles_see_only_projects_they_are_members_of(make_user, role):
    user = make_user(role)
    mine = make_project("Mine", members=[(user, role)])
    make_project("Not mine")
    assert list(project_list(actor=user)) == [mine]


def test_inactive_and_anonymous_users_see_nothing(make_user):
    from django.contrib.auth.models import AnonymousUser

    user = make_user(Role.ADMIN, is_active=False)
    make_project("A")
    assert list(project_list(actor=user)) == []
    assert list(project_list(actor=AnonymousUser())) == []


def test_list_filters_by_status_type_and_title(admin_user):
    churn = make_project("Churn reduction", status="submitted")
    make_project("Fraud alerts", status="draft")
    demand = make_project("Demand forecast", status="submitted", problem_type="regression")
    assert list(project_list(actor=admin_user, filters={"status": "submitted"})) == [demand, churn]
    assert list(project_list(actor=admin_user, filters={"problem_type": "regression"})) == [demand]
    assert list(project_list(actor=admin_user, filters={"search": " CHURN "})) == [churn]
    assert list(project_list(actor=admin_user, filters={"status": "submitted", "search": "fraud"})) == []


def test_list_is_newest_first(admin_user):
    first = make_project("First")
    second = make_project("Second")
    assert list(project_list(actor=admin_user)) == [second, first]


def test_project_get_hides_projects_from_non_members(project, outsider):
    with pytest.raises(Http404):
        project_get(actor=outsider, pk=project.pk)


def test_project_get_returns_a_visible_project_with_its_definition(project, django_assert_num_queries):
    with django_assert_num_queries(1):  # one query: membership subquery, definition and users joined
        found = project_get(actor=project.created_by, pk=project.pk)
        assert found.definition.primary_metric == "f1"
        assert found.created_by.username == project.created_by.username


def test_project_members_are_ordered_by_role_then_username(project, make_user):
    zoe, bob = make_user(Role.SCIENTIST, username="zoe"), make_user(Role.SCIENTIST, username="bob")
    Membership.objects.create(project=project, user=zoe, role="scientist")
    Membership.objects.create(project=project, user=bob, role="scientist")
    assert [(m.user.username, m.role) for m in project_members(project=project)] == [
        ("bob", "scientist"),
        ("zoe", "scientist"),
        (project.created_by.username, "stakeholder"),
    ]


def test_history_lists_project_events_oldest_first(project):
    project_submit(project=project, actor=project.created_by)
    assert [e.action for e in project_history(project=project)] == ["project.submit"]


def test_available_transitions_follow_state_role_and_separation_of_duties(project, member, admin_user):
    reviewer = member(Role.REVIEWER)
    assert [t.name for t in project_transitions_available(actor=project.created_by, project=project)] == [
        "submit",
        "retire",
    ]
    assert project_transitions_available(actor=reviewer, project=project) == []
    Project.objects.filter(pk=project.pk).update(status="submitted", submitted_by=admin_user)
    project.refresh_from_db()
    assert [t.name for t in project_transitions_available(actor=reviewer, project=project)] == ["approve", "return"]
    assert [t.name for t in project_transitions_available(actor=admin_user, project=project)] == ["return", "retire"]
