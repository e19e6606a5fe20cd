"""Drift check: the platform's drift_check against Evidently's DataDriftPreset run directly, in the same run.

Generates `--rows` reference and `--rows` current rows of 20 numeric and 3 categorical columns (seeded; in the
current rows num_0..num_2 are shifted by half a standard deviation, num_3 is spread 1.5x and cat_0's shares change,
so five columns drift). Then, in this process (imports and a small warm-up run of each side not timed):
- ours: workers.ml.drift.reference.build_reference once (per model version; its time is printed apart), then
  workers.ml.drift.check.drift_check(reference, current), timed;
- Evidently: Report([DataDriftPreset()]).run(current, reference) on the same two frames, timed;
alternating, `--repeat` times, the best of each counting. Both must flag the same columns (a mismatch is printed and
the exit status is 1).
Bounded memory: a fresh process streams `--stream-rows` generated logged-prediction records (a generator, never a
list) through reservoir_sample (k = `--sample-rows`) + frame_from_predictions + drift_check against a reference
with predictions; another fresh process runs the plain `--rows` check. Peak memory = each process's VmHWM.
    python bench/drift.py [--rows 100000] [--repeat 3] [--stream-rows 10000000] [--sample-rows 100000]
Last line: {"time_ratio" (ours / Evidently), "ours_s", "evidently_s", "reference_build_s", "rows", "cols",
"drifted_columns", "evidently_drifted_columns", "agree", "stream_rows", "sample_rows", "stream_s", "stream_peak_mb",
"check_peak_mb", "stream_drifted_columns", "load_average"}
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NUMERIC, CATEGORICAL = 20, 3
CATEGORIES = ["north", "south", "east", "west", "online"]
SHARES = [0.35, 0.25, 0.2, 0.15, 0.05]
SHIFTED_SHARES = [0.2, 0.25, 0.2, 0.15, 0.2]
SHIFTED = ["num_0", "num_1", "num_2", "num_3", "cat_0"]
SIGNATURE = {
    "columns": [{"name": f"num_{i}", "kind": "numeric"} for i in range(NUMERIC)]
    + [{"name": f"cat_{j}", "kind": "categorical"} for j in range(CATEGORICAL)],
    "target": {"name": "churn", "classes": [0, 1]},
}


def generate_columns(rows: int, seed: int, *, shifted: bool):
    """{column: numpy array} of one side; `shifted` is the current side."""
    import numpy as np

    rng = np.random.default_rng(seed)
    columns = {}
    for index in range(NUMERIC):
        shift = 0.5 if shifted and index < 3 else 0.0
        spread = 1.5 if shifted and index == 3 else 1.0
        columns[f"num_{index}"] = rng.normal(10.0 * index + shift * 5.0, 5.0 * spread, rows)
    for index in range(CATEGORICAL):
        shares = SHIFTED_SHARES if shifted and index == 0 else SHARES
        columns[f"cat_{index}"] = rng.choice(np.array(CATEGORIES, dtype=object), rows, p=shares)
    return columns


def generate_frame(rows: int, seed: int, *, shifted: bool):
    import pandas as pd

    return pd.DataFrame(generate_columns(rows, seed, shifted=shifted))


def probabilities(columns: dict, seed: int):
    """A stand-in model's positive-class probability: a logistic of two features."""
    import numpy as np

    noise = np.random.default_rng(seed).normal(0.0, 1.0, len(columns["num_0"]))
    return 1.0 / (1.0 + np.exp(-((columns["num_0"] - 2.5) / 5.0 + (columns["num_1"] - 12.5) / 5.0 + noise)))


def logged_predictions(total: int, seed: int, chunk: int = 20_000):
    """A generator of `total` logged-prediction records (workers.serving.prediction_log's shape), made chunk by chunk
    so that only one chunk is ever held."""
    names = list(generate_columns(1, 0, shifted=True))
    for start in range(0, total, chunk):
        size = min(chunk, total - start)
        columns = generate_columns(size, seed + start, shifted=True)
        positive = probabilities(columns, seed + start).tolist()
        rows = zip(*(columns[name].tolist() for name in names), strict=True)
        for offset, (values, probability) in enumerate(zip(rows, positive, strict=True)):
            yield {
                "prediction_id": f"p{start + offset}",
                "inputs": dict(zip(names, values, strict=True)),
                "outputs": {"predict": int(probability >= 0.5), "predict_proba": [1.0 - probability, probability]},
            }


def peak_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def evidently_drifted(snapshot) -> list[str]:
    """The columns Evidently's preset run found drifted: its own drift table, already computed by the run."""
    from evidently.core.report import _default_input_data_generator
    from evidently.legacy.metrics import DataDriftTable

    table, _ = snapshot.context.get_legacy_metric(DataDriftTable(), _default_input_data_generator, None)
    return sorted(name for name, drift in table.drift_by_columns.items() if drift.drift_detected)


def compare(args) -> dict:
    """The timed comparison, in this process."""
    sys.path.insert(0, str(ROOT))
    from evidently import Report
    from evidently.presets import DataDriftPreset

    from workers.ml.drift.check import drift_check
    from workers.ml.drift.reference import build_reference

    reference_frame = generate_frame(args.rows, 1, shifted=False)
    current = generate_frame(args.rows, 2, shifted=True)
    started = time.perf_counter()
    reference = build_reference(reference_frame, signature=SIGNATURE, predictions=None, max_rows=args.rows)
    build_s = time.perf_counter() - started
    warm = min(args.rows, 2_000)  # first runs pay lazy imports and caches on both sides
    drift_check(reference, current.head(warm))
    Report([DataDriftPreset()]).run(current.head(warm), reference_frame.head(warm))

    ours_times, evidently_times = [], []
    for _ in range(max(1, args.repeat)):
        started = time.perf_counter()
        result = drift_check(reference, current)
        ours_times.append(time.perf_counter() - started)
        started = time.perf_counter()
        snapshot = Report([DataDriftPreset()]).run(current, reference_frame)
        evidently_times.append(time.perf_counter() - started)
    ours = sorted(result.drifted_columns)
    theirs = evidently_drifted(snapshot)
    return {
        "ours_s": min(ours_times),
        "evidently_s": min(evidently_times),
        "ours_runs": ours_times,
        "evidently_runs": evidently_times,
        "reference_build_s": build_s,
        "drifted_columns": ours,
        "evidently_drifted_columns": theirs,
    }


