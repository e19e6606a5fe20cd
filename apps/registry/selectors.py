"""Reading the registry. Visibility lives here: who sees a registered model follows Action.MODEL_VIEW (members of
its project, compliance officers and admins platform-wide); anything else does not exist for the reader (404)."""

from django.db.models import Count, OuterRef, Prefetch, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import Http404

from apps.accounts.permissions import Action
from apps.projects.models import Project
from apps.projects.selectors import project_ids_granting, row_by_pk
from apps.registry.choices import RequestStatus, Stage
from apps.registry.models import Approval, ModelVersion, PromotionRequest, RegisteredModel, StageTransition
from apps.registry.services import decision_refusal, evaluate_version_gates


def visible_project_ids(*, actor):
    """None = every project; else a subquery of the ids of the projects whose models the actor may see."""
    return project_ids_granting(actor=actor, action=Action.MODEL_VIEW)


def _visible(queryset, *, actor, project_field: str):
    project_ids = visible_project_ids(actor=actor)
    return queryset if project_ids is None else queryset.filter(**{f"{project_field}__in": project_ids})


# --- Registered models ----------------------------------------------------------------------------------------------
def _production_number():
    production = ModelVersion.objects.filter(registered_model=OuterRef("pk"), stage=Stage.PRODUCTION)
    return Subquery(production.values("number")[:1])


def registered_model_list(*, actor, project: Project | None = None) -> QuerySet[RegisteredModel]:
    """Visible registered models by name, with `version_count` and `production_number` (None without one)."""
    models = _visible(
        RegisteredModel.objects.select_related("project", "created_by"), actor=actor, project_field="project_id"
    )
    if project is not None:
        models = models.filter(project=project)
    return models.annotate(version_count=Count("versions"), production_number=_production_number()).order_by(
        "name", "project__name", "pk"
    )


def registered_model_get(*, actor, pk, project: Project | None = None) -> RegisteredModel:
    models = registered_model_list(actor=actor, project=project)
    model = row_by_pk(models, pk)
    if model is None:
        raise Http404("No such model.")
    return model


# --- Versions -------------------------------------------------------------------------------------------------------
def _version_queryset():
    return ModelVersion.objects.select_related(
        "registered_model__project", "created_by", "run__experiment__created_by", "card"
    )


def model_version_get(*, actor, pk, registered_model: RegisteredModel | None = None) -> ModelVersion:
    """One visible version with its card, promotion requests (newest first) and transitions prefetched; 404
    otherwise."""
    versions = _visible(_version_queryset(), actor=actor, project_field="registered_model__project_id")
    if registered_model is not None:
        versions = versions.filter(registered_model=registered_model)
    versions = versions.prefetch_related(
        Prefetch("promotion_requests", queryset=PromotionRequest.objects.select_related("requester")),
        Prefetch("transitions", queryset=StageTransition.objects.select_related("actor", "promotion_request")),
    )
    version = row_by_pk(versions, pk)
    if version is None:
        raise Http404("No such model version.")
    return version


def model_version_list(*, registered_model: RegisteredModel, stage: str | None = None) -> QuerySet[ModelVersion]:
    """The versions of a model the caller already sees (registered_model_get), newest first."""
    versions = _version_queryset().filter(registered_model=registered_model)
    if stage:
        versions = versions.filter(stage=stage)
    return versions.order_by("-number")


def stage_history(*, registered_model: RegisteredModel) -> QuerySet[StageTransition]:
    """Which version went to which stage, when, by whom and on which request: newest first."""
    return (
        StageTransition.objects.filter(version__registered_model=registered_model)
        .select_related("version", "actor", "promotion_request")
        .order_by("-created_at", "-pk")
    )


def production_versions(*, project: Project) -> QuerySet[ModelVersion]:
    """The production version of each of the project's models (for the project page), by model name."""
    return (
        _version_queryset()
        .filter(registered_model__project=project, stage=Stage.PRODUCTION)
        .order_by("registered_model__name")
    )


# --- Promotion requests ---------------------------------------------------------------------------------------------
def _request_queryset():
    return PromotionRequest.objects.select_related(
        "version__registered_model__project", "version__run__experiment__created_by", "requester", "champion"
    )


def promotion_request_list(
    *,
    actor,
    project: Project | None = None,
    status: str | None = None,
    registered_model: RegisteredModel | None = None,
) -> QuerySet[PromotionRequest]:
    """Visible promotion requests, newest first, with `approval_count` (approvals so far)."""
    requests = _visible(_request_queryset(), actor=actor, project_field="version__registered_model__project_id")
    if project is not None:
        requests = requests.filter(version__registered_model__project=project)
    if registered_model is not None:
        requests = requests.filter(version__registered_model=registered_model)
    if status:
        requests = requests.filter(status=status)
    approvals = Approval.objects.filter(request=OuterRef("pk"), decision="approve").values("request")
    approval_count = Coalesce(Subquery(approvals.annotate(count=Count("pk")).values("count")[:1]), 0)
    return requests.annotate(approval_count=approval_count).order_by("-created_at", "-pk")


def promotion_request_get(*, actor, pk, project: Project | None = None) -> PromotionRequest:
    """One visible request with its decisions (reviewers) prefetched; 404 otherwise."""
    requests = promotion_request_list(actor=actor, project=project).prefetch_related(
        Prefetch("approvals", queryset=Approval.objects.select_related("reviewer").order_by("created_at"))
    )
    request = row_by_pk(requests, pk)
    if request is None:
        raise Http404("No such promotion request.")
    return request


def reviewer_can_decide(*, request: PromotionRequest, actor) -> tuple[bool, str]:
    """Whether `actor` may approve or reject `request` now, and why not (the services' own rule)."""
    refusal = decision_refusal(request, actor)
    return (not refusal, refusal)


def promotion_gates_now(*, request: PromotionRequest) -> list[dict]:
    """The request's gates evaluated now (what an approval would record), while it is open; the stored ones after."""
    if request.status != RequestStatus.OPEN:
        return request.gates
    return evaluate_version_gates(version=request.version)
