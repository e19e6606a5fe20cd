"""Retraining services: policies (permission matrix, schedule kept in sync with beat), starting (no production
version, joining the running retraining, which triggers retrain) and the schedule's tick."""

import json

import pytest
from django.core.exceptions import PermissionDenied
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from apps.audit.models import AuditEvent
from apps.core.exceptions import ApplicationError
from apps.monitoring.choices import Figure, RetrainingStatus, RetrainingTrigger
from apps.monitoring.models import RetrainingPolicy, RetrainingRun
from apps.monitoring.services.retraining import (
    SCHEDULED_TASK,
    retraining_on_alert,
    retraining_policy_set,
    retraining_start,
    retraining_start_by_hand,
)
from tests.apps.monitoring.retraining_helpers import audit_actions, raise_alert, state
from workers.tasks.monitoring_retraining import scheduled_retraining_task

pytestmark = pytest.mark.django_db

ALLOWED = {"scientist", "admin"}
KINDS = ["anonymous", "non_member", "stakeholder", "scientist", "reviewer", "compliance", "admin"]


def set_policy(model, actor, **overrides):
    values = {"on_drift_alert": True, "on_performance_alert": True, "schedule_days": None, "enabled": True}
    return retraining_policy_set(registered_model=model, actor=actor, **{**values, **overrides})


@pytest.fixture
def policy(production_version, scientist):
    return set_policy(production_version.registered_model, scientist, on_performance_alert=False)


@pytest.mark.parametrize("kind", KINDS)
def test_only_scientists_and_admins_set_a_policy_and_a_refusal_changes_nothing(kind, caller, production_version):
    user = caller(kind)
    model = production_version.registered_model
    before = state()

    if kind in ALLOWED:
        policy = set_policy(model, user, schedule_days=7)
        assert (policy.owner_id, policy.schedule_days) == (user.pk, 7)
        assert audit_actions(policy) == ["monitoring.retraining_policy_set"]
    else:
        with pytest.raises(PermissionDenied):
            set_policy(model, user, schedule_days=7)
        assert state() == before


def test_saving_a_policy_makes_the_saver_its_owner(policy, production_version, admin_user):
    changed = set_policy(production_version.registered_model, admin_user, on_drift_alert=False)
    assert RetrainingPolicy.objects.get().pk == policy.pk
    assert (changed.owner_id, changed.on_drift_alert) == (admin_user.pk, False)
    event = AuditEvent.objects.filter(object_id=str(policy.pk)).order_by("-seq").first()
    assert (event.before["owner"], event.after["owner"]) == (policy.owner.username, admin_user.username)


def test_a_bad_schedule_is_refused_with_a_field_error(production_version, scientist):
    before = state()
    with pytest.raises(ApplicationError) as error:
        set_policy(production_version.registered_model, scientist, schedule_days=0)
    assert list(error.value.errors) == ["schedule_days"]
    assert state() == before


def test_the_schedule_is_a_periodic_task_kept_in_sync_and_removed(production_version, scientist):
    model = production_version.registered_model
    policy = set_policy(model, scientist, schedule_days=7)
    task = PeriodicTask.objects.get()
    assert (task.task, json.loads(task.args), task.enabled) == (SCHEDULED_TASK, [str(policy.pk)], True)
    assert (task.interval.every, task.interval.period) == (7, IntervalSchedule.DAYS)
    assert policy.periodic_task_id == task.pk

    set_policy(model, scientist, schedule_days=3)
    task = PeriodicTask.objects.get()
    assert task.interval.every == 3

    set_policy(model, scientist, schedule_days=3, enabled=False)
    assert not PeriodicTask.objects.exists()
    assert RetrainingPolicy.objects.get().periodic_task_id is None

    set_policy(model, scientist, schedule_days=5)
    set_policy(model, scientist, schedule_days=None)
    assert not PeriodicTask.objects.exists()


def test_without_a_production_version_a_retraining_is_refused_clearly(staged_of, scientist):
    staged = staged_of()
    policy = set_policy(staged.registered_model, scientist)
    before = state()
    with pytest.raises(ApplicationError) as error:
        retraining_start(policy=policy, trigger=RetrainingTrigger.MANUAL, actor=scientist)
    assert error.value.status == 409
    assert "has no version in production" in error.value.message
    assert state() == before


