"""datasets.ingest: turn one ingestion job's source into an immutable dataset version (or find the identical one).

Safety rules this task follows (docs/adr/0005-dataset-ingestion.md):
- It claims its job row with a conditional update; a job that is not claimable (finished, cancelled, claimed by
  another task) is left alone. A redelivery of the same message (acks_late, worker lost) may take its job back.
- Dedup comes first: the SHA-256 of the original bytes (for an upload, the digest the store recorded) is compared with
  the dataset's versions before any download or parsing.
- A staged upload is read once: fetched unverified (a hard link in a local store), its digest computed by the
  pipeline while parsing and compared with the recorded one before anything is stored (ChecksumMismatch otherwise).
- Artifacts go to deterministic keys with conditional writes (overwrite=False): an object already under the key is
  reused when it holds our bytes (a redelivery), else the version number is taken and the next one is tried. The
  database's unique constraints settle a lost race; what this attempt wrote is then removed.
- Bad input (IngestError) fails the job with its code and message and removes everything written; the staged upload
  is removed whatever the outcome, except when the task will be retried.
- Only transient errors (storage/database/network unavailable) are retried, with exponential backoff; when the
  retries run out the job fails with a clear message.
- A heartbeat thread keeps `heartbeat_at` fresh while the task runs, so the periodic sweep
  (workers/tasks/periodic.py) can tell a dead worker from a slow step.
"""

import hashlib
import logging
import tempfile
import time
from pathlib import Path, PurePosixPath

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import IntegrityError
from django.db.utils import InterfaceError, OperationalError

from workers.ml.data.errors import IngestError
from workers.ml.data.limits import IngestLimits
from workers.storage.base import ChecksumMismatch, ObjectExists, ObjectNotFound, StorageError, UnsafeKey
from workers.storage.keys import dataset_original_key, dataset_parquet_key
from workers.tasks.base import ContextTask, Heartbeat

logger = logging.getLogger(__name__)

# Task modules are imported when the Celery app is configured, before Django's app registry is ready (see
# workers/tasks/system.py): everything from `apps` is imported inside the functions.

SOFT_TIME_LIMIT = 3300
HARD_TIME_LIMIT = 3600
MAX_RETRIES = 5
HEARTBEAT_SECONDS = 30
PROGRESS_EVERY_SECONDS = 1.0
MAX_NUMBER_ATTEMPTS = 20


class JobCancelled(Exception):
    """The job stopped being ours (cancelled, or failed by the sweep): stop and clean up."""


class StorageUnavailable(Exception):
    """A storage call failed for a reason that may pass (network, throttling)."""


TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    ConnectionError,
    TimeoutError,
    OperationalError,
    InterfaceError,
    StorageUnavailable,
)
# S3 answers that may pass on their own.
_TRANSIENT_S3_CODES = {"SlowDown", "RequestTimeout", "Throttling", "ThrottlingException", "ServiceUnavailable"}


def _client_error_status(error) -> tuple[int, str]:
    response = getattr(error, "response", None) or {}
    status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    return status, str(response.get("Error", {}).get("Code") or "")


def is_transient(exc: BaseException) -> bool:
    """Whether retrying later may succeed: a network or database outage, or a storage error caused by one (S3
    store errors carry the botocore error as their cause). Bad input, missing objects, corruption, denied access
    and bugs are not transient."""
    if isinstance(exc, TRANSIENT_ERRORS):
        return True
    if isinstance(exc, ObjectNotFound | ObjectExists | ChecksumMismatch | UnsafeKey) or not isinstance(
        exc, StorageError
    ):
        return False
    cause = exc.__cause__
    try:
        from botocore.exceptions import ClientError, HTTPClientError
        from botocore.exceptions import ConnectionError as BotoConnectionError
    except ImportError:  # pragma: no cover - boto3 is a dependency
        return isinstance(cause, ConnectionError | TimeoutError)
    if isinstance(cause, BotoConnectionError | HTTPClientError | ConnectionError | TimeoutError):
        return True
    if isinstance(cause, ClientError):
        status, code = _client_error_status(cause)
        return status >= 500 or code in _TRANSIENT_S3_CODES
    return False


