"""Monitoring tasks: a check of one monitor (drift, performance from ground truth, realised value; service health is
added by the service from the servers' metrics), and the scheduled trigger django-celery-beat calls per monitor.

A check streams the window's logged predictions from the database through a reservoir sample (at most the
monitor's `max_rows` rows reach the drift check), and the labelled ones through exact value counts plus a second
bounded sample for the metrics: memory is bounded whatever the window holds. The reference data of a version is built
once (a sample of its training rows with the model's predictions on them) and stored as an artifact; later checks
load it.
"""

import logging
import tempfile
from pathlib import Path

from celery import shared_task
from django.conf import settings

from workers.tasks.base import ContextTask
from workers.tasks.datasets import artifact_store

logger = logging.getLogger(__name__)

SEED = 0
REFERENCE_ROWS = 100_000


@shared_task(name="monitoring.scheduled_check", base=ContextTask, acks_late=True, soft_time_limit=50, time_limit=60)
def scheduled_check(monitor_id: str) -> str:
    """Beat's per-monitor entry: queue a check unless the monitor is off or its deployment stopped."""
    from apps.monitoring.models import Monitor
    from apps.monitoring.services.monitors import check_request

    monitor = Monitor.objects.select_related("deployment").filter(pk=monitor_id).first()
    if monitor is None or not monitor.enabled or monitor.deployment.is_stopped:
        return "skipped"
    return str(check_request(monitor=monitor).pk)


@shared_task(
    name="monitoring.run_check",
    base=ContextTask,
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=840,
    time_limit=900,
)
def run_check_task(check_id: str) -> str:
    from apps.monitoring.services import checks

    check = checks.check_claim(check_id=check_id)
    if check is None:
        return "skipped"
    try:
        run_check(check)
    except Exception as exc:
        logger.exception("monitor check %s failed", check_id)
        checks.check_fail(check_id=check_id, error=f"{type(exc).__name__}: {exc}")
        return "failed"
    return "succeeded"


def run_check(check) -> None:
    from apps.monitoring import selectors
    from apps.monitoring.services import checks
    from workers.ml.drift.sampling import reservoir_sample
    from workers.ml.monitoring.outcomes import concept_drift
    from workers.ml.training.spec import LOWER_IS_BETTER

    inputs = selectors.check_inputs(check=check)
    reference = ensure_reference(inputs.version)
    counter = _Counter()
    sample = reservoir_sample(counter.count(selectors.window_records(inputs=inputs)), check.monitor.max_rows, SEED)
    current = _current_frame(sample, inputs)
    drift, html = _drift(reference, current, check.monitor, window_rows=counter.rows)
    report_key = _store_report(check, html) if html else ""
    performance, value = _outcomes(inputs, max_rows=check.monitor.max_rows)
    primary = inputs.targets.primary_metric
    concept = concept_drift(
        primary_metric=primary,
        live=performance["metrics"].get(primary),
        expected=inputs.expected_primary,
        higher_is_better=primary not in LOWER_IS_BETTER,
        data_drift=bool(drift.get("dataset_drift")),
    )
    checks.check_succeed(
        check_id=check.pk,
        version=inputs.version,
        window_start=inputs.window_start,
        window_end=inputs.window_end,
        rows=counter.rows,
        sampled_rows=len(current),
        drift=drift,
        performance=performance,
        value=value,
        concept_drift=concept,
        report_key=report_key,
    )


class _Counter:
    """Counts what streams past on its way to the sampler (the window's size without a second query)."""

    def __init__(self):
        self.rows = 0

    def count(self, records):
        for record in records:
            self.rows += 1
            yield record


def _current_frame(sample: list[dict], inputs):
    from workers.ml.drift.frames import frame_from_predictions

    return frame_from_predictions(sample, signature=inputs.signature)


def _drift(reference, current, monitor, *, window_rows: int) -> tuple[dict, str]:
    """The drift result and Evidently's HTML report of the same run (one Evidently run per check)."""
    from workers.ml.drift.check import drift_check

    if not len(current):
        return {"computed": False, "reason": "No predictions in the window."}, ""
    result = drift_check(
        reference,
        current,
        column_threshold=monitor.drift_column_threshold,
        max_current_rows=monitor.max_rows,
        current_source_rows=window_rows,
        html=True,
    )
    return {"computed": True, **result.as_dict()}, result.html or ""


