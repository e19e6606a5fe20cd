"""Model serving: our model server against `mlflow models serve` on the same model, in the same run (issue 6).

The model: LightGBM binary classifier, 200 trees, trained with the platform's build_pipeline (median imputation,
standard scaling, one-hot) on generated rows with 20 numeric columns (four of them 5% missing) and 3 categorical ones.
(a) ours: `uvicorn workers.serving.app:app`, one process pinned to core 0 (`taskset -c 0`), serving the signed
    artifact from a local artifact store, input validation and prediction logging on (JSON lines in a temp folder).
(b) MLflow: `mlflow models serve --env-manager local` (one worker, pinned to core 0) in a virtual environment this
    benchmark creates under var/bench-mlflow (`uv`, else venv + pip; MLflow never enters the platform's
    dependencies), the same fitted pipeline saved with mlflow.sklearn by that environment's Python.
The load generator is this process, pinned to core 1: an asyncio HTTP/1.1 client on raw keep-alive sockets (wrk is
not installed here), one connection per concurrent client, each sending its next request when the answer arrived.
Each scenario (1 row or 100 rows per request, concurrency 1 or 8) runs a warm-up, then --seconds of measurement:
p50 and p99 latency and requests/s. Bodies: MLflow's `dataframe_split` to /invocations on both servers, and the
Open Inference Protocol V2 body to /v2/models/<name>/infer on ours.

    python bench/serve.py [--rows 20000] [--seconds 5]
Last line: JSON with throughput_ratio_c8_1row (ours / MLflow requests/s, dataframe_split, 1 row, concurrency 8),
p50_ms_c1_1row (ours, dataframe_split), mlflow_rps_c8_1row, and every scenario's figures under "scenarios". When
MLflow cannot be installed or started, ours are printed, the MLflow keys are null with "mlflow_error", and the exit
status is 1.
Target (issue 6): throughput_ratio_c8_1row >= 5 and p50_ms_c1_1row < 1.
"""

import argparse
import asyncio
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
MLFLOW_VENV = ROOT / "var" / "bench-mlflow"
MODEL = "churn"
KEY = b"bench-serve-key"
SEED = 42
NUMERIC = [f"x{index:02d}" for index in range(20)]
CATEGORIES = {
    "region": ["north", "south", "east", "west", "central", "online"],
    "plan": ["basic", "plus", "pro", "team"],
    "channel": ["web", "store", "phone", "partner", "app"],
}
SCENARIOS = [(rows, concurrency) for rows in (1, 100) for concurrency in (1, 8)]
WARMUP_SECONDS = 1.0
SERVER_CORE, CLIENT_CORE = "0", 1


# --- the model ------------------------------------------------------------------------------------------------


def training_frame(rows: int):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(SEED)
    frame = pd.DataFrame({name: rng.normal(0, 1, rows) for name in NUMERIC})
    for name, values in CATEGORIES.items():
        frame[name] = rng.choice(values, rows)
    signal = (
        frame["x00"] + 0.5 * frame["x01"] - frame["x02"] + (frame["region"] == "north") - (frame["plan"] == "basic")
    )
    frame["churned"] = np.where(signal + rng.normal(0, 1, rows) > 0.5, "yes", "no")
    for name in NUMERIC[:4]:
        frame.loc[rng.random(rows) < 0.05, name] = np.nan
    return frame


def train(rows: int, folder: Path) -> tuple[dict, "object"]:
    """The fitted pipeline, stored signed in a local artifact store under `folder`; returns its deployment entry."""
    from workers.ml.training.artifacts import dump_model, sign
    from workers.ml.training.preparation import build_pipeline
    from workers.ml.training.signature import input_signature
    from workers.ml.training.spec import ExperimentSpec
    from workers.storage.local import LocalArtifactStore

    frame = training_frame(rows)
    kinds = {name: "numeric" for name in NUMERIC} | {name: "categorical" for name in CATEGORIES}
    spec = ExperimentSpec(
        problem_type="binary",
        target="churned",
        features=tuple(kinds),
        feature_kinds=kinds,
        algorithms=("lightgbm",),
        primary_metric="roc_auc",
        seed=SEED,
    )
    pipeline = build_pipeline(spec, {"n_estimators": 200})
    pipeline.fit(frame[list(kinds)], frame["churned"])
    data = dump_model(pipeline)
    store = LocalArtifactStore(folder / "artifacts")
    stored = store.put_bytes("model.joblib", data)
    (folder / "model.joblib").write_bytes(data)
    entry = {
        "name": MODEL,
        "version": "1",
        "artifact_store": store.uri,
        "artifact_key": "model.joblib",
        "sha256": stored.sha256,
        "signature": sign(data, KEY),
        "input_signature": input_signature(frame, spec),
        "problem_type": "binary",
        "algorithm": "lightgbm",
    }
    return entry, frame[list(kinds)]


