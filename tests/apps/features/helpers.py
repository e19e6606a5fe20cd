"""Helpers shared by the feature store tests: real dataset versions (through the ingestion task, from Parquet bytes
so timestamps keep their time of day), and the tasks run in this process as a worker would."""

import io
import uuid

import pandas as pd

from apps.audit.models import AuditEvent
from apps.datasets.choices import JobStatus as IngestionStatus
from apps.datasets.models import DatasetVersion, IngestionJob
from apps.features.models import (
    Entity,
    Feature,
    FeatureVersion,
    FeatureView,
    MaterialisationJob,
    OnlineSync,
    PersonalFeatureException,
    TrainingSet,
)
from tests.workers.tasks.dataset_helpers import upload_job

T0 = pd.Timestamp("2026-01-01 00:00:00")


def events_frame() -> pd.DataFrame:
    """Purchases of three customers; customer 3 buys only late. `email` is the personal column."""
    rows = [
        (1, "2026-01-01 10:00", 10.0),
        (1, "2026-01-02 10:00", 30.0),
        (2, "2026-01-01 12:00", 5.0),
        (1, "2026-01-05 09:00", 50.0),
        (2, "2026-01-06 08:00", 7.0),
        (3, "2026-01-09 00:00", 100.0),
    ]
    frame = pd.DataFrame(rows, columns=["customer_id", "event_time", "amount"])
    frame["event_time"] = pd.to_datetime(frame["event_time"])
    frame["email"] = [f"c{cid}@example.com" for cid in frame["customer_id"]]
    return frame


def spine_frame() -> pd.DataFrame:
    """Prediction times: before any purchase, between purchases, after the last one, before a customer's first
    purchase and an unknown customer (the first six rows), then 14 later rows."""
    rows = [
        (1, "2026-01-01 09:00", "no"),
        (1, "2026-01-02 11:00", "yes"),
        (2, "2026-01-03 00:00", "no"),
        (1, "2026-01-10 00:00", "yes"),
        (3, "2026-01-08 00:00", "no"),
        (4, "2026-01-10 00:00", "yes"),
    ]
    # Later rows of customers 1 and 2, so the result is big enough to train on (checked only by count).
    rows += [(1 + day % 2, f"2026-01-{day} 00:00", "yes" if day % 3 else "no") for day in range(11, 25)]
    frame = pd.DataFrame(rows, columns=["cust", "as_of", "churned"])
    frame["as_of"] = pd.to_datetime(frame["as_of"])
    return frame


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def ingest_frame(dataset, actor, frame: pd.DataFrame, name: str = "events.parquet") -> DatasetVersion:
    """A real version of `dataset` made by the ingestion task, run here."""
    from workers.tasks.datasets import ingest_dataset_task

    job = upload_job(dataset, actor, parquet_bytes(frame), name)
    ingest_dataset_task.apply(args=[str(job.pk)], task_id=f"ingest-{uuid.uuid4()}").get()
    job = IngestionJob.objects.get(pk=job.pk)
    assert job.status == IngestionStatus.SUCCEEDED, (job.error_code, job.error)
    return job.version


def run_task(task, pk) -> str:
    return task.apply(args=[str(pk)], task_id=f"test-{uuid.uuid4()}").get()


def materialise(job) -> MaterialisationJob:
    from workers.tasks.features import materialise_task

    outcome = run_task(materialise_task, job.pk)
    job = MaterialisationJob.objects.get(pk=job.pk)
    assert outcome == "succeeded", job.error
    return job


def state() -> tuple:
    """Everything a feature store call could change, to prove a refused call changed nothing."""
    return (
        Entity.objects.count(),
        FeatureView.objects.count(),
        sorted(Feature.objects.values_list("pk", "description")),
        FeatureVersion.objects.count(),
        MaterialisationJob.objects.count(),
        TrainingSet.objects.count(),
        PersonalFeatureException.objects.count(),
        OnlineSync.objects.count(),
        AuditEvent.objects.count(),
    )
