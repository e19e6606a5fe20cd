"""The feature store's Celery entry points: features.materialise, features.build_training_set, features.sync_online
and the periodic features.sync_online_all.

Each task claims its row with a conditional update (a row that is not claimable is left alone; a redelivery of the
same message takes its row back), keeps a heartbeat while it works, calls the Django-free engine
(workers.ml.features) and finishes through apps.features.services. Artifacts go to deterministic keys
(`features/<feature version id>/<start>_<end>.parquet`), so a redelivery overwrites rather than duplicates.
"""

import io
import logging
import tempfile
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from celery import shared_task
from django.conf import settings

from workers.tasks.base import ContextTask, Heartbeat
from workers.tasks.datasets import artifact_store

logger = logging.getLogger(__name__)

# Task modules are imported when the Celery app is configured: apps and the engine (pandas, DuckDB) are imported
# inside the functions, as in the other task modules.
HEARTBEAT_SECONDS = 30
SOFT_TIME_LIMIT = 3300
HARD_TIME_LIMIT = 3600
INGESTION_WAIT_SECONDS = 3000
MIN_KEY_TIME = "min"
TOP_VALUES = 5


def partition_key(feature_version_id, start: datetime | None, end: datetime) -> str:
    from workers.storage.keys import validate_key

    def stamp(moment: datetime | None) -> str:
        return MIN_KEY_TIME if moment is None else moment.astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ")

    return validate_key(f"features/{uuid.UUID(str(feature_version_id))}/{stamp(start)}_{stamp(end)}.parquet")


def online_redis_client():
    """The online store (FEATURES_ONLINE_REDIS_URL, else REDIS_URL, else the local Redis database 0)."""
    import redis

    url = getattr(settings, "FEATURES_ONLINE_REDIS_URL", "") or settings.REDIS_URL or "redis://127.0.0.1:6379/0"
    return redis.Redis.from_url(url)


def _read_version_frame(dataset_version, workdir: Path):
    import pandas as pd

    path = workdir / "source.parquet"
    artifact_store().download_to(dataset_version.parquet_key, path)
    return pd.read_parquet(path)


def _fetch_all(keys: list[str], workdir: Path, prefix: str) -> list[Path]:
    paths = []
    store = artifact_store()
    for index, key in enumerate(keys):
        path = workdir / f"{prefix}-{index}.parquet"
        store.download_to(key, path)
        paths.append(path)
    return paths


def value_statistics(values) -> dict:
    """What the feature page shows of a materialisation: count, nulls, and min/max/mean or the top values."""
    import pandas as pd

    stats: dict = {"count": len(values), "nulls": int(values.isna().sum())}
    present = values.dropna()
    if pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
        top = present.astype(str).value_counts().head(TOP_VALUES)
        stats["top_values"] = [{"value": str(value), "count": int(count)} for value, count in top.items()]
    elif len(present):
        stats |= {"min": float(present.min()), "max": float(present.max()), "mean": float(present.mean())}
    return stats


def _as_aware(moment) -> datetime | None:
    import pandas as pd

    if moment is None or pd.isna(moment):
        return None
    return pd.Timestamp(moment).tz_localize("UTC").to_pydatetime()


# --- features.materialise -------------------------------------------------------------------------------------
def _materialise(job) -> None:
    from apps.features import services
    from workers.ml.features.offline import write_partition
    from workers.ml.features.transforms import compute_feature_values

    version = job.feature_version
    join_keys = list(version.feature.view.entity.join_keys)
    with tempfile.TemporaryDirectory(prefix="materialise-") as tmp:
        workdir = Path(tmp)
        source = _read_version_frame(job.dataset_version, workdir)
        values = compute_feature_values(
            source,
            entity_keys=list(version.entity_columns),
            timestamp=version.timestamp_column,
            spec=version.transformation,
            name=version.feature.name,
            start=job.range_start,
            end=job.range_end,
        )
        # Partitions are keyed by the entity's join keys, whatever the source calls those columns.
        values = values.rename(columns=dict(zip(version.entity_columns, join_keys, strict=True)))
        path = write_partition(values, workdir / "partition.parquet")
        key = partition_key(version.pk, job.range_start, job.range_end)
        artifact_store().put_file(key, path, overwrite=True)
    newest = values["event_timestamp"].max() if len(values) else None
    services.materialisation_job_succeed(
        job_id=job.pk,
        rows=len(values),
        artifact_keys=[key],
        statistics=value_statistics(values[version.feature.name]),
        max_event_timestamp=_as_aware(newest),
    )


