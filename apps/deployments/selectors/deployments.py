"""Reading deployments. Visibility follows Action.DEPLOYMENT_VIEW (members of the project, compliance officers and
admins platform-wide); a deployment the reader may not see does not exist for them (404).

Live figures (request rate, latency, errors) come from the MetricSample rows the reconciler writes every round:
the page shows the last few minutes per version, summed over replicas.
"""

from dataclasses import dataclass
from datetime import timedelta

from django.db.models import Prefetch, Q, QuerySet, Sum
from django.http import Http404
from django.utils import timezone

from apps.accounts.permissions import Action, can
from apps.deployments.choices import DeploymentStatus, Environment, RouteRole, Strategy
from apps.deployments.models import Deployment, DeploymentRoute, MetricSample, TrafficChange
from apps.projects.models import Project
from apps.projects.selectors import project_ids_granting, row_by_pk
from apps.registry.choices import Stage, VersionStatus
from apps.registry.models import ModelVersion, RegisteredModel, StageTransition
from workers.serving.scrape import BUCKET_COUNT, quantile_ms

LIVE_WINDOW = timedelta(minutes=5)


def _visible(queryset, *, actor):
    project_ids = project_ids_granting(actor=actor, action=Action.DEPLOYMENT_VIEW)
    return queryset if project_ids is None else queryset.filter(project_id__in=project_ids)


def _routes_prefetch() -> Prefetch:
    return Prefetch("routes", queryset=DeploymentRoute.objects.select_related("version").order_by("-weight", "variant"))


def deployment_list(
    *, actor, project: Project | None = None, registered_model: RegisteredModel | None = None
) -> QuerySet[Deployment]:
    deployments = _visible(
        Deployment.objects.select_related("project", "registered_model", "created_by").prefetch_related(
            _routes_prefetch()
        ),
        actor=actor,
    )
    if project is not None:
        deployments = deployments.filter(project=project)
    if registered_model is not None:
        deployments = deployments.filter(registered_model=registered_model)
    return deployments.order_by("name", "pk")


def deployment_get(*, actor, pk) -> Deployment:
    deployment = row_by_pk(deployment_list(actor=actor).select_related("project__definition", "rollout_version"), pk)
    if deployment is None:
        raise Http404("No such deployment.")
    return deployment


def deployments_to_reconcile() -> list:
    """Ids of the deployments the reconciler looks at: every running one, and stopped ones that still run."""
    stopping = Q(stopped_at__isnull=False) & ~Q(status=DeploymentStatus.STOPPED)
    return list(Deployment.objects.filter(Q(stopped_at__isnull=True) | stopping).values_list("pk", flat=True))


def traffic_history(*, deployment: Deployment) -> QuerySet[TrafficChange]:
    return deployment.traffic_changes.select_related("actor").order_by("-created_at")


# --- Live figures ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class VersionFigures:
    version_number: int
    role: str
    requests: int
    errors: int
    requests_per_second: float
    error_rate: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    mean_ms: float | None


def live_figures(*, deployment: Deployment, window: timedelta = LIVE_WINDOW) -> list[VersionFigures]:
    """Per version and role, over the last `window`: requests, rate, error rate and latency quantiles (from the
    servers' histogram buckets: a quantile is the upper bound of its bucket)."""
    since = timezone.now() - window
    samples = (
        MetricSample.objects.filter(deployment=deployment, observed_at__gt=since)
        .select_related("version")
        .order_by("observed_at")
    )
    grouped: dict[tuple[int, str], list[MetricSample]] = {}
    for sample in samples:
        grouped.setdefault((sample.version.number, sample.role), []).append(sample)
    figures = []
    for (number, role), rows in sorted(grouped.items()):
        requests = sum(row.requests for row in rows)
        errors = sum(row.errors for row in rows)
        seconds = sum(row.seconds for row in rows) or window.total_seconds()
        buckets = [sum(column) for column in zip(*(row.latency_buckets for row in rows), strict=True)]
        buckets = buckets or [0] * BUCKET_COUNT
        latency = sum(row.latency_sum for row in rows)
        figures.append(
            VersionFigures(
                version_number=number,
                role=role,
                requests=requests,
                errors=errors,
                requests_per_second=requests / seconds if seconds else 0.0,
                error_rate=errors / requests if requests else 0.0,
                p50_ms=quantile_ms(buckets, 0.5),
                p95_ms=quantile_ms(buckets, 0.95),
                p99_ms=quantile_ms(buckets, 0.99),
                mean_ms=latency / requests * 1000 if requests else None,
            )
        )
    return figures


def request_series(*, deployment: Deployment, window: timedelta = timedelta(hours=1)) -> list[tuple]:
    """(observed_at, requests, errors) per reconcile round over `window`, all versions summed: the page's chart."""
    since = timezone.now() - window
    rows = (
        MetricSample.objects.filter(deployment=deployment, observed_at__gt=since, role=RouteRole.LIVE)
        .values("observed_at")
        .annotate(requests=Sum("requests"), errors=Sum("errors"))
        .order_by("observed_at")
    )
    return [(row["observed_at"], row["requests"], row["errors"]) for row in rows]


@dataclass(frozen=True)
class ShadowComparison:
    """The shadow's answers against the live answers to the same requests (the latest `pairs` of them)."""

    shadow_version: int
    pairs: int
    agreement: float | None  # share of requests where both predicted the same label or value
    mean_probability_gap: float | None  # classification: mean over requests of the largest per-class difference
    live_mean_ms: float | None
    shadow_mean_ms: float | None


