"""Retraining tasks: the schedule's tick, the periodic advance of finished retrainings, and the comparison of a
retrained version (the challenger) with the production version (the champion) on the same rows.

The comparison: both pipelines score the challenger run's held-out test rows, reproduced here from the dataset version
it trained on and its spec and seed with the very functions training used (load_frame, trainable_rows, split_rows:
seeded, so the rows are exactly the run's test rows, which the challenger never saw while training). Each metric the
evaluation reports for the problem type is computed for both with the evaluation's own metric code, so the numbers
mean what the run page's numbers mean. The champion may have seen some of those rows when it was trained on an older
version of the same data; the justification says which rows were used. Both artifacts and the data are verified
(SHA-256 and HMAC) before anything is unpickled or read.

The task claims nothing (the retraining row stays "training" until the result is recorded); it is idempotent instead:
`retraining_comparison_record` records only the first result, and a retraining that is no longer waiting for its
comparison is skipped.
"""

import logging
import tempfile
from pathlib import Path

from celery import shared_task
from django.conf import settings

from workers.storage.base import ChecksumMismatch, ObjectNotFound
from workers.tasks.base import ContextTask
from workers.tasks.datasets import artifact_store, is_transient

logger = logging.getLogger(__name__)

# Everything from `apps` and the ML libraries is imported inside the functions (see workers/tasks/training.py).
MAX_RETRIES = 3
COMPARE_SOFT_TIME_LIMIT = 1200
COMPARE_HARD_TIME_LIMIT = 1260


# --- The comparison (no Django here: plain frames and pipelines) ----------------------------------------------------
def _predictions(pipeline, problem_type: str, X):
    """What the evaluation scores: class decisions as the argmax of predict_proba (what predict returns)."""
    import numpy as np

    from workers.ml.evaluation.evaluate import Predictions

    if problem_type == "clustering":
        return Predictions(labels=pipeline.predict(X), proba=None, prepared=np.asarray(pipeline[:-1].transform(X)))
    if problem_type in ("binary", "multiclass") and hasattr(pipeline, "predict_proba"):
        proba = pipeline.predict_proba(X)
        return Predictions(labels=np.asarray(pipeline.classes_)[proba.argmax(axis=1)], proba=proba, prepared=None)
    return Predictions(labels=pipeline.predict(X), proba=None, prepared=None)


def _metrics_of(pipeline, spec, X, y) -> dict:
    from workers.ml.evaluation.evaluate import metric_table

    classes = tuple(pipeline.classes_) if spec.problem_type in ("binary", "multiclass") else None
    table = metric_table(spec.problem_type, y, _predictions(pipeline, spec.problem_type, X), classes)
    return {name: value for name, value in table.items() if isinstance(value, int | float) or value is None}


def test_rows(frame, spec):
    """The run's held-out test rows, exactly as training split them (seeded)."""
    from workers.ml.training.data import trainable_rows
    from workers.ml.training.splits import split_rows

    rows = trainable_rows(frame, spec)
    return rows.iloc[split_rows(rows, spec).test].reset_index(drop=True)


test_rows.__test__ = False  # a helper, not a test


def compare_models(*, champion, challenger, champion_spec, challenger_spec, frame) -> dict:
    """Champion and challenger scored on the challenger's test rows of `frame`: per metric champion, challenger and
    delta (challenger minus champion), the row count, the primary metric and its direction."""
    rows = test_rows(frame, challenger_spec)
    target = rows[challenger_spec.target] if challenger_spec.target else None
    missing = [name for name in champion_spec.features if name not in rows.columns]
    if missing:
        raise ValueError(f"The data has no column {missing[0]!r}, which the production version needs.")
    champion_scores = _metrics_of(champion, champion_spec, rows[list(champion_spec.features)], target)
    challenger_scores = _metrics_of(challenger, challenger_spec, rows[list(challenger_spec.features)], target)
    metrics = {}
    for name, value in challenger_scores.items():
        before = champion_scores.get(name)
        delta = None if value is None or before is None else value - before
        metrics[name] = {"champion": before, "challenger": value, "delta": delta}
    return {
        "rows": len(rows),
        "primary_metric": challenger_spec.primary_metric,
        "higher_is_better": challenger_spec.higher_is_better,
        "split": {
            "strategy": challenger_spec.split.strategy,
            "test": challenger_spec.split.test,
            "seed": challenger_spec.seed,
        },
        "metrics": metrics,
    }


# --- Loading what the retraining names ------------------------------------------------------------------------------
def _load_version_model(version):
    """A registered version's pipeline, unpickled only after its SHA-256 and HMAC verify."""
    from workers.ml.training.artifacts import load_model

    data = artifact_store().get_bytes(version.artifact_key, verify=False)  # load_model checks the version's record
    return load_model(
        data,
        sha256=version.artifact_sha256,
        signature=version.artifact_signature,
        key=settings.MODEL_SIGNING_KEY.encode(),
    )


