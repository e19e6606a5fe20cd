"""Training: the platform's run (load, check, split, fit, full evaluation with SHAP, signed artifact) against a plain
script doing the same LightGBM fit and SHAP in the same run.

Platform side: workers.ml.training.data.load_frame on the version's Parquet file, then
workers.ml.training.run.train_run with a LightGBM-only spec (no search, no cross-validation, SHAP on 1,000 rows; the
evaluation also scores validation and test, draws the curves, times single-row and batch predictions, checks
fairness and robustness), then dump_model + sign as the task does before storing. Script side: pandas.read_parquet,
the same two seeded train_test_split calls, the same ColumnTransformer (median imputation, one-hot) + LGBMClassifier
with the same parameters, ROC AUC on the test rows, SHAP TreeExplainer on 1,000 test rows. Each side runs in a fresh
Python process; imports are paid before the clock starts on both sides (a worker has them loaded already).

Launch side (the headline figure, as the issue asks: from launch to a finished, evaluated run): a real `celery worker`
process on the `training` queue (filesystem broker, SQLite database and local artifact store in a temporary folder),
warmed up by one small run first (a serving worker has its libraries loaded); the clock starts when
services.experiment_launch is called and stops when the run row says it finished. It includes the launch's validation
and audit event, the queue, the claim, fetching and verifying the version's Parquet copy, train_run, signing and
storing the artifact and recording the result. The dataset version is made by the real ingestion task beforehand.

Target (issue 4): launch_s <= 1.15 * script_s + 3 s.
    python bench/train.py [--rows 100000] [--repeat 1]
Last line: {"rows", "cols", "launch_s", "platform_s", "script_s", "overhead_s", "overhead_ratio", "target_s",
"target_met", "platform_stages", "evaluation_stages", "launch_stages", "test_roc_auc_launch",
"test_roc_auc_platform", "test_roc_auc_script"};
overhead_s and overhead_ratio compare launch_s with script_s; platform_s is train_run alone.
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SEED = 42
NUMERIC = [f"x{index:02d}" for index in range(20)]
CATEGORICAL = ["region", "plan", "channel"]
TARGET = "churned"
SHAP_ROWS = 1000
CATEGORIES = {
    "region": ["north", "south", "east", "west", "central", "online"],
    "plan": ["basic", "plus", "pro", "team"],
    "channel": ["web", "store", "phone", "partner", "app"],
}


def generate_parquet(path: Path, rows: int) -> None:
    """20 numeric columns (5% missing in four of them), 3 categorical ones, and a binary target that depends on
    some of each, with noise."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(SEED)
    columns = {}
    signal = rng.normal(0, 1.0, rows)
    for index, name in enumerate(NUMERIC):
        values = rng.normal(0, 1, rows)
        if index < 6:
            signal += values * (0.8 - 0.1 * index)
        if index % 5 == 4:
            values[rng.random(rows) < 0.05] = np.nan
        columns[name] = values
    for name, choices in CATEGORIES.items():
        picks = rng.integers(0, len(choices), rows)
        signal += (picks == 0) * 0.7 - (picks == 1) * 0.4
        columns[name] = np.array(choices)[picks]
    columns[TARGET] = np.where(signal > 0.5, "yes", "no")
    pq.write_table(pa.table(columns), path, compression="zstd")


def bench_spec():
    from workers.ml.training.spec import ExperimentSpec, Preparation, Search, Split

    return ExperimentSpec(
        problem_type="binary",
        target=TARGET,
        features=(*NUMERIC, *CATEGORICAL),
        feature_kinds={**dict.fromkeys(NUMERIC, "numeric"), **dict.fromkeys(CATEGORICAL, "categorical")},
        algorithms=("lightgbm",),
        primary_metric="roc_auc",
        preparation=Preparation(missing="median", scaling="none", encoding="onehot"),
        split=Split(strategy="stratified", train=0.7, validation=0.15, test=0.15, cv_folds=0),
        search=Search(method="none"),
        seed=SEED,
    )


def platform_side(path: Path) -> dict:
    sys.path.insert(0, str(ROOT))
    from workers.ml.training.artifacts import dump_model, sign
    from workers.ml.training.data import load_frame
    from workers.ml.training.run import train_run

    spec = bench_spec()
    started = time.perf_counter()
    frame = load_frame(path, spec)
    loaded = time.perf_counter()
    outcome = train_run(frame, spec, shap_rows=SHAP_ROWS)
    trained = time.perf_counter()
    data = dump_model(outcome.pipeline)
    sign(data, b"bench-secret")
    seconds = time.perf_counter() - started
    stages = {"load": loaded - started, **outcome.timings, "artifact": time.perf_counter() - trained}
    return {
        "seconds": seconds,
        "stages": {name: round(value, 3) for name, value in stages.items()},
        "evaluation_stages": outcome.evaluation["timings"],
        "roc_auc": outcome.test_score,
        "shap_rows": outcome.evaluation["explanations"]["rows"],
    }


