"""Reading experiments, runs and their logs. Visibility lives here.

Who sees an experiment follows Action.EXPERIMENT_VIEW in the policy: members of its project, and the platform-wide
roles the rule names (compliance officers, admins). Something not visible does not exist for the reader (404, never
403).
"""

import math
import uuid
from typing import Any

from django.db.models import Count, Prefetch, Q, QuerySet
from django.http import Http404

from apps.accounts.permissions import Action
from apps.core.exceptions import ApplicationError
from apps.datasets.choices import ValidationStatus
from apps.datasets.models import DatasetVersion
from apps.experiments.choices import RunStatus
from apps.experiments.models import Experiment, Run, RunLogLine
from apps.projects.models import Project
from apps.projects.selectors import project_ids_granting, row_by_pk
from workers.ml.evaluation.targets import ProjectTargets  # stdlib only
from workers.ml.training.spec import LOWER_IS_BETTER  # stdlib only

MIN_COMPARED_RUNS = 2
MAX_COMPARED_RUNS = 6
MAX_LOG_LINES = 1000
# The evaluation sections compared side by side (workers.ml.evaluation: {"validation": {metric: value}, ...}).
COMPARED_SECTIONS = ("validation", "test")


def _uuid_text(value) -> str:
    """The canonical text of a UUID, or "" for anything else."""
    try:
        return str(uuid.UUID(str(value)))
    except (TypeError, ValueError):
        return ""


def experiment_visible_queryset(*, actor) -> QuerySet[Experiment]:
    experiments = Experiment.objects.select_related("project", "dataset_version__dataset", "created_by")
    project_ids = project_ids_granting(actor=actor, action=Action.EXPERIMENT_VIEW)
    return experiments if project_ids is None else experiments.filter(project_id__in=project_ids)


def run_visible_queryset(*, actor) -> QuerySet[Run]:
    runs = Run.objects.select_related(
        "experiment__project", "experiment__dataset_version__dataset", "experiment__created_by"
    )
    project_ids = project_ids_granting(actor=actor, action=Action.EXPERIMENT_VIEW)
    return runs if project_ids is None else runs.filter(experiment__project_id__in=project_ids)


def experiment_list(*, actor, project: Project | None = None) -> QuerySet[Experiment]:
    """Visible experiments, newest first, with `run_count` and `succeeded_count`."""
    experiments = experiment_visible_queryset(actor=actor)
    if project is not None:
        experiments = experiments.filter(project=project)
    return experiments.annotate(
        run_count=Count("runs", distinct=True),
        succeeded_count=Count("runs", filter=Q(runs__status=RunStatus.SUCCEEDED), distinct=True),
    ).order_by("-created_at", "-pk")


def experiment_get(*, actor, pk, project: Project | None = None) -> Experiment:
    """One visible experiment (optionally: of this project) with its runs prefetched in order; 404 otherwise."""
    experiments = experiment_visible_queryset(actor=actor).prefetch_related(
        Prefetch("runs", queryset=Run.objects.order_by("number"))
    )
    if project is not None:
        experiments = experiments.filter(project=project)
    experiment = row_by_pk(experiments, pk)
    if experiment is None:
        raise Http404("No such experiment.")
    return experiment


def run_list(*, actor, project: Project | None = None, experiment: Experiment | None = None) -> QuerySet[Run]:
    """Visible runs, newest experiment first, then by number."""
    runs = run_visible_queryset(actor=actor)
    if project is not None:
        runs = runs.filter(experiment__project=project)
    if experiment is not None:
        runs = runs.filter(experiment=experiment)
    return runs.order_by("-experiment__created_at", "experiment_id", "number")


def run_get(*, actor, pk, project: Project | None = None) -> Run:
    """One visible run (optionally: of this project); 404 otherwise."""
    runs = run_visible_queryset(actor=actor)
    if project is not None:
        runs = runs.filter(experiment__project=project)
    run = row_by_pk(runs, pk)
    if run is None:
        raise Http404("No such run.")
    return run


def run_log_lines(*, run: Run, after_id: int | None = None, limit: int = 200) -> list[RunLogLine]:
    """Log lines in order. Without `after_id`: the latest `limit` lines (a tail); with it: the next `limit` lines
    after that id (0 = from the start), so a poller asks again with the last id it got."""
    limit = max(1, min(int(limit), MAX_LOG_LINES))
    lines = RunLogLine.objects.filter(run=run)
    if after_id is None:
        return list(reversed(lines.order_by("-id")[:limit]))
    return list(lines.filter(id__gt=after_id).order_by("id")[:limit])


def _higher_is_better(metric: str) -> bool:
    return metric not in LOWER_IS_BETTER


def leaderboard(*, experiment: Experiment) -> list[Run]:
    """The experiment's runs: succeeded ones by primary score, best first in the metric's direction; then the
    others by number. Each run gets `rank` (1.. for scored runs, None for the rest)."""
    metric = (experiment.spec or {}).get("primary_metric", "")
    runs = list(Run.objects.filter(experiment=experiment).order_by("number"))
    scored = [run for run in runs if run.status == RunStatus.SUCCEEDED and run.primary_score is not None]
    scored.sort(key=lambda run: -run.primary_score if _higher_is_better(metric) else run.primary_score)
    others = [run for run in runs if run not in scored]
    for rank, run in enumerate(scored, start=1):
        run.rank = rank
    for run in others:
        run.rank = None
    return scored + others