@shared_task(
    name="features.materialise",
    base=ContextTask,
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=SOFT_TIME_LIMIT,
    time_limit=HARD_TIME_LIMIT,
)
def materialise_task(self, job_id: str) -> str:
    """Compute one materialisation job's values into its Parquet partition; returns succeeded, failed or skipped."""
    from apps.features import services

    job = services.materialisation_job_claim(job_id=job_id, task_id=self.request.id or "")
    if job is None:
        return "skipped"
    beat = Heartbeat(
        f"materialisation {job.pk}", lambda: services.materialisation_job_heartbeat(job_id=job.pk), HEARTBEAT_SECONDS
    )
    try:
        with beat:
            _materialise(job)
    except Exception as exc:
        logger.exception("materialisation %s failed", job.pk)
        services.materialisation_job_fail(job_id=job.pk, message=_failure(exc, self.request.id))
        return "failed"
    return "succeeded"


def _failure(exc: Exception, task_id) -> str:
    """A sentence for the user: the engine's own message for bad definitions or data, else where to look."""
    message = getattr(exc, "message", None)
    if isinstance(exc, KeyError | ValueError) or message:
        return f"{message or exc}"
    return f"The job failed unexpectedly. Operators can find the details under task id {task_id or '-'}."


# --- features.build_training_set ------------------------------------------------------------------------------
def _joined_frame(training_set, workdir: Path):
    """The spine with one column per feature (point-in-time correct), and the lineage of what was used."""
    from apps.features import selectors
    from workers.ml.features.offline import FeatureInput, point_in_time_join

    spine = _read_version_frame(training_set.spine_version, workdir)
    inputs = selectors.training_set_inputs(training_set_id=training_set.pk)
    spine_keys = list(training_set.spine_key_columns)
    join_keys = inputs[0]["join_keys"]
    features, lineage = [], []
    for index, item in enumerate(inputs):
        keys = selectors.partition_keys(feature_version_id=item["feature_version_id"])
        max_age = timedelta(seconds=item["max_age_seconds"]) if item["max_age_seconds"] else None
        features.append(FeatureInput(item["output_name"], _fetch_all(keys, workdir, f"f{index}"), max_age))
        lineage.append({**item, "partitions": keys})
    # The spine's key columns take the entity's join key names for the join, and get their own names back after.
    renamed = spine.rename(columns=dict(zip(spine_keys, join_keys, strict=True)))
    joined = point_in_time_join(
        renamed, entity_keys=join_keys, timestamp=training_set.spine_timestamp_column, features=features
    )
    joined = joined.rename(columns=dict(zip(join_keys, spine_keys, strict=True)))
    return joined, {
        "spine_version": str(training_set.spine_version_id),
        "spine_dataset": str(training_set.spine_version.dataset_id),
        "spine_number": training_set.spine_version.number,
        "features": lineage,
    }


def _ingest(training_set, joined) -> object:
    """Hand the joined rows to the datasets ingestion pipeline (profiled and validated like any upload) and run the
    ingestion here; when another worker took the job first, wait for it to finish."""
    from apps.datasets import services as dataset_services
    from apps.datasets.choices import FINISHED_JOB_STATUSES
    from apps.features import services
    from workers.tasks.datasets import ingest_dataset_task

    buffer = io.BytesIO()
    joined.to_parquet(buffer, index=False)
    data = buffer.getvalue()
    job = dataset_services.ingestion_start_upload(
        dataset=training_set.output_dataset,
        actor=training_set.created_by,
        stream=io.BytesIO(data),
        display_name=f"training-set-{training_set.pk}.parquet",
        size=len(data),
    )
    services.training_set_ingestion_started(training_set_id=training_set.pk, ingestion_job=job)
    ingest_dataset_task.apply(args=[str(job.pk)], task_id=f"training-set-ingest-{job.pk}")
    return _wait_for_job(job.pk, FINISHED_JOB_STATUSES)