def _load_frame(dataset_version, spec):
    from workers.ml.training.data import load_frame

    with tempfile.TemporaryDirectory(prefix="compare-") as tmp:
        path = Path(tmp) / "data.parquet"
        copied = artifact_store().download_to(dataset_version.parquet_key, path)
        if copied.sha256 != dataset_version.parquet_sha256:
            raise ChecksumMismatch(f"{dataset_version.parquet_key}: the stored data does not match its SHA-256")
        return load_frame(path, spec)


def compare_retraining(run) -> dict:
    """The comparison of a retraining whose challenger is registered (see the module docstring)."""
    from workers.ml.training.spec import spec_from_dict

    challenger_version, champion_version = run.new_version, run.champion
    challenger_spec = spec_from_dict(challenger_version.run.spec)
    champion_spec = spec_from_dict(champion_version.run.spec)
    frame = _load_frame(challenger_version.run.experiment.dataset_version, challenger_spec)
    comparison = compare_models(
        champion=_load_version_model(champion_version),
        challenger=_load_version_model(challenger_version),
        champion_spec=champion_spec,
        challenger_spec=challenger_spec,
        frame=frame,
    )
    dataset_version = challenger_version.run.experiment.dataset_version
    return {
        **comparison,
        "champion_version": {"id": str(champion_version.pk), "number": champion_version.number},
        "challenger_version": {"id": str(challenger_version.pk), "number": challenger_version.number},
        "dataset_version": {"id": str(dataset_version.pk), "number": dataset_version.number},
    }


# --- Tasks ----------------------------------------------------------------------------------------------------------
@shared_task(
    name="monitoring.compare_challenger",
    base=ContextTask,
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=MAX_RETRIES,
    soft_time_limit=COMPARE_SOFT_TIME_LIMIT,
    time_limit=COMPARE_HARD_TIME_LIMIT,
)
def compare_challenger_task(self, run_id: str) -> str:
    """Compare a retraining's new version with the champion and open its promotion request; returns requested,
    failed, retrying or skipped."""
    from apps.monitoring.choices import RetrainingStatus
    from apps.monitoring.selectors import retraining_run_for_worker
    from apps.monitoring.services.retraining import retraining_comparison_fail, retraining_comparison_record
    from workers.ml.training.artifacts import ArtifactTampered

    run = retraining_run_for_worker(run_id=run_id)
    if run.status != RetrainingStatus.TRAINING or run.new_version_id is None or run.promotion_request_id:
        return "skipped"
    try:
        comparison = compare_retraining(run)
    except (ArtifactTampered, ChecksumMismatch, ObjectNotFound) as exc:
        logger.error("retraining %s: an artifact or the data is missing or fails verification: %s", run_id, exc)
        retraining_comparison_fail(run_id=run_id, reason=f"a stored model or the data does not verify ({exc}).")
        return "failed"
    except Exception as exc:
        if is_transient(exc) and self.request.retries < self.max_retries and not self.request.is_eager:
            logger.warning("retraining %s: transient error, retrying: %s", run_id, exc)
            raise self.retry(exc=exc, countdown=min(300, 10 * 2**self.request.retries)) from exc
        logger.exception("retraining %s: the comparison failed", run_id)
        retraining_comparison_fail(
            run_id=run_id, reason=f"{type(exc).__name__}: {exc} (task id {self.request.id or '-'} in the worker log)."
        )
        return "failed"
    return retraining_comparison_record(run_id=run_id, comparison=comparison).status


@shared_task(
    name="monitoring.advance_retrainings", base=ContextTask, acks_late=True, soft_time_limit=240, time_limit=300
)
def advance_retrainings_task() -> dict:
    """Advance every training retraining whose experiment finished (beat runs this every minute). One retraining that
    cannot be advanced is logged and the others go on."""
    from apps.monitoring.selectors import retraining_runs_to_advance
    from apps.monitoring.services.retraining import retraining_advance

    outcome = {"advanced": 0, "errors": 0}
    for run in list(retraining_runs_to_advance()):
        try:
            retraining_advance(run=run)
            outcome["advanced"] += 1
        except Exception:
            logger.exception("retraining %s could not be advanced", run.pk)
            outcome["errors"] += 1
    return outcome


@shared_task(
    name="monitoring.scheduled_retraining", base=ContextTask, acks_late=True, soft_time_limit=240, time_limit=300
)
def scheduled_retraining_task(policy_id: str) -> str:
    """The policy's schedule fired (its django-celery-beat PeriodicTask): start or join a retraining."""
    from apps.monitoring.services.retraining import retraining_on_schedule

    run = retraining_on_schedule(policy_id=policy_id)
    return "skipped" if run is None else str(run.pk)
