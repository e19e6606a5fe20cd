"""Retraining: a policy per registered model (which alerts trigger it, a schedule) and the retraining runs it starts.

A retraining is the loop back from production to the registry, and never past it:
1. `retraining_start` launches an experiment with the production version's (the champion's) spec on the newest usable
   version of the champion's dataset, as the policy's owner. One retraining trains per policy at a time (a partial
   unique constraint); alerts and schedules arriving meanwhile join it (the audit records each of them).
2. `retraining_advance` (the periodic task monitoring.advance_retrainings, once the experiment finished) registers the
   best run by the primary metric (validation score, as the leaderboard ranks it) as the model's next version, copies
   the champion's written model-card sections, moves it to staging and queues the comparison.
3. The comparison task (monitoring.compare_challenger) scores the champion and the challenger on the same rows (the
   challenger run's held-out test rows, reproduced from its spec and seed) and `retraining_comparison_record` opens a
   promotion request whose justification shows the difference. A reviewer decides it: the production version is never
   changed here.

The owner (whoever last saved the policy) launches, registers and requests on the policy's behalf, so the registry's
rules bind a retraining as they bind a person: the owner needs the rights to launch and register, and cannot approve
the request (they opened it and trained the version). Every change is one transaction with its audit event.
"""

import json
import logging
from datetime import timedelta
from typing import Any

from celery import current_app
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Q
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from apps.accounts.choices import Role
from apps.accounts.models import Membership
from apps.accounts.permissions import Action, require
from apps.audit.services import audit_record
from apps.core.exceptions import ApplicationError, field_error
from apps.datasets.choices import ValidationStatus
from apps.datasets.models import DatasetVersion
from apps.experiments.choices import ExperimentStatus, RunStatus
from apps.experiments.models import Experiment, Run
from apps.experiments.selectors import leaderboard
from apps.experiments.services import experiment_launch
from apps.monitoring.choices import Figure, RetrainingStatus, RetrainingTrigger
from apps.monitoring.models import Alert, RetrainingPolicy, RetrainingRun
from apps.notifications.choices import Event
from apps.notifications.services import notify
from apps.projects.models import Project
from apps.registry.choices import Stage, VersionStatus
from apps.registry.models import ModelCard, ModelVersion, RegisteredModel
from apps.registry.services import (
    model_card_update,
    model_version_register,
    promotion_request_open,
    version_move_to_staging,
)
from workers.ml.training.spec import LOWER_IS_BETTER  # stdlib only

logger = logging.getLogger(__name__)

SCHEDULED_TASK = "monitoring.scheduled_retraining"
COMPARE_TASK = "monitoring.compare_challenger"
COMPARE_QUEUE = "monitoring"
# A comparison queued this long ago without a result is queued again by the periodic task (its message was lost).
# Well above the comparison task's hard time limit, so a slow comparison is not run twice.
COMPARE_REDISPATCH_AFTER = timedelta(minutes=30)
MAX_SCHEDULE_DAYS = 365
FINISHED_EXPERIMENT_STATUSES = (ExperimentStatus.SUCCEEDED, ExperimentStatus.FAILED, ExperimentStatus.CANCELLED)
DRIFT_FIGURES = frozenset({Figure.DRIFT_SHARE, Figure.PREDICTION_DRIFT})
PERFORMANCE_FIGURES = frozenset({Figure.METRIC, Figure.REALISED_VALUE})
RETRAINING_TAG = "retraining"


def _project_of(policy: RetrainingPolicy) -> Project:
    return Project.objects.get(registered_models__pk=policy.registered_model_id)


# --- The policy -----------------------------------------------------------------------------------------------------
def _clean_schedule_days(schedule_days) -> int | None:
    if schedule_days in (None, ""):
        return None
    if isinstance(schedule_days, bool) or not isinstance(schedule_days, int):
        raise field_error("schedule_days", "Enter a whole number of days, or leave it empty for no schedule.")
    if not 1 <= schedule_days <= MAX_SCHEDULE_DAYS:
        raise field_error("schedule_days", f"Retrain every 1 to {MAX_SCHEDULE_DAYS} days, or leave it empty.")
    return schedule_days


