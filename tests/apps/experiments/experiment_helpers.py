"""Helpers shared by the experiments backend tests (services, selectors, API, the training task).

Versions are made by the real ingestion task from generated CSV bytes, so their schema, profile, PII flags and Parquet
copy are exactly what a user's upload would give.
"""

import io
import uuid

import numpy as np
import pandas as pd

from apps.audit.models import AuditEvent
from apps.datasets.choices import FINISHED_JOB_STATUSES, JobStatus
from apps.datasets.models import DatasetVersion, IngestionJob
from apps.experiments import services
from apps.experiments.models import Experiment, Run, RunLogLine
from tests.workers.tasks.dataset_helpers import upload_job

# A launch that trains quickly: one algorithm, no cross-validation, no search.
FEATURES = ["age", "plan", "tenure_months", "monthly_fee", "signup"]
QUICK = {"target": "churned", "features": FEATURES, "algorithms": ["logistic_regression"], "split": {"cv_folds": 0}}

THREE = {**QUICK, "algorithms": ["logistic_regression", "random_forest", "lightgbm"]}


def churn_frame(rows: int = 400, seed: int = 3) -> pd.DataFrame:
    """Customers who churn more when young, on the basic plan and with short tenure; an id, a PII column (email),
    a date, a constant column (country), an all-missing one (notes), a three-class one with a single-row class
    (segment) and one with a single class and gaps (verdict)."""
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 80, rows)
    plan = rng.choice(["basic", "pro", "max"], rows)
    tenure = rng.integers(1, 60, rows)
    fee = (20 + (plan == "pro") * 15 + (plan == "max") * 35 + rng.normal(0, 3, rows)).round(2)
    signal = -(age - 45) / 15 + (plan == "basic") * 1.0 - (tenure - 30) / 20 + rng.normal(0, 0.8, rows)
    segment = np.where(signal > 0, "a", "b").astype(object)
    segment[0] = "lonely"  # a class of one row
    return pd.DataFrame(
        {
            "customer_id": np.arange(1, rows + 1),
            "email": [f"customer{i}@example.com" for i in range(rows)],
            "age": age,
            "plan": plan,
            "tenure_months": tenure,
            "monthly_fee": fee,
            "signup": pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 1500, rows), unit="D"),
            "country": ["NL"] * rows,
            "notes": [None] * rows,
            "segment": segment,
            "verdict": np.where(rng.random(rows) < 0.5, "yes", None),
            "churned": np.where(signal > 0.3, "yes", "no"),
        }
    )


def csv_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, date_format="%Y-%m-%d")
    return buffer.getvalue().encode()


def ingest(dataset, actor, frame: pd.DataFrame | None = None, name: str = "customers.csv") -> DatasetVersion:
    """A real version of `dataset`: the upload goes through the ingestion task (here, eagerly), into the configured
    store. When a real worker is listening it may take the job first; then this waits for the worker's result."""
    from tests.support.celery_worker import wait_for
    from workers.tasks.datasets import ingest_dataset_task

    job = upload_job(dataset, actor, csv_bytes(churn_frame() if frame is None else frame), name)
    ingest_dataset_task.apply(args=[str(job.pk)], task_id=f"ingest-{uuid.uuid4()}").get()
    job = wait_for(lambda: IngestionJob.objects.filter(pk=job.pk, status__in=FINISHED_JOB_STATUSES).first(), 60)
    assert job is not None and job.status == JobStatus.SUCCEEDED, (job and job.error_code, job and job.error)
    return job.version


def train(run) -> str:
    """Run the training task in this process, as a worker would."""
    from workers.tasks.training import train_run_task

    return train_run_task.apply(args=[str(run.pk)], task_id=f"train-{uuid.uuid4()}").get()


def state() -> tuple:
    """Everything an experiments call could change, to prove a refused call changed nothing."""
    return (
        sorted(Experiment.objects.values_list("pk", "status", "name")),
        sorted(Run.objects.values_list("pk", "status", "cancel_requested")),
        RunLogLine.objects.count(),
        AuditEvent.objects.count(),
    )


def finish(run, primary: float | None, test: float | None = None, metrics: dict | None = None) -> Run:
    """Claim and succeed `run` with these scores, as a worker would record them (no training)."""
    services.run_claim(run_id=run.pk, task_id=f"t-{run.pk}")
    return services.run_succeed(
        run_id=run.pk,
        params={},
        trials=[],
        metrics=metrics or {},
        primary_score=primary,
        test_score=test,
        cv={},
        input_signature={},
        environment={},
        timings={},
        artifact_key=f"k/{run.pk}",
        artifact_sha256="0" * 64,
        artifact_signature="0" * 64,
        artifact_size=1,
    )
