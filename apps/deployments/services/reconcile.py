"""The reconciler: make what runs match what a deployment says, then look at what runs and act on it.

One round for one deployment (the `deployments.reconcile` task, after every change and every
SERVING_RECONCILE_SECONDS from beat):
1. the runner is given the endpoint (deployment file from the routes, replicas, the server's environment) and makes
   it so: starts missing replicas, restarts dead ones, reloads a changed file into running ones (`ensure`);
2. every replica's /metrics is scraped: which routed versions are ready, and the requests, errors and latency served
   since the last round (stored as MetricSample rows per version);
3. the status is recorded (ready only when every replica is ready and serves every routed version);
4. rollouts move on: a blue-green whose new version is ready on every replica switches; a canary is judged on what
   its version served since its last step: rolled back when it breaches a limit (or did not load), raised one step
   when the step's time passed within the limits with enough requests.
The runner's work (seconds: processes start, versions load) happens outside any transaction; results are written
in one short transaction on the locked row.
"""

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Sum
from django.urls import reverse
from django.utils import timezone

from apps.deployments.choices import DeploymentStatus, RolloutState, RouteRole
from apps.deployments.models import Deployment, MetricSample
from apps.deployments.runtime import prediction_log_dir
from apps.deployments.services import deployments as deployment_services
from apps.deployments.serving_config import deployment_config
from apps.notifications.choices import Event
from apps.notifications.services import notify
from workers.serving.runners.base import (
    CRASH_LOOP,
    DEGRADED,
    READY,
    STOPPED,
    Endpoint,
    EndpointError,
    EndpointStatus,
    Runner,
)
from workers.serving.scrape import (
    BUCKET_COUNT,
    Scrape,
    ScrapeError,
    Series,
    interval_delta,
    load_failure,
    quantile_ms,
    scrape,
)

# Passed to model servers when the portal has them: how they reach an S3-compatible artifact store.
STORE_VARIABLES = ("S3_ENDPOINT_URL", "S3_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")


# --- The endpoint ---------------------------------------------------------------------------------------------------
def server_environment(deployment: Deployment) -> dict[str, str]:
    environment = {
        "MODEL_SIGNING_KEY": settings.MODEL_SIGNING_KEY,
        "SERVING_LOG_DIR": str(prediction_log_dir(deployment.name)),
        "SERVING_LOG_ROTATE_SECONDS": str(settings.SERVING_LOG_ROTATE_SECONDS),
    }
    if deployment.feature_view_id:
        environment["FEATURES_ONLINE_REDIS_URL"] = settings.FEATURES_ONLINE_REDIS_URL
    sources = {"S3_ENDPOINT_URL": settings.S3_ENDPOINT_URL, "S3_REGION": settings.S3_REGION}
    for name in STORE_VARIABLES:
        value = sources.get(name) or os.environ.get(name)
        if value:
            environment[name] = value
    return environment


def endpoint_for(deployment: Deployment, routes: list) -> Endpoint:
    return Endpoint(
        id=deployment.name,
        config=deployment_config(deployment, routes),
        replicas=deployment.replicas,
        environment=server_environment(deployment),
    )


def _routes(deployment: Deployment) -> list:
    return list(deployment.routes.select_related("version__run").order_by("-weight", "variant"))


# --- Observing ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Observation:
    status: EndpointStatus | None
    scrapes: dict[str, Scrape]  # replica url -> its scrape
    error: str = ""  # the runner refused or failed

    def ready_everywhere(self) -> set[int]:
        """Version numbers ready on every replica that answered /metrics (none when no replica answered, or when
        a replica is not ready at all)."""
        if self.status is None or not self.scrapes or len(self.scrapes) < len(self.status.replicas):
            return set()
        sets = [{int(v) for v, ready in scraped.ready.items() if ready} for scraped in self.scrapes.values()]
        return set.intersection(*sets)


