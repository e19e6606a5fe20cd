"""The prediction log in the portal's store, ground truth, and explanations of logged predictions.

Import. The model servers write JSON lines (workers.serving.prediction_log); the Prediction table is the store and the
files are only transport. `predictions_import` takes a deployment's new complete lines (read by
workers.serving.log_files, handed in as `reader` because the portal never imports serving code), maps each record to
the ModelVersion it names with one query, and writes each file's rows and its cursor in one transaction, so a crash
between the two cannot lose or double rows. Inserts ignore conflicts on the prediction id: a record imported twice
(a file re-read after a crash, two importers racing) is one row. A cursor only moves from the offset its rows were
read at (compare-and-set), so a slower concurrent import cannot move it back. A finished file read to its end is
deleted after the commit: disk stays bounded, the rows are the record.
Imports write NO audit events: predictions are system data the servers produced, not decisions anyone took; the
audit trail records the decisions around them (deploys, traffic changes, ground truth, explanation requests), and
one hash-chained event per prediction would make the trail as large as the log.

Ground truth. One audit event per call (a bulk call: one event with the count and a digest of the ids); posting
again replaces the value and the event keeps the old one. A bulk call is all or nothing.

Explanations. A request is a PredictionExplanation row, queued and dispatched after commit to the
`deployments.explain_prediction` task, which claims it, computes it with the exact version that made the prediction
and finishes it through `explanation_succeed` / `explanation_fail`.
"""

import hashlib
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, Protocol

from celery import current_app
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from apps.accounts.permissions import Action, require
from apps.audit.services import audit_record
from apps.core.exceptions import ApplicationError
from apps.deployments.choices import ExplanationStatus
from apps.deployments.models import (
    Deployment,
    GroundTruth,
    Prediction,
    PredictionExplanation,
    PredictionLogCursor,
)
from apps.deployments.runtime import prediction_log_dir
from apps.deployments.selectors.predictions import prediction_log_offsets
from apps.projects.selectors import project_ids_granting
from apps.registry.models import ModelVersion

logger = logging.getLogger(__name__)

EXPLAIN_TASK = "deployments.explain_prediction"
INSERT_BATCH = 1000
MAX_BULK_ITEMS = 10_000
MAX_REPORTED_ERRORS = 50
ACTIVE_EXPLANATION = (ExplanationStatus.QUEUED, ExplanationStatus.RUNNING)
MAX_ID_LENGTH = Prediction._meta.get_field("id").max_length
MAX_VARIANT_LENGTH = Prediction._meta.get_field("variant").max_length


# --- Import ---------------------------------------------------------------------------------------------------------
class LogChunk(Protocol):
    """What workers.serving.log_files.LogChunk offers (the portal does not import serving code)."""

    name: str
    path: Path
    start: int
    end: int
    records: list[dict[str, Any]]
    bad_lines: int
    finished: bool


class LogRead(Protocol):
    chunks: list[LogChunk]


LogReader = Callable[[Path, dict[str, int]], LogRead]


@dataclass
class ImportResult:
    created: int = 0  # new Prediction rows
    duplicates: int = 0  # records whose prediction id was already stored
    unknown_version: int = 0  # records of a version (or model) this deployment's model does not have: skipped
    bad_records: int = 0  # lines that are not JSON objects, and records missing a field or with a wrong type
    files_finished: list[str] = field(default_factory=list)  # finished files read to their end (deleted)

    def as_dict(self) -> dict[str, Any]:
        return {
            "created": self.created,
            "duplicates": self.duplicates,
            "unknown_version": self.unknown_version,
            "bad_records": self.bad_records,
            "files_finished": len(self.files_finished),
        }


def predictions_import(*, deployment: Deployment, reader: LogReader) -> ImportResult:
    """Import the deployment's new prediction-log lines; `reader` is workers.serving.log_files.read_log_folder."""
    read = reader(prediction_log_dir(deployment.name), prediction_log_offsets(deployment=deployment))
    versions = _version_ids(deployment, read.chunks)
    result = ImportResult()
    for chunk in read.chunks:
        _import_chunk(deployment, chunk, versions, result)
    return result


