"""Reading monitoring. Visibility follows Action.MONITOR_VIEW through the deployment's project (404 otherwise); the
overview follows Action.MONITORING_OVERVIEW (reviewers, compliance officers and admins see every deployment's health,
others the deployments they may see).

The check task reads its inputs here: the window's logged predictions are streamed (`iterator`), never loaded whole,
so a window of millions of predictions costs the sample the drift check keeps, not the window.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, F, OuterRef, Prefetch, Q, QuerySet, Subquery
from django.http import Http404
from django.utils import timezone

from apps.accounts.permissions import Action, can
from apps.deployments.choices import RouteRole
from apps.deployments.models import Deployment, Prediction
from apps.experiments.choices import ExperimentStatus
from apps.experiments.selectors import project_targets
from apps.monitoring.choices import AlertStatus, JobStatus, RetrainingStatus, WindowKind
from apps.monitoring.models import (
    Alert,
    AlertRule,
    Monitor,
    MonitorCheck,
    ReferenceProfile,
    RetrainingPolicy,
    RetrainingRun,
)
from apps.projects.selectors import project_ids_granting, row_by_pk
from apps.registry.models import ModelVersion, RegisteredModel

STREAM_CHUNK = 5000
UNRESOLVED = [AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED]


def _visible_monitors(*, actor) -> QuerySet[Monitor]:
    monitors = Monitor.objects.select_related("deployment__project", "deployment__registered_model")
    project_ids = project_ids_granting(actor=actor, action=Action.MONITOR_VIEW)
    return monitors if project_ids is None else monitors.filter(deployment__project_id__in=project_ids)


def monitor_get(*, actor, pk) -> Monitor:
    monitor = row_by_pk(
        _visible_monitors(actor=actor).prefetch_related(
            Prefetch("rules", queryset=AlertRule.objects.order_by("figure", "metric"))
        ),
        pk,
    )
    if monitor is None:
        raise Http404("No such monitor.")
    return monitor


def monitor_of_deployment(*, actor, deployment_pk) -> Monitor:
    monitor = _visible_monitors(actor=actor).filter(deployment_id=deployment_pk).first()
    if monitor is None:
        raise Http404("No such monitor.")
    return monitor


def checks_of(*, monitor: Monitor) -> QuerySet[MonitorCheck]:
    return monitor.checks.select_related("version").order_by("-created_at")


def check_get(*, actor, pk) -> MonitorCheck:
    check = row_by_pk(MonitorCheck.objects.filter(monitor__in=_visible_monitors(actor=actor)), pk)
    if check is None:
        raise Http404("No such check.")
    return check


def check_series(*, monitor: Monitor, limit: int = 60) -> list[MonitorCheck]:
    """The latest succeeded checks, oldest first: the dashboard's time series."""
    checks = monitor.checks.filter(status=JobStatus.SUCCEEDED).order_by("-created_at")[:limit]
    return list(reversed(checks))


def alert_list(*, actor, status: str | None = None, monitor: Monitor | None = None) -> QuerySet[Alert]:
    alerts = Alert.objects.filter(monitor__in=_visible_monitors(actor=actor)).select_related(
        "rule", "monitor__deployment", "acknowledged_by", "resolved_by"
    )
    if status == "unresolved":
        alerts = alerts.filter(status__in=UNRESOLVED)
    elif status:
        alerts = alerts.filter(status=status)
    if monitor is not None:
        alerts = alerts.filter(monitor=monitor)
    return alerts.order_by("-created_at")


def alert_rule_get(*, actor, pk) -> AlertRule:
    rule = row_by_pk(
        AlertRule.objects.filter(monitor__in=_visible_monitors(actor=actor)).select_related(
            "monitor__deployment__project"
        ),
        pk,
    )
    if rule is None:
        raise Http404("No such rule.")
    return rule


def alert_get(*, actor, pk) -> Alert:
    alert = row_by_pk(alert_list(actor=actor).select_related("check_run", "monitor__deployment__project"), pk)
    if alert is None:
        raise Http404("No such alert.")
    return alert


@dataclass(frozen=True)
class HealthRow:
    deployment: Deployment
    open_alerts: int
    last_check: MonitorCheck | None


