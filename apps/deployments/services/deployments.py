"""Deployment use cases: deploy an approved version in one click, change what an endpoint serves (replace, blue-green,
canary, A/B, shadow), switch back, scale, stop and restart. Each is one transaction that changes the desired state
(the routes), records a TrafficChange and an audit event, bumps the deployment's revision and asks the reconciler
(apps.deployments.services.reconcile) to apply it after commit.

Rules (docs/adr/0011-deployments.md):
- live traffic in a production environment goes only to versions approved for production (in production now, or
  approved earlier and replaced since, so switching back stays possible); a staging environment also serves staging
  versions; a shadow may be any ready staging or production version, since its answers are never returned;
- one change of version at a time: a blue-green that is still loading or a canary in progress must end first, and an
  A/B test or a shadow must be ended (keeping one version) before the version is replaced;
- a deployment never routes to a version that is not healthy: blue-green switches only once the new version is ready
  on every replica (the reconciler does it), and a manual switch is refused before that.
"""

from dataclasses import dataclass
from typing import Any

from celery import current_app
from django.conf import settings
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify

from apps.accounts.permissions import Action, require
from apps.audit.services import audit_record
from apps.core.exceptions import field_error
from apps.deployments.choices import (
    DeploymentStatus,
    Environment,
    RolloutState,
    RouteRole,
    Strategy,
    TrafficChangeKind,
)
from apps.deployments.models import Deployment, DeploymentRoute, TrafficChange
from apps.monitoring.services.monitors import monitor_create, monitor_schedule_refresh
from apps.notifications.choices import Event
from apps.notifications.services import notify
from apps.projects.choices import ProjectStatus
from apps.registry.choices import Stage, VersionStatus
from apps.registry.models import ModelVersion, StageTransition
from workers.serving.runners.base import ENDPOINT_ID

RECONCILE_TASK = "deployments.reconcile"
MAX_REPLICAS = 20
NAME_CHARS = 63
MAX_SPLIT_PERCENT = 50  # an A/B challenger or a canary's first step: never more than half the traffic at once


def dispatch_reconcile(deployment_id) -> None:
    """Ask a worker to apply the deployment's desired state, once this transaction commits."""
    deployment_id = str(deployment_id)
    transaction.on_commit(lambda: current_app.send_task(RECONCILE_TASK, args=[deployment_id]))


# --- Checks ---------------------------------------------------------------------------------------------------------
def approved_for_production(version: ModelVersion) -> bool:
    """In production now, or approved for it earlier (a transition to production exists)."""
    if version.stage == Stage.PRODUCTION:
        return True
    return StageTransition.objects.filter(version=version, to_stage=Stage.PRODUCTION).exists()


def _require_servable(version: ModelVersion, environment: str, *, field: str = "version", shadow: bool = False):
    if version.status != VersionStatus.READY:
        raise field_error(field, f"{version} is not ready ({version.get_status_display().lower()}).", status=409)
    if shadow and version.stage in (Stage.STAGING, Stage.PRODUCTION):
        return
    if environment == Environment.STAGING and version.stage == Stage.STAGING:
        return
    if not approved_for_production(version):
        where = "a staging or production" if shadow or environment == Environment.STAGING else "a production"
        raise field_error(
            field,
            f"{version} is in {version.get_stage_display().lower()}: only {where} version may serve here "
            "(a reviewer approves versions for production in the registry).",
            status=409,
        )


def _require_model_of(deployment: Deployment, version: ModelVersion, field: str = "version") -> None:
    if version.registered_model_id != deployment.registered_model_id:
        raise field_error(field, f"{version} is not a version of {deployment.registered_model.name}.")


def _require_open_project(project) -> None:
    if project.status == ProjectStatus.RETIRED:
        raise field_error("project", "The project is retired: nothing new is deployed for it.", status=409)


def _require_running(deployment: Deployment) -> None:
    if deployment.is_stopped:
        raise field_error("deployment", f"{deployment.name} is stopped: start it again first.", status=409)


def _require_no_rollout(deployment: Deployment) -> None:
    if deployment.rollout_state in (RolloutState.WARMING, RolloutState.CANARY):
        raise field_error(
            "deployment",
            f"{deployment.name} is in a rollout ({deployment.get_rollout_state_display().lower()}): finish it or "
            "roll it back first.",
            status=409,
        )
    if deployment.strategy in (Strategy.AB, Strategy.SHADOW):
        raise field_error(
            "deployment",
            f"{deployment.name} runs {deployment.get_strategy_display()}: end it (keeping one version) first.",
            status=409,
        )


