"""The policy module: can() and require() for every action and role, globally, as member, as non-member.

The expected grants are written out here on purpose rather than read from POLICY: changing who may do what must
change this file too.
"""

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied

from apps.accounts.choices import Role
from apps.accounts.permissions import POLICY, Action, can, require
from tests.factories import MembershipFactory, UserFactory

S, D, R, C, A = Role.STAKEHOLDER, Role.SCIENTIST, Role.REVIEWER, Role.COMPLIANCE, Role.ADMIN
ROLES = [S, D, R, C, A]
PROJECT_ROLES = [S, D, R, C]

# Granted by the platform role alone, in every project (and for actions about no project).
GLOBAL = {
    Action.PROJECT_CREATE: {S, A},
    Action.PROJECT_VIEW: {C, A},
    Action.PROJECT_EDIT: {A},
    Action.PROJECT_SUBMIT: {A},
    Action.PROJECT_APPROVE: {A},
    Action.PROJECT_RETURN: {A},
    Action.PROJECT_MARK_IN_PRODUCTION: {A},
    Action.PROJECT_RETIRE: {A},
    Action.MEMBERSHIP_MANAGE: {A},
    Action.AUDIT_VIEW: {C, A},
    Action.AUDIT_EXPORT: {C},
    Action.USER_MANAGE: {A},
    Action.TOKEN_MANAGE_OWN: {S, D, R, C, A},
    Action.DATASET_VIEW: {C, A},
    Action.DATASET_INGEST: {A},
    Action.DATASET_EDIT: {A},
    Action.DATASET_MARK_COLUMNS: {A},
    Action.DATASET_OVERRIDE_VALIDATION: set(),
    Action.CONNECTION_MANAGE: {A},
    Action.EXPERIMENT_VIEW: {C, A},
    Action.EXPERIMENT_LAUNCH: {A},
    Action.EXPERIMENT_CANCEL: {A},
    Action.MODEL_VIEW: {C, A},
    Action.MODEL_REGISTER: {A},
    Action.PROMOTION_DECIDE: {A},
    Action.MODEL_ROLLBACK: {A},
    Action.DEPLOYMENT_VIEW: {C, A},
    Action.DEPLOYMENT_MANAGE: {A},
    Action.PREDICTION_VIEW: {C, A},
    Action.PREDICTION_EXPLAIN: {C, A},
    Action.GROUND_TRUTH_RECORD: {A},
    Action.MONITOR_VIEW: {C, A},
    Action.MONITORING_OVERVIEW: {R, C, A},
    Action.MONITOR_CONFIGURE: {A},
    Action.ALERT_HANDLE: {A},
    Action.RETRAINING_MANAGE: {A},
    Action.FEATURE_VIEW: {D, R, C, A},
    Action.FEATURE_DEFINE: {A},
    Action.TRAINING_SET_BUILD: {A},
    Action.PERSONAL_FEATURE_EXCEPTION: {C},
    Action.ONLINE_FEATURES_READ: {A},
    Action.NOTIFICATION_READ_OWN: {S, D, R, C, A},
    Action.WEBHOOK_MANAGE: {A},
}
# Granted by the membership role in the project the action is about.
AS_MEMBER = {
    Action.PROJECT_CREATE: set(),
    Action.PROJECT_VIEW: {S, D, R, C},
    Action.PROJECT_EDIT: {S},
    Action.PROJECT_SUBMIT: {S},
    Action.PROJECT_APPROVE: {R},
    Action.PROJECT_RETURN: {R},
    Action.PROJECT_MARK_IN_PRODUCTION: {R},
    Action.PROJECT_RETIRE: {S},
    Action.MEMBERSHIP_MANAGE: {S},
    Action.AUDIT_VIEW: {C},
    Action.AUDIT_EXPORT: {C},
    Action.USER_MANAGE: set(),
    Action.TOKEN_MANAGE_OWN: set(),
    Action.DATASET_VIEW: {S, D, R, C},
    Action.DATASET_INGEST: {D},
    Action.DATASET_EDIT: {D},
    Action.DATASET_MARK_COLUMNS: {D, C},
    Action.DATASET_OVERRIDE_VALIDATION: {D},
    Action.CONNECTION_MANAGE: {D},
    Action.EXPERIMENT_VIEW: {S, D, R, C},
    Action.EXPERIMENT_LAUNCH: {D},
    Action.EXPERIMENT_CANCEL: {D},
    Action.MODEL_VIEW: {S, D, R, C},
    Action.MODEL_REGISTER: {D},
    Action.PROMOTION_DECIDE: {R},
    Action.MODEL_ROLLBACK: {R},
    Action.DEPLOYMENT_VIEW: {S, D, R, C},
    Action.DEPLOYMENT_MANAGE: {D, R},
    Action.PREDICTION_VIEW: {D, R, C},
    Action.PREDICTION_EXPLAIN: {D, R, C},
    Action.GROUND_TRUTH_RECORD: {S, D},
    Action.MONITOR_VIEW: {S, D, R, C},
    Action.MONITORING_OVERVIEW: set(),
    Action.MONITOR_CONFIGURE: {D, R},
    Action.ALERT_HANDLE: {D, R},
    Action.RETRAINING_MANAGE: {D},
    Action.FEATURE_VIEW: set(),
    Action.FEATURE_DEFINE: {D},
    Action.TRAINING_SET_BUILD: {D},
    Action.PERSONAL_FEATURE_EXCEPTION: {C},
    Action.ONLINE_FEATURES_READ: {D, R},
    Action.NOTIFICATION_READ_OWN: set(),
    Action.WEBHOOK_MANAGE: set(),
}