def overview(*, actor) -> list[HealthRow]:
    """Every deployment the actor may see (all of them for reviewers, compliance officers and admins), with its
    status, open alerts and latest check: three queries whatever the number of deployments."""
    deployments = Deployment.objects.select_related("project", "registered_model").order_by("name")
    if not can(actor, Action.MONITORING_OVERVIEW):
        project_ids = project_ids_granting(actor=actor, action=Action.MONITOR_VIEW)
        if project_ids is not None:
            deployments = deployments.filter(project_id__in=project_ids)
    deployments = deployments.annotate(
        open_alerts=Count("monitor__alerts", filter=Q(monitor__alerts__status__in=UNRESOLVED))
    )
    rows = list(deployments.annotate(monitor_pk=F("monitor__pk")))
    latest = latest_checks(monitor_ids=[row.monitor_pk for row in rows if row.monitor_pk])
    return [HealthRow(row, row.open_alerts, latest.get(row.monitor_pk)) for row in rows]


def latest_checks(*, monitor_ids) -> dict:
    """{monitor id: its latest succeeded check}, in two queries whatever the number of checks kept."""
    newest = MonitorCheck.objects.filter(monitor_id=OuterRef("pk"), status=JobStatus.SUCCEEDED).order_by("-created_at")
    check_ids = Monitor.objects.filter(pk__in=monitor_ids).annotate(latest=Subquery(newest.values("pk")[:1]))
    wanted = [latest for latest in check_ids.values_list("latest", flat=True) if latest]
    checks = MonitorCheck.objects.filter(pk__in=wanted).select_related("monitor__deployment")
    return {check.monitor_id: check for check in checks}


# --- For the check task ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CheckInputs:
    deployment: Deployment
    version: ModelVersion  # the reference's version
    problem_type: str
    signature: dict
    classes: list | None
    targets: Any  # workers.ml.evaluation.targets.ProjectTargets
    expected_primary: float | None  # the version's test score on the primary metric
    window_start: datetime
    window_end: datetime
    last_n: int | None  # the window is the last N predictions
    performance_since: datetime


def _reference_version(monitor: Monitor) -> ModelVersion:
    if monitor.reference_version_id:
        return ModelVersion.objects.select_related("run__experiment__dataset_version").get(
            pk=monitor.reference_version_id
        )
    route = (
        monitor.deployment.routes.filter(role=RouteRole.LIVE)
        .select_related("version__run__experiment__dataset_version")
        .order_by("-weight", "-version__number")
        .first()
    )
    if route is None:
        raise ValueError("The deployment serves no version.")
    return route.version


def check_inputs(*, check: MonitorCheck) -> CheckInputs:
    monitor = check.monitor
    deployment = monitor.deployment
    version = _reference_version(monitor)
    now = timezone.now()
    targets = project_targets(deployment.project)
    expected = (version.metrics or {}).get("test", {}).get(targets.primary_metric)
    last_n = monitor.window_predictions if monitor.window_kind == WindowKind.PREDICTIONS else None
    start = now - timedelta(hours=monitor.window_hours) if last_n is None else _start_of_last(deployment, last_n)
    return CheckInputs(
        deployment=deployment,
        version=version,
        problem_type=version.run.spec["problem_type"],
        signature=version.input_signature,
        classes=((version.input_signature or {}).get("target") or {}).get("classes")
        or (version.metrics or {}).get("classes"),
        targets=targets,
        expected_primary=float(expected) if isinstance(expected, int | float) else None,
        window_start=start,
        window_end=now,
        last_n=last_n,
        performance_since=now - timedelta(days=monitor.performance_days),
    )


def _live_predictions(deployment: Deployment) -> QuerySet[Prediction]:
    return Prediction.objects.filter(deployment=deployment, shadow=False)


def _start_of_last(deployment: Deployment, count: int) -> datetime:
    times = _live_predictions(deployment).order_by("-predicted_at").values_list("predicted_at", flat=True)
    last = times[count - 1 : count].first() or times.last()
    return last or timezone.now()


def window_records(*, inputs: CheckInputs) -> Iterator[dict]:
    """The window's live predictions as the server logged them ({"inputs", "outputs", "variant"}), streamed."""
    rows = _live_predictions(inputs.deployment).filter(
        predicted_at__gte=inputs.window_start, predicted_at__lte=inputs.window_end
    )
    for prediction_inputs, outputs, variant in rows.values_list("inputs", "outputs", "variant").iterator(
        chunk_size=STREAM_CHUNK
    ):
        yield {"inputs": prediction_inputs, "outputs": outputs, "variant": variant}