def _observe(runner: Runner, deployment: Deployment, endpoint: Endpoint | None) -> Observation:
    try:
        status = runner.ensure(endpoint) if endpoint is not None else runner.status(deployment.name)
    except EndpointError as exc:
        return Observation(status=None, scrapes={}, error=str(exc))
    scrapes = {}
    for replica in status.replicas:
        if replica.alive:
            try:
                scrapes[replica.url] = scrape(replica.url)
            except ScrapeError:
                continue
    return Observation(status=status, scrapes=scrapes)


def _status_of(deployment: Deployment, observation: Observation, routed: set[int]) -> tuple[str, str]:
    status = observation.status
    if status is None:
        return DeploymentStatus.FAILED, observation.error
    if status.state == STOPPED:
        return DeploymentStatus.FAILED, "No replica runs."
    if status.state == CRASH_LOOP:
        reasons = [replica.reason for replica in status.replicas if replica.reason]
        return DeploymentStatus.FAILED, "A replica keeps crashing: " + (reasons[0] if reasons else "see its log.")
    if status.state not in (READY, DEGRADED):
        reasons = [replica.reason for replica in status.replicas if replica.reason]
        return DeploymentStatus.FAILED, reasons[0] if reasons else "No replica is ready."
    missing = sorted(routed - observation.ready_everywhere())
    reload_errors = [replica.reload_error for replica in status.replicas if replica.reload_error]
    if missing:
        reason = f"Version {', '.join(map(str, missing))} is not ready on every replica"
        return DeploymentStatus.DEGRADED, reason + (f": {reload_errors[0]}" if reload_errors else ".")
    if status.state == DEGRADED:
        return DeploymentStatus.DEGRADED, "Some replicas are not ready."
    return DeploymentStatus.READY, ""


def _series_key(version: str, role: str) -> str:
    return f"{version}|{role}"


def _record_samples(deployment: Deployment, observation: Observation, now, versions_by_number: dict) -> dict:
    """MetricSample rows for what each version served since the previous round; answers the counters to keep."""
    previous = deployment.observed.get("counters", {})
    seconds = (now - deployment.observed_at).total_seconds() if deployment.observed_at else 0.0
    totals: dict[tuple[str, str], list] = {}
    counters: dict[str, dict[str, Any]] = {}
    for url, scraped in observation.scrapes.items():
        counters[url] = {}
        for (version, role), series in scraped.series.items():
            key = _series_key(version, role)
            counters[url][key] = series.__dict__
            before = previous.get(url, {}).get(key)
            delta = interval_delta(Series(**before) if before else None, series)
            if delta[0] <= 0:
                continue
            total = totals.setdefault((version, role), [0, 0, 0.0, [0] * BUCKET_COUNT])
            total[0] += delta[0]
            total[1] += delta[1]
            total[2] += delta[2]
            total[3] = [a + b for a, b in zip(total[3], delta[3], strict=True)]
    samples = [
        MetricSample(
            deployment=deployment,
            version=versions_by_number[int(version)],
            role=role,
            observed_at=now,
            seconds=seconds,
            requests=requests,
            errors=errors,
            latency_sum=latency,
            latency_buckets=buckets,
        )
        for (version, role), (requests, errors, latency, buckets) in totals.items()
        if version.isdigit() and int(version) in versions_by_number
    ]
    MetricSample.objects.bulk_create(samples)
    return counters


def _replica_summary(status: EndpointStatus | None) -> list[dict[str, Any]]:
    if status is None:
        return []
    return [
        {
            "index": replica.index,
            "url": replica.url,
            "pid": replica.pid,
            "alive": replica.alive,
            "ready": replica.ready,
            "restarts": replica.restarts,
            "last_exit_code": replica.last_exit_code,
            "reason": replica.reason,
            "reload_error": replica.reload_error,
        }
        for replica in status.replicas
    ]


