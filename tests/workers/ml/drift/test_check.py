"""drift_check, drift_html and frame_from_predictions against real Evidently runs (seeded data, 4,000 rows a side)."""

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from evidently import Report
from evidently.presets import DataDriftPreset

from tests.workers.ml.drift.conftest import make_frame, make_predictions
from workers.ml.drift.check import INSUFFICIENT_DATA, drift_check, drift_html, frame_from_predictions
from workers.ml.drift.reference import build_reference

ROOT = Path(__file__).resolve().parents[4]
ROWS = 4_000


@pytest.fixture(scope="module")
def reference():
    from tests.workers.ml.drift.conftest import SIGNATURE

    return build_reference(make_frame(ROWS, seed=1), signature=SIGNATURE, predictions=make_predictions(ROWS, seed=1))


def current_frame(seed: int, *, prediction_shift: float = 0.0, **shifts) -> pd.DataFrame:
    return make_frame(ROWS, seed=seed, **shifts).assign(
        prediction=make_predictions(ROWS, seed=seed, shift=prediction_shift)
    )


def by_column(result) -> dict:
    return {entry.column: entry for entry in result.columns}


def test_same_distribution_shows_no_drift(reference):
    result = drift_check(reference, current_frame(seed=2))

    assert result.status == "ok"
    assert result.drifted_columns == [] and result.drifted_share == 0.0 and result.dataset_drift is False
    assert result.prediction_drift["drifted"] is False
    assert (result.reference_rows, result.current_rows, result.sampled) == (ROWS, ROWS, False)
    columns = by_column(result)
    assert {name: columns[name].status for name in columns} == {
        "income": "tested", "age": "tested", "region": "tested", "member": "tested", "signup": "not_tested",
        "prediction": "tested",
    }  # fmt: skip
    assert columns["income"].method == "wasserstein" and columns["region"].method == "jensenshannon"


def test_a_numeric_mean_shift_is_detected(reference):
    result = drift_check(reference, current_frame(seed=3, income_shift=5_000))

    assert result.drifted_columns == ["income"]
    income = by_column(result)["income"]
    assert income.drifted is True and income.score > income.threshold == 0.1
    assert result.drifted_share == pytest.approx(1 / 4) and result.dataset_drift is False


def test_a_categorical_share_change_is_detected(reference):
    result = drift_check(reference, current_frame(seed=4, region_shares=(0.25, 0.35, 0.4)))

    assert result.drifted_columns == ["region"]
    region = by_column(result)["region"]
    assert region.method == "jensenshannon" and region.score > 0.1
    assert region.current["categories"][:3] == region.reference["categories"][:3]


def test_dataset_drift_follows_the_share_threshold(reference):
    current = current_frame(seed=5, income_shift=5_000, region_shares=(0.25, 0.35, 0.4))

    assert drift_check(reference, current, share_threshold=0.5).dataset_drift is True  # 2 of 4 features
    assert drift_check(reference, current, share_threshold=0.6).dataset_drift is False


def test_prediction_drift_is_reported_apart_from_the_features(reference):
    result = drift_check(reference, current_frame(seed=6, prediction_shift=0.15))

    assert result.drifted_columns == []
    assert result.prediction_drift["drifted"] is True and result.prediction_drift["method"] == "wasserstein"
    assert result.prediction_drift["score"] > result.prediction_drift["threshold"]


def test_verdicts_and_methods_are_those_of_evidentlys_preset_run_directly(reference):
    current = current_frame(seed=7, income_shift=3_000, region_shares=(0.4, 0.3, 0.3))
    tested = ["income", "age", "region", "member", "prediction"]

    ours = by_column(drift_check(reference, current))
    typed_current = current.assign(
        age=current["age"].astype(float), member=np.where(current["member"], "true", "false")
    )
    snapshot = Report([DataDriftPreset()]).run(typed_current[tested], reference.frame[tested])
    direct = {
        metric["config"]["column"]: metric for metric in snapshot.dict()["metrics"] if "column" in metric["config"]
    }

    for name in tested:
        assert ours[name].method_label == direct[name]["config"]["method"]
        assert ours[name].threshold == direct[name]["config"]["threshold"]
        assert ours[name].score == pytest.approx(direct[name]["value"], rel=1e-12)


def test_a_forced_method_and_threshold_are_used(reference):
    result = drift_check(reference, current_frame(seed=8), method="psi", column_threshold=0.3)

    tested = [entry for entry in result.columns if entry.status == "tested"]
    assert {entry.method for entry in tested} == {"psi"} and {entry.threshold for entry in tested} == {0.3}


def test_summaries_share_the_reference_bins(reference):
    current = current_frame(seed=9, income_shift=40_000)

    income = by_column(drift_check(reference, current))["income"]

    assert income.current["edges"] == income.reference["edges"]
    counted = sum(income.current["counts"]) + income.current["below"] + income.current["above"]
    assert counted + income.current["missing"] == ROWS
    assert income.current["above"] > 0


def test_too_few_rows_give_an_insufficient_data_result(reference):
    result = drift_check(reference, current_frame(seed=10).head(10))

    assert result.status == INSUFFICIENT_DATA and result.current_rows == 10
    assert result.drifted_share is None and result.dataset_drift is None
    assert {entry.status for entry in result.columns if entry.kind != "datetime"} == {INSUFFICIENT_DATA}
    assert "too few rows" in drift_html(reference, current_frame(seed=10).head(10))
    json.dumps(result.as_dict(), allow_nan=False)