def _clean_name(name: str) -> str:
    cleaned = slugify(str(name or "").strip())
    if not cleaned:
        raise field_error("name", "Give the endpoint a name: letters, digits and hyphens.")
    if len(cleaned) > NAME_CHARS or not ENDPOINT_ID.fullmatch(cleaned):
        raise field_error(
            "name", f"Use at most {NAME_CHARS} letters, digits and hyphens, starting with a letter or digit."
        )
    if Deployment.objects.filter(name=cleaned).exists():
        raise field_error("name", f"An endpoint named {cleaned!r} already exists.", status=409)
    return cleaned


def _clean_replicas(replicas) -> int:
    if not isinstance(replicas, int) or isinstance(replicas, bool) or not 1 <= replicas <= MAX_REPLICAS:
        raise field_error("replicas", f"Choose 1 to {MAX_REPLICAS} replicas.")
    return replicas


def _clean_percent(field: str, value, *, low: int = 1, high: int = MAX_SPLIT_PERCENT) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise field_error(field, f"A whole percentage from {low} to {high} is required.")
    return value


# --- Routes ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RoutePlan:
    version: ModelVersion
    weight: int
    role: str = RouteRole.LIVE

    @property
    def variant(self) -> str:
        return f"v{self.version.number}"


def route_snapshot(routes) -> list[dict[str, Any]]:
    return [
        {"version": route.version.number, "role": route.role, "weight": route.weight, "variant": route.variant}
        for route in routes
    ]


def _current_routes(deployment: Deployment) -> list[DeploymentRoute]:
    return list(deployment.routes.select_related("version").order_by("-weight", "variant"))


def _route_of(deployment: Deployment, role: str = RouteRole.LIVE, *, largest: bool = True) -> DeploymentRoute | None:
    routes = [route for route in _current_routes(deployment) if route.role == role]
    routes.sort(key=lambda route: route.weight, reverse=largest)
    return routes[0] if routes else None


def _live_version(deployment: Deployment) -> ModelVersion:
    return _route_of(deployment).version


def _set_routes(deployment: Deployment, plans: list[RoutePlan]) -> tuple[list, list]:
    """Replace the routes; answers (before, after) snapshots."""
    before = route_snapshot(_current_routes(deployment))
    deployment.routes.all().delete()
    DeploymentRoute.objects.bulk_create(
        [
            DeploymentRoute(
                deployment=deployment, version=plan.version, role=plan.role, weight=plan.weight, variant=plan.variant
            )
            for plan in plans
        ]
    )
    return before, route_snapshot(_current_routes(deployment))


def _lock(deployment: Deployment) -> Deployment:
    return Deployment.objects.select_for_update().select_related("project", "registered_model").get(pk=deployment.pk)


def _record_change(
    deployment: Deployment,
    *,
    kind: str,
    actor,
    before: list,
    after: list,
    reason: str = "",
    fields: tuple[str, ...] = (),
) -> TrafficChange:
    """Bump the revision, save the given fields, record the change and its audit event, and dispatch the
    reconciler: the tail of every use case."""
    deployment.revision += 1
    if deployment.status != DeploymentStatus.STOPPED:
        deployment.status = DeploymentStatus.PENDING
    deployment.save(update_fields=["revision", "status", "updated_at", *fields])
    change = TrafficChange.objects.create(
        deployment=deployment, kind=kind, actor=actor, routes_before=before, routes_after=after, reason=reason
    )
    audit_record(
        actor=actor,
        action=f"deployment.{kind}",
        obj=deployment,
        project=deployment.project,
        before={"routes": before},
        after={
            "routes": after,
            "strategy": deployment.strategy,
            "replicas": deployment.replicas,
            "revision": deployment.revision,
            "reason": reason,
        },
    )
    _notify_change(deployment, change, actor)
    dispatch_reconcile(deployment.pk)
    return change


