"""Monitor configuration: a monitor is created with its deployment (with default alert rules from the project's
definition), edited by data scientists and reviewers, and scheduled with django-celery-beat (one PeriodicTask per
monitor, kept in sync in the same transaction as the monitor)."""

import json
from typing import Any

from celery import current_app
from django.db import transaction
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from apps.accounts.permissions import Action, require
from apps.audit.services import audit_record
from apps.core.exceptions import field_error
from apps.monitoring.choices import Figure, JobStatus, Operator, Severity, WindowKind
from apps.monitoring.models import AlertRule, Monitor, MonitorCheck
from apps.projects import roi
from apps.registry.models import ModelVersion

CHECK_TASK = "monitoring.run_check"
DEFAULT_DRIFT_SHARE = 0.5
DEFAULT_ERROR_RATE = 0.05
MAX_WINDOW_HOURS = 24 * 90
MAX_WINDOW_PREDICTIONS = 10_000_000
MAX_ROWS = 1_000_000


def _project(monitor: Monitor):
    return monitor.deployment.project


# --- Defaults -------------------------------------------------------------------------------------------------------
def expected_value_per_decision(definition) -> float | None:
    """The value per decision the problem definition expects of the model (apps/projects/roi.py), or None."""
    estimate = roi.expected_roi(definition)
    decisions = getattr(definition, "expected_yearly_decisions", None)
    if estimate.yearly_value_model is None or not decisions:
        return None
    return float(estimate.yearly_value_model) / float(decisions)


def default_rules(definition) -> list[dict[str, Any]]:
    """Rules every new monitor starts with: drift of most inputs, errors, and — where the definition gives them —
    the primary metric's success threshold, the latency budget and the expected value per decision."""
    rules = [
        {"figure": Figure.DRIFT_SHARE, "operator": Operator.ABOVE, "threshold": DEFAULT_DRIFT_SHARE},
        {
            "figure": Figure.ERROR_RATE,
            "operator": Operator.ABOVE,
            "threshold": DEFAULT_ERROR_RATE,
            "severity": Severity.CRITICAL,
        },
    ]
    if definition is None:
        return rules
    if definition.primary_threshold is not None:
        from workers.ml.training.spec import LOWER_IS_BETTER  # stdlib only

        lower_is_better = definition.primary_metric in LOWER_IS_BETTER
        rules.append(
            {
                "figure": Figure.METRIC,
                "metric": definition.primary_metric,
                "operator": Operator.ABOVE if lower_is_better else Operator.BELOW,
                "threshold": float(definition.primary_threshold),
                "severity": Severity.CRITICAL,
            }
        )
    if definition.latency_budget_p99_ms:
        rules.append(
            {
                "figure": Figure.LATENCY_P99,
                "operator": Operator.ABOVE,
                "threshold": float(definition.latency_budget_p99_ms),
            }
        )
    expected = expected_value_per_decision(definition)
    if expected is not None:
        rules.append({"figure": Figure.REALISED_VALUE, "operator": Operator.BELOW, "threshold": expected})
    return rules


def monitor_create(*, deployment, actor) -> Monitor:
    """In the caller's transaction (deployment_create): the monitor, its default rules and its schedule."""
    monitor = Monitor.objects.create(deployment=deployment, updated_by=actor)
    definition = getattr(deployment.project, "definition", None)
    AlertRule.objects.bulk_create([AlertRule(monitor=monitor, **rule) for rule in default_rules(definition)])
    _sync_schedule(monitor)
    audit_record(
        actor=actor,
        action="monitoring.monitor_create",
        obj=monitor,
        project=deployment.project,
        after={**monitor_snapshot(monitor), "rules": [str(rule) for rule in monitor.rules.all()]},
    )
    return monitor


# --- Editing --------------------------------------------------------------------------------------------------------
def monitor_snapshot(monitor: Monitor) -> dict[str, Any]:
    return {
        "reference_version": monitor.reference_version.number if monitor.reference_version_id else None,
        "window_kind": monitor.window_kind,
        "window_hours": monitor.window_hours,
        "window_predictions": monitor.window_predictions,
        "performance_days": monitor.performance_days,
        "schedule_minutes": monitor.schedule_minutes,
        "drift_column_threshold": monitor.drift_column_threshold,
        "max_rows": monitor.max_rows,
        "enabled": monitor.enabled,
    }


