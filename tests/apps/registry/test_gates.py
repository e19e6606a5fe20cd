"""Gates as pure functions (direction-aware thresholds, champion margin, fairness, latency), and the signature check:
the web process's standard-library HMAC agrees with the worker's signing function."""

import pytest

from apps.core.artifacts import artifact_store
from apps.registry import gates
from workers.ml.training.artifacts import sign


def test_success_threshold_is_direction_aware():
    assert gates.success_threshold_gate(metrics={"test": {"f1": 0.81}}, metric="f1", threshold=0.8)["passed"]
    assert not gates.success_threshold_gate(metrics={"test": {"f1": 0.79}}, metric="f1", threshold=0.8)["passed"]
    assert gates.success_threshold_gate(metrics={"test": {"rmse": 9.0}}, metric="rmse", threshold=10)["passed"]
    assert not gates.success_threshold_gate(metrics={"test": {"rmse": 11.0}}, metric="rmse", threshold=10)["passed"]
    missing = gates.success_threshold_gate(metrics={}, metric="f1", threshold=0.8)
    assert (missing["passed"], missing["detail"]) == (False, "The version has no held-out test value of f1.")


class Champion:
    number = 3

    def __init__(self, metrics):
        self.metrics = metrics


def test_beats_champion_needs_the_margin_in_the_metrics_direction():
    champion = Champion({"test": {"mae": 5.0}})
    better = gates.beats_champion_gate(metrics={"test": {"mae": 4.0}}, metric="mae", champion=champion, margin=0.5)
    worse = gates.beats_champion_gate(metrics={"test": {"mae": 4.8}}, metric="mae", champion=champion, margin=0.5)
    assert (better["passed"], better["threshold"], worse["passed"]) == (True, 4.5, False)
    assert gates.beats_champion_gate(metrics={}, metric="mae", champion=None, margin=0.5)["passed"]


def test_fairness_takes_the_worst_difference_and_requires_a_check_when_data_marks_sensitive_columns():
    fairness = {
        "computed": True,
        "columns": [
            {"column": "age_band", "demographic_parity_difference": 0.04, "equalized_odds_difference": 0.12},
            {"column": "gender", "demographic_parity_difference": 0.02, "equalized_odds_difference": None},
        ],
    }
    gate = gates.fairness_gate(metrics={"fairness": fairness}, limit=0.1, sensitive_columns=["gender"])
    assert (gate["passed"], gate["value"]) == (False, 0.12)
    assert "equalized odds difference on age_band" in gate["detail"]
    unchecked = gates.fairness_gate(metrics={}, limit=0.1, sensitive_columns=["gender"])
    assert unchecked["passed"] is False
    assert gates.fairness_gate(metrics={}, limit=0.1, sensitive_columns=[])["passed"] is True


def test_latency_against_the_budget():
    metrics = {"operational": {"latency_single_row_ms": {"p99": 12.0}}}
    assert gates.latency_gate(metrics=metrics, budget_ms=20)["passed"]
    assert not gates.latency_gate(metrics=metrics, budget_ms=10)["passed"]
    assert gates.latency_gate(metrics=metrics, budget_ms=None)["passed"]
    assert not gates.latency_gate(metrics={}, budget_ms=10)["passed"]


@pytest.mark.parametrize(
    "status,override,passed", [("passed", "", True), ("failed", "", False), ("failed", "Known gap in March", True)]
)
def test_data_validated(status, override, passed):
    assert gates.data_validated_gate(validation_status=status, override_reason=override)["passed"] is passed


def test_the_signature_check_agrees_with_the_workers_signing(file_store, settings):
    data = b"a pickled pipeline"
    stored = file_store.put_bytes("projects/x/model.joblib", data)
    signature = sign(data, settings.MODEL_SIGNING_KEY.encode())

    check = gates.artifact_check(key=stored.key, sha256=stored.sha256, signature=signature)
    assert (check.verified, check.sha256) == (True, stored.sha256)
    forged = gates.artifact_check(key=stored.key, sha256=stored.sha256, signature=sign(data, b"another key"))
    assert (forged.verified, forged.detail) == (False, "The artifact's signature does not verify.")
    missing = gates.artifact_check(key="projects/x/none.joblib", sha256=stored.sha256, signature=signature)
    assert missing.verified is False and missing.sha256 == ""
    assert artifact_store() is file_store
