"""The gates a version must pass before it may go to production, evaluated when a promotion request is opened and
again at every decision (docs/adr/0008-model-registry.md).

Each gate is a function of the version's record, the project's problem definition and the current production
version (the champion), and returns {name, label, passed, value, threshold, detail}: the numbers a reviewer sees.
Only the signature gate touches storage: `artifact_check` re-reads the registry's copy and recomputes its SHA-256 and
HMAC, with the standard library (the web process does not import workers.ml, and the same HMAC-SHA256 is what
workers.ml.training.artifacts.sign makes).
"""

import hashlib
import hmac
import math
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from apps.core.artifacts import artifact_store
from apps.projects.choices import LOWER_IS_BETTER
from apps.registry.cards import missing_required_sections
from apps.registry.choices import GateName
from workers.storage.base import CHUNK_SIZE, StorageError

Gate = dict[str, Any]


def _gate(name: GateName, *, passed: bool, value=None, threshold=None, detail: str = "") -> Gate:
    return {
        "name": name.value,
        "label": name.label,
        "passed": bool(passed),
        "value": value,
        "threshold": threshold,
        "detail": detail,
    }


def _number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def held_out_value(metrics: dict, metric: str) -> float | None:
    """The held-out test value of `metric` in a version's metrics snapshot."""
    return _number(((metrics or {}).get("test") or {}).get(metric))


def _at_least_as_good(value: float, reference: float, metric: str) -> bool:
    return value <= reference if metric in LOWER_IS_BETTER else value >= reference


# --- The gates ------------------------------------------------------------------------------------------------------
def success_threshold_gate(*, metrics: dict, metric: str, threshold: float | None) -> Gate:
    value = held_out_value(metrics, metric)
    if threshold is None:
        return _gate(GateName.SUCCESS_THRESHOLD, passed=True, value=value, detail="The project sets no threshold.")
    if value is None:
        detail = f"The version has no held-out test value of {metric}."
        return _gate(GateName.SUCCESS_THRESHOLD, passed=False, threshold=threshold, detail=detail)
    passed = _at_least_as_good(value, threshold, metric)
    operator = "≤" if metric in LOWER_IS_BETTER else "≥"
    detail = f"Test {metric} {value:.4g} {'meets' if passed else 'misses'} the target {operator} {threshold:g}."
    return _gate(GateName.SUCCESS_THRESHOLD, passed=passed, value=value, threshold=threshold, detail=detail)


def beats_champion_gate(*, metrics: dict, metric: str, champion, margin: float) -> Gate:
    """Better than the production version by `margin` on the test rows (lower by `margin` for error metrics)."""
    value = held_out_value(metrics, metric)
    if champion is None:
        return _gate(GateName.BEATS_CHAMPION, passed=True, value=value, detail="No version is in production yet.")
    reference = held_out_value(champion.metrics, metric)
    if reference is None:
        detail = f"The production version (v{champion.number}) has no test {metric} to compare with."
        return _gate(GateName.BEATS_CHAMPION, passed=True, value=value, detail=detail)
    required = reference + margin if metric not in LOWER_IS_BETTER else reference - margin
    if value is None:
        detail = f"The version has no held-out test value of {metric}."
        return _gate(GateName.BEATS_CHAMPION, passed=False, threshold=required, detail=detail)
    passed = _at_least_as_good(value, required, metric)
    detail = (
        f"Test {metric} {value:.4g} against {reference:.4g} of the production version v{champion.number} "
        f"(margin {margin:g})."
    )
    return _gate(GateName.BEATS_CHAMPION, passed=passed, value=value, threshold=required, detail=detail)


def fairness_gate(*, metrics: dict, limit: float, sensitive_columns: list[str]) -> Gate:
    """Every checked sensitive column's demographic parity and equalized odds differences within `limit`. A version
    whose data has columns marked sensitive but whose run checked none fails: fairness was not shown."""
    fairness = (metrics or {}).get("fairness") or {}
    columns = fairness.get("columns") or [] if fairness.get("computed") else []
    if not columns:
        if sensitive_columns:
            detail = f"The data marks {', '.join(sensitive_columns)} sensitive, but the run checked no column."
            return _gate(GateName.FAIRNESS, passed=False, threshold=limit, detail=detail)
        return _gate(GateName.FAIRNESS, passed=True, threshold=limit, detail="No sensitive column to check.")
    worst_value, worst_text = -1.0, ""
    for column in columns:
        for key, label in (
            ("demographic_parity_difference", "demographic parity"),
            ("equalized_odds_difference", "equalized odds"),
        ):
            difference = _number(column.get(key))
            if difference is not None and difference > worst_value:
                worst_value, worst_text = difference, f"{label} difference on {column.get('column')}"
    if worst_value < 0:
        return _gate(GateName.FAIRNESS, passed=False, threshold=limit, detail="No fairness difference was measured.")
    passed = worst_value <= limit
    detail = f"Largest: {worst_text}, {worst_value:.3g} ({'within' if passed else 'over'} the limit {limit:g})."
    return _gate(GateName.FAIRNESS, passed=passed, value=worst_value, threshold=limit, detail=detail)


