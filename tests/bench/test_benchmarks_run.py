"""The benchmarks keep running: each is started on a small input and must end with its JSON line of figures."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.integration
def test_audit_export_benchmark_prints_its_figures():
    result = subprocess.run(
        [sys.executable, "bench/audit_export.py", "--events", "300"],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["events"] == 300
    assert set(figures) == {
        "events", "export_s", "reference_s", "ratio", "export_peak_mb", "reference_peak_mb", "body_mb", "database",
    }  # fmt: skip
    assert figures["ratio"] > 0
    assert figures["body_mb"] > 0


@pytest.mark.integration
def test_training_benchmark_prints_its_figures():
    """Small, but through every side: the plain script, train_run, and a launch run by a real worker process."""
    env = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "CELERY_BROKER_URL")}
    result = subprocess.run(
        [sys.executable, "bench/train.py", "--rows", "3000"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["rows"] == 3000 and figures["cols"] == 23
    assert {"overhead_ratio", "overhead_s", "launch_s", "platform_s", "script_s"} <= set(figures)
    assert figures["launch_s"] > 0 and figures["script_s"] > 0
    # The same data, split, seed and parameters give the same model on every side.
    assert figures["test_roc_auc_launch"] == figures["test_roc_auc_platform"] == figures["test_roc_auc_script"]