def _policy_snapshot(policy: RetrainingPolicy) -> dict[str, Any]:
    return {
        "registered_model": str(policy.registered_model_id),
        "on_drift_alert": policy.on_drift_alert,
        "on_performance_alert": policy.on_performance_alert,
        "schedule_days": policy.schedule_days,
        "enabled": policy.enabled,
        "owner": policy.owner.get_username() if policy.owner_id else "",
        "periodic_task": policy.periodic_task.name if policy.periodic_task_id else "",
    }


def _schedule_task_name(policy: RetrainingPolicy) -> str:
    return f"monitoring-retraining-{policy.pk}"


def _interval(days: int) -> IntervalSchedule:
    interval = IntervalSchedule.objects.filter(every=days, period=IntervalSchedule.DAYS).order_by("pk").first()
    return interval or IntervalSchedule.objects.create(every=days, period=IntervalSchedule.DAYS)


def _sync_schedule(policy: RetrainingPolicy) -> None:
    """Keep beat's PeriodicTask equal to the policy: one running monitoring.scheduled_retraining(policy id) every
    `schedule_days` days while the policy is enabled with a schedule; none otherwise."""
    if not (policy.enabled and policy.schedule_days):
        task = policy.periodic_task
        if task is not None:
            policy.periodic_task = None
            policy.save(update_fields=["periodic_task", "updated_at"])
            task.delete()
        return
    task, _ = PeriodicTask.objects.update_or_create(
        name=_schedule_task_name(policy),
        defaults={
            "task": SCHEDULED_TASK,
            "interval": _interval(policy.schedule_days),
            "args": json.dumps([str(policy.pk)]),
            "enabled": True,
            "description": f"Scheduled retraining of registered model {policy.registered_model_id}.",
        },
    )
    if policy.periodic_task_id != task.pk:
        policy.periodic_task = task
        policy.save(update_fields=["periodic_task", "updated_at"])


def retraining_policy_set(
    *,
    registered_model: RegisteredModel,
    actor,
    on_drift_alert: bool,
    on_performance_alert: bool,
    schedule_days: int | None,
    enabled: bool,
) -> RetrainingPolicy:
    """Create or change the model's retraining policy. The actor becomes its owner: the retrainings it starts launch,
    register and request promotion on the owner's behalf. The schedule is beat's PeriodicTask, kept in sync here."""
    project = Project.objects.get(pk=registered_model.project_id)
    require(actor, Action.RETRAINING_MANAGE, project)
    schedule_days = _clean_schedule_days(schedule_days)
    with transaction.atomic():
        RegisteredModel.objects.select_for_update().get(pk=registered_model.pk)  # one policy creation at a time
        policy = RetrainingPolicy.objects.select_related("owner", "periodic_task").filter(
            registered_model_id=registered_model.pk
        ).first() or RetrainingPolicy(registered_model_id=registered_model.pk)
        before = _policy_snapshot(policy) if policy.pk and not policy._state.adding else None
        policy.on_drift_alert = bool(on_drift_alert)
        policy.on_performance_alert = bool(on_performance_alert)
        policy.schedule_days = schedule_days
        policy.enabled = bool(enabled)
        policy.owner = actor
        policy.save()
        _sync_schedule(policy)
        after = _policy_snapshot(policy)
        if after != before:
            audit_record(
                actor=actor,
                action="monitoring.retraining_policy_set",
                obj=policy,
                project=project,
                before=before,
                after=after,
            )
    return policy


