"""Experiments use cases: launching (validate the spec, create the experiment and a run per algorithm, queue them),
cancelling, and the worker's bookkeeping of a run (claim, heartbeat, progress, log, succeed, fail) and its sweep.

Every change is one transaction that records its audit event. People's actions check the policy (`require`); the
functions the training task calls (`run_*`) are bookkeeping of a run a permitted person launched, and check the run's
state instead: each finish is a conditional change of a running run, so a redelivered message cannot produce a
second result. Tasks are dispatched by name after commit, so this module never imports workers.tasks (nor
workers.ml, except the stdlib-only spec module). See docs/adr/0007-training-runs.md.
"""

import math
from datetime import timedelta
from typing import Any

from celery import current_app
from django.conf import settings
from django.db import transaction
from django.db.models import F, Max, Q
from django.utils import timezone

from apps.accounts.permissions import Action, require
from apps.audit.services import audit_record
from apps.core.exceptions import ApplicationError
from apps.datasets.models import DatasetVersion
from apps.datasets.selectors import version_effective_columns
from apps.datasets.services import version_require_usable_for_training
from apps.experiments.choices import (
    ACTIVE_RUN_STATUSES,
    FINISHED_RUN_STATUSES,
    ExperimentStatus,
    LogLevel,
    RunStatus,
)
from apps.experiments.models import Experiment, Run, RunLogLine
from apps.projects.choices import ProjectStatus
from apps.projects.models import Project
from workers.ml.training.spec import SpecError, build_spec, profile_errors  # stdlib only

TRAIN_TASK = "experiments.train_run"
TRAIN_QUEUE = "training"
NAME_CHARS = 200
LOG_MESSAGE_CHARS = 4000
# The share of the training time limit a search may spend; the rest is for the final fit, evaluation and SHAP.
SEARCH_SHARE_OF_TIME_LIMIT = 0.8

WORKER_LOST_MESSAGE = (
    "The worker stopped responding (lost or killed): no heartbeat for {duration}. It was probably restarted or ran "
    "out of memory. Nothing was saved; launch the experiment again."
)
NEVER_STARTED_MESSAGE = "No training worker picked the run up within {hours} hours. Nothing was saved; launch it again."


class RunNotRunning(ApplicationError):
    """The run is no longer the worker's to finish (cancelled, failed by the sweep, or finished by another
    delivery)."""

    def __init__(self, run: Run):
        super().__init__(f"The run is {run.status}, not running.", status=409)
        self.run = run


def _dispatch_run(run_id) -> None:
    """Queue the run after commit, with the time limits its launch was checked against (they travel in the message,
    so a worker configured differently still stops the run where the launch promised)."""
    run_id = str(run_id)
    limits = {"soft_time_limit": settings.TRAINING_SOFT_TIME_LIMIT, "time_limit": settings.TRAINING_HARD_TIME_LIMIT}
    transaction.on_commit(lambda: current_app.send_task(TRAIN_TASK, args=[run_id], queue=TRAIN_QUEUE, **limits))


