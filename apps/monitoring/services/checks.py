"""A check's life (queued -> running -> succeeded | failed), the reference data of a version (built once), and what a
finished check does: record its figures, evaluate the monitor's alert rules, raise alerts (never a second one for a
rule while one is open), notify, and hand drift and performance alerts to the retraining policy.

The computation happens on a worker (workers/tasks/monitoring.py); these services are how it claims work and records
results, each in one transaction with its audit event where a person or a rule decided something.
"""

from typing import Any

from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from apps.accounts.choices import Role
from apps.accounts.models import Membership
from apps.accounts.permissions import Action, require
from apps.audit.services import audit_record
from apps.core.exceptions import field_error
from apps.deployments.selectors.deployments import live_figures
from apps.monitoring.choices import AlertStatus, Figure, JobStatus, Operator
from apps.monitoring.models import Alert, AlertRule, MonitorCheck, ReferenceProfile
from apps.notifications.choices import Event
from apps.notifications.services import notify

DRIFT_FIGURES = (Figure.DRIFT_SHARE, Figure.PREDICTION_DRIFT)
PERFORMANCE_FIGURES = (Figure.METRIC, Figure.REALISED_VALUE)


# --- Reference data -------------------------------------------------------------------------------------------------
def reference_claim(*, version) -> ReferenceProfile | None:
    """The version's reference to build (queued or failed before -> running), or None when it is ready or another
    worker builds it."""
    profile, _ = ReferenceProfile.objects.get_or_create(version=version)
    claimed = ReferenceProfile.objects.filter(pk=profile.pk, status__in=[JobStatus.QUEUED, JobStatus.FAILED]).update(
        status=JobStatus.RUNNING, error="", updated_at=timezone.now()
    )
    return ReferenceProfile.objects.get(pk=profile.pk) if claimed else None


def reference_succeed(*, profile_id, artifact_key: str, rows: int) -> ReferenceProfile:
    ReferenceProfile.objects.filter(pk=profile_id, status=JobStatus.RUNNING).update(
        status=JobStatus.SUCCEEDED, artifact_key=artifact_key, rows=rows, finished_at=timezone.now()
    )
    return ReferenceProfile.objects.get(pk=profile_id)


def reference_fail(*, profile_id, error: str) -> ReferenceProfile:
    ReferenceProfile.objects.filter(pk=profile_id, status=JobStatus.RUNNING).update(
        status=JobStatus.FAILED, error=error[:2000], finished_at=timezone.now()
    )
    return ReferenceProfile.objects.get(pk=profile_id)


# --- Checks ---------------------------------------------------------------------------------------------------------
def check_claim(*, check_id) -> MonitorCheck | None:
    claimed = MonitorCheck.objects.filter(pk=check_id, status=JobStatus.QUEUED).update(
        status=JobStatus.RUNNING, started_at=timezone.now()
    )
    if not claimed:
        return None
    return MonitorCheck.objects.select_related("monitor__deployment__project__definition").get(pk=check_id)


def check_fail(*, check_id, error: str) -> MonitorCheck:
    MonitorCheck.objects.filter(pk=check_id, status=JobStatus.RUNNING).update(
        status=JobStatus.FAILED, error=error[:4000], finished_at=timezone.now()
    )
    return MonitorCheck.objects.get(pk=check_id)


def health_figures(*, deployment, since) -> dict[str, Any]:
    """Request rate, error rate and latency per live version over the window (the servers' metrics), and the
    traffic-weighted totals the rules read."""
    rows = [row for row in live_figures(deployment=deployment, window=timezone.now() - since) if row.role == "live"]
    requests = sum(row.requests for row in rows)
    errors = sum(row.errors for row in rows)
    return {
        "versions": [
            {
                "version": row.version_number,
                "requests": row.requests,
                "requests_per_second": row.requests_per_second,
                "error_rate": row.error_rate,
                "p50_ms": row.p50_ms,
                "p95_ms": row.p95_ms,
                "p99_ms": row.p99_ms,
            }
            for row in rows
        ],
        "requests": requests,
        "error_rate": errors / requests if requests else None,
        "p99_ms": max((row.p99_ms for row in rows if row.p99_ms is not None), default=None),
    }


