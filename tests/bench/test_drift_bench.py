"""The drift benchmark keeps running: a small input must end with its JSON line of figures, both sides agreeing."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.integration
def test_drift_benchmark_prints_its_figures():
    result = subprocess.run(
        [sys.executable, "bench/drift.py", "--rows", "3000", "--stream-rows", "20000", "--sample-rows", "2000"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("drift check of 3,000 current vs 3,000 reference rows x 23 columns")
    figures = json.loads(lines[-1])
    assert {
        "time_ratio", "ours_s", "evidently_s", "reference_build_s", "rows", "cols", "drifted_columns", "agree",
        "stream_rows", "stream_peak_mb", "stream_s", "sample_rows",
    } <= set(figures)  # fmt: skip
    assert (figures["rows"], figures["cols"], figures["stream_rows"], figures["sample_rows"]) == (3000, 23, 20000, 2000)
    assert figures["agree"] is True
    # The generated current rows shift num_0..num_3 and cat_0: both sides find exactly those.
    assert figures["drifted_columns"] == ["cat_0", "num_0", "num_1", "num_2", "num_3"]
    assert sorted(figures["stream_drifted_columns"]) == figures["drifted_columns"]
    assert figures["time_ratio"] > 0 and figures["stream_peak_mb"] > 0