def artifact_store():
    """The configured store (imported late: apps.core.artifacts comes with the storage package)."""
    from apps.core.artifacts import artifact_store as configured_store

    return configured_store()


def ingest_limits() -> IngestLimits:
    return IngestLimits(
        max_bytes=settings.DATASET_MAX_UPLOAD_BYTES,
        max_decompressed_bytes=settings.DATASET_MAX_DECOMPRESSED_BYTES,
        max_columns=settings.DATASET_MAX_COLUMNS,
        max_cell_bytes=settings.DATASET_MAX_CELL_BYTES,
        analysis_memory_bytes=settings.DATASET_ANALYSIS_MEMORY_BYTES,
    )


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _heartbeat(job_id) -> Heartbeat:
    from apps.datasets import services

    return Heartbeat(
        f"ingestion job {job_id}", lambda: services.ingestion_job_heartbeat(job_id=job_id), HEARTBEAT_SECONDS
    )


class _Progress:
    """The pipeline's progress callback: records it (at most once a second) and stops the work when the job is
    no longer running."""

    def __init__(self, job_id, low: float = 0.05, high: float = 0.9):
        self.job_id = job_id
        self.low, self.high = low, high
        self._last = 0.0

    def report(self, fraction: float, message: str, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < PROGRESS_EVERY_SECONDS:
            return
        self._last = now
        from apps.datasets import services

        if not services.ingestion_job_progress(job_id=self.job_id, fraction=fraction, message=message):
            raise JobCancelled()

    def __call__(self, fraction: float, message: str) -> None:
        scaled = self.low + (self.high - self.low) * min(max(float(fraction), 0.0), 1.0)
        self.report(scaled, message)


class _Attempt:
    """What this attempt wrote to the store, to remove it if the attempt does not end in a version."""

    def __init__(self, store):
        self.store = store
        self.written: list[str] = []

    def put(self, key: str, path: Path, sha256: str | None = None) -> str:
        """Conditional write of the file at `path`; returns the SHA-256 now stored under `key`: the digest the
        store computed while writing, or the recorded one when our bytes were already there (a redelivery). Raises
        ObjectExists when another object holds the key. `sha256` is the file's digest when known; otherwise it is
        computed only when the key is taken, so a new object is hashed once, by the store."""
        try:
            stored = self.store.put_file(key, path, overwrite=False)
        except ObjectExists:
            recorded = self.store.stat(key).sha256
            if recorded == (sha256 or file_sha256(path)):
                return recorded
            raise
        self.written.append(key)
        return stored.sha256

    def copy(self, src_key: str, key: str, sha256: str) -> str:
        """Conditional copy of a stored object (the staged upload) to `key`, without moving its bytes through this
        worker; same outcomes as `put`. `sha256` is the digest of the bytes this attempt processed: a source whose
        recorded digest differs (it changed since) is not kept."""
        try:
            copied = self.store.copy(src_key, key, overwrite=False)
        except ObjectExists:
            if self.store.stat(key).sha256 == sha256:
                return "reused"
            raise
        self.written.append(key)
        if copied.sha256 != sha256:
            raise ChecksumMismatch(f"{src_key}: the stored object no longer matches the bytes that were processed")
        return "written"

    def discard(self, keys: list[str] | None = None) -> None:
        from apps.datasets import selectors

        for key in list(self.written if keys is None else keys):
            if key in self.written:
                self.written.remove(key)
            try:
                in_use = selectors.artifact_key_in_use(key=key)
            except Exception:  # the database is gone too: keep the object rather than risk a version's file
                logger.warning("could not check whether %s is in use; left in place", key, exc_info=True)
                continue
            if in_use:
                continue  # a recorded version owns it (an identical job won the race with our bytes)
            try:
                self.store.delete(key)
            except StorageError:
                logger.warning("could not delete %s after a failed ingestion", key, exc_info=True)


UPLOAD_GONE = "The uploaded file is no longer available (the upload did not finish)."


def _staged_sha256(job, store) -> str:
    """The SHA-256 the store recorded for the staged upload: enough to deduplicate without reading a byte."""
    try:
        return store.stat(job.staging_key).sha256
    except ObjectNotFound as exc:
        raise IngestError("source_unavailable", UPLOAD_GONE) from exc


def _fetch_staged(job, store, source: Path) -> str:
    """The staged upload at `source`, unverified (a hard link in a local store); returns its recorded SHA-256, which
    the pipeline's digest of the bytes it parses must reproduce (_check_staged_bytes): one read, not two."""
    try:
        return store.fetch_to(job.staging_key, source).sha256
    except ObjectNotFound as exc:
        raise IngestError("source_unavailable", UPLOAD_GONE) from exc


def _damaged(key: str, actual: str, recorded: str) -> ChecksumMismatch:
    return ChecksumMismatch(f"{key}: the bytes read hash to {actual}, the store recorded {recorded}")


def _process_staged(job, source: Path, recorded_sha: str, process):
    """Run `process` (the pipeline) on the unverified staged bytes and check them against the recorded digest
    before anything is stored. Bad input found in damaged bytes is reported as the damage, not as the file's fault
    (one more read of the file, on that failure only)."""
    try:
        processed = process()
    except IngestError as exc:
        if exc.code == "too_large":  # refused by its size alone, before reading: not worth reading it now
            raise
        actual = file_sha256(source)
        if actual != recorded_sha:
            raise _damaged(job.staging_key, actual, recorded_sha) from exc
        raise
    if processed.original_sha256 != recorded_sha:
        processed.parquet_path.unlink(missing_ok=True)
        raise _damaged(job.staging_key, processed.original_sha256, recorded_sha)
    return processed


def _fetch_source(job, workdir: Path, limits: IngestLimits) -> tuple[Path, str, str]:
    """Copy an S3 object the portal did not write into workdir; returns (path, display name used for sniffing,
    SHA-256 of the bytes), the digest computed while copying: there is no recorded SHA-256 to verify against."""
    from workers.storage.factory import artifact_store_from_uri

    source = workdir / "source"
    bucket, _, key = job.s3_uri[len("s3://") :].partition("/")
    try:
        source_store = artifact_store_from_uri(
            f"s3://{bucket}", endpoint_url=settings.S3_ENDPOINT_URL or None, region=settings.S3_REGION or None
        )
        size = _object_size(source_store, key)
        if size is not None and size > limits.max_bytes:
            raise IngestError("too_large", _too_large_message(size, limits.max_bytes))
        sha = _download_capped(source_store, key, source, limits.max_bytes)
    except ObjectNotFound as exc:
        raise IngestError("source_unavailable", f"There is no object at {job.s3_uri}.") from exc
    except UnsafeKey as exc:
        raise IngestError("source_unavailable", f"The object key of {job.s3_uri} is not allowed.") from exc
    except StorageError as exc:
        if is_transient(exc):
            raise
        status, code = _client_error_status(exc.__cause__)
        reason = f"S3 answered {code or status}" if (code or status) else str(exc)
        raise IngestError("source_unavailable", f"The platform cannot read {job.s3_uri} ({reason}).") from exc
    return source, PurePosixPath(key).name, sha


def _download_capped(store, key: str, path: Path, limit: int) -> str:
    """Copy an object the platform did not write (no recorded SHA-256 to verify), stopping past the size limit;
    returns the SHA-256 of the copied bytes."""
    size, digest = 0, hashlib.sha256()
    with open(path, "wb") as out:
        for chunk in store.iter_chunks(key, verify=False):
            size += len(chunk)
            if size > limit:
                raise IngestError("too_large", f"The object is larger than the {_format_bytes(limit)} limit.")
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()


def _object_size(store, key: str) -> int | None:
    try:
        return store.stat(key).size
    except ObjectNotFound:
        raise
    except (StorageError, KeyError, ValueError):
        return None  # no recorded metadata (not written by the platform): the size is checked after the copy


def _format_bytes(size: int) -> str:
    from apps.datasets.uploads import format_bytes

    return format_bytes(size)


def _too_large_message(size: int, limit: int) -> str:
    return f"The object is {_format_bytes(size)}, larger than the {_format_bytes(limit)} limit."


def _processed_fields(processed, *, file_format: str, rules: dict) -> dict:
    return {
        "original_sha256": processed.original_sha256,
        "file_format": file_format,
        "row_count": processed.row_count,
        "column_count": processed.column_count,
        "schema": processed.schema,
        "profile": processed.profile,
        "pii_findings": processed.pii_findings,
        "validation": processed.validation,
        "validation_rules": rules,
    }


def _store_and_record(
    job,
    store,
    attempt: _Attempt,
    *,
    processed,
    original: Path,
    original_sha: str,
    extension: str,
    fields: dict,
    original_stored_key: str = "",
):
    """Write the original and the Parquet copy under the next free version number and record the version; or
    finish as a duplicate when an identical version appeared meanwhile. Returns "succeeded" or "deduplicated".
    With `original_stored_key` (an upload staged in the same store, holding the bytes of `original`), the original
    is stored by copying that object instead of writing the local file again."""
    from apps.datasets import selectors, services

    dataset = job.dataset
    number = selectors.dataset_version_next_number(dataset=dataset)
    for _ in range(MAX_NUMBER_ATTEMPTS):
        original_key = dataset_original_key(
            project_id=dataset.project_id, dataset_id=dataset.pk, version=number, extension=extension
        )
        parquet_key = dataset_parquet_key(project_id=dataset.project_id, dataset_id=dataset.pk, version=number)
        try:
            if original_stored_key:
                attempt.copy(original_stored_key, original_key, original_sha)
            else:
                attempt.put(original_key, original, original_sha)
            parquet_sha = attempt.put(parquet_key, processed.parquet_path)
        except ObjectExists:
            attempt.discard()
            number += 1
            continue
        try:
            services.dataset_version_record(
                job_id=job.pk,
                processed=fields,
                original_key=original_key,
                original_size=original.stat().st_size,
                parquet_key=parquet_key,
                parquet_sha256=parquet_sha,
                parquet_size=processed.parquet_path.stat().st_size,
                number=number,
            )
            return "succeeded"
        except IntegrityError:
            attempt.discard()
            existing = selectors.dataset_version_by_sha256(dataset=dataset, sha256=fields["original_sha256"])
            if existing is not None:
                services.ingestion_job_deduplicate(job_id=job.pk, version=existing)
                return "deduplicated"
            number = max(number + 1, selectors.dataset_version_next_number(dataset=dataset))
    raise RuntimeError(f"no free version number after {MAX_NUMBER_ATTEMPTS} attempts")


def _ingest(job, progress: _Progress) -> str:
    from apps.datasets import selectors, services
    from apps.datasets.choices import SourceKind

    store = artifact_store()
    dataset = job.dataset
    limits = ingest_limits()
    rules = dict(dataset.validation_rules or {})
    latest = selectors.dataset_version_latest(dataset=dataset)
    previous_schema = latest.schema if latest is not None else None
    attempt = _Attempt(store)
    original_stored_key = ""  # an upload: the staged object, copied inside the store as the version's original
    try:
        with tempfile.TemporaryDirectory(prefix="ingest-") as tmp:
            workdir = Path(tmp)
            if job.source_kind == SourceKind.SQL:
                from workers.ml.data.pipeline import process_sql

                progress.report(0.02, "Running the query.", force=True)
                processed = process_sql(
                    dsn=selectors.connection_dsn(connection=job.connection),
                    query=job.query,
                    workdir=workdir,
                    limits=limits,
                    rules=rules,
                    previous_schema=previous_schema,
                    progress=progress,
                )
                existing = selectors.dataset_version_by_sha256(dataset=dataset, sha256=processed.original_sha256)
                if existing is not None:
                    services.ingestion_job_deduplicate(job_id=job.pk, version=existing)
                    return "deduplicated"
                original = workdir / "query.sql"
                original.write_text(job.query, encoding="utf-8")
                original_sha = file_sha256(original)
                extension, file_format = ".sql", "sql"
            else:
                from workers.ml.data.pipeline import process_file

                progress.report(0.01, "Fetching the file.", force=True)
                upload = job.source_kind == SourceKind.UPLOAD
                if upload:
                    source, display_name, sha = workdir / "source", job.source_display, _staged_sha256(job, store)
                else:
                    source, display_name, sha = _fetch_source(job, workdir, limits)
                existing = selectors.dataset_version_by_sha256(dataset=dataset, sha256=sha)
                if existing is not None:  # before any parsing (and any download): identical bytes, same version
                    services.ingestion_job_deduplicate(job_id=job.pk, version=existing)
                    return "deduplicated"

                def process():
                    return process_file(
                        source,
                        workdir,
                        display_name=display_name,
                        limits=limits,
                        rules=rules,
                        previous_schema=previous_schema,
                        progress=progress,
                    )

                if upload:
                    sha = _fetch_staged(job, store, source)
                    processed = _process_staged(job, source, sha, process)
                    original_stored_key = job.staging_key
                else:
                    processed = process()
                original, original_sha = source, sha
                extension = processed.source_format.extension
                file_format = extension.lstrip(".")
            progress.report(0.92, "Storing the version.", force=True)
            fields = _processed_fields(processed, file_format=file_format, rules=rules)
            return _store_and_record(
                job,
                store,
                attempt,
                processed=processed,
                original=original,
                original_sha=original_sha,
                extension=extension,
                fields=fields,
                original_stored_key=original_stored_key,
            )
    except BaseException:
        attempt.discard()
        raise


@shared_task(
    name="datasets.ingest",
    base=ContextTask,
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=SOFT_TIME_LIMIT,
    time_limit=HARD_TIME_LIMIT,
    max_retries=MAX_RETRIES,
)
def ingest_dataset_task(self, job_id: str) -> str:
    """Ingest one job; returns what happened: succeeded, deduplicated, failed, cancelled, retrying or skipped."""
    from apps.datasets import services

    job = services.ingestion_job_claim(job_id=job_id, task_id=self.request.id or "")
    if job is None:
        return "skipped"
    staging_key = job.staging_key
    keep_staging = False
    try:
        with _heartbeat(job.pk):
            return _ingest(job, _Progress(job.pk))
    except IngestError as exc:
        services.ingestion_job_fail(job_id=job.pk, code=exc.code, message=exc.message)
        return "failed"
    except (JobCancelled, services.JobNotRunning):
        return "cancelled"
    except ChecksumMismatch:
        logger.exception("ingestion job %s: a stored object is corrupt", job.pk)
        services.ingestion_job_fail(
            job_id=job.pk,
            code="source_unavailable",
            message="The staged file was damaged in storage (its checksum does not match). Upload it again.",
        )
        return "failed"
    except SoftTimeLimitExceeded:
        services.ingestion_job_fail(
            job_id=job.pk,
            code="time_limit",
            message=f"The ingestion took longer than {SOFT_TIME_LIMIT // 60} minutes and was stopped. Try a smaller "
            "file or query.",
        )
        return "failed"
    except Exception as exc:
        if not is_transient(exc):
            logger.exception("ingestion job %s failed unexpectedly", job.pk)
            services.ingestion_job_fail(
                job_id=job.pk,
                code="internal_error",
                message=f"The ingestion failed unexpectedly. Operators can find the details under task id "
                f"{self.request.id or '-'} in the worker log.",
            )
            return "failed"
        if self.request.retries < self.max_retries and not self.request.is_eager:
            keep_staging = True
            logger.warning("ingestion job %s: transient error, retrying: %s", job.pk, exc)
            services.ingestion_job_progress(job_id=job.pk, fraction=0.0, message="Waiting to retry.")
            raise self.retry(exc=exc, countdown=min(300, 10 * 2**self.request.retries)) from exc
        logger.exception("ingestion job %s: giving up after transient errors", job.pk)
        services.ingestion_job_fail(
            job_id=job.pk,
            code="source_unavailable",
            message="Storage or the database was unavailable, also on retry. Try again later.",
        )
        return "failed"
    finally:
        if staging_key and not keep_staging:
            try:
                artifact_store().delete(staging_key)
            except StorageError:
                logger.warning("could not delete the staged upload %s", staging_key, exc_info=True)