def _figures(drift: dict, performance: dict, health: dict, value: dict) -> dict[str, float]:
    """The numbers alert rules read, by key (a metric's key is "metric:<name>")."""
    figures: dict[str, float] = {}
    if drift.get("drifted_share") is not None:
        figures[Figure.DRIFT_SHARE] = float(drift["drifted_share"])
    prediction = drift.get("prediction_drift") or {}
    if prediction.get("score") is not None:
        figures[Figure.PREDICTION_DRIFT] = float(prediction["score"])
    for name, number in (performance.get("metrics") or {}).items():
        figures[f"metric:{name}"] = float(number)
    if health.get("error_rate") is not None:
        figures[Figure.ERROR_RATE] = float(health["error_rate"])
    if health.get("p99_ms") is not None:
        figures[Figure.LATENCY_P99] = float(health["p99_ms"])
    overall = (value or {}).get("overall") or {}
    if overall.get("computed"):
        figures[Figure.REALISED_VALUE] = float(overall["per_decision"])
    return figures


def _rule_key(rule: AlertRule) -> str:
    return f"metric:{rule.metric}" if rule.figure == Figure.METRIC else rule.figure


def breached(rule: AlertRule, figures: dict[str, float]) -> float | None:
    """The figure's value when the rule fires on it, else None (a figure the check could not compute never fires)."""
    value = figures.get(_rule_key(rule))
    if value is None:
        return None
    fires = value > rule.threshold if rule.operator == Operator.ABOVE else value < rule.threshold
    return value if fires else None


def check_succeed(
    *,
    check_id,
    version,
    window_start,
    window_end,
    rows: int,
    sampled_rows: int,
    drift: dict,
    performance: dict,
    value: dict,
    concept_drift: dict,
    report_key: str,
) -> MonitorCheck:
    """Record a finished check, then raise the alerts its figures breach (one per rule while it is open)."""
    with transaction.atomic():
        check = MonitorCheck.objects.select_for_update().select_related("monitor__deployment__project").get(pk=check_id)
        if check.status != JobStatus.RUNNING:
            return check
        monitor = check.monitor
        health = health_figures(deployment=monitor.deployment, since=window_start)
        check.version = version
        check.window_start, check.window_end = window_start, window_end
        check.rows, check.sampled_rows = rows, sampled_rows
        check.drift, check.value, check.health = drift, value, health
        check.performance = {**performance, "concept_drift": concept_drift}
        check.concept_drift = bool(concept_drift.get("detected"))
        check.figures = _figures(drift, performance, health, value)
        check.report_key = report_key
        check.status = JobStatus.SUCCEEDED
        check.finished_at = timezone.now()
        check.save()
        raised = [alert for rule in monitor.rules.filter(enabled=True) if (alert := _raise(rule, check))]
    for alert in raised:
        _after_raise(alert)
    return check


def _raise(rule: AlertRule, check: MonitorCheck) -> Alert | None:
    """A new alert when the rule fires and none is open for it; an open one only records that it was seen again."""
    value = breached(rule, check.figures)
    if value is None:
        return None
    open_alert = Alert.objects.filter(rule=rule).exclude(status=AlertStatus.RESOLVED).first()
    if open_alert is not None:
        open_alert.last_seen_at = check.finished_at
        open_alert.save(update_fields=["last_seen_at", "updated_at"])
        return None
    deployment = check.monitor.deployment
    message = f"{deployment.name}: {rule.get_figure_display().lower()}"
    message += f" ({rule.metric})" if rule.metric else ""
    message += f" is {value:.4g}, {rule.get_operator_display()} the limit {rule.threshold:.4g}."
    try:
        with transaction.atomic():
            alert = Alert.objects.create(
                rule=rule,
                monitor=check.monitor,
                check_run=check,
                severity=rule.severity,
                value=value,
                threshold=rule.threshold,
                message=message,
                last_seen_at=check.finished_at,
            )
    except IntegrityError:  # another check raised it a moment ago: it is open, not repeated
        return None
    audit_record(
        actor=None,
        action="monitoring.alert_raise",
        obj=alert,
        project=deployment.project,
        after={"rule": str(rule), "value": value, "severity": rule.severity, "check": str(check.pk)},
    )
    return alert