def _numeric(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _compared_metrics(runs: list[Run]) -> list[dict[str, Any]]:
    """One row per scalar metric any run has, per evaluation section, in a stable order."""
    names: dict[tuple[str, str], None] = {}
    for run in runs:
        for section in COMPARED_SECTIONS:
            values = (run.metrics or {}).get(section)
            if isinstance(values, dict):
                for name, value in values.items():
                    if _numeric(value) is not None:
                        names[(section, name)] = None
    rows = []
    for section, name in names:
        values = [_numeric(((run.metrics or {}).get(section) or {}).get(name)) for run in runs]
        rows.append({"section": section, "metric": name, "values": values, "best": _best(name, values)})
    return rows


def _best(metric: str, values: list[float | None]) -> int | None:
    present = [(value, index) for index, value in enumerate(values) if value is not None]
    if len(present) < 2:
        return None
    chosen = max(present) if _higher_is_better(metric) else min(present)
    return chosen[1]


def runs_compare(*, actor, run_ids: list, project: Project | None = None) -> dict[str, Any]:
    """2..6 runs the actor can see (optionally: of this project), side by side: `runs` (in the order asked),
    `primary_metrics`, `primary` (the primary score and the held-out test score of each) and `metrics` (rows of
    {section, metric, values per run, best: index of the best run})."""
    wanted = list(dict.fromkeys(_uuid_text(run_id) for run_id in run_ids))
    if not MIN_COMPARED_RUNS <= len(wanted) <= MAX_COMPARED_RUNS:
        message = f"Choose between {MIN_COMPARED_RUNS} and {MAX_COMPARED_RUNS} runs to compare."
        raise ApplicationError(message, errors={"ids": [message]})
    visible = run_visible_queryset(actor=actor)
    if project is not None:
        visible = visible.filter(experiment__project=project)
    ids = [run_id for run_id in wanted if run_id]
    found = {str(run.pk): run for run in visible.filter(pk__in=ids)}
    missing = [str(run_id) for run_id in run_ids if _uuid_text(run_id) not in found]
    if missing:
        message = "No such run: " + ", ".join(dict.fromkeys(missing)) + "."
        raise ApplicationError(message, errors={"ids": [message]}, status=404)
    runs = [found[run_id] for run_id in wanted]
    primary_metrics = sorted({(run.experiment.spec or {}).get("primary_metric", "") for run in runs})
    primary = [
        {"row": "primary_score", "values": [run.primary_score for run in runs]},
        {"row": "test_score", "values": [run.test_score for run in runs]},
    ]
    for row in primary:
        row["best"] = _best(primary_metrics[0], row["values"]) if len(primary_metrics) == 1 else None
    return {
        "runs": runs,
        "primary_metrics": primary_metrics,
        "primary": primary,
        "metrics": _compared_metrics(runs),
    }


def launchable_versions(*, project: Project) -> QuerySet[DatasetVersion]:
    """The project's dataset versions usable for training (passed validation, or overridden), newest first."""
    return (
        DatasetVersion.objects.filter(dataset__project=project)
        .filter(Q(validation_status=ValidationStatus.PASSED) | ~Q(override_reason=""))
        .select_related("dataset")
        .order_by("-created_at", "-number")
    )


def _float(value) -> float | None:
    return None if value is None else float(value)


def project_targets(project: Project) -> ProjectTargets:
    """What the project expects of a model (its problem definition's success criterion and ROI figures), for the
    evaluation on the worker. A project without a definition gets the bare defaults."""
    definition = getattr(project, "definition", None)
    if definition is None:
        return ProjectTargets(primary_metric="")
    return ProjectTargets(
        primary_metric=definition.primary_metric,
        threshold=_float(definition.primary_threshold),
        baseline_value=_float(definition.baseline_metric_value),
        currency=definition.currency or "EUR",
        value_per_correct_decision=_float(definition.value_per_correct_decision),
        cost_false_positive=_float(definition.cost_false_positive),
        cost_false_negative=_float(definition.cost_false_negative),
        cost_per_misclassification=_float(definition.cost_per_misclassification),
        cost_per_unit_error=_float(definition.cost_per_unit_error),
        latency_budget_p99_ms=_float(definition.latency_budget_p99_ms),
    )


# --- For the training task --------------------------------------------------------------------------------------
def artifact_key_in_use(*, key: str) -> bool:
    """Whether a succeeded run records this artifact key (such an object must never be deleted)."""
    return Run.objects.filter(artifact_key=key, status=RunStatus.SUCCEEDED).exists()


def run_for_worker(*, run_id) -> Run:
    """A run with what the worker needs to load its model (no visibility: the worker acts for the platform)."""
    return Run.objects.select_related("experiment__project").get(pk=run_id)