def _version_ids(deployment: Deployment, chunks: list[LogChunk]) -> dict[str, int | Any]:
    """{version text: ModelVersion pk} for every version the records name, in one query."""
    numbers = {
        int(text)
        for chunk in chunks
        for record in chunk.records
        if isinstance(text := record.get("version"), str) and text.isdigit()
    }
    rows = ModelVersion.objects.filter(registered_model_id=deployment.registered_model_id, number__in=numbers)
    return {str(number): pk for number, pk in rows.values_list("number", "pk")}


def _import_chunk(deployment: Deployment, chunk: LogChunk, versions: dict, result: ImportResult) -> None:
    rows: dict[str, Prediction] = {}
    unknown = bad = 0
    for record in chunk.records:
        row = _prediction_row(record, deployment=deployment, versions=versions)
        if row is None:
            bad += 1
        elif row is _UNKNOWN:
            unknown += 1
        else:
            rows[row.pk] = row  # the same id twice in a file is one prediction
    with transaction.atomic():
        cursor, _ = PredictionLogCursor.objects.select_for_update().get_or_create(
            deployment=deployment, file_name=chunk.name
        )
        if cursor.offset != chunk.start:
            return  # another import read these lines meanwhile; its cursor stands
        existing = set(Prediction.objects.filter(pk__in=list(rows)).values_list("pk", flat=True))
        new = [row for pk, row in rows.items() if pk not in existing]
        Prediction.objects.bulk_create(new, batch_size=INSERT_BATCH, ignore_conflicts=True)
        cursor.offset = chunk.end
        cursor.finished = chunk.finished
        cursor.save(update_fields=["offset", "finished", "updated_at"])
        if chunk.finished:
            transaction.on_commit(partial(_delete_log_file, chunk.path))
    result.created += len(new)
    result.duplicates += len(rows) - len(new)
    result.unknown_version += unknown
    result.bad_records += bad + chunk.bad_lines
    if chunk.finished:
        result.files_finished.append(chunk.name)


