"""The ingestion benchmark keeps running: a small input must end with its JSON line of figures."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.integration
def test_ingest_benchmark_prints_its_figures():
    result = subprocess.run(
        [sys.executable, "bench/ingest.py", "--rows", "2000", "--cols", "6"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("ingest of 2,000 rows x 6 columns")
    figures = json.loads(lines[-1])
    assert set(figures) == {
        "rows", "cols", "file_mb", "platform_s", "plain_s", "time_ratio", "platform_peak_mb", "plain_peak_mb",
        "memory_ratio", "parquet_mb", "plain_parquet_mb", "service_s", "service_peak_mb", "pipeline_time_ratio",
        "pipeline_memory_ratio", "service_cpu_s", "platform_cpu_s", "plain_cpu_s",
    }  # fmt: skip
    assert (figures["rows"], figures["cols"]) == (2000, 6)
    assert figures["time_ratio"] > 0
    assert figures["memory_ratio"] > 0
    assert figures["platform_peak_mb"] > 0
    # The headline ratios are the service's (task, storage, version row), which does more than the pipeline alone.
    assert figures["service_s"] > figures["platform_s"]
    assert figures["time_ratio"] > figures["pipeline_time_ratio"]