def child_check(args) -> dict:
    """A fresh process: the plain `--rows` check, for its peak memory."""
    sys.path.insert(0, str(ROOT))
    from workers.ml.drift.check import drift_check
    from workers.ml.drift.reference import build_reference

    reference = build_reference(generate_frame(args.rows, 1, shifted=False), signature=SIGNATURE, predictions=None)
    result = drift_check(reference, generate_frame(args.rows, 2, shifted=True))
    return {"peak_mb": peak_mb(), "drifted_columns": result.drifted_columns}


def child_stream(args) -> dict:
    """A fresh process: `--stream-rows` logged predictions through the reservoir, the frame and the check."""
    sys.path.insert(0, str(ROOT))
    import pandas as pd

    from workers.ml.drift.check import drift_check, frame_from_predictions
    from workers.ml.drift.reference import build_reference
    from workers.ml.drift.sampling import reservoir_sample

    columns = generate_columns(args.rows, 1, shifted=False)
    predictions = pd.Series(probabilities(columns, 1))
    reference = build_reference(pd.DataFrame(columns), signature=SIGNATURE, predictions=predictions)
    del columns
    started = time.perf_counter()
    sample = reservoir_sample(logged_predictions(args.stream_rows, 3), args.sample_rows, seed=0)
    sampled_s = time.perf_counter() - started
    current = frame_from_predictions(sample, signature=SIGNATURE)
    del sample
    result = drift_check(reference, current, current_source_rows=args.stream_rows)
    return {
        "stream_s": time.perf_counter() - started,
        "stream_sample_s": sampled_s,
        "peak_mb": peak_mb(),
        "sample_rows": result.current_rows,
        "drifted_columns": result.drifted_columns,
        "prediction_drift": result.prediction_drift["drifted"],
    }


def run_child(kind: str, args) -> dict:
    command = [sys.executable, __file__, "--child", kind, "--rows", str(args.rows)]
    command += ["--stream-rows", str(args.stream_rows), "--sample-rows", str(args.sample_rows)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"{kind} child failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=1, help="timed runs of each side, alternating; the best counts")
    parser.add_argument("--stream-rows", type=int, default=10_000_000)
    parser.add_argument("--sample-rows", type=int, default=100_000)
    parser.add_argument("--child", choices=["check", "stream"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child_check(args) if args.child == "check" else child_stream(args)))
        return

    cols = NUMERIC + CATEGORICAL
    print(f"drift check of {args.rows:,} current vs {args.rows:,} reference rows x {cols} columns")
    figures = compare(args)
    agree = figures["drifted_columns"] == figures["evidently_drifted_columns"]
    print(f"  reference build (once per version): {figures['reference_build_s']:.2f} s")
    print(f"  ours      drift_check:              {figures['ours_s']:.2f} s  (runs {_runs(figures['ours_runs'])})")
    evidently_runs = _runs(figures["evidently_runs"])
    print(f"  Evidently DataDriftPreset:          {figures['evidently_s']:.2f} s  (runs {evidently_runs})")
    print(f"  ratio ours / Evidently:             {figures['ours_s'] / figures['evidently_s']:.2f}")
    print(f"  drifted: ours {figures['drifted_columns']}, Evidently {figures['evidently_drifted_columns']}")
    if not agree:
        print("  MISMATCH: the two sides flag different columns")
    check = run_child("check", args)
    stream = run_child("stream", args)
    print(f"  peak memory, {args.rows:,}-row check in a fresh process: {check['peak_mb']:.0f} MiB")
    print(
        f"  peak memory, {args.stream_rows:,} streamed records -> reservoir of {args.sample_rows:,} -> check: "
        f"{stream['peak_mb']:.0f} MiB in {stream['stream_s']:.1f} s (sampling {stream['stream_sample_s']:.1f} s)"
    )
    result = {
        "time_ratio": round(figures["ours_s"] / figures["evidently_s"], 3),
        "ours_s": round(figures["ours_s"], 3),
        "evidently_s": round(figures["evidently_s"], 3),
        "reference_build_s": round(figures["reference_build_s"], 3),
        "rows": args.rows,
        "cols": cols,
        "drifted_columns": figures["drifted_columns"],
        "evidently_drifted_columns": figures["evidently_drifted_columns"],
        "agree": agree,
        "stream_rows": args.stream_rows,
        "sample_rows": stream["sample_rows"],
        "stream_s": round(stream["stream_s"], 2),
        "stream_peak_mb": round(stream["peak_mb"], 1),
        "check_peak_mb": round(check["peak_mb"], 1),
        "stream_drifted_columns": stream["drifted_columns"],
        "load_average": Path("/proc/loadavg").read_text().split()[0],
    }
    print(json.dumps(result))
    if not agree:
        raise SystemExit(1)


def _runs(times: list[float]) -> str:
    return ", ".join(f"{value:.2f}" for value in times)


if __name__ == "__main__":
    main()