def _wait_for_job(job_id, finished: set) -> object:
    import time

    from apps.features import selectors

    deadline = time.monotonic() + INGESTION_WAIT_SECONDS
    while True:
        job = selectors.ingestion_job_for_worker(job_id=job_id)
        if job.status in finished or time.monotonic() > deadline:
            return job
        time.sleep(1)


@shared_task(
    name="features.build_training_set",
    base=ContextTask,
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=SOFT_TIME_LIMIT,
    time_limit=HARD_TIME_LIMIT,
)
def build_training_set_task(self, training_set_id: str) -> str:
    """Join, ingest as a new dataset version, and finish the training set; returns succeeded, failed or skipped."""
    from apps.datasets.choices import JobStatus as IngestionStatus
    from apps.features import services

    training_set = services.training_set_claim(training_set_id=training_set_id, task_id=self.request.id or "")
    if training_set is None:
        return "skipped"
    beat = Heartbeat(
        f"training set {training_set.pk}",
        lambda: services.training_set_heartbeat(training_set_id=training_set.pk),
        HEARTBEAT_SECONDS,
    )
    try:
        with beat, tempfile.TemporaryDirectory(prefix="training-set-") as tmp:
            joined, lineage = _joined_frame(training_set, Path(tmp))
            job = _ingest(training_set, joined)
        if job.status != IngestionStatus.SUCCEEDED:
            services.training_set_fail(
                training_set_id=training_set.pk,
                message=f"The result could not be stored as a dataset version: {job.error or job.status}",
            )
            return "failed"
        services.training_set_succeed(training_set_id=training_set.pk, lineage=lineage)
    except Exception as exc:
        logger.exception("training set %s failed", training_set.pk)
        services.training_set_fail(training_set_id=training_set.pk, message=_failure(exc, self.request.id))
        return "failed"
    return "succeeded"


# --- features.sync_online -------------------------------------------------------------------------------------
def _sync(sync) -> tuple[int, dict[str, str]]:
    import pandas as pd

    from apps.features import selectors
    from workers.ml.features.offline import read_partitions
    from workers.ml.features.online import write_latest

    join_keys = list(sync.view.entity.join_keys)
    client = online_redis_client()
    written: set = set()
    synced: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="online-sync-") as tmp:
        for index, feature in enumerate(selectors.online_view_features(view_id=sync.view_id)):
            keys = selectors.partition_keys(feature_version_id=feature["feature_version_id"])
            paths = _fetch_all(keys, Path(tmp), f"f{index}")
            frame: pd.DataFrame = read_partitions(paths).df()
            write_latest(client, feature_view=sync.view.name, entity_keys=join_keys, frame=frame)
            written |= set(map(tuple, frame[join_keys].drop_duplicates().itertuples(index=False)))
            synced[feature["name"]] = feature["feature_version_id"]
    return len(written), synced


@shared_task(
    name="features.sync_online",
    base=ContextTask,
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=SOFT_TIME_LIMIT,
    time_limit=HARD_TIME_LIMIT,
)
def sync_online_task(self, sync_id: str) -> str:
    """Write a view's latest values per entity into the online store; returns succeeded, failed or skipped."""
    from apps.features import services

    sync = services.online_sync_claim(sync_id=sync_id, task_id=self.request.id or "")
    if sync is None:
        return "skipped"
    try:
        rows, synced = _sync(sync)
    except Exception as exc:
        logger.exception("online sync %s failed", sync.pk)
        services.online_sync_fail(sync_id=sync.pk, message=_failure(exc, self.request.id))
        return "failed"
    services.online_sync_succeed(sync_id=sync.pk, rows=rows, features=synced)
    return "succeeded"


@shared_task(name="features.sync_online_all", base=ContextTask, acks_late=True, soft_time_limit=50, time_limit=60)
def sync_online_all() -> int:
    """The scheduled sync: queue one sync per view with materialised features (beat runs this)."""
    from apps.features import services

    return len(services.online_sync_schedule_all())


@shared_task(name="features.sweep_stale_jobs", base=ContextTask, acks_late=True, soft_time_limit=50, time_limit=60)
def sweep_stale_feature_jobs() -> dict:
    """Fail feature store jobs whose worker died; dispatch again those whose dispatch was lost (beat runs this)."""
    from apps.features import services

    return services.feature_jobs_sweep()