def _delete_log_file(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError:  # the next import finds it finished and read, and tries again
        logger.warning("could not delete the imported prediction log %s", path, exc_info=True)


_UNKNOWN = object()


def _prediction_row(record: dict[str, Any], *, deployment: Deployment, versions: dict) -> Prediction | object | None:
    """The row of one record; _UNKNOWN for another model or an unknown version; None for a malformed record."""
    prediction_id, version, variant = record.get("prediction_id"), record.get("version"), record.get("variant")
    inputs, outputs = record.get("inputs"), record.get("outputs")
    latency, moment, shadow_of = record.get("latency_ms"), record.get("time"), record.get("shadow_of")
    well_formed = (
        isinstance(prediction_id, str)
        and 0 < len(prediction_id) <= MAX_ID_LENGTH
        and isinstance(version, str)
        and isinstance(inputs, dict)
        and isinstance(outputs, dict)
        and _is_number(latency)
        and _is_number(moment)
        and (variant is None or (isinstance(variant, str) and len(variant) <= MAX_VARIANT_LENGTH))
        and isinstance(record.get("shadow", False), bool)
        and (shadow_of is None or (isinstance(shadow_of, str) and len(shadow_of) <= MAX_ID_LENGTH))
    )
    if not well_formed:
        return None
    if record.get("model") != deployment.name or version not in versions:
        return _UNKNOWN
    return Prediction(
        id=prediction_id,
        deployment=deployment,
        version_id=versions[version],
        variant=variant or "",
        shadow=bool(record.get("shadow", False)),
        shadow_of=shadow_of or "",
        inputs=_json_safe(inputs),
        outputs=_json_safe(outputs),
        latency_ms=float(latency),
        predicted_at=datetime.fromtimestamp(moment, tz=UTC),
    )


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _json_safe(value: Any) -> Any:
    """PostgreSQL's JSON refuses NaN and infinity; the servers validate inputs finite, this is the last guard."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json_safe(item) for item in value]
    return value


# --- Ground truth ---------------------------------------------------------------------------------------------------
def _classes(version: ModelVersion) -> list[Any] | None:
    """The version's class labels: recorded with its input signature's target, else with its evaluation."""
    target = (version.input_signature or {}).get("target") or {}
    return target.get("classes") or (version.metrics or {}).get("classes") or None


def _same_label(actual: Any, label: Any) -> bool:
    """Equal and of the same kind: true is not the class 1, "1" is not the class 1."""
    kinds = (bool, str)
    return actual == label and all(isinstance(actual, kind) == isinstance(label, kind) for kind in kinds)


def actual_refusal(version: ModelVersion, actual: Any) -> str | None:
    """Why `actual` cannot be the outcome of a prediction of `version`, or None when it can."""
    problem_type = (version.run.spec or {}).get("problem_type")
    if problem_type == "regression":
        if not _is_number(actual):
            return "A finite number is required: the model predicts a value."
        return None
    if problem_type in ("binary", "multiclass"):
        classes = _classes(version)
        if classes is not None:
            if not any(_same_label(actual, label) for label in classes):
                return f"One of the model's classes is required: {', '.join(map(repr, classes))}."
            return None
        if isinstance(actual, float) or not isinstance(actual, str | int | bool):
            return "A class label (text, integer or boolean) is required."
        return None
    return f"A {problem_type or 'model of this kind'} has no outcome to record."


def _truth_state(truth: GroundTruth | None) -> dict[str, Any] | None:
    if truth is None:
        return None
    return {"actual": truth.actual, "observed_at": truth.observed_at.isoformat()}


def ground_truth_record(
    *, prediction: Prediction, actor, actual: Any, observed_at: datetime | None = None
) -> GroundTruth:
    """Record (or replace) what actually happened after `prediction`."""
    project = prediction.deployment.project
    require(actor, Action.GROUND_TRUTH_RECORD, project)
    refusal = actual_refusal(prediction.version, actual)
    if refusal:
        raise ApplicationError(f"No ground truth was recorded: {refusal}", errors={"actual": [refusal]})
    with transaction.atomic():
        old = GroundTruth.objects.select_for_update().filter(prediction=prediction).first()
        before = _truth_state(old)
        truth, _ = GroundTruth.objects.update_or_create(
            prediction=prediction,
            defaults={"actual": actual, "observed_at": observed_at or timezone.now(), "recorded_by": actor},
        )
        audit_record(
            actor=actor,
            action="ground_truth.record",
            object_type="deployments.prediction",
            object_id=prediction.pk,
            project=project,
            before=before,
            after=_truth_state(truth),
        )
    return truth


def ground_truth_record_bulk(*, actor, items: list[dict[str, Any]]) -> int:
    """Record the outcomes of many predictions at once: [{prediction_id, actual, observed_at?}]. All or nothing: one
    bad item refuses the call (ApplicationError naming `items[i].<field>`). Returns how many were recorded."""
    allowed = project_ids_granting(actor=actor, action=Action.GROUND_TRUTH_RECORD)
    if allowed is not None and not allowed.exists():
        raise PermissionDenied("You may not record actual outcomes of predictions (ground truth).")
    if not isinstance(items, list) or not items:
        raise ApplicationError("Send at least one item.", errors={"items": ["Send at least one item."]})
    if len(items) > MAX_BULK_ITEMS:
        message = f"At most {MAX_BULK_ITEMS} items per call; split the rest into further calls."
        raise ApplicationError(message, errors={"items": [message]})
    predictions = _bulk_predictions(items, allowed)
    errors = _bulk_errors(items, predictions)
    if errors:
        shown = dict(list(errors.items())[:MAX_REPORTED_ERRORS])
        raise ApplicationError(
            f"No ground truth was recorded: {len(errors)} item(s) are invalid.", errors=shown, status=400
        )
    with transaction.atomic():
        return _bulk_write(actor, items, predictions)


def _bulk_predictions(items: list[dict[str, Any]], allowed) -> dict[str, Prediction]:
    """The predictions the items name that the actor may record for, by id (others count as unknown: the caller
    learns nothing about predictions they may not touch)."""
    ids = [item.get("prediction_id") for item in items if isinstance(item, dict)]
    rows = Prediction.objects.select_related("version__run", "deployment__project").filter(
        pk__in=[pk for pk in ids if isinstance(pk, str)]
    )
    if allowed is not None:
        rows = rows.filter(deployment__project_id__in=allowed)
    return {row.pk: row for row in rows}


def _bulk_errors(items: list[dict[str, Any]], predictions: dict[str, Prediction]) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    seen: set[str] = set()
    for index, item in enumerate(items):
        where = f"items[{index}]"
        if not isinstance(item, dict):
            errors[where] = ["An object {prediction_id, actual, observed_at?} is required."]
            continue
        pk = item.get("prediction_id")
        if not isinstance(pk, str) or pk not in predictions:
            errors[f"{where}.prediction_id"] = ["No such prediction, or you may not record outcomes for it."]
            continue
        if pk in seen:
            errors[f"{where}.prediction_id"] = ["This prediction is listed twice in the call."]
            continue
        seen.add(pk)
        if "actual" not in item:
            errors[f"{where}.actual"] = ["This field is required."]
        elif refusal := actual_refusal(predictions[pk].version, item["actual"]):
            errors[f"{where}.actual"] = [refusal]
        observed_at = item.get("observed_at")
        if observed_at is not None and not isinstance(observed_at, datetime):
            errors[f"{where}.observed_at"] = ["A date and time is required."]
    return errors


def _bulk_write(actor, items: list[dict[str, Any]], predictions: dict[str, Prediction]) -> int:
    ids = [item["prediction_id"] for item in items]
    old = {
        truth.prediction_id: truth.actual
        for truth in GroundTruth.objects.select_for_update().filter(prediction_id__in=ids)
    }
    now = timezone.now()
    rows = [
        GroundTruth(
            prediction_id=item["prediction_id"],
            actual=item["actual"],
            observed_at=item.get("observed_at") or now,
            recorded_by=actor,
        )
        for item in items
    ]
    GroundTruth.objects.bulk_create(
        rows,
        batch_size=INSERT_BATCH,
        update_conflicts=True,
        unique_fields=["prediction"],
        update_fields=["actual", "observed_at", "recorded_by", "recorded_at"],
    )
    projects = {predictions[pk].deployment.project for pk in ids}
    audit_record(
        actor=actor,
        action="ground_truth.record_bulk",
        object_type="deployments.groundtruth",
        project=projects.pop() if len(projects) == 1 else None,
        before={"replaced": old} if old else None,
        after={
            "count": len(ids),
            "replaced": len(old),
            "ids_sha256": hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest(),
            "projects": sorted({str(predictions[pk].deployment.project_id) for pk in ids}),
        },
    )
    return len(ids)


# --- Explanations ---------------------------------------------------------------------------------------------------
def explanation_request(*, prediction: Prediction, actor) -> PredictionExplanation:
    """Queue an explanation of a logged prediction (computed by a worker with the version that made it). While one
    is queued or running for the prediction, that one is returned instead of queuing a second."""
    project = prediction.deployment.project
    require(actor, Action.PREDICTION_EXPLAIN, project)
    with transaction.atomic():
        active = PredictionExplanation.objects.filter(prediction=prediction, status__in=ACTIVE_EXPLANATION).first()
        if active is not None:
            return active
        explanation = PredictionExplanation.objects.create(prediction=prediction, requested_by=actor)
        audit_record(
            actor=actor,
            action="prediction.explain",
            obj=explanation,
            project=project,
            after={"prediction": prediction.pk, "version": prediction.version.number},
        )
        explanation_id = str(explanation.pk)
        transaction.on_commit(lambda: current_app.send_task(EXPLAIN_TASK, args=[explanation_id]))
    return explanation


def explanation_claim(*, explanation_id) -> PredictionExplanation | None:
    """queued -> running, once; None when it is not queued (claimed by another delivery, or finished)."""
    claimed = PredictionExplanation.objects.filter(pk=explanation_id, status=ExplanationStatus.QUEUED).update(
        status=ExplanationStatus.RUNNING, updated_at=timezone.now()
    )
    if claimed != 1:
        return None
    return PredictionExplanation.objects.select_related("prediction__version__run", "prediction__deployment").get(
        pk=explanation_id
    )


def explanation_requeue(*, explanation_id) -> bool:
    """running -> queued, for a retry after a transient error (the retried delivery claims it again)."""
    requeued = PredictionExplanation.objects.filter(pk=explanation_id, status=ExplanationStatus.RUNNING).update(
        status=ExplanationStatus.QUEUED, updated_at=timezone.now()
    )
    return requeued == 1


def _finish(explanation_id, *, status: str, result: dict | None = None, error: str = "") -> PredictionExplanation:
    with transaction.atomic():
        explanation = (
            PredictionExplanation.objects.select_for_update()
            .select_related("prediction__deployment__project")
            .get(pk=explanation_id)
        )
        if explanation.status != ExplanationStatus.RUNNING:
            return explanation  # the first outcome stays
        explanation.status = status
        explanation.result = result or {}
        explanation.error = error
        explanation.finished_at = timezone.now()
        explanation.save(update_fields=["status", "result", "error", "finished_at", "updated_at"])
        audit_record(
            actor=None,
            action=f"prediction.explanation_{status}",
            obj=explanation,
            project=explanation.prediction.deployment.project,
            before={"status": ExplanationStatus.RUNNING},
            after={"status": status, "error": error} if error else {"status": status},
        )
    return explanation


def explanation_succeed(*, explanation_id, result: dict[str, Any]) -> PredictionExplanation:
    """running -> succeeded with the contributions (no-op once finished)."""
    return _finish(explanation_id, status=ExplanationStatus.SUCCEEDED, result=_json_safe(result))


def explanation_fail(*, explanation_id, error: str) -> PredictionExplanation:
    """running -> failed with a sentence for the reader (no-op once finished)."""
    return _finish(explanation_id, status=ExplanationStatus.FAILED, error=error)


def explanations_sweep(*, stale_after_minutes: int) -> dict[str, int]:
    """Explanations a worker lost: running ones not finished `stale_after_minutes` after their claim fail with a
    sentence (the reader may ask again); queued ones not claimed for as long are dispatched again (the message was
    lost). `updated_at` is the claim's time for a running one and the request's for a queued one."""
    cutoff = timezone.now() - timezone.timedelta(minutes=stale_after_minutes)
    stale = list(
        PredictionExplanation.objects.filter(status=ExplanationStatus.RUNNING, updated_at__lt=cutoff).values_list(
            "pk", flat=True
        )
    )
    for explanation_id in stale:
        explanation_fail(
            explanation_id=explanation_id, error="The worker explaining it stopped (lost or killed). Ask again."
        )
    lost = [
        str(pk)
        for pk in PredictionExplanation.objects.filter(
            status=ExplanationStatus.QUEUED, updated_at__lt=cutoff
        ).values_list("pk", flat=True)
    ]
    for explanation_id in lost:
        PredictionExplanation.objects.filter(pk=explanation_id).update(updated_at=timezone.now())
        current_app.send_task(EXPLAIN_TASK, args=[explanation_id])
    return {"failed": len(stale), "requeued": len(lost)}