def test_a_column_with_no_current_value_is_left_out_of_the_share(reference):
    current = current_frame(seed=11, income_shift=5_000).assign(region=np.nan)

    result = drift_check(reference, current)

    assert by_column(result)["region"].status == INSUFFICIENT_DATA
    assert result.drifted_columns == ["income"] and result.drifted_share == pytest.approx(1 / 3)


def test_a_large_window_is_sampled_and_says_so(reference):
    result = drift_check(reference, current_frame(seed=12), max_current_rows=1_000, current_source_rows=50_000)

    assert result.current_rows == 1_000 and result.sampled
    assert result.sampling["current"]["source_rows"] == 50_000
    assert "seeded uniform sample" in result.sampling["current"]["how"]


def test_the_result_is_json_safe(reference):
    result = drift_check(reference, current_frame(seed=13, income_shift=5_000))

    data = json.loads(json.dumps(result.as_dict(), allow_nan=False))
    assert data["drifted_columns"] == ["income"]
    assert data["evidently_version"].startswith("0.7.")
    assert "html" not in data


def test_the_html_report_is_self_contained(reference):
    page = drift_html(reference, current_frame(seed=14, income_shift=5_000))

    assert page.lstrip().startswith("<!DOCTYPE html>") and "drawDashboard" in page
    assert not re.search(r"<script[^>]+src\s*=", page, re.IGNORECASE)
    assert not re.search(r"<link[^>]+href\s*=\s*[\"']?(https?:)?//", page, re.IGNORECASE)
    assert not re.search(r"url\(\s*[\"']?(https?:)?//", page, re.IGNORECASE)
    assert "data:font/ttf;base64," in page


NO_NETWORK_SCRIPT = """
import socket, sys
attempts = []
def refuse(*args, **kwargs):
    attempts.append(args)
    raise OSError("no network in this test")
socket.socket.connect = refuse
socket.socket.connect_ex = refuse
socket.create_connection = refuse
socket.getaddrinfo = refuse
sys.path.insert(0, {root!r})
from tests.workers.ml.drift.conftest import SIGNATURE, make_frame, make_predictions
from workers.ml.drift.check import drift_check
from workers.ml.drift.reference import build_reference
reference = build_reference(make_frame(500, 1), signature=SIGNATURE, predictions=make_predictions(500, 1))
result = drift_check(reference, make_frame(500, 2, income_shift=9000).assign(prediction=make_predictions(500, 2)),
                     html=True)
assert result.drifted_columns == ["income"], result.drifted_columns
assert result.html
print(len(attempts))
"""


def test_evidently_makes_no_network_call_on_import_check_or_report(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}  # no DO_NOT_TRACK from outside: the package sets it
    completed = subprocess.run(
        [sys.executable, "-c", NO_NETWORK_SCRIPT.format(root=str(ROOT))],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert completed.returncode == 0, completed.stderr[-2000:]
    assert completed.stdout.strip().splitlines()[-1] == "0"


def test_frame_from_predictions_types_columns_by_the_signature(signature):
    records = [
        {"inputs": {"income": "52000.5", "age": 40, "region": "north", "member": True, "signup": "2024-02-01"},
         "outputs": {"predict": 1, "predict_proba": [0.2, 0.8]}},
        {"inputs": {"income": None, "age": 31, "region": 3, "member": "no", "extra": "x"},
         "outputs": {"predict": 0, "predict_proba": [0.9, 0.1]}},
        {"inputs": {"income": 48000, "region": None, "member": None}, "outputs": {"predict": 1}},
    ]  # fmt: skip

    frame = frame_from_predictions(iter(records), signature=signature)

    assert list(frame.columns) == ["income", "age", "region", "member", "signup", "prediction"]
    assert frame["income"].dtype == np.float64 and frame["age"].dtype == np.float64
    assert frame["income"].iloc[0] == 52000.5 and np.isnan(frame["income"].iloc[1])
    assert np.isnan(frame["age"].iloc[2])
    assert frame["region"].iloc[0] == "north" and frame["region"].iloc[1] == "3" and np.isnan(frame["region"].iloc[2])
    assert frame["member"].iloc[0] == "true" and frame["member"].iloc[1] == "false"
    assert np.isnan(frame["member"].iloc[2])
    assert frame["signup"].iloc[0] == pd.Timestamp("2024-02-01", tz="UTC") and pd.isna(frame["signup"].iloc[1])
    # Binary: the positive class's probability; without probabilities, 1.0 or 0.0 from the label.
    assert frame["prediction"].tolist() == [0.8, 0.1, 1.0]


@pytest.mark.parametrize(
    ("target", "outputs", "expected"),
    [
        ({"name": "y", "classes": ["a", "b", "c"]}, {"predict": "c", "predict_proba": [0.1, 0.2, 0.7]}, "c"),
        ({"name": "y", "classes": [1, 2, 3]}, {"predict": 2}, "2"),
        ({"name": "y", "classes": None}, {"predict": 12.5}, 12.5),
        (None, {"predict": 3}, 3.0),
    ],
)
def test_frame_from_predictions_prediction_per_problem_type(target, outputs, expected):
    signature = {"columns": [{"name": "x", "kind": "numeric"}], "target": target}

    frame = frame_from_predictions([{"inputs": {"x": 1}, "outputs": outputs}], signature=signature)

    assert frame["prediction"].tolist() == [expected]
