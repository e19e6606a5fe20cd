"""experiments.train_run: train, evaluate and store one run of an experiment.

Safety rules this task follows (docs/adr/0007-training-runs.md):
- It claims its run with a conditional update; a run that is not claimable (finished, cancelled, claimed by another
  task) is left alone. A redelivery of the same message (acks_late, worker lost) or a retry takes its run back and
  starts over.
- The version's Parquet copy is downloaded to a temporary folder and verified against its recorded SHA-256 before a
  row is read.
- A heartbeat thread keeps `heartbeat_at` fresh while the run works, so the periodic sweep
  (workers/tasks/periodic.py) can tell a dead worker from a slow search. Progress is written at most once a second;
  the run stops at the next stop check once it is cancelled or failed by the sweep.
- The fitted pipeline is signed (HMAC-SHA256, MODEL_SIGNING_KEY) and written with a conditional write to the run's
  own key; `services.run_succeed` finishes only a running run, so a second delivery cannot record a second result,
  and an attempt whose result is refused removes the artifact it wrote.
- Bad data (TrainingDataError) fails the run with its message; only transient errors (database, storage, network)
  are retried; anything else fails the run with the reason.
"""

import logging
import tempfile
import time
from pathlib import Path

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings

from workers.ml.training.errors import RunCancelled, TrainingDataError  # stdlib only
from workers.storage.base import ChecksumMismatch, ObjectExists, ObjectNotFound
from workers.storage.keys import run_model_key
from workers.tasks.base import ContextTask, Heartbeat
from workers.tasks.datasets import artifact_store, is_transient

logger = logging.getLogger(__name__)

# Task modules are imported when the Celery app is configured, before Django's app registry is ready (see
# workers/tasks/system.py): everything from `apps` is imported inside the functions. So is the ML code (pandas,
# scikit-learn, LightGBM, SHAP, Optuna): every process that loads the Celery app, the web one too, imports this
# module, and only a training worker should pay for those libraries. Settings are read when a task runs, never on
# import (the settings module may still be loading then); the time limits come from CELERY_TASK_ANNOTATIONS.
MAX_RETRIES = 3
PROGRESS_EVERY_SECONDS = 1.0
STOP_CHECK_EVERY_SECONDS = 1.0
SHAP_ROWS = 1000


def signing_key() -> bytes:
    return settings.MODEL_SIGNING_KEY.encode()


def _heartbeat(run_id) -> Heartbeat:
    from apps.experiments import services

    return Heartbeat(f"run {run_id}", lambda: services.run_heartbeat(run_id=run_id), settings.RUN_HEARTBEAT_SECONDS)


class _Reporter:
    """train_run's callbacks, mapped to the run's services: progress and trial counts written at most once a second,
    log lines as they come, and a stop check (at most once a second) that turns true once the run is no longer
    running."""

    def __init__(self, run_id):
        self.run_id = run_id
        self.stopped = False
        self._trials: dict = {}
        self._last_write = 0.0
        self._last_check = 0.0

    def progress(self, fraction: float, message: str, *, force: bool = False) -> None:
        now = time.monotonic()
        if self.stopped or (not force and now - self._last_write < PROGRESS_EVERY_SECONDS):
            return
        self._last_write = now
        from apps.experiments import services

        if not services.run_progress(run_id=self.run_id, fraction=fraction, message=message, **self._trials):
            self.stopped = True

    def trial(self, done: int, total: int, best: float | None) -> None:
        self._trials = {"trials_done": done, "trials_total": total, "best_score": best}

    def log(self, level: str, message: str) -> None:
        from apps.experiments import services

        services.run_log(run_id=self.run_id, level=level, message=message)

    def should_stop(self) -> bool:
        now = time.monotonic()
        if not self.stopped and now - self._last_check >= STOP_CHECK_EVERY_SECONDS:
            self._last_check = now
            from apps.experiments import services

            self.stopped = services.run_should_stop(run_id=self.run_id)
        return self.stopped

    def callbacks(self):
        from workers.ml.training.run import RunCallbacks

        return RunCallbacks(
            on_progress=self.progress, on_trial=self.trial, on_log=self.log, should_stop=self.should_stop
        )


def _load_version_frame(version, spec, store, workdir: Path):
    """The version's Parquet copy, downloaded and checked against the SHA-256 recorded with the version."""
    from workers.ml.training.data import load_frame

    path = workdir / "data.parquet"
    copied = store.download_to(version.parquet_key, path)
    if copied.sha256 != version.parquet_sha256:
        raise ChecksumMismatch(f"{version.parquet_key}: the stored data does not match the version's SHA-256")
    return load_frame(path, spec)


def _store_artifact(store, key: str, data: bytes):
    """Conditional write of the run's artifact. An object already under the key was left by an earlier attempt of
    this run that did not finish (a finished run's attempt could not have claimed the run): it is replaced."""
    from apps.experiments import selectors

    try:
        return store.put_bytes(key, data, overwrite=False, content_type="application/octet-stream")
    except ObjectExists:
        if selectors.artifact_key_in_use(key=key):
            raise
        logger.warning("replacing %s, left by an earlier attempt of the run", key)
        store.delete(key)
        return store.put_bytes(key, data, overwrite=False, content_type="application/octet-stream")


