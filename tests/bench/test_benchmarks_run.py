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