def _notify_change(deployment: Deployment, change: TrafficChange, actor) -> None:
    automatic_rollback = actor is None and change.kind == TrafficChangeKind.CANARY_ROLLBACK
    event = Event.DEPLOYMENT_ROLLED_BACK if automatic_rollback else Event.DEPLOYMENT_TRAFFIC_CHANGED
    recipients = [deployment.created_by] if deployment.created_by_id != getattr(actor, "pk", None) else []
    notify(
        event=event,
        project=deployment.project,
        recipients=recipients,
        title=f"{deployment.name}: {change.get_kind_display().lower()}",
        body=(f"By {actor.get_username()}." if actor else "By the platform.")
        + (f" {change.reason}" if change.reason else ""),
        link=reverse("deployments:detail", args=[deployment.pk]),
        payload={
            "deployment": {"id": str(deployment.pk), "name": deployment.name},
            "kind": change.kind,
            "routes_before": change.routes_before,
            "routes_after": change.routes_after,
            "reason": change.reason,
        },
    )


# --- Deploy ---------------------------------------------------------------------------------------------------------
def deployment_create(
    *,
    version: ModelVersion,
    actor,
    name: str = "",
    environment: str = Environment.PRODUCTION,
    replicas: int = 1,
    description: str = "",
) -> Deployment:
    """One click: a new endpoint serving `version` directly (name: the model's name, with the environment for a
    staging endpoint, when none is given)."""
    project = version.registered_model.project
    require(actor, Action.DEPLOYMENT_MANAGE, project)
    _require_open_project(project)
    if environment not in Environment.values:
        raise field_error("environment", f"One of {', '.join(Environment.values)}.")
    _require_servable(version, environment)
    default_name = version.registered_model.name + ("" if environment == Environment.PRODUCTION else "-staging")
    name = _clean_name(name or default_name)
    replicas = _clean_replicas(replicas)
    try:
        with transaction.atomic():
            deployment = Deployment.objects.create(
                project=project,
                registered_model=version.registered_model,
                name=name,
                description=str(description or "").strip(),
                environment=environment,
                replicas=replicas,
                created_by=actor,
                runner=settings.SERVING_RUNNER,
            )
            before, after = _set_routes(deployment, [RoutePlan(version, 100)])
            _record_change(
                deployment, kind=TrafficChangeKind.DEPLOY, actor=actor, before=before, after=after, reason=description
            )
            monitor_create(deployment=deployment, actor=actor)
    except IntegrityError:
        raise field_error("name", f"An endpoint named {name!r} already exists.", status=409) from None
    return deployment


# --- Changing the version -------------------------------------------------------------------------------------------
ROLLOUT_STRATEGIES = (Strategy.DIRECT, Strategy.BLUE_GREEN, Strategy.CANARY)


def deployment_rollout(
    *, deployment: Deployment, version: ModelVersion, actor, strategy: str, reason: str = ""
) -> Deployment:
    """Serve `version` instead of the live one: at once (direct), after it is loaded and ready beside the old one
    (blue-green: the reconciler switches), or gradually (canary: the reconciler raises its share step by step and
    rolls it back when it breaches the limits)."""
    require(actor, Action.DEPLOYMENT_MANAGE, deployment.project)
    if strategy not in ROLLOUT_STRATEGIES:
        raise field_error("strategy", f"One of {', '.join(ROLLOUT_STRATEGIES)}.")
    with transaction.atomic():
        deployment = _lock(deployment)
        _require_running(deployment)
        _require_no_rollout(deployment)
        _require_model_of(deployment, version)
        _require_servable(version, deployment.environment)
        current = _live_version(deployment)
        if current.pk == version.pk:
            raise field_error("version", f"{deployment.name} already serves {version}.", status=409)
        if strategy == Strategy.DIRECT:
            plans, kind, state = [RoutePlan(version, 100)], TrafficChangeKind.REPLACE, RolloutState.COMPLETED
            deployment.strategy = Strategy.DIRECT
        elif strategy == Strategy.BLUE_GREEN:
            plans = [RoutePlan(current, 100), RoutePlan(version, 0)]
            kind, state = TrafficChangeKind.BLUE_GREEN_START, RolloutState.WARMING
            deployment.strategy = Strategy.BLUE_GREEN
        else:
            step = deployment.canary_step_percent
            plans = [RoutePlan(current, 100 - step), RoutePlan(version, step)]
            kind, state = TrafficChangeKind.CANARY_START, RolloutState.CANARY
            deployment.strategy = Strategy.CANARY
        deployment.rollout_state = state
        deployment.rollout_version = version
        deployment.rollout_step_started_at = timezone.now()
        before, after = _set_routes(deployment, plans)
        _record_change(
            deployment,
            kind=kind,
            actor=actor,
            before=before,
            after=after,
            reason=str(reason or "").strip(),
            fields=("strategy", "rollout_state", "rollout_version", "rollout_step_started_at"),
        )
    return deployment