def test_expectations_cover_every_action():
    assert set(GLOBAL) == set(Action) == set(AS_MEMBER) == set(POLICY)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("action", list(Action))
def test_platform_role_grants_without_a_project(db, action, role):
    user = UserFactory(role=role)

    assert can(user, action) is (role in GLOBAL[action])


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("action", list(Action))
def test_non_member_gets_only_platform_wide_grants_on_a_project(project, action, role):
    outsider = UserFactory(role=role)

    assert can(outsider, action, project) is (role in GLOBAL[action])


@pytest.mark.parametrize("membership_role", PROJECT_ROLES)
@pytest.mark.parametrize("action", list(Action))
def test_membership_role_grants_in_its_project(project, action, membership_role):
    # A platform role that grants nothing but tokens, so only the membership can grant the rest.
    user = UserFactory(role=D)
    MembershipFactory(user=user, project=project, role=membership_role)
    expected = membership_role in AS_MEMBER[action] or D in GLOBAL[action]

    assert can(user, action, project) is expected


@pytest.mark.parametrize("membership_role", PROJECT_ROLES)
@pytest.mark.parametrize("action", list(Action))
def test_membership_grants_nothing_in_another_project(project, project_factory, action, membership_role):
    user = UserFactory(role=D)
    MembershipFactory(user=user, project=project, role=membership_role)
    other = project_factory()

    assert can(user, action, other) is (D in GLOBAL[action])


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("action", list(Action))
def test_deactivated_user_may_do_nothing(project, action, role):
    user = UserFactory(role=role, is_active=False)
    if role != A:
        MembershipFactory(user=user, project=project, role=role)

    assert can(user, action) is False
    assert can(user, action, project) is False


@pytest.mark.parametrize("action", list(Action))
def test_anonymous_may_do_nothing(project, action):
    assert can(AnonymousUser(), action) is False
    assert can(AnonymousUser(), action, project) is False
    assert can(None, action, project) is False


@pytest.mark.parametrize("action", list(Action))
def test_superuser_counts_as_admin_whatever_their_role(db, action):
    superuser = UserFactory(role=S, is_superuser=True)

    assert can(superuser, action) is (A in GLOBAL[action])


def test_require_passes_silently_when_allowed(admin_user):
    assert require(admin_user, Action.USER_MANAGE) is None


def test_require_raises_permission_denied_with_the_rule_in_words(user):
    with pytest.raises(PermissionDenied) as caught:
        require(user, Action.USER_MANAGE)

    assert str(caught.value) == "You may not create users, change roles, deactivate."


def test_require_uses_the_membership(project, member):
    reviewer = member(R)

    require(reviewer, Action.PROJECT_APPROVE, project)
    with pytest.raises(PermissionDenied):
        require(reviewer, Action.PROJECT_EDIT, project)


def test_membership_role_is_looked_up_once_per_user_and_project(project, member, django_assert_num_queries):
    stakeholder = member(S)

    with django_assert_num_queries(1):
        assert can(stakeholder, Action.PROJECT_EDIT, project) is True
        assert can(stakeholder, Action.PROJECT_SUBMIT, project) is True
        assert can(stakeholder, Action.PROJECT_APPROVE, project) is False