def request_rows(frame, rows: int) -> list[dict]:
    """`rows` rows as JSON values (missing ones as null), from the training rows' distribution."""
    import math

    sample = frame.sample(rows, random_state=rows).to_dict("records")
    return [
        {name: None if isinstance(value, float) and math.isnan(value) else value for name, value in row.items()}
        for row in sample
    ]


def dataframe_split_body(rows: list[dict]) -> str:
    columns = list(rows[0])
    return json.dumps({"dataframe_split": {"columns": columns, "data": [[row[c] for c in columns] for row in rows]}})


def v2_body(rows: list[dict]) -> str:
    inputs = [
        {
            "name": name,
            "shape": [len(rows)],
            "datatype": "BYTES" if name in CATEGORIES else "FP64",
            "data": [row[name] for row in rows],
        }
        for name in rows[0]
    ]
    return json.dumps({"inputs": inputs})


# --- the servers ----------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def pinned(command: list[str]) -> list[str]:
    return ["taskset", "-c", SERVER_CORE, *command] if shutil.which("taskset") else command


def get_status(port: int, path: str) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        connection.request("GET", path)
        return connection.getresponse().status
    finally:
        connection.close()


def wait_ready(port: int, path: str, process: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with status {process.returncode}")
        try:
            if get_status(port, path) == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{path} not ready after {timeout:.0f} s")


def start_ours(entry: dict, folder: Path) -> tuple[subprocess.Popen, int]:
    config = folder / "deployment.json"
    config.write_text(json.dumps({"models": [entry]}))
    port = free_port()
    environment = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "SERVING_CONFIG": str(config),
        "MODEL_SIGNING_KEY": KEY.decode(),
        "SERVING_LOG_DIR": str(folder / "prediction-log"),
    }
    command = [sys.executable, "-m", "uvicorn", "workers.serving.app:app", "--port", str(port)]
    command += ["--log-level", "warning", "--no-access-log"]
    process = start(command, cwd=ROOT, env=environment, log=folder / "ours.log")
    wait_ready(port, "/v2/health/ready", process, timeout=60)
    return process, port


def mlflow_python() -> Path:
    """The benchmark's own MLflow environment under var/ (created on first use)."""
    python = MLFLOW_VENV / "bin" / "python"
    if not (MLFLOW_VENV / "bin" / "mlflow").exists():
        import lightgbm
        import numpy
        import pandas
        import sklearn

        # The pickled pipeline needs the same library versions on the MLflow side.
        pins = [
            f"scikit-learn=={sklearn.__version__}",
            f"lightgbm=={lightgbm.__version__}",
            f"numpy=={numpy.__version__}",
            f"pandas=={pandas.__version__}",
        ]
        uv = shutil.which("uv") or str(Path(sys.executable).parent / "uv")
        if Path(uv).exists():
            subprocess.run([uv, "venv", "--python", sys.executable, str(MLFLOW_VENV)], check=True)
            subprocess.run([uv, "pip", "install", "--python", str(python), "mlflow", *pins], check=True)
        else:
            subprocess.run([sys.executable, "-m", "venv", str(MLFLOW_VENV)], check=True)
            subprocess.run([str(python), "-m", "pip", "install", "-q", "mlflow", *pins], check=True)
    return python


SAVE_WITH_MLFLOW = """
import sys, joblib, mlflow.sklearn
mlflow.sklearn.save_model(joblib.load(sys.argv[1]), sys.argv[2], serialization_format="pickle")
"""