# --- Starting -------------------------------------------------------------------------------------------------------
def _champion(registered_model: RegisteredModel) -> ModelVersion:
    champion = (
        ModelVersion.objects.select_related("run__experiment__dataset_version__dataset")
        .filter(registered_model_id=registered_model.pk, stage=Stage.PRODUCTION)
        .first()
    )
    if champion is None:
        raise field_error(
            "registered_model",
            f"“{registered_model.name}” has no version in production: a retraining starts from the production "
            "version's spec and data. Promote a version first.",
            status=409,
        )
    return champion


def _newest_usable_version(champion: ModelVersion) -> DatasetVersion:
    """The newest version of the champion's training dataset that passed validation or carries an override."""
    dataset = champion.run.experiment.dataset_version.dataset
    version = (
        DatasetVersion.objects.select_related("dataset")
        .filter(dataset=dataset)
        .filter(Q(validation_status=ValidationStatus.PASSED) | ~Q(override_reason=""))
        .order_by("-number")
        .first()
    )
    if version is None:
        raise field_error("dataset_version", f"No version of {dataset.name} is usable for training.", status=409)
    return version


def _launch_as_owner(policy, champion: ModelVersion, dataset_version: DatasetVersion, trigger: str, alert):
    """The champion run's spec (features, algorithm, preparation, split, search, seed) on `dataset_version`."""
    model = policy.registered_model
    description = f"Retraining of {model.name} (production version {champion.number}); trigger: {trigger}."
    if alert is not None:
        description += f" Alert: {alert.message}"
    try:
        return experiment_launch(
            project=model.project,
            actor=policy.owner,
            dataset_version=dataset_version,
            data=dict(champion.run.spec),
            name=f"Retraining of {model.name} v{champion.number}"[:200],
            description=description,
        )
    except PermissionDenied as error:
        message = (
            f"The policy's owner ({policy.owner.get_username()}) may no longer launch experiments in this project: "
            "a data scientist must save the policy to take it over."
        )
        raise field_error("owner", message, status=409) from error
    except ApplicationError as error:
        message = (
            f"The production version's spec cannot be trained on {dataset_version}: {error.message}"
            if error.errors
            else error.message
        )
        raise ApplicationError(message, errors=error.errors or {"dataset_version": [message]}, status=409) from error


def _alert_reference(alert) -> dict[str, Any] | None:
    if alert is None:
        return None
    return {"id": str(alert.pk), "message": alert.message, "value": alert.value, "threshold": alert.threshold}


def _join(running: RetrainingRun, project, *, actor, trigger: str, alert) -> RetrainingRun:
    audit_record(
        actor=actor,
        action="monitoring.retraining_joined",
        obj=running,
        project=project,
        after={"trigger": trigger, "alert": _alert_reference(alert), "joined_retraining": str(running.pk)},
    )
    return running


def retraining_start(*, policy: RetrainingPolicy, trigger: str, alert=None, actor=None) -> RetrainingRun:
    """Start a retraining of the policy's model, or join the one already training (returned then).

    `actor` is the person who starts it by hand (needs RETRAINING_MANAGE); None for an alert or the schedule. Either
    way the experiment is launched by the policy's owner. Refused (ApplicationError, nothing changed) without a
    production version, without a usable dataset version, for a disabled policy unless started by hand, and when the
    champion's spec does not fit the newest data.
    """
    if trigger not in RetrainingTrigger.values:
        raise field_error("trigger", f"Choose one of: {', '.join(RetrainingTrigger.values)}.")
    policy = RetrainingPolicy.objects.select_related("registered_model__project", "owner").get(pk=policy.pk)
    project = policy.registered_model.project
    if actor is not None or trigger == RetrainingTrigger.MANUAL:  # by hand: always a person allowed to
        require(actor, Action.RETRAINING_MANAGE, project)
    with transaction.atomic():
        locked = RetrainingPolicy.objects.select_for_update().get(pk=policy.pk)  # one start at a time per policy
        running = RetrainingRun.objects.filter(policy=locked, status=RetrainingStatus.TRAINING).first()
        if running is not None:
            return _join(running, project, actor=actor, trigger=trigger, alert=alert)
        if not locked.enabled and trigger != RetrainingTrigger.MANUAL:
            raise field_error(
                "enabled", "The retraining policy is disabled: only a retraining by hand can start.", status=409
            )
        champion = _champion(policy.registered_model)
        dataset_version = _newest_usable_version(champion)
        experiment = _launch_as_owner(policy, champion, dataset_version, trigger, alert)
        run = RetrainingRun.objects.create(
            policy=locked,
            trigger=trigger,
            alert=alert,
            champion=champion,
            dataset_version=dataset_version,
            experiment=experiment,
        )
        audit_record(
            actor=actor,
            action="monitoring.retraining_start",
            obj=run,
            project=project,
            after={
                "trigger": trigger,
                "alert": _alert_reference(alert),
                "on_behalf_of": policy.owner.get_username(),
                "champion": {"id": str(champion.pk), "number": champion.number},
                "dataset_version": {"id": str(dataset_version.pk), "number": dataset_version.number},
                "experiment": {"id": str(experiment.pk), "number": experiment.number},
                "algorithms": list(experiment.spec["algorithms"]),
                "seed": experiment.spec["seed"],
            },
        )
    return run