def labelled_records(*, inputs: CheckInputs) -> Iterator[dict]:
    """Live predictions since `performance_since` whose ground truth arrived ({"outputs", "actual", "variant"}),
    streamed: ground truth posted late still counts at the next check."""
    rows = _live_predictions(inputs.deployment).filter(predicted_at__gte=inputs.performance_since, truth__isnull=False)
    for outputs, actual, variant in rows.values_list("outputs", "truth__actual", "variant").iterator(
        chunk_size=STREAM_CHUNK
    ):
        yield {"outputs": outputs, "actual": actual, "variant": variant}


def reference_of(*, version: ModelVersion) -> ReferenceProfile | None:
    return ReferenceProfile.objects.filter(version=version, status=JobStatus.SUCCEEDED).first()


@dataclass(frozen=True)
class RealisedValue:
    deployment: Deployment
    check: MonitorCheck
    overall: dict  # workers.ml.monitoring.outcomes: total, per_decision, decisions, currency, counts
    variants: dict


def project_realised_value(*, project) -> list[RealisedValue]:
    """Per running deployment of the project, the value its decisions realised in its latest check's window (from
    the ground truth that arrived), next to which the project page shows the expected value."""
    latest = latest_checks(monitor_ids=Monitor.objects.filter(deployment__project=project).values_list("pk", flat=True))
    rows = []
    for check in latest.values():
        overall = (check.value or {}).get("overall") or {}
        if overall.get("computed"):
            rows.append(RealisedValue(check.monitor.deployment, check, overall, check.value.get("variants") or {}))
    return sorted(rows, key=lambda row: row.deployment.name)


# --- Retraining policies and runs (visibility follows the registered model's: Action.MODEL_VIEW) ----------------
FINISHED_EXPERIMENT_STATUSES = (ExperimentStatus.SUCCEEDED, ExperimentStatus.FAILED, ExperimentStatus.CANCELLED)


def retraining_policy_of(*, registered_model: RegisteredModel) -> RetrainingPolicy | None:
    """The model's policy (the caller already sees the model), or None when it has none yet."""
    return (
        RetrainingPolicy.objects.select_related("owner", "periodic_task", "registered_model")
        .filter(registered_model_id=registered_model.pk)
        .first()
    )


def _run_queryset() -> QuerySet[RetrainingRun]:
    return RetrainingRun.objects.select_related(
        "policy__registered_model__project",
        "policy__owner",
        "alert",
        "champion",
        "dataset_version__dataset",
        "experiment",
        "new_version",
        "promotion_request",
    )


def retraining_run_list(*, actor, registered_model: RegisteredModel | None = None) -> QuerySet[RetrainingRun]:
    """Visible retraining runs (optionally: of one model), newest first."""
    runs = _run_queryset()
    project_ids = project_ids_granting(actor=actor, action=Action.MODEL_VIEW)
    if project_ids is not None:
        runs = runs.filter(policy__registered_model__project_id__in=project_ids)
    if registered_model is not None:
        runs = runs.filter(policy__registered_model_id=registered_model.pk)
    return runs.order_by("-created_at", "-pk")


def retraining_run_get(*, actor, pk, registered_model: RegisteredModel | None = None) -> RetrainingRun:
    run = row_by_pk(retraining_run_list(actor=actor, registered_model=registered_model), pk)
    if run is None:
        raise Http404("No such retraining.")
    return run


# --- For the worker (no visibility: it acts for the platform) -------------------------------------------------------
def retraining_runs_to_advance() -> QuerySet[RetrainingRun]:
    """Runs still training whose experiment has finished (the periodic task advances each; only their ids loaded)."""
    return (
        RetrainingRun.objects.filter(
            status=RetrainingStatus.TRAINING, experiment__status__in=FINISHED_EXPERIMENT_STATUSES
        )
        .order_by("created_at")
        .only("pk")
    )


def retraining_run_for_worker(*, run_id) -> RetrainingRun:
    """A run with what the comparison task loads: both versions (artifacts, runs and specs) and the data version."""
    return RetrainingRun.objects.select_related(
        "champion__run",
        "new_version__run__experiment__dataset_version",
        "policy__registered_model",
    ).get(pk=run_id)