def _discard_artifact(store, key: str) -> None:
    """Remove what this attempt wrote, unless a recorded run owns it (another delivery finished first)."""
    from apps.experiments import selectors

    try:
        if not selectors.artifact_key_in_use(key=key):
            store.delete(key)
    except Exception:  # the database or the store is gone too: an unrecorded object is harmless
        logger.warning("could not remove %s after a refused result", key, exc_info=True)


def _train(run, reporter: _Reporter) -> str:
    from apps.experiments import selectors, services
    from workers.ml.training.artifacts import dump_model, sign
    from workers.ml.training.run import train_run
    from workers.ml.training.spec import spec_from_dict

    experiment = run.experiment
    version = experiment.dataset_version
    spec = spec_from_dict(run.spec)
    store = artifact_store()
    reporter.progress(0.0, "Fetching the data.", force=True)
    reporter.log("info", f"Training {run.algorithm} on {version.dataset.name} v{version.number} (seed {run.seed}).")
    with tempfile.TemporaryDirectory(prefix="train-") as tmp:
        frame = _load_version_frame(version, spec, store, Path(tmp))
    outcome = train_run(
        frame,
        spec,
        targets=selectors.project_targets(experiment.project),
        callbacks=reporter.callbacks(),
        shap_rows=SHAP_ROWS,
    )
    reporter.progress(0.99, "Saving the model.", force=True)
    data = dump_model(outcome.pipeline)
    key = run_model_key(project_id=experiment.project_id, experiment_id=experiment.pk, run_id=run.pk)
    stored = _store_artifact(store, key, data)
    try:
        services.run_succeed(
            run_id=run.pk,
            params=outcome.params,
            trials=outcome.trials,
            metrics=outcome.evaluation,
            primary_score=outcome.primary_score,
            test_score=outcome.test_score,
            cv=outcome.cv or {},
            input_signature=outcome.input_signature,
            environment=outcome.environment,
            timings=outcome.timings,
            artifact_key=key,
            artifact_sha256=stored.sha256,
            artifact_signature=sign(data, signing_key()),
            artifact_size=stored.size,
        )
    except services.RunNotRunning:
        _discard_artifact(store, key)
        raise
    return "succeeded"


def _soft_time_limit(task) -> int | None:
    """The soft limit this delivery ran under: the message's (set at launch), else the task's default."""
    _hard, soft = task.request.timelimit or (None, None)
    return soft or task.soft_time_limit


@shared_task(
    name="experiments.train_run",
    base=ContextTask,
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=MAX_RETRIES,
)
def train_run_task(self, run_id: str) -> str:
    """Train one run; returns what happened: succeeded, failed, cancelled, retrying or skipped."""
    from apps.experiments import services

    run = services.run_claim(run_id=run_id, task_id=self.request.id or "")
    if run is None:
        return "skipped"
    reporter = _Reporter(run.pk)
    try:
        with _heartbeat(run.pk):
            return _train(run, reporter)
    except TrainingDataError as exc:
        services.run_fail(run_id=run.pk, code="bad_data", message=exc.message)
        return "failed"
    except (RunCancelled, services.RunNotRunning):
        return "cancelled"
    except (ChecksumMismatch, ObjectNotFound):
        logger.exception("run %s: the dataset version's data is missing or damaged", run.pk)
        services.run_fail(
            run_id=run.pk,
            code="data_unavailable",
            message="The dataset version's stored data is missing or damaged (its checksum does not match). "
            "An operator must restore it from a backup; the version cannot be trained on until then.",
        )
        return "failed"
    except SoftTimeLimitExceeded:
        services.run_fail(
            run_id=run.pk,
            code="time_limit",
            message=f"The run took longer than {_soft_time_limit(self)} seconds and was stopped. Give the search a "
            "smaller budget, or train on fewer rows.",
        )
        return "failed"
    except Exception as exc:
        if not is_transient(exc):
            logger.exception("run %s failed unexpectedly", run.pk)
            services.run_fail(
                run_id=run.pk,
                code="internal_error",
                message=f"Training failed unexpectedly ({type(exc).__name__}). Operators can find the details under "
                f"task id {self.request.id or '-'} in the worker log.",
            )
            return "failed"
        if self.request.retries < self.max_retries and not self.request.is_eager:
            logger.warning("run %s: transient error, retrying: %s", run.pk, exc)
            services.run_progress(run_id=run.pk, fraction=0.0, message="Waiting to retry.")
            raise self.retry(exc=exc, countdown=min(300, 10 * 2**self.request.retries)) from exc
        logger.exception("run %s: giving up after transient errors", run.pk)
        services.run_fail(
            run_id=run.pk,
            code="unavailable",
            message="Storage or the database was unavailable, also on retry. Launch the experiment again later.",
        )
        return "failed"


def load_run_model(*, run_id):
    """A succeeded run's fitted pipeline, for work that predicts with it on a worker. The bytes are read from the
    store and unpickled only after their SHA-256 and HMAC signature match what the run recorded; otherwise
    ArtifactTampered (workers.ml.training.artifacts) is raised and nothing is loaded."""
    from apps.experiments import selectors
    from workers.ml.training.artifacts import load_model

    run = selectors.run_for_worker(run_id=run_id)
    if not run.artifact_key:
        raise ObjectNotFound(f"run {run_id} has no stored model")
    data = artifact_store().get_bytes(run.artifact_key, verify=False)  # load_model checks against the run's record
    return load_model(data, sha256=run.artifact_sha256, signature=run.artifact_signature, key=signing_key())