def retraining_start_by_hand(*, registered_model: RegisteredModel, actor) -> RetrainingRun:
    """A person starts a retraining of the model now (or gets the one already training); the model needs a policy,
    whose owner launches it."""
    require(actor, Action.RETRAINING_MANAGE, Project.objects.get(pk=registered_model.project_id))
    policy = RetrainingPolicy.objects.filter(registered_model_id=registered_model.pk).first()
    if policy is None:
        raise field_error(
            "policy", "Set the model's retraining policy first: its owner launches the retraining.", status=409
        )
    return retraining_start(policy=policy, trigger=RetrainingTrigger.MANUAL, actor=actor)


def _record_refusal(policy: RetrainingPolicy, *, trigger: str, alert, reason: str) -> None:
    """A trigger that could not start a retraining (no production version, bad data...): audited, not raised, so the
    alert or the schedule that fired it is not disturbed."""
    logger.warning("retraining of policy %s (%s) refused: %s", policy.pk, trigger, reason)
    with transaction.atomic():
        audit_record(
            actor=None,
            action="monitoring.retraining_refused",
            obj=policy,
            project=_project_of(policy),
            after={"trigger": trigger, "alert": _alert_reference(alert), "reason": reason},
        )


def _trigger_for(figure: str) -> str | None:
    if figure in DRIFT_FIGURES:
        return RetrainingTrigger.DRIFT_ALERT
    if figure in PERFORMANCE_FIGURES:
        return RetrainingTrigger.PERFORMANCE_ALERT
    return None


def retraining_on_alert(*, alert: Alert) -> RetrainingRun | None:
    """Called by the alert service after an alert is raised: start (or join) a retraining when the deployment's model
    has an enabled policy that retrains on this kind of alert (drift share or prediction drift: `on_drift_alert`;
    a metric or the realised value: `on_performance_alert`). A refusal is audited and gives None."""
    alert = Alert.objects.select_related("rule", "monitor__deployment").get(pk=alert.pk)
    trigger = _trigger_for(alert.rule.figure)
    if trigger is None:
        return None
    policy = RetrainingPolicy.objects.filter(
        registered_model_id=alert.monitor.deployment.registered_model_id, enabled=True
    ).first()
    wanted = policy is not None and (
        policy.on_drift_alert if trigger == RetrainingTrigger.DRIFT_ALERT else policy.on_performance_alert
    )
    if not wanted:
        return None
    try:
        return retraining_start(policy=policy, trigger=trigger, alert=alert)
    except ApplicationError as error:
        _record_refusal(policy, trigger=trigger, alert=alert, reason=error.message)
        return None