def _save_observation(deployment_id, observation: Observation, *, revision: int, routes: list) -> Deployment:
    now = timezone.now()
    routed = {route.version.number for route in routes if route.role == RouteRole.SHADOW or route.weight > 0}
    versions_by_number = {route.version.number: route.version for route in routes}
    with transaction.atomic():
        deployment = Deployment.objects.select_for_update().select_related("project").get(pk=deployment_id)
        counters = _record_samples(deployment, observation, now, versions_by_number)
        previous_status = deployment.status
        status, reason = _status_of(deployment, observation, routed)
        if deployment.revision != revision:
            status, reason = DeploymentStatus.PENDING, "A newer change is being applied."
        deployment.status, deployment.status_reason = status, reason
        replicas = _replica_summary(observation.status)
        deployment.url = replicas[0]["url"] if replicas else ""
        deployment.observed = {
            "state": observation.status.state if observation.status else "error",
            "replicas": replicas,
            "ready_versions": sorted(observation.ready_everywhere()),
            "counters": counters,
        }
        deployment.observed_at = now
        deployment.applied_revision = max(deployment.applied_revision, revision)
        deployment.save(update_fields=["status", "status_reason", "url", "observed", "observed_at", "applied_revision"])
        if status == DeploymentStatus.FAILED and previous_status != DeploymentStatus.FAILED:
            _notify_failed(deployment)
    return deployment


def _notify_failed(deployment: Deployment) -> None:
    notify(
        event=Event.DEPLOYMENT_FAILED,
        project=deployment.project,
        recipients=[deployment.created_by],
        title=f"{deployment.name} is not serving",
        body=deployment.status_reason,
        link=reverse("deployments:detail", args=[deployment.pk]),
        payload={"deployment": {"id": str(deployment.pk), "name": deployment.name}, "reason": deployment.status_reason},
    )


def _stop(runner: Runner, deployment: Deployment) -> Deployment:
    runner.stop(deployment.name)
    with transaction.atomic():
        deployment = Deployment.objects.select_for_update().get(pk=deployment.pk)
        deployment.status, deployment.status_reason, deployment.url = DeploymentStatus.STOPPED, "", ""
        deployment.observed = {"state": STOPPED, "replicas": [], "ready_versions": [], "counters": {}}
        deployment.observed_at = timezone.now()
        deployment.applied_revision = deployment.revision
        deployment.save(update_fields=["status", "status_reason", "url", "observed", "observed_at", "applied_revision"])
    return deployment


# --- Rollouts -------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Window:
    """What one version served over a time window (summed MetricSamples)."""

    requests: int
    errors: int
    buckets: list[int]

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    @property
    def p99_ms(self) -> float | None:
        return quantile_ms(self.buckets, 0.99)


def version_window(deployment: Deployment, version_id, *, since, role: str = RouteRole.LIVE) -> Window:
    samples = MetricSample.objects.filter(
        deployment=deployment, version_id=version_id, role=role, observed_at__gt=since
    )
    sums = samples.aggregate(requests=Sum("requests"), errors=Sum("errors"))
    buckets = [0] * BUCKET_COUNT
    for row in samples.values_list("latency_buckets", flat=True):
        buckets = [a + b for a, b in zip(buckets, row, strict=True)]
    return Window(requests=sums["requests"] or 0, errors=sums["errors"] or 0, buckets=buckets)


@dataclass(frozen=True)
class Verdict:
    action: str  # "rollback", "advance" or "wait"
    reason: str = ""


def canary_verdict(
    *,
    canary: Window,
    stable: Window,
    max_error_rate: float,
    max_p99_ms: float | None,
    min_requests: int,
    step_elapsed: bool,
) -> Verdict:
    """The canary's errors are judged against the stable version's over the same window (requests that both refuse,
    e.g. malformed client input, are not the canary's fault): a rate above the stable one's plus `max_error_rate`
    breaches. Latency: the canary's p99 above `max_p99_ms` breaches. Nothing is judged on fewer than
    `min_requests` of the canary's requests."""
    if canary.requests < min_requests:
        return Verdict("wait", f"{canary.requests} of the {min_requests} requests needed to judge the canary.")
    allowed = stable.error_rate + max_error_rate
    if canary.error_rate > allowed:
        return Verdict(
            "rollback",
            f"Canary error rate {canary.error_rate:.1%} over {canary.requests} requests is above the limit "
            f"{allowed:.1%} (stable {stable.error_rate:.1%} + {max_error_rate:.1%}).",
        )
    p99 = canary.p99_ms
    if max_p99_ms is not None and p99 is not None and p99 > max_p99_ms:
        return Verdict("rollback", f"Canary p99 latency {p99:g} ms is above the limit {max_p99_ms:g} ms.")
    if step_elapsed:
        return Verdict("advance", f"Within the limits over {canary.requests} requests.")
    return Verdict("wait", "Within the limits; the step's time has not passed yet.")