def test_an_alert_on_a_model_without_production_is_audited_not_raised(staged_of, scientist):
    staged = staged_of()
    policy = set_policy(staged.registered_model, scientist)
    alert = raise_alert(staged)
    assert retraining_on_alert(alert=alert) is None
    assert not RetrainingRun.objects.exists()
    assert audit_actions(policy)[-1] == "monitoring.retraining_refused"


def test_a_second_trigger_joins_the_running_retraining_and_is_audited(
    policy, production_version, sent_tasks, django_capture_on_commit_callbacks
):
    first_alert, second_alert = raise_alert(production_version), raise_alert(production_version, value=0.8)
    with django_capture_on_commit_callbacks(execute=True):
        first = retraining_on_alert(alert=first_alert)
        second = retraining_on_alert(alert=second_alert)

    assert second.pk == first.pk
    assert RetrainingRun.objects.count() == 1
    assert [name for name, _, _ in sent_tasks].count("experiments.train_run") == 2  # the champion's and this one
    joined = AuditEvent.objects.filter(object_id=str(first.pk), action="monitoring.retraining_joined").get()
    assert joined.after["alert"]["id"] == str(second_alert.pk)
    assert joined.after["trigger"] == RetrainingTrigger.DRIFT_ALERT


@pytest.mark.parametrize(
    ("figure", "expected"),
    [
        (Figure.DRIFT_SHARE, RetrainingTrigger.DRIFT_ALERT),
        (Figure.PREDICTION_DRIFT, RetrainingTrigger.DRIFT_ALERT),
        (Figure.METRIC, None),  # the policy does not retrain on performance alerts
        (Figure.REALISED_VALUE, None),
        (Figure.LATENCY_P99, None),
        (Figure.ERROR_RATE, None),
    ],
)
def test_which_alerts_trigger_a_retraining(figure, expected, policy, production_version, sent_tasks):
    run = retraining_on_alert(alert=raise_alert(production_version, figure=figure))
    assert (run.trigger if run else None) == expected


def test_performance_alerts_trigger_when_the_policy_says_so(production_version, scientist, sent_tasks):
    set_policy(production_version.registered_model, scientist, on_drift_alert=False)
    assert retraining_on_alert(alert=raise_alert(production_version, figure=Figure.DRIFT_SHARE)) is None
    run = retraining_on_alert(alert=raise_alert(production_version, figure=Figure.METRIC))
    assert run.trigger == RetrainingTrigger.PERFORMANCE_ALERT


def test_a_disabled_policy_retrains_only_by_hand(production_version, scientist, sent_tasks):
    policy = set_policy(production_version.registered_model, scientist, enabled=False)
    assert retraining_on_alert(alert=raise_alert(production_version)) is None
    run = retraining_start(policy=policy, trigger=RetrainingTrigger.MANUAL, actor=scientist)
    assert (run.trigger, run.status) == (RetrainingTrigger.MANUAL, RetrainingStatus.TRAINING)


@pytest.mark.parametrize("kind", KINDS)
def test_only_scientists_and_admins_start_a_retraining_by_hand(kind, caller, policy, sent_tasks):
    user = caller(kind)
    model = policy.registered_model
    before = state()
    if kind in ALLOWED:
        run = retraining_start_by_hand(registered_model=model, actor=user)
        assert run.experiment.created_by_id == policy.owner_id  # on the owner's behalf
        assert AuditEvent.objects.get(object_id=str(run.pk)).actor_id == user.pk
    else:
        with pytest.raises(PermissionDenied):
            retraining_start_by_hand(registered_model=model, actor=user)
        with pytest.raises(PermissionDenied):
            retraining_start(policy=policy, trigger=RetrainingTrigger.MANUAL, actor=user)
        assert state() == before


def test_the_schedule_tick_starts_a_scheduled_retraining(production_version, scientist, sent_tasks):
    policy = set_policy(production_version.registered_model, scientist, schedule_days=7)
    run_id = scheduled_retraining_task.apply(args=[str(policy.pk)]).get()
    run = RetrainingRun.objects.get(pk=run_id)
    assert (run.trigger, run.policy_id) == (RetrainingTrigger.SCHEDULE, policy.pk)

    set_policy(production_version.registered_model, scientist, schedule_days=None)
    assert scheduled_retraining_task.apply(args=[str(policy.pk)]).get() == "skipped"