def canary_configure(
    *,
    deployment: Deployment,
    actor,
    step_percent: int,
    step_seconds: int,
    max_error_rate: float,
    max_p99_ms: float | None,
    min_requests: int,
) -> Deployment:
    """The canary policy used by the next (or the running) canary."""
    require(actor, Action.DEPLOYMENT_MANAGE, deployment.project)
    step_percent = _clean_percent("step_percent", step_percent)
    if not isinstance(step_seconds, int) or isinstance(step_seconds, bool) or not 10 <= step_seconds <= 86_400:
        raise field_error("step_seconds", "From 10 seconds to a day.")
    if not isinstance(max_error_rate, int | float) or not 0 <= max_error_rate < 1:
        raise field_error("max_error_rate", "A share from 0 to below 1, e.g. 0.02 for 2%.")
    if max_p99_ms is not None and (not isinstance(max_p99_ms, int | float) or max_p99_ms <= 0):
        raise field_error("max_p99_ms", "A positive number of milliseconds, or empty for the project's latency budget.")
    if not isinstance(min_requests, int) or isinstance(min_requests, bool) or not 1 <= min_requests <= 1_000_000:
        raise field_error("min_requests", "From 1 to 1,000,000 requests.")
    with transaction.atomic():
        deployment = _lock(deployment)
        before = _canary_policy(deployment)
        deployment.canary_step_percent = step_percent
        deployment.canary_step_seconds = step_seconds
        deployment.canary_max_error_rate = float(max_error_rate)
        deployment.canary_max_p99_ms = None if max_p99_ms is None else float(max_p99_ms)
        deployment.canary_min_requests = min_requests
        deployment.save()
        audit_record(
            actor=actor,
            action="deployment.canary_configure",
            obj=deployment,
            project=deployment.project,
            before=before,
            after=_canary_policy(deployment),
        )
    return deployment


def _canary_policy(deployment: Deployment) -> dict[str, Any]:
    return {
        "step_percent": deployment.canary_step_percent,
        "step_seconds": deployment.canary_step_seconds,
        "max_error_rate": deployment.canary_max_error_rate,
        "max_p99_ms": deployment.canary_max_p99_ms,
        "min_requests": deployment.canary_min_requests,
    }


def _candidate_route(deployment: Deployment) -> DeploymentRoute:
    """The route of the version a blue-green or canary is moving to."""
    return next(route for route in _current_routes(deployment) if route.version_id == deployment.rollout_version_id)


def blue_green_switch(*, deployment: Deployment, actor, ready_versions: set[int], reason: str = "") -> Deployment:
    """Send all traffic to the new version at once, keeping the old one loaded for an instant switch-back. Called by
    the reconciler (actor None) when the new version is ready on every replica, or by a person who saw it ready;
    refused while `ready_versions` (version numbers ready on every replica) does not hold it."""
    if actor is not None:
        require(actor, Action.DEPLOYMENT_MANAGE, deployment.project)
    with transaction.atomic():
        deployment = _lock(deployment)
        if deployment.rollout_state != RolloutState.WARMING:
            raise field_error("deployment", f"{deployment.name} has no blue-green waiting to switch.", status=409)
        new = _candidate_route(deployment)
        if new.version.number not in ready_versions:
            raise field_error(
                "deployment",
                f"Version {new.version.number} is not ready on every replica yet: traffic stays where it is.",
                status=409,
            )
        old = next(route for route in _current_routes(deployment) if route.pk != new.pk)
        deployment.rollout_state = RolloutState.SWITCHED
        deployment.rollout_step_started_at = timezone.now()
        before, after = _set_routes(deployment, [RoutePlan(new.version, 100), RoutePlan(old.version, 0)])
        _record_change(
            deployment,
            kind=TrafficChangeKind.BLUE_GREEN_SWITCH,
            actor=actor,
            before=before,
            after=after,
            reason=reason or f"Version {new.version.number} is ready on every replica.",
            fields=("rollout_state", "rollout_step_started_at"),
        )
    return deployment