def latency_gate(*, metrics: dict, budget_ms: float | None) -> Gate:
    """Single-row p99 prediction latency, as measured on the worker, within the project's budget."""
    single = ((metrics or {}).get("operational") or {}).get("latency_single_row_ms") or {}
    value = _number(single.get("p99"))
    if budget_ms is None:
        return _gate(GateName.LATENCY, passed=True, value=value, detail="The project sets no latency budget.")
    if value is None:
        return _gate(GateName.LATENCY, passed=False, threshold=budget_ms, detail="No latency was measured.")
    passed = value <= budget_ms
    detail = f"p99 {value:.3g} ms for one row, budget {budget_ms:g} ms."
    return _gate(GateName.LATENCY, passed=passed, value=value, threshold=budget_ms, detail=detail)


def data_validated_gate(*, validation_status: str, override_reason: str) -> Gate:
    if validation_status == "passed":
        return _gate(GateName.DATA_VALIDATED, passed=True, detail="The dataset version passed its validation rules.")
    if override_reason:
        detail = f"Validation {validation_status}, used with an override: “{override_reason}”."
        return _gate(GateName.DATA_VALIDATED, passed=True, detail=detail)
    detail = f"The dataset version's validation {validation_status or 'was not run'} and carries no override."
    return _gate(GateName.DATA_VALIDATED, passed=False, detail=detail)


def model_card_gate(*, written: dict) -> Gate:
    missing = missing_required_sections(written)
    if missing:
        return _gate(GateName.MODEL_CARD, passed=False, detail="Not written yet: " + ", ".join(missing) + ".")
    return _gate(GateName.MODEL_CARD, passed=True, detail="Every required section is written.")


@dataclass(frozen=True)
class ArtifactCheck:
    """What re-reading the stored artifact found: the SHA-256 of its bytes ("" when unreadable), whether its
    signature verifies against the recorded hash, and why not."""

    sha256: str
    verified: bool
    detail: str


def artifact_check(*, key: str, sha256: str, signature: str) -> ArtifactCheck:
    """Stream the object under `key`, hashing and signing it in one pass, and compare with the recorded values."""
    if not key:
        return ArtifactCheck(sha256="", verified=False, detail="The version has no stored artifact.")
    digest = hashlib.sha256()
    mac = hmac.new(settings.MODEL_SIGNING_KEY.encode(), digestmod=hashlib.sha256)
    try:
        # verify=False: the comparison below names what differs instead of a storage error.
        for chunk in artifact_store().iter_chunks(key, chunk_size=CHUNK_SIZE, verify=False):
            digest.update(chunk)
            mac.update(chunk)
    except StorageError as error:
        return ArtifactCheck(sha256="", verified=False, detail=f"The stored artifact cannot be read: {error}.")
    found = digest.hexdigest()
    if not hmac.compare_digest(found, str(sha256).lower()):
        return ArtifactCheck(sha256=found, verified=False, detail="The stored artifact's SHA-256 changed.")
    if not hmac.compare_digest(mac.hexdigest(), str(signature).lower()):
        return ArtifactCheck(sha256=found, verified=False, detail="The artifact's signature does not verify.")
    return ArtifactCheck(sha256=found, verified=True, detail="SHA-256 and HMAC signature verify.")


def signature_gate(*, check: ArtifactCheck) -> Gate:
    return _gate(GateName.SIGNATURE, passed=check.verified, value=check.sha256 or None, detail=check.detail)


# --- All of them ----------------------------------------------------------------------------------------------------
def evaluate_gates(
    *, version, definition, champion, dataset_version, written: dict, check: ArtifactCheck
) -> list[Gate]:
    """Every gate, in GateName's order. `champion` is the production version (None when there is none, or when it is
    `version` itself); `written` the model card's written sections; `check` the artifact re-read."""
    metric = definition.primary_metric
    sensitive = ((version.lineage or {}).get("data") or {}).get("sensitive_columns") or []
    return [
        success_threshold_gate(metrics=version.metrics, metric=metric, threshold=definition.primary_threshold),
        beats_champion_gate(
            metrics=version.metrics, metric=metric, champion=champion, margin=settings.REGISTRY_CHAMPION_MARGIN
        ),
        fairness_gate(metrics=version.metrics, limit=definition.fairness_max_difference, sensitive_columns=sensitive),
        latency_gate(metrics=version.metrics, budget_ms=_number(definition.latency_budget_p99_ms)),
        data_validated_gate(
            validation_status=dataset_version.validation_status, override_reason=dataset_version.override_reason
        ),
        model_card_gate(written=written),
        signature_gate(check=check),
    ]


def failing(gates: list[Gate]) -> list[Gate]:
    return [gate for gate in gates if not gate.get("passed")]