def start_mlflow(folder: Path) -> tuple[subprocess.Popen, int]:
    python = mlflow_python()
    model_dir = folder / "mlflow-model"
    # The pipeline's transformers live in workers.ml.training.preparation: the MLflow side imports them from here.
    # mlflow starts its own uvicorn by name: the environment's bin comes first on PATH.
    environment = {
        **os.environ,
        "PATH": f"{MLFLOW_VENV / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": str(ROOT),
        "MLFLOW_TRACKING_URI": f"file://{folder / 'mlruns'}",
    }
    subprocess.run(
        [str(python), "-c", SAVE_WITH_MLFLOW, str(folder / "model.joblib"), str(model_dir)], check=True, env=environment
    )
    port = free_port()
    command = [str(MLFLOW_VENV / "bin" / "mlflow"), "models", "serve", "-m", str(model_dir), "--env-manager", "local"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    process = start(command, cwd=folder, env=environment, log=folder / "mlflow.log")
    wait_ready(port, "/ping", process, timeout=120)
    return process, port


def start(command: list[str], *, cwd: Path, env: dict, log: Path) -> subprocess.Popen:
    """A server pinned to the server core, in its own process group (mlflow serve runs uvicorn as a child), its
    output in `log` (MLflow writes an access log line per request)."""
    with log.open("wb") as output:
        return subprocess.Popen(
            pinned(command), cwd=cwd, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )


def stop(process: subprocess.Popen | None) -> None:
    """The server and its children (its process group), gracefully then for good."""
    if process is None:
        return
    for signal_number, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
        try:
            os.killpg(process.pid, signal_number)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            process.poll()
            try:
                os.killpg(process.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)


def log_tail(path: Path, lines: int = 15) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


# --- the load generator ---------------------------------------------------------------------------------------


def http_request(port: int, path: str, body: bytes) -> bytes:
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
    return (head + f"Content-Length: {len(body)}\r\nConnection: keep-alive\r\n\r\n").encode() + body


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = next(int(line.split(":", 1)[1]) for line in lines if line.lower().startswith("content-length:"))
    return status, await reader.readexactly(length)


async def client(port: int, request: bytes, until: float, measure_from: float, latencies: list[float]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while True:
            started = time.perf_counter()
            if started >= until:
                return
            writer.write(request)
            status, body = await read_response(reader)
            if status != 200:
                raise RuntimeError(f"HTTP {status}: {body[:300]!r}")
            if started >= measure_from:
                latencies.append(time.perf_counter() - started)
    finally:
        writer.close()


async def load(port: int, request: bytes, concurrency: int, seconds: float) -> dict:
    latencies: list[float] = []
    start = time.perf_counter()
    measure_from, until = start + WARMUP_SECONDS, start + WARMUP_SECONDS + seconds
    await asyncio.gather(*(client(port, request, until, measure_from, latencies) for _ in range(concurrency)))
    elapsed = time.perf_counter() - measure_from
    latencies.sort()
    return {
        "p50_ms": round(1000 * latencies[len(latencies) // 2], 3),
        "p99_ms": round(1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))], 3),
        "rps": round(len(latencies) / elapsed, 1),
        "requests": len(latencies),
    }


def answer_of(port: int, path: str, body: bytes) -> dict:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        return json.loads(connection.getresponse().read())
    finally:
        connection.close()


def run_scenarios(port: int, server: str, bodies: dict[str, tuple[str, dict[int, bytes]]], seconds: float) -> dict:
    results = {}
    for body_kind, (path, by_rows) in bodies.items():
        for rows, concurrency in SCENARIOS:
            name = f"{server}_{body_kind}_{rows}row_c{concurrency}"
            request = http_request(port, path, by_rows[rows])
            results[name] = asyncio.run(load(port, request, concurrency, seconds))
            print(f"{name:40s} " + "  ".join(f"{key} {value}" for key, value in results[name].items()), flush=True)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=20000, help="training rows")
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per scenario")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    ours = mlflow = None
    figures: dict = {}
    mlflow_error = None
    try:
        entry, frame = train(args.rows, folder)
        rows = {count: request_rows(frame, count) for count in (1, 100)}
        split = {count: dataframe_split_body(rows[count]).encode() for count in rows}
        v2 = {count: v2_body(rows[count]).encode() for count in rows}
        ours, our_port = start_ours(entry, folder)
        if hasattr(os, "sched_setaffinity") and shutil.which("taskset"):
            os.sched_setaffinity(0, {CLIENT_CORE})
        ours_answer = answer_of(our_port, "/invocations", split[100])["predictions"]
        figures |= run_scenarios(
            our_port,
            "ours",
            {"split": ("/invocations", split), "v2": (f"/v2/models/{MODEL}/infer", v2)},
            args.seconds,
        )
        stop(ours)
        ours = None
        try:
            mlflow, mlflow_port = start_mlflow(folder)
        except (OSError, RuntimeError, subprocess.CalledProcessError) as exc:
            mlflow_error = f"MLflow could not be installed or started: {exc}"
            print(log_tail(folder / "mlflow.log"), file=sys.stderr)
        if mlflow is not None:
            mlflow_answer = answer_of(mlflow_port, "/invocations", split[100])["predictions"]
            figures["predictions_agree"] = mlflow_answer == ours_answer
            figures |= run_scenarios(mlflow_port, "mlflow", {"split": ("/invocations", split)}, args.seconds)
    finally:
        stop(ours)
        stop(mlflow)
        shutil.rmtree(folder, ignore_errors=True)

    ours_c8 = figures["ours_split_1row_c8"]["rps"]
    mlflow_c8 = figures["mlflow_split_1row_c8"]["rps"] if mlflow_error is None else None
    summary = {
        "throughput_ratio_c8_1row": round(ours_c8 / mlflow_c8, 2) if mlflow_c8 else None,
        "p50_ms_c1_1row": figures["ours_split_1row_c1"]["p50_ms"],
        "mlflow_rps_c8_1row": mlflow_c8,
        "ours_rps_c8_1row": ours_c8,
        "p50_ms_c1_1row_v2": figures["ours_v2_1row_c1"]["p50_ms"],
        "mlflow_p50_ms_c1_1row": figures["mlflow_split_1row_c1"]["p50_ms"] if mlflow_c8 else None,
        "pinned": bool(shutil.which("taskset")),
        "scenarios": figures,
    }
    if mlflow_error:
        print(f"MLflow's side is MISSING: {mlflow_error}", flush=True)
        summary["mlflow_error"] = mlflow_error
    print(json.dumps(summary))
    return 1 if mlflow_error else 0


if __name__ == "__main__":
    sys.exit(main())