def blue_green_switch_back(*, deployment: Deployment, actor, reason: str) -> Deployment:
    """Instantly send all traffic back to the previous version (still loaded), after a switch."""
    require(actor, Action.DEPLOYMENT_MANAGE, deployment.project)
    reason = str(reason or "").strip()
    if not reason:
        raise field_error("reason", "Say why you switch back.")
    with transaction.atomic():
        deployment = _lock(deployment)
        if deployment.strategy != Strategy.BLUE_GREEN or deployment.rollout_state != RolloutState.SWITCHED:
            raise field_error("deployment", f"{deployment.name} has no blue-green switch to undo.", status=409)
        routes = _current_routes(deployment)
        active = next(route for route in routes if route.weight == 100)
        previous = next(route for route in routes if route.pk != active.pk)
        deployment.rollout_state = RolloutState.ROLLED_BACK
        before, after = _set_routes(deployment, [RoutePlan(previous.version, 100), RoutePlan(active.version, 0)])
        _record_change(
            deployment,
            kind=TrafficChangeKind.BLUE_GREEN_SWITCH_BACK,
            actor=actor,
            before=before,
            after=after,
            reason=reason,
            fields=("rollout_state",),
        )
    return deployment


def rollout_finish(*, deployment: Deployment, actor) -> Deployment:
    """Unload the idle side of a blue-green (switched or switched back): the endpoint serves one version directly."""
    require(actor, Action.DEPLOYMENT_MANAGE, deployment.project)
    with transaction.atomic():
        deployment = _lock(deployment)
        if deployment.strategy != Strategy.BLUE_GREEN or deployment.rollout_state == RolloutState.WARMING:
            raise field_error("deployment", f"{deployment.name} has no finished blue-green to clean up.", status=409)
        active = _route_of(deployment)
        deployment.strategy = Strategy.DIRECT
        deployment.rollout_state = RolloutState.COMPLETED
        before, after = _set_routes(deployment, [RoutePlan(active.version, 100)])
        _record_change(
            deployment,
            kind=TrafficChangeKind.RETIRE_PREVIOUS,
            actor=actor,
            before=before,
            after=after,
            fields=("strategy", "rollout_state"),
        )
    return deployment


def canary_advance(*, deployment: Deployment, actor=None, reason: str = "") -> Deployment:
    """Raise the canary's share by one step (the reconciler, when a step passed within the limits; or a person to
    go faster); at 100% the canary completes and the old version is unloaded."""
    if actor is not None:
        require(actor, Action.DEPLOYMENT_MANAGE, deployment.project)
    with transaction.atomic():
        deployment = _lock(deployment)
        if deployment.rollout_state != RolloutState.CANARY:
            raise field_error("deployment", f"{deployment.name} has no canary in progress.", status=409)
        new = _candidate_route(deployment)
        old = next(route for route in _current_routes(deployment) if route.pk != new.pk)
        share = min(100, new.weight + deployment.canary_step_percent)
        fields = ("rollout_state", "rollout_step_started_at", "strategy")
        deployment.rollout_step_started_at = timezone.now()
        if share >= 100:
            deployment.strategy = Strategy.DIRECT
            deployment.rollout_state = RolloutState.COMPLETED
            before, after = _set_routes(deployment, [RoutePlan(new.version, 100)])
            kind = TrafficChangeKind.CANARY_COMPLETE
        else:
            before, after = _set_routes(
                deployment, [RoutePlan(old.version, 100 - share), RoutePlan(new.version, share)]
            )
            kind = TrafficChangeKind.CANARY_STEP
        _record_change(deployment, kind=kind, actor=actor, before=before, after=after, reason=reason, fields=fields)
    return deployment


def rollout_rollback(*, deployment: Deployment, actor=None, reason: str) -> Deployment:
    """Abandon a rollout in progress: all traffic back to the stable version and the new one unloaded. A canary
    (automatically when it breaches a limit: actor None and the reason names the limit) or a blue-green still
    loading (e.g. its new version did not load)."""
    if actor is not None:
        require(actor, Action.DEPLOYMENT_MANAGE, deployment.project)
    reason = str(reason or "").strip()
    if not reason:
        raise field_error("reason", "Say why you roll the rollout back.")
    with transaction.atomic():
        deployment = _lock(deployment)
        if deployment.rollout_state not in (RolloutState.CANARY, RolloutState.WARMING):
            raise field_error("deployment", f"{deployment.name} has no canary or blue-green in progress.", status=409)
        kind = (
            TrafficChangeKind.CANARY_ROLLBACK
            if deployment.rollout_state == RolloutState.CANARY
            else TrafficChangeKind.BLUE_GREEN_SWITCH_BACK
        )
        new = _candidate_route(deployment)
        old = next(route for route in _current_routes(deployment) if route.pk != new.pk)
        deployment.strategy = Strategy.DIRECT
        deployment.rollout_state = RolloutState.ROLLED_BACK
        before, after = _set_routes(deployment, [RoutePlan(old.version, 100)])
        _record_change(
            deployment,
            kind=kind,
            actor=actor,
            before=before,
            after=after,
            reason=reason,
            fields=("strategy", "rollout_state"),
        )
    return deployment