def _outcomes(inputs, *, max_rows: int) -> tuple[dict, dict]:
    """Performance over a bounded sample of the labelled predictions; realised value over all of them (exact
    counts per variant)."""
    from apps.monitoring import selectors
    from workers.ml.drift.sampling import reservoir_sample
    from workers.ml.monitoring.outcomes import ValueTally, live_performance

    classes = inputs.classes
    positive = classes[1] if inputs.problem_type == "binary" and classes and len(classes) == 2 else None
    tally = ValueTally(problem_type=inputs.problem_type, positive=positive)

    def tallied(records):
        for record in records:
            tally.add(record["variant"], record["actual"], record["outputs"].get("predict"))
            yield record

    labelled = reservoir_sample(tallied(selectors.labelled_records(inputs=inputs)), max_rows, SEED)
    probabilities = [record["outputs"].get("predict_proba") for record in labelled]
    has_probabilities = bool(probabilities) and all(isinstance(row, list) for row in probabilities)
    performance = live_performance(
        problem_type=inputs.problem_type,
        actual=[record["actual"] for record in labelled],
        predicted=[record["outputs"].get("predict") for record in labelled],
        probabilities=probabilities if has_probabilities else None,
        classes=[str(label) for label in classes] if classes else None,
        metrics=(inputs.targets.primary_metric,) if inputs.targets.primary_metric else (),
    )
    return performance, tally.realised(inputs.targets)


def _store_report(check, html: str) -> str:
    key = f"monitoring/{check.monitor_id}/checks/{check.pk}/drift-report.html"
    artifact_store().put_bytes(key, html.encode("utf-8"), overwrite=True)
    return key


# --- Reference data -------------------------------------------------------------------------------------------------
def ensure_reference(version):
    """The version's reference: loaded when it was built before, else built now (once) and stored."""
    from apps.monitoring import selectors
    from apps.monitoring.services import checks
    from workers.ml.drift.reference import Reference

    profile = selectors.reference_of(version=version)
    if profile is None:
        claimed = checks.reference_claim(version=version)
        if claimed is not None:
            try:
                key, rows = _build_reference(version)
            except Exception as exc:
                checks.reference_fail(profile_id=claimed.pk, error=f"{type(exc).__name__}: {exc}")
                raise
            profile = checks.reference_succeed(profile_id=claimed.pk, artifact_key=key, rows=rows)
        else:
            profile = selectors.reference_of(version=version)
            if profile is None:
                raise RuntimeError("Another worker is building this version's reference data; the next check uses it.")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "reference.parquet"
        path.write_bytes(artifact_store().get_bytes(profile.artifact_key))
        return Reference.from_parquet(path)


def _build_reference(version) -> tuple[str, int]:
    import pandas as pd

    from workers.ml.drift.reference import build_reference
    from workers.ml.training.artifacts import load_model

    dataset_version = version.run.experiment.dataset_version
    columns = [column["name"] for column in version.input_signature["columns"]]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "data.parquet"
        path.write_bytes(artifact_store().get_bytes(dataset_version.parquet_key))
        frame = pd.read_parquet(path, columns=columns)
        if len(frame) > REFERENCE_ROWS:
            frame = frame.sample(n=REFERENCE_ROWS, random_state=SEED)
        pipeline = load_model(
            artifact_store().get_bytes(version.artifact_key),
            sha256=version.artifact_sha256,
            signature=version.artifact_signature,
            key=settings.MODEL_SIGNING_KEY.encode(),
        )
        predictions = _model_predictions(pipeline, frame, version.run.spec["problem_type"])
        reference = build_reference(
            frame, signature=version.input_signature, predictions=predictions, max_rows=REFERENCE_ROWS, seed=SEED
        )
        out = Path(folder) / "reference.parquet"
        reference.to_parquet(out)
        key = f"monitoring/references/{version.pk}.parquet"
        artifact_store().put_bytes(key, out.read_bytes(), overwrite=True)
    return key, len(frame)


def _model_predictions(pipeline, frame, problem_type: str):
    """The `prediction` column as logged predictions give it (workers.ml.drift.check.frame_from_predictions): the
    positive-class probability for binary, the label for multiclass, the value for regression."""
    import pandas as pd

    if problem_type == "binary":
        return pd.Series(pipeline.predict_proba(frame)[:, 1], index=frame.index, name="prediction")
    if problem_type == "multiclass":
        return pd.Series(pipeline.predict(frame), index=frame.index, name="prediction").astype(str)
    return pd.Series(pipeline.predict(frame), index=frame.index, name="prediction").astype(float)
