"""Reading retraining policies and runs. Visibility follows the registered model's: whoever may see the model
(Action.MODEL_VIEW) sees its retraining policy and runs; anything else does not exist for the reader (404)."""

from django.db.models import QuerySet
from django.http import Http404

from apps.accounts.permissions import Action
from apps.experiments.choices import ExperimentStatus
from apps.monitoring.choices import RetrainingStatus
from apps.monitoring.models import RetrainingPolicy, RetrainingRun
from apps.projects.selectors import project_ids_granting, row_by_pk
from apps.registry.models import RegisteredModel

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
