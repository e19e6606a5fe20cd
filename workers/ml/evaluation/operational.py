"""What serving the model costs: its pickled size and prediction latency, measured in the worker.

Single-row latency: up to SINGLE_ROW_CALLS calls of `predict` on one test row each, after a few warm-up calls; batch
latency: repeated `predict` calls on BATCH_ROWS rows. Both stop early at their time cap, so a slow model still costs
the evaluation well under a second (bench/train.py counts it); the number of calls measured is reported with the
figures.
"""

import pickle
import time

import numpy as np
import pandas as pd

WARM_UP_CALLS = 5
SINGLE_ROW_CALLS = 200
SINGLE_ROW_SECONDS = 0.25
MIN_SINGLE_ROW_CALLS = 20
BATCH_ROWS = 1000
BATCH_REPEATS = 10
BATCH_SECONDS = 0.15
MIN_BATCH_REPEATS = 3


def operational_profile(pipeline, X_test: pd.DataFrame, *, seed: int, latency_budget_p99_ms: float | None) -> dict:
    rng = np.random.default_rng(seed)
    single = _single_row_latency(pipeline, X_test, rng)
    batch = _batch_latency(pipeline, X_test, seed)
    return {
        "model_size_bytes": len(pickle.dumps(pipeline, protocol=pickle.HIGHEST_PROTOCOL)),
        "latency_single_row_ms": single,
        "latency_batch_ms": batch,
        "latency_budget_p99_ms": latency_budget_p99_ms,
        "meets_latency_budget": (
            None if latency_budget_p99_ms is None else single["p99"] <= float(latency_budget_p99_ms)
        ),
    }


def _single_row_latency(pipeline, X_test: pd.DataFrame, rng: np.random.Generator) -> dict:
    positions = rng.integers(0, len(X_test), size=WARM_UP_CALLS + SINGLE_ROW_CALLS)
    rows = [X_test.iloc[[position]] for position in positions]
    for row in rows[:WARM_UP_CALLS]:
        pipeline.predict(row)
    timings = _timed_calls(pipeline, rows[WARM_UP_CALLS:], cap_seconds=SINGLE_ROW_SECONDS, minimum=MIN_SINGLE_ROW_CALLS)
    return {**_percentiles(timings), "calls": len(timings)}


def _batch_latency(pipeline, X_test: pd.DataFrame, seed: int) -> dict:
    # A small test set is resampled with replacement up to the batch size, so batches are comparable across runs.
    batch = X_test.sample(n=BATCH_ROWS, replace=len(X_test) < BATCH_ROWS, random_state=seed)
    timings = _timed_calls(pipeline, [batch] * BATCH_REPEATS, cap_seconds=BATCH_SECONDS, minimum=MIN_BATCH_REPEATS)
    percentiles = _percentiles(timings)
    return {**percentiles, "per_row_p50": percentiles["p50"] / BATCH_ROWS, "rows": BATCH_ROWS, "calls": len(timings)}


def _timed_calls(pipeline, frames: list[pd.DataFrame], *, cap_seconds: float, minimum: int) -> list[float]:
    """Milliseconds per `predict` call, stopping once `cap_seconds` are spent (after at least `minimum` calls)."""
    timings: list[float] = []
    started = time.perf_counter()
    for frame in frames:
        before = time.perf_counter()
        pipeline.predict(frame)
        timings.append((time.perf_counter() - before) * 1000)
        if len(timings) >= minimum and time.perf_counter() - started > cap_seconds:
            break
    return timings


def _percentiles(timings: list[float]) -> dict:
    return {"p50": float(np.percentile(timings, 50)), "p99": float(np.percentile(timings, 99))}