def retraining_on_schedule(*, policy_id) -> RetrainingRun | None:
    """The schedule's tick (monitoring.scheduled_retraining): start (or join) a retraining while the policy is enabled
    with a schedule. A policy that is gone, disabled or unscheduled gives None; a refusal is audited."""
    policy = RetrainingPolicy.objects.filter(pk=policy_id, enabled=True, schedule_days__isnull=False).first()
    if policy is None:
        return None
    try:
        return retraining_start(policy=policy, trigger=RetrainingTrigger.SCHEDULE)
    except ApplicationError as error:
        _record_refusal(policy, trigger=RetrainingTrigger.SCHEDULE, alert=None, reason=error.message)
        return None


# --- Advancing ------------------------------------------------------------------------------------------------------
def _recipients(run: RetrainingRun, project: Project) -> list:
    reviewers = Membership.objects.filter(project=project, role=Role.REVIEWER, user__is_active=True).select_related(
        "user"
    )
    return [run.policy.owner, *(membership.user for membership in reviewers)]


def _run_link(run: RetrainingRun) -> str:
    try:
        return reverse("monitoring:retraining_run", args=[run.pk])
    except NoReverseMatch:  # the monitoring pages are not mounted (a deployment without them): the model's page
        return reverse("registry:model", args=[run.policy.registered_model_id])


def _run_payload(run: RetrainingRun) -> dict[str, Any]:
    return {
        "retraining": {"id": str(run.pk), "status": run.status, "trigger": run.trigger},
        "registered_model": {"id": str(run.policy.registered_model_id), "name": run.policy.registered_model.name},
        "champion": {"id": str(run.champion_id), "number": run.champion.number},
        "new_version": {"id": str(run.new_version_id), "number": run.new_version.number}
        if run.new_version_id
        else None,
        "promotion_request": str(run.promotion_request_id) if run.promotion_request_id else None,
        "error": run.error,
    }


def _lock_run(run_id) -> RetrainingRun:
    return (
        RetrainingRun.objects.select_for_update(of=("self",))
        .select_related("policy__registered_model", "policy__owner", "champion", "experiment", "new_version")
        .get(pk=run_id)
    )


def _fail(locked: RetrainingRun, project: Project, reason: str) -> RetrainingRun:
    """In the caller's transaction: training -> failed with the reason, audited, owner and reviewers told."""
    locked.status = RetrainingStatus.FAILED
    locked.error = reason
    locked.finished_at = timezone.now()
    locked.save()
    audit_record(
        actor=None,
        action="monitoring.retraining_failed",
        obj=locked,
        project=project,
        before={"status": RetrainingStatus.TRAINING},
        after={"status": locked.status, "reason": reason, "on_behalf_of": locked.policy.owner.get_username()},
    )
    notify(
        event=Event.MONITORING_RETRAINING_FAILED,
        project=project,
        recipients=_recipients(locked, project),
        title=f"Retraining of {locked.policy.registered_model.name} failed",
        body=reason,
        link=_run_link(locked),
        payload=_run_payload(locked),
    )
    return locked


def _experiment_failure(experiment: Experiment) -> str:
    runs = Run.objects.filter(experiment=experiment).exclude(status=RunStatus.SUCCEEDED).order_by("number")
    details = "; ".join(f"run {run.number} ({run.algorithm}): {run.error or run.get_status_display()}" for run in runs)
    return f"The experiment {experiment.get_status_display().lower()} without a succeeded run. {details}".strip()


def _best_run(experiment: Experiment) -> Run | None:
    ranked = leaderboard(experiment=experiment)
    return ranked[0] if ranked and ranked[0].rank == 1 else None


def _copy_card(locked: RetrainingRun, version: ModelVersion, project: Project) -> list[str]:
    """The champion's written sections (intended use, limitations...) onto the new version's card, so its card gate
    can pass; what the generator writes comes from the new version's own record."""
    champion_card = ModelCard.objects.filter(version_id=locked.champion_id).first()
    written = {key: text for key, text in ((champion_card.written if champion_card else {}) or {}).items() if text}
    if written:
        model_card_update(version=version, actor=locked.policy.owner, written=written)
    audit_record(
        actor=None,
        action="monitoring.retraining_card_copied",
        obj=locked,
        project=project,
        after={
            "from_version": locked.champion.number,
            "to_version": version.number,
            "sections": sorted(written),
            "on_behalf_of": locked.policy.owner.get_username(),
        },
    )
    return sorted(written)