def _probability_gap(live: dict, shadow: dict) -> float | None:
    first, second = live.get("predict_proba"), shadow.get("predict_proba")
    if not isinstance(first, list) or not isinstance(second, list) or len(first) != len(second):
        return None
    return max(abs(a - b) for a, b in zip(first, second, strict=True))


def shadow_comparison(*, deployment: Deployment, limit: int = 1000) -> list[ShadowComparison]:
    """Per shadow version: how often it agrees with the live version on the same requests, how far its class
    probabilities are, and its latency next to the live one's (from the imported prediction log)."""
    from apps.deployments.models import Prediction

    shadows = list(
        Prediction.objects.filter(deployment=deployment, shadow=True)
        .order_by("-predicted_at")
        .values_list("version__number", "shadow_of", "outputs", "latency_ms")[:limit]
    )
    live = {
        pk: (outputs, latency)
        for pk, outputs, latency in Prediction.objects.filter(pk__in=[row[1] for row in shadows]).values_list(
            "pk", "outputs", "latency_ms"
        )
    }
    by_version: dict[int, list] = {}
    for number, shadow_of, outputs, latency in shadows:
        if shadow_of in live:
            by_version.setdefault(number, []).append((live[shadow_of], (outputs, latency)))
    comparisons = []
    for number, pairs in sorted(by_version.items()):
        gaps = [gap for (lo, _), (so, _) in pairs if (gap := _probability_gap(lo, so)) is not None]
        comparisons.append(
            ShadowComparison(
                shadow_version=number,
                pairs=len(pairs),
                agreement=sum(lo.get("predict") == so.get("predict") for (lo, _), (so, _) in pairs) / len(pairs),
                mean_probability_gap=sum(gaps) / len(gaps) if gaps else None,
                live_mean_ms=sum(lat for (_, lat), _ in pairs) / len(pairs),
                shadow_mean_ms=sum(lat for _, (_, lat) in pairs) / len(pairs),
            )
        )
    return comparisons


# --- What can be deployed -------------------------------------------------------------------------------------------
def deployable_versions(*, registered_model: RegisteredModel, environment: str) -> QuerySet[ModelVersion]:
    """Ready versions that may take live traffic in `environment` (approved for production; staging too in a
    staging environment), newest first."""
    approved = StageTransition.objects.filter(to_stage=Stage.PRODUCTION).values("version_id")
    allowed = Q(stage=Stage.PRODUCTION) | Q(pk__in=approved)
    if environment == Environment.STAGING:
        allowed |= Q(stage=Stage.STAGING)
    return registered_model.versions.filter(allowed, status=VersionStatus.READY).order_by("-number")


def shadow_candidates(*, registered_model: RegisteredModel) -> QuerySet[ModelVersion]:
    return registered_model.versions.filter(
        stage__in=[Stage.STAGING, Stage.PRODUCTION], status=VersionStatus.READY
    ).order_by("-number")


def can_manage(*, actor, deployment: Deployment) -> bool:
    return can(actor, Action.DEPLOYMENT_MANAGE, deployment.project)


def strategy_actions(*, deployment: Deployment) -> list[str]:
    """What the page offers now: the use cases whose preconditions hold (the services still decide)."""
    if deployment.is_stopped:
        return ["start"]
    actions = ["scale", "stop", "canary_configure", "feature_view"]
    state = deployment.rollout_state
    if state in ("warming", "canary"):
        actions.append("rollback")
        actions.append("switch" if state == "warming" else "advance")
    elif deployment.strategy in (Strategy.AB, Strategy.SHADOW):
        actions.append("end_experiment")
    else:
        actions += ["rollout", "ab", "shadow"]
        if deployment.strategy == Strategy.BLUE_GREEN:
            actions += ["finish"] + (["switch_back"] if state == "switched" else [])
    return actions


def deployment_offer(*, actor, version: ModelVersion) -> dict:
    """What a version's page shows about deploying it: the endpoints serving it, and the one-click deploy (the
    environment it may go to) when the reader may deploy and the version may serve."""
    project = version.registered_model.project
    serving = list(
        _visible(Deployment.objects.filter(routes__version=version), actor=actor).distinct().order_by("name")
    )
    environment = ""
    if version.status == VersionStatus.READY and can(actor, Action.DEPLOYMENT_MANAGE, project):
        if version.stage == Stage.PRODUCTION:
            environment = Environment.PRODUCTION
        elif version.stage == Stage.STAGING:
            environment = Environment.STAGING
    return {"serving_deployments": serving, "deploy_environment": environment}


def kubernetes_manifests(*, deployment: Deployment) -> str:
    """The deployment's Kubernetes objects as multi-document YAML (ConfigMap, Deployment, Service, autoscaler), as
    the kubernetes runner would apply them: secret variables are references to the Secret, never values."""
    from django.conf import settings

    from apps.deployments.services.reconcile import endpoint_for
    from workers.serving.runners.kubernetes import manifests_yaml

    options = settings.SERVING_RUNNER_OPTIONS["kubernetes"]
    routes = list(deployment.routes.select_related("version__run"))
    return manifests_yaml(
        endpoint_for(deployment, routes),
        image=options["image"],
        namespace=options["namespace"],
        secret_name=options["secret_name"],
        log_claim=options["log_claim"],
        max_replicas=options["max_replicas"],
        cpu_target=options["cpu_target"],
    )