# --- Experiments on live traffic ------------------------------------------------------------------------------------
def ab_test_start(
    *, deployment: Deployment, version: ModelVersion, actor, share_percent: int, sticky_key: str, reason: str = ""
) -> Deployment:
    """A fixed split between the live version (A) and `version` (B), sticky by a request key (a header, else the
    column of the first row): one client always sees the same variant. Metrics and logs are per variant."""
    require(actor, Action.DEPLOYMENT_MANAGE, deployment.project)
    share_percent = _clean_percent("share_percent", share_percent)
    sticky_key = str(sticky_key or "").strip()
    if not sticky_key or len(sticky_key) > 100:
        raise field_error("sticky_key", "Name the header or input column that identifies a client (e.g. customer_id).")
    with transaction.atomic():
        deployment = _lock(deployment)
        _require_running(deployment)
        _require_no_rollout(deployment)
        _require_model_of(deployment, version)
        _require_servable(version, deployment.environment)
        current = _live_version(deployment)
        if current.pk == version.pk:
            raise field_error("version", f"{version} is already variant A: choose another version for B.", status=409)
        deployment.strategy = Strategy.AB
        deployment.sticky_key = sticky_key
        deployment.rollout_state = RolloutState.NONE
        before, after = _set_routes(
            deployment, [RoutePlan(current, 100 - share_percent), RoutePlan(version, share_percent)]
        )
        _record_change(
            deployment,
            kind=TrafficChangeKind.AB_START,
            actor=actor,
            before=before,
            after=after,
            reason=str(reason or "").strip(),
            fields=("strategy", "sticky_key", "rollout_state"),
        )
    return deployment


def shadow_start(*, deployment: Deployment, version: ModelVersion, actor, reason: str = "") -> Deployment:
    """`version` receives a copy of the live traffic; its answers are logged and compared, never returned."""
    require(actor, Action.DEPLOYMENT_MANAGE, deployment.project)
    with transaction.atomic():
        deployment = _lock(deployment)
        _require_running(deployment)
        _require_no_rollout(deployment)
        _require_model_of(deployment, version)
        _require_servable(version, deployment.environment, shadow=True)
        current = _live_version(deployment)
        if current.pk == version.pk:
            raise field_error("version", f"{version} is the live version: choose another to shadow it.", status=409)
        deployment.strategy = Strategy.SHADOW
        deployment.rollout_state = RolloutState.NONE
        before, after = _set_routes(deployment, [RoutePlan(current, 100), RoutePlan(version, 0, RouteRole.SHADOW)])
        _record_change(
            deployment,
            kind=TrafficChangeKind.SHADOW_START,
            actor=actor,
            before=before,
            after=after,
            reason=str(reason or "").strip(),
            fields=("strategy", "rollout_state"),
        )
    return deployment


def experiment_end(*, deployment: Deployment, actor, keep: ModelVersion, reason: str = "") -> Deployment:
    """End an A/B test or a shadow, keeping one of its versions live at 100% (a production endpoint keeps only an
    approved one: a shadow that did well goes through the registry's approval first)."""
    require(actor, Action.DEPLOYMENT_MANAGE, deployment.project)
    with transaction.atomic():
        deployment = _lock(deployment)
        if deployment.strategy not in (Strategy.AB, Strategy.SHADOW):
            raise field_error("deployment", f"{deployment.name} runs no A/B test or shadow.", status=409)
        in_use = {route.version_id for route in _current_routes(deployment)}
        if keep.pk not in in_use:
            raise field_error("keep", f"{keep} is not part of this {deployment.get_strategy_display()}.")
        _require_servable(keep, deployment.environment, field="keep")
        deployment.strategy = Strategy.DIRECT
        deployment.sticky_key = ""
        before, after = _set_routes(deployment, [RoutePlan(keep, 100)])
        _record_change(
            deployment,
            kind=TrafficChangeKind.END_EXPERIMENT,
            actor=actor,
            before=before,
            after=after,
            reason=str(reason or "").strip() or f"Kept {keep}.",
            fields=("strategy", "sticky_key"),
        )
    return deployment