def _positive(field: str, value, *, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= high:
        raise field_error(field, f"A whole number from 1 to {high:,} is required.")
    return value


def _clean(monitor: Monitor, data: dict[str, Any]) -> dict[str, Any]:
    cleaned: dict[str, Any] = {}
    if "window_kind" in data:
        if data["window_kind"] not in WindowKind.values:
            raise field_error("window_kind", f"One of {', '.join(WindowKind.values)}.")
        cleaned["window_kind"] = data["window_kind"]
    limits = {
        "window_hours": MAX_WINDOW_HOURS,
        "window_predictions": MAX_WINDOW_PREDICTIONS,
        "performance_days": 365,
        "schedule_minutes": 7 * 24 * 60,
        "max_rows": MAX_ROWS,
    }
    for field, high in limits.items():
        if field in data:
            cleaned[field] = _positive(field, data[field], high=high)
    if "drift_column_threshold" in data:
        value = data["drift_column_threshold"]
        if value is not None and (not isinstance(value, int | float) or isinstance(value, bool) or not 0 < value < 1):
            raise field_error("drift_column_threshold", "A number between 0 and 1, or empty for Evidently's defaults.")
        cleaned["drift_column_threshold"] = value
    if "enabled" in data:
        cleaned["enabled"] = bool(data["enabled"])
    if "reference_version" in data:
        version = data["reference_version"]
        if version is not None and (
            not isinstance(version, ModelVersion)
            or version.registered_model_id != monitor.deployment.registered_model_id
        ):
            raise field_error("reference_version", "Choose a version of the deployed model, or none for the live one.")
        cleaned["reference_version"] = version
    return cleaned


def monitor_update(*, monitor: Monitor, actor, data: dict[str, Any]) -> Monitor:
    require(actor, Action.MONITOR_CONFIGURE, _project(monitor))
    with transaction.atomic():
        monitor = Monitor.objects.select_for_update().select_related("deployment__project").get(pk=monitor.pk)
        cleaned = _clean(monitor, data)
        before = monitor_snapshot(monitor)
        for field, value in cleaned.items():
            setattr(monitor, field, value)
        monitor.updated_by = actor
        monitor.save()
        _sync_schedule(monitor)
        audit_record(
            actor=actor,
            action="monitoring.monitor_update",
            obj=monitor,
            project=_project(monitor),
            before=before,
            after=monitor_snapshot(monitor),
        )
    return monitor


def monitor_schedule_refresh(*, deployment) -> None:
    """In the caller's transaction (deployment_stop / deployment_start): checks pause while nothing serves."""
    monitor = Monitor.objects.filter(deployment=deployment).first()
    if monitor is not None:
        monitor.deployment = deployment
        _sync_schedule(monitor)


def _sync_schedule(monitor: Monitor) -> None:
    """One PeriodicTask per monitor running its check every `schedule_minutes`, enabled with the monitor."""
    interval, _ = IntervalSchedule.objects.get_or_create(
        every=monitor.schedule_minutes, period=IntervalSchedule.MINUTES
    )
    fields = {
        "interval": interval,
        "task": "monitoring.scheduled_check",
        "args": json.dumps([str(monitor.pk)]),
        "enabled": monitor.enabled and not monitor.deployment.is_stopped,
    }
    if monitor.periodic_task_id:
        PeriodicTask.objects.filter(pk=monitor.periodic_task_id).update(**fields)
        PeriodicTask.objects.get(pk=monitor.periodic_task_id).save()  # beat notices changes through PeriodicTasks
        return
    monitor.periodic_task = PeriodicTask.objects.create(name=f"monitor {monitor.pk}", **fields)
    monitor.save(update_fields=["periodic_task"])


# --- Rules ----------------------------------------------------------------------------------------------------------
def _clean_rule(data: dict[str, Any]) -> dict[str, Any]:
    figure = data.get("figure")
    if figure not in Figure.values:
        raise field_error("figure", f"One of {', '.join(Figure.values)}.")
    metric = str(data.get("metric") or "").strip()
    if figure == Figure.METRIC and not metric:
        raise field_error("metric", "Name the metric (e.g. f1, roc_auc, mae).")
    if figure != Figure.METRIC:
        metric = ""
    if data.get("operator") not in Operator.values:
        raise field_error("operator", "above or below.")
    threshold = data.get("threshold")
    if not isinstance(threshold, int | float) or isinstance(threshold, bool):
        raise field_error("threshold", "A number is required.")
    severity = data.get("severity", Severity.WARNING)
    if severity not in Severity.values:
        raise field_error("severity", f"One of {', '.join(Severity.values)}.")
    return {
        "figure": figure,
        "metric": metric,
        "operator": data["operator"],
        "threshold": float(threshold),
        "severity": severity,
        "enabled": bool(data.get("enabled", True)),
    }


def alert_rule_create(*, monitor: Monitor, actor, data: dict[str, Any]) -> AlertRule:
    require(actor, Action.MONITOR_CONFIGURE, _project(monitor))
    cleaned = _clean_rule(data)
    with transaction.atomic():
        rule = AlertRule.objects.create(monitor=monitor, **cleaned)
        audit_record(actor=actor, action="monitoring.rule_create", obj=rule, project=_project(monitor), after=cleaned)
    return rule


def alert_rule_update(*, rule: AlertRule, actor, data: dict[str, Any]) -> AlertRule:
    require(actor, Action.MONITOR_CONFIGURE, _project(rule.monitor))
    cleaned = _clean_rule({**_rule_snapshot(rule), **data})
    with transaction.atomic():
        before = _rule_snapshot(rule)
        AlertRule.objects.filter(pk=rule.pk).update(**cleaned)
        rule.refresh_from_db()
        audit_record(
            actor=actor,
            action="monitoring.rule_update",
            obj=rule,
            project=_project(rule.monitor),
            before=before,
            after=cleaned,
        )
    return rule


def _rule_snapshot(rule: AlertRule) -> dict[str, Any]:
    return {
        "figure": rule.figure,
        "metric": rule.metric,
        "operator": rule.operator,
        "threshold": rule.threshold,
        "severity": rule.severity,
        "enabled": rule.enabled,
    }


# --- Checks on request ----------------------------------------------------------------------------------------------
def check_request(*, monitor: Monitor, actor=None) -> MonitorCheck:
    """Queue a check (a person: now; actor None: the schedule). A check already queued or running is returned
    instead of queuing a second."""
    if actor is not None:
        require(actor, Action.MONITOR_CONFIGURE, _project(monitor))
    with transaction.atomic():
        Monitor.objects.select_for_update().filter(pk=monitor.pk).first()
        pending = monitor.checks.filter(status__in=[JobStatus.QUEUED, JobStatus.RUNNING]).first()
        if pending is not None:
            return pending
        check = MonitorCheck.objects.create(monitor=monitor, requested_by=actor)
        if actor is not None:
            audit_record(actor=actor, action="monitoring.check_request", obj=check, project=_project(monitor))
        check_id = str(check.pk)
        transaction.on_commit(lambda: current_app.send_task(CHECK_TASK, args=[check_id]))
    return check