def _recipients(project) -> list:
    members = Membership.objects.filter(
        project=project, role__in=[Role.SCIENTIST, Role.REVIEWER], user__is_active=True
    ).select_related("user")
    return [membership.user for membership in members]


def _after_raise(alert: Alert) -> None:
    """Inbox, e-mail and webhooks (apps.notifications), then the retraining policy, after the alert committed."""
    deployment = alert.monitor.deployment
    notify(
        event=Event.MONITORING_ALERT_RAISED,
        project=deployment.project,
        recipients=_recipients(deployment.project),
        title=f"[{alert.get_severity_display()}] {alert.message}",
        body=f"Rule: {alert.rule}. Check {alert.check_run_id}.",
        link=reverse("monitoring:alert", args=[alert.pk]),
        payload={
            "alert": {"id": str(alert.pk), "severity": alert.severity, "value": alert.value},
            "rule": {"figure": alert.rule.figure, "metric": alert.rule.metric, "threshold": alert.threshold},
            "deployment": {"id": str(deployment.pk), "name": deployment.name},
        },
    )
    if alert.rule.figure in DRIFT_FIGURES + PERFORMANCE_FIGURES:
        from apps.monitoring.services.retraining import retraining_on_alert

        retraining_on_alert(alert=alert)


# --- People handling alerts -----------------------------------------------------------------------------------------
def _lock_alert(alert: Alert) -> Alert:
    return Alert.objects.select_for_update().select_related("monitor__deployment__project").get(pk=alert.pk)


def alert_acknowledge(*, alert: Alert, actor, note: str = "") -> Alert:
    """Someone is on it: the alert stays open (no repeat) until resolved."""
    require(actor, Action.ALERT_HANDLE, alert.monitor.deployment.project)
    with transaction.atomic():
        alert = _lock_alert(alert)
        if alert.status != AlertStatus.OPEN:
            raise field_error(
                "status", f"The alert is {alert.get_status_display().lower()}: only an open one.", status=409
            )
        alert.status = AlertStatus.ACKNOWLEDGED
        alert.acknowledged_by, alert.acknowledged_at = actor, timezone.now()
        alert.note = str(note or "").strip()
        alert.save()
        audit_record(
            actor=actor,
            action="monitoring.alert_acknowledge",
            obj=alert,
            project=alert.monitor.deployment.project,
            before={"status": AlertStatus.OPEN},
            after={"status": alert.status, "note": alert.note},
        )
    return alert


def alert_resolve(*, alert: Alert, actor, note: str) -> Alert:
    """Closed with what was done; the rule may raise a new alert at the next check that breaches it."""
    require(actor, Action.ALERT_HANDLE, alert.monitor.deployment.project)
    note = str(note or "").strip()
    if not note:
        raise field_error("note", "Say what was done about it.")
    with transaction.atomic():
        alert = _lock_alert(alert)
        if alert.status == AlertStatus.RESOLVED:
            raise field_error("status", "The alert is already resolved.", status=409)
        before = alert.status
        alert.status = AlertStatus.RESOLVED
        alert.resolved_by, alert.resolved_at = actor, timezone.now()
        alert.note = note
        alert.save()
        audit_record(
            actor=actor,
            action="monitoring.alert_resolve",
            obj=alert,
            project=alert.monitor.deployment.project,
            before={"status": before},
            after={"status": alert.status, "note": note},
        )
    return alert
