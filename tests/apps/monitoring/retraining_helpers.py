"""Helpers of the retraining tests: an alert made with the ORM (the monitors and alert services are the lead's) for a
deployment of a version, and a snapshot of everything the retraining services may change."""

import json

from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from apps.audit.models import AuditEvent
from apps.experiments.models import Experiment
from apps.monitoring.choices import Figure, JobStatus, Operator, Severity
from apps.monitoring.models import Alert, AlertRule, Monitor, MonitorCheck, RetrainingPolicy, RetrainingRun
from apps.registry.models import ModelVersion, PromotionRequest
from tests.apps.deployments.prediction_helpers import make_deployment


def monitor_of(version) -> Monitor:
    """The monitor of the version's deployment (made on first use)."""
    deployment = version.registered_model.deployments.first() or make_deployment(version)
    return Monitor.objects.get_or_create(deployment=deployment)[0]


def raise_alert(version, *, figure: str = Figure.DRIFT_SHARE, value: float = 0.6, threshold: float = 0.3) -> Alert:
    """An open alert of a new rule on `figure` of the monitor of the version's deployment, from a finished check."""
    monitor = monitor_of(version)
    rule = AlertRule.objects.create(
        monitor=monitor,
        figure=figure,
        metric="roc_auc" if figure == Figure.METRIC else "",
        operator=Operator.BELOW if figure in (Figure.METRIC, Figure.REALISED_VALUE) else Operator.ABOVE,
        threshold=threshold,
        severity=Severity.WARNING,
    )
    check = MonitorCheck.objects.create(
        monitor=monitor,
        version=version,
        status=JobStatus.SUCCEEDED,
        rows=500,
        figures={figure: value},
        finished_at=timezone.now(),
    )
    return Alert.objects.create(
        rule=rule,
        monitor=monitor,
        check_run=check,
        severity=rule.severity,
        value=value,
        threshold=threshold,
        message=f"{figure} is {value:g} ({rule.operator} {threshold:g})",
        last_seen_at=timezone.now(),
    )


def state() -> tuple:
    """Everything a retraining call could change, to prove a refused call changed nothing."""
    return (
        sorted(
            (str(pk), drift, performance, days, enabled, str(owner))
            for pk, drift, performance, days, enabled, owner in RetrainingPolicy.objects.values_list(
                "pk", "on_drift_alert", "on_performance_alert", "schedule_days", "enabled", "owner_id"
            )
        ),
        sorted((str(pk), status) for pk, status in RetrainingRun.objects.values_list("pk", "status")),
        sorted((name, json.dumps(args)) for name, args in PeriodicTask.objects.values_list("name", "args")),
        Experiment.objects.count(),
        sorted((str(pk), stage) for pk, stage in ModelVersion.objects.values_list("pk", "stage")),
        PromotionRequest.objects.count(),
        AuditEvent.objects.count(),
    )


def audit_actions(obj) -> list[str]:
    return list(AuditEvent.objects.filter(object_id=str(obj.pk)).order_by("seq").values_list("action", flat=True))
