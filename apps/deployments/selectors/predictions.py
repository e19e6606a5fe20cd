"""Reading the prediction log, its ground truth and explanations. Visibility lives here.

Logged predictions hold their inputs, which may be personal data: who reads them follows Action.PREDICTION_VIEW
(scientists, reviewers and compliance officers of the project; compliance officers and admins everywhere). A
prediction the reader may not see does not exist for them (404). A deployment they may see (Action.DEPLOYMENT_VIEW)
but whose predictions they may not is a 403: its existence is no secret to them, its log is.
Recording ground truth (Action.GROUND_TRUTH_RECORD) is open to project stakeholders who may not read the log, so the
prediction a ground truth is posted for is looked up among those the actor may see OR record for.
"""

from typing import Any

from django.db.models import Prefetch, Q, QuerySet
from django.http import Http404

from apps.accounts.permissions import Action, require
from apps.deployments.models import Deployment, Prediction, PredictionExplanation, PredictionLogCursor
from apps.projects.selectors import project_ids_granting, row_by_pk

PREDICTION_LOG_ROWS = 20


def _granting(queryset: QuerySet, *, actor, action: Action, project_field: str) -> QuerySet:
    project_ids = project_ids_granting(actor=actor, action=action)
    return queryset if project_ids is None else queryset.filter(**{f"{project_field}__in": project_ids})


def _prediction_rows() -> QuerySet[Prediction]:
    return Prediction.objects.select_related("version", "truth")


# --- Deployments ----------------------------------------------------------------------------------------------------
def deployment_for_predictions(*, actor, pk) -> Deployment:
    """A deployment whose log the actor may read: 404 when they may not see the deployment, 403 (PermissionDenied)
    when they see it but not its predictions."""
    visible = _granting(
        Deployment.objects.select_related("project", "registered_model"),
        actor=actor,
        action=Action.DEPLOYMENT_VIEW,
        project_field="project_id",
    )
    deployment = row_by_pk(visible, pk)
    if deployment is None:
        raise Http404("No such deployment.")
    require(actor, Action.PREDICTION_VIEW, deployment.project)
    return deployment


def deployments_to_import() -> QuerySet[Deployment]:
    """Every deployment, by name: a stopped one's servers flush their last log file on shutdown, which must still be
    imported (the task skips deployments whose log folder does not exist)."""
    return Deployment.objects.order_by("name")


def prediction_log_offsets(*, deployment: Deployment) -> dict[str, int]:
    """How far each log file of the deployment was imported: read from the database on every import, so a restarted
    portal continues where the last import stopped."""
    cursors = PredictionLogCursor.objects.filter(deployment=deployment)
    return dict(cursors.values_list("file_name", "offset"))


# --- Predictions ----------------------------------------------------------------------------------------------------
def prediction_list(*, deployment: Deployment, filters: dict[str, Any] | None = None) -> QuerySet[Prediction]:
    """The deployment's predictions, newest first, with their version and ground truth (one query per page).
    Filters: version (number), variant, shadow (bool), since / until (datetimes), has_ground_truth (bool)."""
    filters = filters or {}
    rows = _prediction_rows().filter(deployment=deployment)
    if filters.get("version") is not None:
        rows = rows.filter(version__number=filters["version"])
    if filters.get("variant"):
        rows = rows.filter(variant=filters["variant"])
    if filters.get("shadow") is not None:
        rows = rows.filter(shadow=filters["shadow"])
    if filters.get("since") is not None:
        rows = rows.filter(predicted_at__gte=filters["since"])
    if filters.get("until") is not None:
        rows = rows.filter(predicted_at__lt=filters["until"])
    if filters.get("has_ground_truth") is not None:
        rows = rows.filter(truth__isnull=not filters["has_ground_truth"])
    return rows.order_by("-predicted_at", "-pk")


def latest_predictions(*, deployment: Deployment, limit: int = PREDICTION_LOG_ROWS) -> list[Prediction]:
    """The deployment page's live log: the latest predictions."""
    return list(prediction_list(deployment=deployment)[:limit])


def prediction_get(*, actor, pk) -> Prediction:
    """One prediction the actor may read, with its deployment, version (and model), ground truth and explanations
    (newest first); 404 otherwise."""
    rows = _granting(
        Prediction.objects.select_related(
            "deployment__project", "version__registered_model", "version__run", "truth__recorded_by"
        ).prefetch_related(
            Prefetch("explanations", queryset=PredictionExplanation.objects.select_related("requested_by"))
        ),
        actor=actor,
        action=Action.PREDICTION_VIEW,
        project_field="deployment__project_id",
    )
    prediction = rows.filter(pk=str(pk)).first()
    if prediction is None:
        raise Http404("No such prediction.")
    return prediction


def prediction_for_ground_truth(*, actor, pk) -> Prediction:
    """The prediction a ground truth is posted for: one the actor may read or record outcomes for (a stakeholder
    records what happened to customers without reading their inputs); 404 otherwise. The service decides whether
    the actor may record (403)."""
    view = project_ids_granting(actor=actor, action=Action.PREDICTION_VIEW)
    record = project_ids_granting(actor=actor, action=Action.GROUND_TRUTH_RECORD)
    rows = Prediction.objects.select_related("deployment__project", "version__run", "truth")
    if view is not None and record is not None:
        rows = rows.filter(Q(deployment__project_id__in=view) | Q(deployment__project_id__in=record))
    prediction = rows.filter(pk=str(pk)).first()
    if prediction is None:
        raise Http404("No such prediction.")
    return prediction


# --- Explanations ---------------------------------------------------------------------------------------------------
def explanation_get(*, actor, pk) -> PredictionExplanation:
    """One explanation of a prediction the actor may read; 404 otherwise."""
    rows = _granting(
        PredictionExplanation.objects.select_related(
            "prediction__deployment__project", "prediction__version", "requested_by"
        ),
        actor=actor,
        action=Action.PREDICTION_VIEW,
        project_field="prediction__deployment__project_id",
    )
    explanation = row_by_pk(rows, pk)
    if explanation is None:
        raise Http404("No such explanation.")
    return explanation


def explanation_for_task(*, explanation_id) -> PredictionExplanation:
    """The explanation a worker computes, with what it needs: the prediction's logged inputs and its version."""
    return PredictionExplanation.objects.select_related("prediction__version__run").get(pk=explanation_id)