# --- Capacity and life cycle ----------------------------------------------------------------------------------------
def deployment_scale(*, deployment: Deployment, actor, replicas: int) -> Deployment:
    require(actor, Action.DEPLOYMENT_MANAGE, deployment.project)
    replicas = _clean_replicas(replicas)
    with transaction.atomic():
        deployment = _lock(deployment)
        _require_running(deployment)
        if replicas == deployment.replicas:
            return deployment
        routes = route_snapshot(_current_routes(deployment))
        reason = f"Replicas {deployment.replicas} → {replicas}."
        deployment.replicas = replicas
        _record_change(
            deployment,
            kind=TrafficChangeKind.SCALE,
            actor=actor,
            before=routes,
            after=routes,
            reason=reason,
            fields=("replicas",),
        )
    return deployment


def deployment_stop(*, deployment: Deployment, actor, reason: str) -> Deployment:
    """Stop every replica (the reconciler does it); the routes stay, so `deployment_start` brings the same back."""
    require(actor, Action.DEPLOYMENT_MANAGE, deployment.project)
    reason = str(reason or "").strip()
    if not reason:
        raise field_error("reason", "Say why the endpoint stops: its clients will get no answers.")
    with transaction.atomic():
        deployment = _lock(deployment)
        if deployment.is_stopped:
            raise field_error("deployment", f"{deployment.name} is already stopped.", status=409)
        deployment.stopped_at = timezone.now()
        deployment.status = DeploymentStatus.STOPPED
        routes = route_snapshot(_current_routes(deployment))
        _record_change(
            deployment,
            kind=TrafficChangeKind.STOP,
            actor=actor,
            before=routes,
            after=[],
            reason=reason,
            fields=("stopped_at",),
        )
        monitor_schedule_refresh(deployment=deployment)
    return deployment


def deployment_start(*, deployment: Deployment, actor) -> Deployment:
    require(actor, Action.DEPLOYMENT_MANAGE, deployment.project)
    with transaction.atomic():
        deployment = _lock(deployment)
        if not deployment.is_stopped:
            raise field_error("deployment", f"{deployment.name} is running.", status=409)
        _require_open_project(deployment.project)
        for route in _current_routes(deployment):
            if route.role == RouteRole.LIVE and route.weight:
                _require_servable(route.version, deployment.environment)
        deployment.stopped_at = None
        deployment.status = DeploymentStatus.PENDING
        routes = route_snapshot(_current_routes(deployment))
        _record_change(
            deployment,
            kind=TrafficChangeKind.RESTART,
            actor=actor,
            before=[],
            after=routes,
            fields=("stopped_at",),
        )
        monitor_schedule_refresh(deployment=deployment)
    return deployment


# --- Features fetched at serving time -------------------------------------------------------------------------------
def deployment_feature_view_set(*, deployment: Deployment, actor, view) -> Deployment:
    """Let clients send `view`'s entity keys instead of its features: the model server fetches them from the online
    store (or `view` None: clients send every input again). Refused when none of the view's features is an input of
    a version the endpoint serves."""
    from apps.deployments.serving_config import fetched_columns

    require(actor, Action.DEPLOYMENT_MANAGE, deployment.project)
    with transaction.atomic():
        deployment = _lock(deployment)
        _require_running(deployment)
        routes = _current_routes(deployment)
        if view is not None and not fetched_columns(view, [route.version for route in routes]):
            raise field_error(
                "feature_view",
                f"None of {view.name}'s features is an input of the versions this endpoint serves.",
            )
        before = deployment.feature_view.name if deployment.feature_view_id else None
        deployment.feature_view = view
        routes_now = route_snapshot(routes)
        _record_change(
            deployment,
            kind=TrafficChangeKind.FEATURE_VIEW,
            actor=actor,
            before=routes_now,
            after=routes_now,
            reason=f"Feature view {before or 'none'} → {view.name if view else 'none'}.",
            fields=("feature_view",),
        )
    return deployment