def plain_json(value: Any) -> Any:
    """`value` as JSON PostgreSQL accepts: NaN and infinities become None, NumPy scalars and arrays plain values."""
    if isinstance(value, dict):
        return {str(key): plain_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain_json(item) for item in value]
    if isinstance(value, bool) or value is None or isinstance(value, str | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if hasattr(value, "tolist"):  # NumPy arrays and scalars
        return plain_json(value.tolist())
    return str(value)


def _finite_or_none(value) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


# --- Launching --------------------------------------------------------------------------------------------------
def _project_defaults(project: Project) -> dict[str, Any]:
    definition = getattr(project, "definition", None)  # a project without a definition has no defaults
    if definition is None:
        return {}
    return {"problem_type": definition.problem_type, "primary_metric": definition.primary_metric}


def _require_open_project(project: Project) -> None:
    if project.status == ProjectStatus.RETIRED:
        raise ApplicationError("The project is retired: it takes no new experiments.", status=409)


def _require_version_of_project(version, project: Project) -> DatasetVersion:
    if version is None or not isinstance(version, DatasetVersion):
        message = "Choose a dataset version."
        raise ApplicationError(message, errors={"dataset_version": [message]})
    version = DatasetVersion.objects.select_related("dataset__project").get(pk=version.pk)
    if version.dataset.project_id != project.pk:
        message = "Choose a version of a dataset of this project."
        raise ApplicationError(message, errors={"dataset_version": [message]})
    return version


def _personal_data_errors(spec, columns: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Features that hold personal data (marked, or flagged by PII detection) or that are excluded from training."""
    by_name = {column["name"]: column for column in columns}
    errors: list[str] = []
    for name in spec.features:
        column = by_name.get(name, {})
        if column.get("excluded"):
            errors.append(f"{name!r} is marked excluded from training; leave it out, or remove the mark first.")
        elif column.get("personal"):
            errors.append(f"{name!r} is marked personal data; personal columns are not used as features.")
        elif column.get("pii"):
            kinds = ", ".join(sorted({str(finding.get("kind", "personal data")) for finding in column["pii"]}))
            errors.append(f"{name!r} looks like personal data ({kinds}); personal columns are not used as features.")
    return {"features": errors} if errors else {}


def _time_budget_errors(spec) -> dict[str, list[str]]:
    if spec.search.method == "none":
        return {}
    budget = int(settings.TRAINING_SOFT_TIME_LIMIT * SEARCH_SHARE_OF_TIME_LIMIT)
    if spec.search.timeout_seconds > budget:
        return {
            "search.timeout_seconds": [
                f"Training runs are stopped after {settings.TRAINING_SOFT_TIME_LIMIT} seconds; give the search at "
                f"most {budget} seconds so the final fit and evaluation fit in."
            ]
        }
    return {}


def _validated_spec(version: DatasetVersion, project: Project, data: dict):
    columns = version_effective_columns(version=version)
    try:
        spec = build_spec(data, columns=columns, defaults=_project_defaults(project))
    except SpecError as exc:
        raise ApplicationError("The experiment is not valid: correct the fields marked.", errors=exc.errors) from exc
    errors: dict[str, list[str]] = {}
    for found in (
        profile_errors(spec, profile=version.profile, row_count=version.row_count),
        _personal_data_errors(spec, columns),
        _time_budget_errors(spec),
    ):
        for name, messages in found.items():
            errors.setdefault(name, []).extend(messages)
    if errors:
        raise ApplicationError("The data cannot train this experiment: correct the fields marked.", errors=errors)
    return spec


def _clean_name(name: str) -> str:
    name = (name or "").strip()
    if len(name) > NAME_CHARS:
        message = f"Use at most {NAME_CHARS} characters."
        raise ApplicationError("The name is too long.", errors={"name": [message]})
    return name


def _experiment_snapshot(experiment: Experiment, version: DatasetVersion) -> dict[str, Any]:
    return {
        "number": experiment.number,
        "name": experiment.name,
        "dataset": str(version.dataset_id),
        "dataset_version": version.number,
        "dataset_sha256": version.sha256,
        "algorithms": list(experiment.spec["algorithms"]),
        "spec": experiment.spec,
        "status": experiment.status,
    }


def experiment_launch(
    *, project: Project, actor, dataset_version: DatasetVersion, data: dict, name: str = "", description: str = ""
) -> Experiment:
    """Validate `data` (the spec fields of workers.ml.training.spec.build_spec) against the version, create the
    experiment with one queued run per candidate algorithm, and dispatch each run to the training queue after
    commit. Every refusal is an ApplicationError with field-level errors; nothing is created then."""
    require(actor, Action.EXPERIMENT_LAUNCH, project)
    _require_open_project(project)
    version = _require_version_of_project(dataset_version, project)
    version_require_usable_for_training(version=version)
    name = _clean_name(name)
    spec = _validated_spec(version, project, data)
    with transaction.atomic():
        Project.objects.select_for_update().filter(pk=project.pk).first()  # numbers experiments one launch at a time
        number = (Experiment.objects.filter(project=project).aggregate(latest=Max("number"))["latest"] or 0) + 1
        experiment = Experiment.objects.create(
            project=project,
            number=number,
            name=name or f"Experiment {number}",
            description=(description or "").strip(),
            dataset_version=version,
            spec=spec.as_dict(),
            created_by=actor,
        )
        for run_number, algorithm in enumerate(spec.algorithms, start=1):
            run = Run.objects.create(
                experiment=experiment,
                number=run_number,
                algorithm=algorithm,
                spec=spec.for_algorithm(algorithm).as_dict(),
                seed=spec.seed,
                dataset_sha256=version.sha256,
                progress_message="Waiting for a training worker.",
            )
            _dispatch_run(run.pk)
        audit_record(
            actor=actor,
            action="experiment.launch",
            obj=experiment,
            project=project,
            after=_experiment_snapshot(experiment, version),
        )
    return experiment


# --- The experiment's status ------------------------------------------------------------------------------------
def _derived_status(statuses: list[str]) -> str:
    if statuses and all(status in FINISHED_RUN_STATUSES for status in statuses):
        if RunStatus.SUCCEEDED in statuses:
            return ExperimentStatus.SUCCEEDED
        return ExperimentStatus.CANCELLED if RunStatus.CANCELLED in statuses else ExperimentStatus.FAILED
    if any(status != RunStatus.QUEUED for status in statuses):
        return ExperimentStatus.RUNNING
    return ExperimentStatus.QUEUED


def experiment_refresh_status(experiment: Experiment) -> Experiment:
    """Derive the experiment's status from its runs (called in the transaction of every run change).

    The experiment row is locked before the runs are read, so two runs finishing at the same moment are counted
    one after the other and the last one sees both finished. Callers lock a run before its experiment, never the
    reverse, so the two locks cannot deadlock.
    """
    with transaction.atomic():
        locked = Experiment.objects.select_for_update().get(pk=experiment.pk)
        statuses = list(Run.objects.filter(experiment_id=locked.pk).values_list("status", flat=True))
        status = _derived_status(statuses)
        finished = status in (ExperimentStatus.SUCCEEDED, ExperimentStatus.FAILED, ExperimentStatus.CANCELLED)
        finished_at = (locked.finished_at or timezone.now()) if finished else None
        if (locked.status, locked.finished_at) != (status, finished_at):
            locked.status = status
            locked.finished_at = finished_at
            locked.save(update_fields=["status", "finished_at", "updated_at"])
    experiment.status, experiment.finished_at = locked.status, locked.finished_at
    return locked


# --- Cancelling -------------------------------------------------------------------------------------------------
def _cancel_locked_run(run: Run, now) -> None:
    run.status = RunStatus.CANCELLED
    run.cancel_requested = True
    run.finished_at = now
    run.progress_message = "Cancelled."
    run.save(update_fields=["status", "cancel_requested", "finished_at", "progress_message", "updated_at"])


def run_cancel(*, run: Run, actor) -> Run:
    """Stop a queued or running run. A running task notices at its next progress report or stop check."""
    project = Project.objects.get(pk=run.experiment.project_id)
    require(actor, Action.EXPERIMENT_CANCEL, project)
    with transaction.atomic():
        locked = Run.objects.select_for_update().get(pk=run.pk)
        if locked.status not in ACTIVE_RUN_STATUSES:
            raise ApplicationError(f"The run is already {locked.get_status_display().lower()}.", status=409)
        before = {"status": locked.status}
        _cancel_locked_run(locked, timezone.now())
        experiment_refresh_status(Experiment(pk=locked.experiment_id))
        audit_record(
            actor=actor,
            action="experiment.run_cancel",
            obj=locked,
            project=project,
            before=before,
            after={"status": locked.status, "experiment": str(locked.experiment_id), "number": locked.number},
        )
    return locked


def experiment_cancel(*, experiment: Experiment, actor) -> Experiment:
    """Cancel every queued or running run of the experiment (its finished runs keep their results)."""
    project = Project.objects.get(pk=experiment.project_id)
    require(actor, Action.EXPERIMENT_CANCEL, project)
    with transaction.atomic():
        # Runs before the experiment: the same lock order as the worker's run changes.
        active = list(
            Run.objects.select_for_update()
            .filter(experiment_id=experiment.pk, status__in=ACTIVE_RUN_STATUSES)
            .order_by("number")
        )
        if not active:
            raise ApplicationError("The experiment has no queued or running run to cancel.", status=409)
        now = timezone.now()
        for run in active:
            _cancel_locked_run(run, now)
        locked = experiment_refresh_status(experiment)
        audit_record(
            actor=actor,
            action="experiment.cancel",
            obj=locked,
            project=project,
            after={"status": locked.status, "cancelled_runs": [run.number for run in active]},
        )
    return locked


# --- The worker's side of a run ---------------------------------------------------------------------------------
def run_claim(*, run_id, task_id: str) -> Run | None:
    """queued -> running, once. The same task delivered again (acks_late after a lost worker, or a retry) may take
    its running run back and start over; anything else gets None and must stop."""
    now = timezone.now()
    task_id = str(task_id or "")[:64]
    claimable = Q(status=RunStatus.QUEUED)
    if task_id:
        claimable |= Q(status=RunStatus.RUNNING, task_id=task_id)
    with transaction.atomic():
        updated = (
            Run.objects.filter(claimable, pk=run_id, cancel_requested=False)
            .exclude(status__in=FINISHED_RUN_STATUSES)
            .update(
                status=RunStatus.RUNNING,
                task_id=task_id,
                started_at=now,
                heartbeat_at=now,
                attempts=F("attempts") + 1,
                progress=0.0,
                progress_message="Started.",
                trials_done=0,
                best_score=None,
                updated_at=now,
            )
        )
        if updated != 1:
            return None
        run = Run.objects.select_related("experiment__project__definition", "experiment__dataset_version__dataset").get(
            pk=run_id
        )
        if run.attempts > 1:
            RunLogLine.objects.create(
                run=run,
                level=LogLevel.WARNING,
                message=f"Started again (attempt {run.attempts}): the previous attempt did not finish.",
            )
        experiment_refresh_status(run.experiment)
    return run


def run_heartbeat(*, run_id) -> bool:
    """The worker is alive (sent every RUN_HEARTBEAT_SECONDS by the task, whatever training is doing). False once
    the run is no longer running."""
    return Run.objects.filter(pk=run_id, status=RunStatus.RUNNING).update(heartbeat_at=timezone.now()) == 1


def run_progress(
    *,
    run_id,
    fraction: float,
    message: str,
    trials_done: int | None = None,
    trials_total: int | None = None,
    best_score: float | None = None,
) -> bool:
    """Record progress and a heartbeat. Returns False when the run is no longer running (cancelled, or failed by the
    sweep): the worker stops then."""
    now = timezone.now()
    fields: dict[str, Any] = {
        "progress": min(max(float(fraction), 0.0), 1.0),
        "progress_message": str(message or "")[:200],
        "heartbeat_at": now,
        "updated_at": now,
    }
    if trials_done is not None:
        fields["trials_done"] = max(int(trials_done), 0)
    if trials_total is not None:
        fields["trials_total"] = max(int(trials_total), 0)
    if best_score is not None:
        fields["best_score"] = _finite_or_none(best_score)
    return Run.objects.filter(pk=run_id, status=RunStatus.RUNNING, cancel_requested=False).update(**fields) == 1


def run_should_stop(*, run_id) -> bool:
    """Whether the worker must stop: the run was cancelled, failed by the sweep, or finished elsewhere."""
    return not Run.objects.filter(pk=run_id, status=RunStatus.RUNNING, cancel_requested=False).exists()


def run_log(*, run_id, level: str, message: str) -> bool:
    """Append a line to the run's log (shown live on the run page) while the run is active."""
    if level not in LogLevel.values:
        level = LogLevel.INFO
    if not Run.objects.filter(pk=run_id, status__in=ACTIVE_RUN_STATUSES).exists():
        return False
    RunLogLine.objects.create(run_id=run_id, level=level, message=str(message or "")[:LOG_MESSAGE_CHARS])
    return True


def run_succeed(
    *,
    run_id,
    params: dict,
    trials: list,
    metrics: dict,
    primary_score: float | None,
    test_score: float | None,
    cv: dict,
    input_signature: dict,
    environment: dict,
    timings: dict,
    artifact_key: str,
    artifact_sha256: str,
    artifact_signature: str,
    artifact_size: int,
) -> Run:
    """Record a running run's results and its stored, signed artifact: running -> succeeded, once. A run that is no
    longer running raises RunNotRunning (the caller removes the artifact it wrote, unless a recorded run owns it)."""
    with transaction.atomic():
        run = Run.objects.select_for_update().get(pk=run_id)
        if run.status != RunStatus.RUNNING:
            raise RunNotRunning(run)
        now = timezone.now()
        primary = _finite_or_none(primary_score)
        run.status = RunStatus.SUCCEEDED
        run.finished_at = now
        run.heartbeat_at = now
        run.progress = 1.0
        run.progress_message = "Finished."
        run.params = plain_json(params or {})
        run.trials = plain_json(trials or [])
        run.metrics = plain_json(metrics or {})
        run.cv = plain_json(cv or {})
        run.primary_score = primary
        run.test_score = _finite_or_none(test_score)
        run.best_score = primary if run.best_score is None else run.best_score
        run.input_signature = plain_json(input_signature or {})
        run.environment = plain_json(environment or {})
        run.timings = plain_json(timings or {})
        run.artifact_key = artifact_key
        run.artifact_sha256 = artifact_sha256
        run.artifact_signature = artifact_signature
        run.artifact_size = int(artifact_size)
        run.save()
        experiment = experiment_refresh_status(Experiment(pk=run.experiment_id))
        audit_record(
            actor=None,
            action="experiment.run_succeeded",
            obj=run,
            project=Project(pk=experiment.project_id),
            before={"status": RunStatus.RUNNING},
            after={
                "status": run.status,
                "experiment": str(run.experiment_id),
                "number": run.number,
                "algorithm": run.algorithm,
                "params": run.params,
                "primary_score": run.primary_score,
                "test_score": run.test_score,
                "artifact_key": run.artifact_key,
                "artifact_sha256": run.artifact_sha256,
                "artifact_signature": run.artifact_signature,
                "dataset_sha256": run.dataset_sha256,
                "seed": run.seed,
            },
        )
    return run


def run_fail(*, run_id, code: str, message: str) -> Run:
    """Finish a queued or running run as failed, with a machine code and a sentence for the user (no-op once
    finished: the first outcome stays)."""
    with transaction.atomic():
        run = Run.objects.select_for_update().get(pk=run_id)
        if run.status in FINISHED_RUN_STATUSES:
            return run
        before = {"status": run.status}
        now = timezone.now()
        run.status = RunStatus.FAILED
        run.error_code = str(code)[:50]
        run.error = str(message)
        run.finished_at = now
        run.progress_message = "Failed."
        run.save(update_fields=["status", "error_code", "error", "finished_at", "progress_message", "updated_at"])
        RunLogLine.objects.create(run=run, level=LogLevel.ERROR, message=run.error[:LOG_MESSAGE_CHARS])
        experiment = experiment_refresh_status(Experiment(pk=run.experiment_id))
        audit_record(
            actor=None,
            action="experiment.run_failed",
            obj=run,
            project=Project(pk=experiment.project_id),
            before=before,
            after={
                "status": run.status,
                "experiment": str(run.experiment_id),
                "number": run.number,
                "error_code": run.error_code,
                "error": run.error,
            },
        )
    return run


def _duration(seconds: int) -> str:
    if seconds % 60 == 0:
        minutes = seconds // 60
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    return f"{seconds} seconds"


def _fail_runs(runs, *, code: str, message: str) -> int:
    """Fail each run of `runs` (each in its own audited transaction); how many this call failed (a run that
    finished meanwhile keeps its outcome)."""
    failed = 0
    for run_id in list(runs.values_list("pk", flat=True)):
        failed += run_fail(run_id=run_id, code=code, message=message).error_code == code
    return failed


def runs_sweep(*, stale_after_seconds: int, requeue_after_minutes: int, give_up_after_hours: int = 24) -> dict:
    """Repair runs a lost worker or a lost dispatch left behind (the periodic task experiments.sweep_stale_runs).

    - running, no heartbeat for `stale_after_seconds` -> failed ("worker_lost") with the reason;
    - queued for more than `give_up_after_hours` -> failed ("never_started");
    - queued and not dispatched for `requeue_after_minutes` -> dispatched again (a second delivery is harmless:
      only one task can claim the run).
    Returns how many runs each step touched.
    """
    now = timezone.now()
    failed = _fail_runs(
        Run.objects.filter(status=RunStatus.RUNNING, heartbeat_at__lt=now - timedelta(seconds=stale_after_seconds)),
        code="worker_lost",
        message=WORKER_LOST_MESSAGE.format(duration=_duration(stale_after_seconds)),
    )
    gave_up = _fail_runs(
        Run.objects.filter(status=RunStatus.QUEUED, queued_at__lt=now - timedelta(hours=give_up_after_hours)),
        code="never_started",
        message=NEVER_STARTED_MESSAGE.format(hours=give_up_after_hours),
    )
    lost = Run.objects.filter(
        status=RunStatus.QUEUED, updated_at__lt=now - timedelta(minutes=requeue_after_minutes)
    ).values_list("pk", flat=True)
    requeued = 0
    for run_id in list(lost):
        with transaction.atomic():
            if Run.objects.filter(pk=run_id, status=RunStatus.QUEUED).update(updated_at=now):
                _dispatch_run(run_id)
                requeued += 1
    return {"failed_stale": failed, "failed_never_started": gave_up, "requeued": requeued}