def script_side(path: Path) -> dict:
    import pandas as pd
    import shap
    from lightgbm import LGBMClassifier
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    started = time.perf_counter()
    frame = pd.read_parquet(path)
    rest, test = train_test_split(frame, test_size=0.15, random_state=SEED, stratify=frame[TARGET])
    train, _ = train_test_split(rest, test_size=0.15 / 0.85, random_state=SEED, stratify=rest[TARGET])
    prepare = ColumnTransformer(
        [
            ("numeric", SimpleImputer(strategy="median"), NUMERIC),
            ("categorical", OneHotEncoder(handle_unknown="ignore", sparse_output=False), CATEGORICAL),
        ]
    )
    model = LGBMClassifier(n_jobs=1, verbose=-1, deterministic=True, force_row_wise=True, random_state=SEED)
    pipeline = Pipeline([("prepare", prepare), ("model", model)]).fit(train[NUMERIC + CATEGORICAL], train[TARGET])
    X_test = test[NUMERIC + CATEGORICAL]
    roc_auc = roc_auc_score(test[TARGET] == "yes", pipeline.predict_proba(X_test)[:, 1])
    explained = pipeline[:-1].transform(X_test.sample(n=min(SHAP_ROWS, len(X_test)), random_state=SEED))
    shap.TreeExplainer(pipeline[-1]).shap_values(explained)
    return {"seconds": time.perf_counter() - started, "roc_auc": roc_auc}


LAUNCH_SPEC = {
    "target": TARGET,
    "features": [*NUMERIC, *CATEGORICAL],
    "algorithms": ["lightgbm"],
    "primary_metric": "roc_auc",
    "preparation": {"missing": "median", "scaling": "none", "encoding": "onehot"},
    "split": {"strategy": "stratified", "train": 0.7, "validation": 0.15, "test": 0.15, "cv_folds": 0},
    "search": {"method": "none"},
    "seed": SEED,
}
WARM_UP_ROWS = 2_000
WORKER_READY_SECONDS = 60
RUN_TIMEOUT_SECONDS = 600


def launch_side(path: Path) -> dict:
    """From services.experiment_launch to the run row saying it finished, with a real worker process (see the module
    docstring). Set-up (database, dataset versions, worker start, warm-up run) is not timed."""
    import os

    workdir = Path(tempfile.mkdtemp(prefix="bench-train-launch-"))
    os.environ.update(
        {
            "DATABASE_URL": f"sqlite:///{workdir / 'bench.sqlite3'}",
            "ARTIFACT_STORE": f"file://{workdir / 'artifacts'}",
            "MLPLATFORM_VAR_DIR": str(workdir / "var"),
            "DJANGO_SETTINGS_MODULE": "config.settings",
        }
    )
    for name in ("CELERY_BROKER_URL", "REDIS_URL"):
        os.environ.pop(name, None)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    project, scientist, version = _bench_version(path)
    warm_up_path = workdir / "warm-up.parquet"
    generate_parquet(warm_up_path, WARM_UP_ROWS)
    _, _, warm_up_version = _bench_version(warm_up_path, project=project, scientist=scientist, name="warm-up")
    worker = _start_worker(workdir)
    try:
        _launch_and_wait(project, scientist, warm_up_version)
        started = time.perf_counter()
        run = _launch_and_wait(project, scientist, version)
        seconds = time.perf_counter() - started
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    return {"seconds": seconds, "roc_auc": run.test_score, "stages": run.timings}


def _bench_version(path: Path, *, project=None, scientist=None, name: str = "bench"):
    """A dataset version made by the real ingestion task (run in this process) from the Parquet file."""
    from apps.accounts.choices import Role
    from apps.datasets.services import dataset_create, ingestion_start_upload
    from tests.factories import MembershipFactory, ProblemDefinitionFactory, UserFactory
    from workers.tasks.datasets import ingest_dataset_task

    if project is None:
        project = ProblemDefinitionFactory(problem_type="binary", primary_metric="roc_auc").project
        scientist = UserFactory(role=Role.SCIENTIST)
        MembershipFactory(user=scientist, project=project, role=Role.SCIENTIST)
    dataset = dataset_create(project=project, actor=scientist, name=name)
    with open(path, "rb") as stream:
        job = ingestion_start_upload(
            dataset=dataset, actor=scientist, stream=stream, display_name="data.parquet", size=path.stat().st_size
        )
    ingest_dataset_task.apply(args=[str(job.pk)])
    job.refresh_from_db()
    assert job.version is not None, (job.error_code, job.error)
    return project, scientist, job.version