def _register_challenger(locked: RetrainingRun, best: Run) -> ModelVersion:
    owner = locked.policy.owner
    return model_version_register(
        run=best,
        actor=owner,
        registered_model=locked.policy.registered_model,
        description=(
            f"Retrained from production version {locked.champion.number} on {locked.dataset_version} "
            f"(trigger: {locked.get_trigger_display().lower()})."
        ),
        tags=[RETRAINING_TAG],
    )


def _dispatch_comparison(run_id) -> None:
    run_id = str(run_id)
    transaction.on_commit(lambda: current_app.send_task(COMPARE_TASK, args=[run_id], queue=COMPARE_QUEUE))


def _redispatch_lost_comparison(run: RetrainingRun) -> None:
    with transaction.atomic():
        stale = timezone.now() - COMPARE_REDISPATCH_AFTER
        touched = RetrainingRun.objects.filter(
            pk=run.pk, status=RetrainingStatus.TRAINING, promotion_request__isnull=True, updated_at__lt=stale
        ).update(updated_at=timezone.now())
        if touched:
            _dispatch_comparison(run.pk)


def retraining_advance(*, run: RetrainingRun) -> RetrainingRun:
    """Move a training retraining on once its experiment finished: register the best run as the model's next version
    (the champion's written card sections copied, moved to staging) and queue the comparison with the champion; or
    fail it with the reason (no succeeded run, registration refused). Nothing happens before the experiment
    finished or after the retraining did; a comparison whose message was lost is queued again."""
    current = RetrainingRun.objects.select_related("experiment").get(pk=run.pk)
    if current.status != RetrainingStatus.TRAINING or current.experiment is None:
        return current
    if current.experiment.status not in FINISHED_EXPERIMENT_STATUSES:
        return current
    if current.new_version_id:
        _redispatch_lost_comparison(current)
        return current
    project = Project.objects.get(pk=current.experiment.project_id)
    with transaction.atomic():
        # Held until the version is registered and staged: a second advance (beat and a person) waits, then sees it.
        locked = _lock_run(current.pk)
        if locked.status != RetrainingStatus.TRAINING or locked.new_version_id:
            return locked
        best = _best_run(locked.experiment)
        if best is None:
            return _fail(locked, project, _experiment_failure(locked.experiment))
        try:
            version = _register_challenger(locked, best)
        except (ApplicationError, PermissionDenied) as error:
            return _fail(locked, project, f"The best run (run {best.number}) could not be registered: {error}")
        if version.status != VersionStatus.READY:
            locked.new_version = version
            return _fail(locked, project, f"Version {version.number} could not be registered: {version.status_reason}")
        locked.new_version = version
        try:
            sections = _copy_card(locked, version, project)
            reason = f"Retraining {locked.pk}: the challenger of production version {locked.champion.number}."
            locked.new_version = version_move_to_staging(version=version, actor=locked.policy.owner, reason=reason)
        except (ApplicationError, PermissionDenied) as error:
            return _fail(locked, project, f"Version {version.number} could not be staged: {error}")
        locked.save(update_fields=["new_version", "updated_at"])
        audit_record(
            actor=None,
            action="monitoring.retraining_registered",
            obj=locked,
            project=project,
            after={
                "run": {"id": str(best.pk), "number": best.number, "algorithm": best.algorithm},
                "primary_score": best.primary_score,
                "new_version": {"id": str(version.pk), "number": version.number},
                "card_sections_copied": sections,
                "on_behalf_of": locked.policy.owner.get_username(),
            },
        )
        _dispatch_comparison(locked.pk)
    return locked