def _latency_limit(deployment: Deployment) -> float | None:
    if deployment.canary_max_p99_ms is not None:
        return deployment.canary_max_p99_ms
    definition = getattr(deployment.project, "definition", None)
    budget = getattr(definition, "latency_budget_p99_ms", None)
    return float(budget) if budget else None


def _load_failure(deployment: Deployment, observation: Observation, version_number: int) -> str:
    """Why `version_number` did not load, when a replica says so (a version with live traffic also shows in the
    replica's refused reload; an idle or shadow one only in its readiness answer)."""
    if observation.status is None:
        return ""
    for replica in observation.status.replicas:
        if replica.reload_error and f"version {version_number} " in replica.reload_error:
            return replica.reload_error
        if replica.alive and (reason := load_failure(replica.url, deployment.name, str(version_number))):
            return reason
    return ""


def _advance_rollout(deployment: Deployment, observation: Observation) -> bool:
    """Move a blue-green or canary on; True when the desired state changed (another round should apply it)."""
    if deployment.revision != deployment.applied_revision or deployment.rollout_version_id is None:
        return False
    number = deployment.rollout_version.number
    ready = number in observation.ready_everywhere()
    failure = "" if ready else _load_failure(deployment, observation, number)
    if deployment.rollout_state == RolloutState.WARMING:
        if number in observation.ready_everywhere():
            deployment_services.blue_green_switch(
                deployment=deployment, actor=None, ready_versions=observation.ready_everywhere()
            )
            return True
        if failure:
            deployment_services.rollout_rollback(
                deployment=deployment, reason=f"The new version did not load: {failure}"
            )
            return True
        return False
    if deployment.rollout_state != RolloutState.CANARY:
        return False
    if failure:
        deployment_services.rollout_rollback(deployment=deployment, reason=f"The canary did not load: {failure}")
        return True
    since = deployment.rollout_step_started_at
    stable = next(route for route in _routes(deployment) if route.version_id != deployment.rollout_version_id)
    verdict = canary_verdict(
        canary=version_window(deployment, deployment.rollout_version_id, since=since),
        stable=version_window(deployment, stable.version_id, since=since),
        max_error_rate=deployment.canary_max_error_rate,
        max_p99_ms=_latency_limit(deployment),
        min_requests=deployment.canary_min_requests,
        step_elapsed=timezone.now() - since >= timedelta(seconds=deployment.canary_step_seconds),
    )
    if verdict.action == "rollback":
        deployment_services.rollout_rollback(deployment=deployment, reason=verdict.reason)
        return True
    if verdict.action == "advance":
        deployment_services.canary_advance(deployment=deployment, reason=verdict.reason)
        return True
    return False


# --- The round ------------------------------------------------------------------------------------------------------
MAX_ROUNDS = 3  # a round that changes the desired state (a switch, a step, a rollback) applies it at once


def deployment_reconcile(*, deployment_id, runner: Runner) -> Deployment:
    for _ in range(MAX_ROUNDS):
        deployment = Deployment.objects.select_related("project__definition", "rollout_version").get(pk=deployment_id)
        if deployment.is_stopped:
            return _stop(runner, deployment)
        routes = _routes(deployment)
        observation = _observe(runner, deployment, endpoint_for(deployment, routes))
        deployment = _save_observation(deployment.pk, observation, revision=deployment.revision, routes=routes)
        deployment = Deployment.objects.select_related("project__definition", "rollout_version").get(pk=deployment_id)
        if not _advance_rollout(deployment, observation):
            return deployment
    return deployment