def _start_worker(workdir: Path) -> subprocess.Popen:
    log_path = workdir / "worker.log"
    command = [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "solo", "-Q", "training"]
    command += ["--loglevel", "INFO", "--without-gossip", "--without-mingle", "--without-heartbeat"]
    worker = subprocess.Popen(command, cwd=ROOT, stdout=log_path.open("w"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + WORKER_READY_SECONDS
    while " ready." not in log_path.read_text():
        if worker.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the worker did not start:\n{log_path.read_text()[-3000:]}")
        time.sleep(0.1)
    return worker


def _launch_and_wait(project, scientist, version):
    from django.db import transaction

    from apps.experiments.choices import FINISHED_RUN_STATUSES, RunStatus
    from apps.experiments.models import Run
    from apps.experiments.services import experiment_launch

    with transaction.atomic():  # commit, so the dispatch after commit happens here, as in a request
        experiment = experiment_launch(project=project, actor=scientist, dataset_version=version, data=LAUNCH_SPEC)
    deadline = time.monotonic() + RUN_TIMEOUT_SECONDS
    while True:
        run = Run.objects.get(experiment=experiment)
        if run.status in FINISHED_RUN_STATUSES:
            break
        if time.monotonic() > deadline:
            raise SystemExit(f"the run did not finish in {RUN_TIMEOUT_SECONDS} s")
        time.sleep(0.02)
    assert run.status == RunStatus.SUCCEEDED, (run.error_code, run.error)
    return run


def child(side: str, path: Path) -> None:
    """Runs in a fresh process: imports first (not timed), then one side; prints its JSON."""
    sys.path.insert(0, str(ROOT))
    import lightgbm  # noqa: F401
    import shap  # noqa: F401

    import workers.ml.evaluation.evaluate
    import workers.ml.training.run  # noqa: F401

    sides = {"platform": platform_side, "script": script_side, "launch": launch_side}
    result = sides[side](path)
    print(json.dumps(result))


def run_side(side: str, path: Path) -> dict:
    result = subprocess.run(
        [sys.executable, __file__, "--child", side, "--file", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"{side} side failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=1, help="run each side this many times; the best run counts")
    parser.add_argument("--child", choices=["platform", "script", "launch"], help=argparse.SUPPRESS)
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.file)
        return

    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        path = Path(tmp) / "data.parquet"
        generate_parquet(path, args.rows)
        runs: dict[str, list[dict]] = {"script": [], "platform": [], "launch": []}
        for _ in range(max(1, args.repeat)):
            for side in ("script", "platform", "launch"):
                runs[side].append(run_side(side, path))
    script = min(runs["script"], key=lambda run: run["seconds"])
    platform = min(runs["platform"], key=lambda run: run["seconds"])
    launch = min(runs["launch"], key=lambda run: run["seconds"])
    target = 1.15 * script["seconds"] + 3.0
    figures = {
        "rows": args.rows,
        "cols": len(NUMERIC) + len(CATEGORICAL),
        "launch_s": round(launch["seconds"], 3),
        "platform_s": round(platform["seconds"], 3),
        "script_s": round(script["seconds"], 3),
        "overhead_s": round(launch["seconds"] - script["seconds"], 3),
        "overhead_ratio": round(launch["seconds"] / script["seconds"], 3),
        "target_s": round(target, 3),
        "target_met": launch["seconds"] <= target,
        "platform_stages": platform["stages"],
        "evaluation_stages": platform["evaluation_stages"],
        "launch_stages": launch["stages"],
        "test_roc_auc_launch": round(launch["roc_auc"], 6),
        "test_roc_auc_platform": round(platform["roc_auc"], 6),
        "test_roc_auc_script": round(script["roc_auc"], 6),
    }
    print(
        f"train on {args.rows:,} rows x {figures['cols']} columns: launch to finished run {figures['launch_s']:.2f} s "
        f"(train_run alone {figures['platform_s']:.2f} s) vs plain script {figures['script_s']:.2f} s "
        f"(x{figures['overhead_ratio']}, +{figures['overhead_s']:.2f} s; "
        f"target <= {figures['target_s']:.2f} s: {'met' if figures['target_met'] else 'NOT met'})"
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