# --- The comparison's outcome -----------------------------------------------------------------------------------------
def _signed(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.4f}"


def _plain(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def comparison_justification(run: RetrainingRun, comparison: dict[str, Any]) -> str:
    """The promotion request's justification: why the retraining ran, and the challenger against the champion on
    the same rows, metric by metric."""
    metric = comparison.get("primary_metric", "")
    lines = [
        f"Automatic retraining of {run.policy.registered_model.name} (trigger: {run.get_trigger_display().lower()}"
        + (f": {run.alert.message}" if run.alert_id and run.alert else "")
        + f"), trained on {run.dataset_version} with the production version's spec and seed.",
        "",
        f"Compared with production version {run.champion.number} on the same {comparison.get('rows', 0)} held-out "
        f"test rows of {run.dataset_version} (the challenger's test split, reproduced from its spec and seed):",
    ]
    for name, row in (comparison.get("metrics") or {}).items():
        lines.append(
            f"- {name}: champion {_plain(row.get('champion'))}, challenger {_plain(row.get('challenger'))}, "
            f"difference {_signed(row.get('delta'))}"
        )
    primary = (comparison.get("metrics") or {}).get(metric) or {}
    delta = primary.get("delta")
    if delta is not None:
        better = delta < 0 if metric in LOWER_IS_BETTER else delta > 0
        verdict = "better" if better else ("equal" if delta == 0 else "worse")
        lines += ["", f"On the primary metric ({metric}) the challenger is {verdict} ({_signed(delta)})."]
    lines += ["", "Production does not change until a reviewer approves this request."]
    return "\n".join(lines)


def retraining_comparison_record(*, run_id, comparison: dict[str, Any]) -> RetrainingRun:
    """The comparison task's result: open the promotion request (as the owner) with the generated justification,
    training -> requested, and tell the owner and the project's reviewers. Only once: a retraining that is no longer
    training, or already has its request, is returned as it is."""
    with transaction.atomic():
        locked = _lock_run(run_id)
        if locked.status != RetrainingStatus.TRAINING or locked.promotion_request_id or not locked.new_version_id:
            return locked
        project = Project.objects.get(pk=locked.policy.registered_model.project_id)
        locked.comparison = comparison
        justification = comparison_justification(locked, comparison)
        try:
            request = promotion_request_open(
                version=locked.new_version, actor=locked.policy.owner, justification=justification
            )
        except (ApplicationError, PermissionDenied) as error:
            return _fail(locked, project, f"The promotion request could not be opened: {error}")
        locked.promotion_request = request
        locked.status = RetrainingStatus.REQUESTED
        locked.finished_at = timezone.now()
        locked.save()
        audit_record(
            actor=None,
            action="monitoring.retraining_requested",
            obj=locked,
            project=project,
            before={"status": RetrainingStatus.TRAINING},
            after={
                "status": locked.status,
                "promotion_request": str(request.pk),
                "new_version": locked.new_version.number,
                "champion": locked.champion.number,
                "comparison": comparison,
                "on_behalf_of": locked.policy.owner.get_username(),
            },
        )
        notify(
            event=Event.MONITORING_RETRAINING_REQUESTED,
            project=project,
            recipients=_recipients(locked, project),
            title=f"Retraining of {locked.policy.registered_model.name}: version {locked.new_version.number} awaits "
            "review",
            body=justification,
            link=reverse("registry:promotion", args=[request.pk]),
            payload=_run_payload(locked),
        )
    return locked


def retraining_comparison_fail(*, run_id, reason: str) -> RetrainingRun:
    """The comparison could not be made (an artifact that does not verify, data gone): training -> failed."""
    with transaction.atomic():
        locked = _lock_run(run_id)
        if locked.status != RetrainingStatus.TRAINING:
            return locked
        project = Project.objects.get(pk=locked.policy.registered_model.project_id)
        return _fail(locked, project, f"The challenger could not be compared with the champion: {reason}")
