"""datasets.ingest run in-process (eagerly): each format and source, dedup, each bad input end to end, races,
redelivery, cancellation, retries. Bad input leaves no version, no object in the store, and a failed job naming it."""

import gzip
import hashlib
import io
import json
import time
import uuid
from datetime import timedelta

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from celery.exceptions import Retry
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.core.exceptions import ApplicationError
from apps.datasets import services
from apps.datasets.choices import JobStatus, SourceKind, ValidationStatus
from apps.datasets.models import DatasetVersion, IngestionJob
from tests.support.storage import overwrite_behind_the_stores_back
from tests.workers.tasks.dataset_helpers import queued_job, store_keys, upload_job
from workers.tasks import datasets as task_module
from workers.tasks.datasets import ingest_dataset_task

pytestmark = pytest.mark.django_db

ROWS = [(1, "ann@example.com", 31), (2, "bob@example.org", 42), (3, "cid@example.net", 27)]
CSV = b"customer_id,email,age\n" + b"".join(f"{i},{e},{a}\n".encode() for i, e, a in ROWS)


def parquet_bytes() -> bytes:
    table = pa.table({"customer_id": [r[0] for r in ROWS], "email": [r[1] for r in ROWS], "age": [r[2] for r in ROWS]})
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def jsonl_bytes() -> bytes:
    return b"".join(json.dumps({"customer_id": i, "email": e, "age": a}).encode() + b"\n" for i, e, a in ROWS)


FORMATS = {
    "customers.csv": (CSV, "csv"),
    "customers.tsv": (CSV.replace(b",", b"\t"), "tsv"),
    "customers.parquet": (parquet_bytes(), "parquet"),
    "customers.jsonl": (jsonl_bytes(), "jsonl"),
    "customers.csv.gz": (gzip.compress(CSV, mtime=0), "csv.gz"),
    "customers.jsonl.gz": (gzip.compress(jsonl_bytes(), mtime=0), "jsonl.gz"),
}


def run(job) -> str:
    return ingest_dataset_task.apply(args=[str(job.pk)], task_id=f"task-{uuid.uuid4()}").get()


def version_keys(dataset, number: int, extension: str) -> list[str]:
    prefix = f"projects/{dataset.project_id}/datasets/{dataset.pk}/v{number}"
    return sorted([f"{prefix}/data.parquet", f"{prefix}/original{extension}"])


# --- Each format and source -------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(FORMATS))
def test_each_upload_format_becomes_a_version(name, dataset, scientist, file_store):
    data, file_format = FORMATS[name]
    job = upload_job(dataset, scientist, data, name=name)

    assert run(job) == "succeeded"

    job.refresh_from_db()
    version = DatasetVersion.objects.get()
    assert (job.status, job.version, job.progress, job.error_code) == (JobStatus.SUCCEEDED, version, 1.0, "")
    assert (version.number, version.row_count, version.column_count, version.file_format) == (1, 3, 3, file_format)
    assert [column["name"] for column in version.schema] == ["customer_id", "email", "age"]
    assert {finding["column"] for finding in version.pii_findings} >= {"email"}
    assert (version.source_kind, version.source_display, version.created_by) == (SourceKind.UPLOAD, name, scientist)
    assert version.validation_status == ValidationStatus.PASSED
    # the original bytes as given and the normalised copy; the staged upload is gone
    assert store_keys(file_store) == version_keys(dataset, 1, "." + file_format)
    assert file_store.get_bytes(version.original_key) == data
    assert file_store.stat(version.parquet_key).sha256 == version.parquet_sha256
    table = pq.read_table(io.BytesIO(file_store.get_bytes(version.parquet_key)))
    assert table.column("email").to_pylist() == [r[1] for r in ROWS]
    event = AuditEvent.objects.get(action="dataset.version_create")
    assert (event.object_id, event.after["number"], event.request_id.startswith("task-")) == (
        str(version.pk),
        1,
        True,
    )


def test_identical_bytes_give_the_same_version(dataset, scientist, file_store):
    first = upload_job(dataset, scientist, CSV)
    run(first)
    keys = store_keys(file_store)

    second = upload_job(dataset, scientist, CSV, name="renamed-copy.csv")
    assert run(second) == "deduplicated"

    second.refresh_from_db()
    assert DatasetVersion.objects.count() == 1
    assert (second.status, second.deduplicated, second.version.number) == (JobStatus.SUCCEEDED, True, 1)
    assert store_keys(file_store) == keys
    assert AuditEvent.objects.filter(action="dataset.ingest_deduplicated", object_id=str(second.pk)).count() == 1


def test_dedup_is_decided_before_any_parsing(dataset, scientist, file_store, monkeypatch):
    run(upload_job(dataset, scientist, CSV))

    def must_not_parse(*args, **kwargs):
        raise AssertionError("parsed a duplicate")

    monkeypatch.setattr("workers.ml.data.pipeline.process_file", must_not_parse)
    assert run(upload_job(dataset, scientist, CSV)) == "deduplicated"


def test_a_second_different_file_becomes_version_two_and_schema_drift_fails_validation(dataset, scientist, file_store):
    run(upload_job(dataset, scientist, CSV))
    drifted = b"customer_id,email,age,plan\n1,a@example.com,31,gold\n"

    run(upload_job(dataset, scientist, drifted))

    version = DatasetVersion.objects.get(number=2)
    assert (version.row_count, version.column_count, version.validation_status) == (1, 4, ValidationStatus.FAILED)
    assert version.usable_for_training is False


def test_rules_set_in_the_dataset_apply_to_the_new_version(dataset, scientist, file_store):
    services.dataset_rules_set(dataset=dataset, actor=scientist, rules={"min_rows": 1000})

    run(upload_job(dataset, scientist, CSV))

    version = DatasetVersion.objects.get()
    assert version.validation_status == ValidationStatus.FAILED
    assert version.validation_rules["min_rows"] == 1000
    failed = [check for check in version.validation_report["checks"] if not check["passed"]]
    assert [check["rule"] for check in failed] == ["min_rows"]
    with pytest.raises(ApplicationError):
        services.version_require_usable_for_training(version=version)


# --- Bad input, end to end --------------------------------------------------------------------------------------
def bomb() -> bytes:
    return gzip.compress(b"a,b\n" + b"0,0\n" * 2_000_000, mtime=0)


BAD_INPUTS = {
    "empty_file": ("empty.csv", b""),
    "header_only": ("header.csv", b"customer_id,email,age\n"),
    "ragged_rows": ("ragged.csv", b"a,b,c\n1,2,3\n4,5\n"),
    "binary_file": ("image.csv", b"\x89PNG\r\n\x1a\n" + b"\x00" * 200),
    "not_utf8": ("latin.csv", "name\nJos\u00e9\n".encode("utf-16")),
    "unsupported_format": ("book.xlsx", b"PK\x03\x04" + b"\x00" * 100),
    "invalid_json": ("rows.jsonl", b'{"a": 1}\n{"a": \n'),
    "duplicate_column_names": ("dupes.csv", b"a,a\n1,2\n"),
    "decompression_bomb": ("bomb.csv.gz", bomb()),
}


@pytest.mark.parametrize("code", list(BAD_INPUTS))
def test_bad_input_fails_the_job_with_its_code_and_leaves_nothing(code, dataset, scientist, file_store):
    name, data = BAD_INPUTS[code]
    job = upload_job(dataset, scientist, data, name=name)

    assert run(job) == "failed"

    job.refresh_from_db()
    assert (job.status, job.error_code) == (JobStatus.FAILED, code)
    assert job.error  # a sentence for the user
    assert job.finished_at is not None
    assert DatasetVersion.objects.count() == 0
    assert store_keys(file_store) == []  # staging deleted, nothing half-written
    event = AuditEvent.objects.get(action="dataset.ingest_failed")
    assert event.after["error_code"] == code


@pytest.mark.parametrize(
    ("setting", "value", "data", "code"),
    [
        ("DATASET_MAX_COLUMNS", 2, CSV, "too_many_columns"),
        ("DATASET_MAX_CELL_BYTES", 8, CSV, "cell_too_long"),
        ("DATASET_MAX_DECOMPRESSED_BYTES", 50, gzip.compress(CSV * 10, mtime=0), "decompression_bomb"),
    ],
)
def test_limits_from_settings_are_enforced_with_a_clear_error(
    setting, value, data, code, dataset, scientist, file_store, settings
):
    setattr(settings, setting, value)
    job = upload_job(dataset, scientist, data, name="customers.csv.gz" if data[:2] == b"\x1f\x8b" else "x.csv")

    run(job)

    job.refresh_from_db()
    assert (job.status, job.error_code) == (JobStatus.FAILED, code)
    assert DatasetVersion.objects.count() == 0
    assert store_keys(file_store) == []


def test_missing_staged_upload_fails_clearly(dataset, scientist, file_store):
    job = upload_job(dataset, scientist, CSV)
    file_store.delete(job.staging_key)

    run(job)

    job.refresh_from_db()
    assert (job.status, job.error_code, job.error) == (
        JobStatus.FAILED,
        "source_unavailable",
        "The uploaded file is no longer available (the upload did not finish).",
    )


def test_unexpected_errors_fail_the_job_and_clean_up(dataset, scientist, file_store, monkeypatch):
    def explode(*args, **kwargs):
        raise RuntimeError("bug")

    monkeypatch.setattr("workers.ml.data.pipeline.process_file", explode)
    job = upload_job(dataset, scientist, CSV)

    assert run(job) == "failed"

    job.refresh_from_db()
    assert job.error_code == "internal_error"
    assert job.error.startswith("The ingestion failed unexpectedly. Operators can find the details under task id task-")
    assert store_keys(file_store) == []


# --- Races, redelivery, cancellation, retries ------------------------------------------------------------------
def test_a_taken_version_number_moves_to_the_next(dataset, scientist, file_store):
    # Another job already wrote different bytes under v1 but has not recorded its version yet.
    taken = version_keys(dataset, 1, ".csv")
    file_store.put_bytes(taken[1], b"someone else's bytes")

    run(upload_job(dataset, scientist, CSV))

    version = DatasetVersion.objects.get()
    assert version.number == 2
    assert file_store.get_bytes(taken[1]) == b"someone else's bytes"  # never overwritten
    assert store_keys(file_store) == sorted([taken[1], *version_keys(dataset, 2, ".csv")])


def test_a_redelivered_job_reuses_what_its_first_attempt_stored(dataset, scientist, file_store):
    job = upload_job(dataset, scientist, CSV)
    original_key = version_keys(dataset, 1, ".csv")[1]
    file_store.put_bytes(original_key, CSV)  # the first attempt died after storing the original

    run(job)

    version = DatasetVersion.objects.get()
    assert (version.number, version.original_key) == (1, original_key)
    assert store_keys(file_store) == version_keys(dataset, 1, ".csv")


def test_losing_the_race_to_an_identical_job_deduplicates_and_keeps_its_files(
    dataset, scientist, file_store, monkeypatch
):
    winner = upload_job(dataset, scientist, CSV)
    run(winner)
    loser = upload_job(dataset, scientist, CSV)
    real_lookup = task_module_selectors().dataset_version_by_sha256
    calls = []

    def miss_once(**kwargs):  # the loser's early dedup check ran before the winner recorded
        calls.append(kwargs)
        return None if len(calls) == 1 else real_lookup(**kwargs)

    monkeypatch.setattr(task_module_selectors(), "dataset_version_by_sha256", miss_once)

    assert run(loser) == "deduplicated"

    loser.refresh_from_db()
    assert (loser.deduplicated, loser.version.number) == (True, 1)
    assert DatasetVersion.objects.count() == 1
    assert store_keys(file_store) == version_keys(dataset, 1, ".csv")


def task_module_selectors():
    from apps.datasets import selectors

    return selectors


def test_a_job_cancelled_while_running_stops_and_leaves_nothing(dataset, scientist, file_store, monkeypatch):
    job = upload_job(dataset, scientist, CSV)
    real_report = task_module._Progress.report

    def cancel_midway(self, fraction, message, *, force=False):
        if fraction > 0.1:
            services.ingestion_job_cancel(job=IngestionJob.objects.get(pk=job.pk), actor=scientist)
        return real_report(self, fraction, message, force=True)

    monkeypatch.setattr(task_module._Progress, "report", cancel_midway)

    assert run(job) == "cancelled"

    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED
    assert DatasetVersion.objects.count() == 0
    assert store_keys(file_store) == []


def test_a_cancelled_job_is_skipped_by_the_task(dataset, scientist, file_store):
    job = upload_job(dataset, scientist, CSV)
    services.ingestion_job_cancel(job=job, actor=scientist)

    assert run(job) == "skipped"
    assert DatasetVersion.objects.count() == 0


def test_transient_storage_errors_are_retried_keeping_the_staged_upload(dataset, scientist, file_store, monkeypatch):
    job = upload_job(dataset, scientist, CSV)
    retried = []
    monkeypatch.setattr(ingest_dataset_task, "apply_async", lambda *a, **kw: retried.append(kw))

    def network_down(*args, **kwargs):
        raise ConnectionError("connection reset by peer")

    monkeypatch.setattr(file_store, "fetch_to", network_down)
    ingest_dataset_task.push_request(id="task-retry", retries=0, is_eager=False, called_directly=False)
    try:
        with pytest.raises(Retry):
            ingest_dataset_task.run(str(job.pk))
    finally:
        ingest_dataset_task.pop_request()

    job.refresh_from_db()
    assert (job.status, job.progress_message) == (JobStatus.RUNNING, "Waiting to retry.")
    assert retried and retried[0]["countdown"] == 10
    assert store_keys(file_store) == [job.staging_key]
    # the retry (same task id) takes the running job back and finishes it
    monkeypatch.undo()
    assert services.ingestion_job_claim(job_id=job.pk, task_id="task-retry") is not None


def test_transient_errors_fail_the_job_when_retries_run_out(dataset, scientist, file_store, monkeypatch):
    job = upload_job(dataset, scientist, CSV)

    def network_down(*args, **kwargs):
        raise ConnectionError("connection reset by peer")

    monkeypatch.setattr(file_store, "fetch_to", network_down)
    ingest_dataset_task.push_request(id="task-last", retries=task_module.MAX_RETRIES, is_eager=False)
    try:
        assert ingest_dataset_task.run(str(job.pk)) == "failed"
    finally:
        ingest_dataset_task.pop_request()

    job.refresh_from_db()
    assert (job.status, job.error_code) == (JobStatus.FAILED, "source_unavailable")
    assert store_keys(file_store) == []


def test_the_task_is_configured_for_safe_redelivery():
    assert ingest_dataset_task.name == "datasets.ingest"
    assert (ingest_dataset_task.acks_late, ingest_dataset_task.reject_on_worker_lost) == (True, True)
    assert (ingest_dataset_task.soft_time_limit, ingest_dataset_task.time_limit) == (3300, 3600)


def test_periodic_sweep_task_fails_dead_jobs(dataset, scientist):
    from workers.tasks.periodic import sweep_stale_ingestion_jobs

    dead = queued_job(dataset, scientist, status=JobStatus.RUNNING, heartbeat_at=timezone.now() - timedelta(hours=1))

    assert sweep_stale_ingestion_jobs() == {"failed_stale": 1, "failed_never_started": 0, "requeued": 0}
    dead.refresh_from_db()
    assert (dead.status, dead.error_code) == (JobStatus.FAILED, "worker_lost")


@pytest.mark.django_db(transaction=True)
def test_the_heartbeat_thread_keeps_a_long_step_from_looking_dead(dataset, scientist, monkeypatch):
    job = queued_job(dataset, scientist)
    services.ingestion_job_claim(job_id=job.pk, task_id="t")
    stale = timezone.now() - timedelta(hours=1)
    IngestionJob.objects.filter(pk=job.pk).update(heartbeat_at=stale)
    monkeypatch.setattr(task_module, "HEARTBEAT_SECONDS", 0.05)

    with task_module._heartbeat(job.pk):
        deadline = timezone.now() + timedelta(seconds=10)
        while IngestionJob.objects.get(pk=job.pk).heartbeat_at == stale and timezone.now() < deadline:
            time.sleep(0.02)

    assert IngestionJob.objects.get(pk=job.pk).heartbeat_at > stale
    assert services.ingestion_jobs_sweep(stale_after_minutes=10, requeue_after_minutes=5)["failed_stale"] == 0


# --- The original of an upload is a copy of the staged object ------------------------------------------------------
def test_an_uploads_original_is_copied_from_the_staged_object_not_written_again(
    dataset, scientist, file_store, monkeypatch
):
    job = upload_job(dataset, scientist, CSV)
    staging_key = job.staging_key
    copies, puts = [], []
    real_copy, real_put = file_store.copy, file_store.put

    def spy_copy(src_key, dst_key, **kwargs):
        copies.append((src_key, dst_key, kwargs))
        return real_copy(src_key, dst_key, **kwargs)

    def spy_put(key, stream, **kwargs):
        puts.append(key)
        return real_put(key, stream, **kwargs)

    monkeypatch.setattr(file_store, "copy", spy_copy)
    monkeypatch.setattr(file_store, "put", spy_put)

    assert run(job) == "succeeded"

    parquet_key, original_key = version_keys(dataset, 1, ".csv")
    assert copies == [(staging_key, original_key, {"overwrite": False})]
    assert puts == [parquet_key]
    version = DatasetVersion.objects.get()
    assert (version.original_key, version.original_size) == (original_key, len(CSV))
    assert file_store.get_bytes(original_key) == CSV
    assert store_keys(file_store) == version_keys(dataset, 1, ".csv")


def test_a_copied_original_is_removed_when_the_version_cannot_be_recorded(dataset, scientist, file_store, monkeypatch):
    def explode(**kwargs):
        raise RuntimeError("bug")

    monkeypatch.setattr(services, "dataset_version_record", explode)
    job = upload_job(dataset, scientist, CSV)

    assert run(job) == "failed"

    job.refresh_from_db()
    assert (job.status, job.error_code) == (JobStatus.FAILED, "internal_error")
    assert DatasetVersion.objects.count() == 0
    assert store_keys(file_store) == []


def test_a_staged_object_changed_after_processing_is_not_kept_as_the_original(
    dataset, scientist, file_store, monkeypatch
):
    job = upload_job(dataset, scientist, CSV)
    real_copy = file_store.copy

    def swap_then_copy(src_key, dst_key, **kwargs):
        file_store.put_bytes(src_key, b"customer_id\n9\n")  # replaced between the download and the copy
        return real_copy(src_key, dst_key, **kwargs)

    monkeypatch.setattr(file_store, "copy", swap_then_copy)

    assert run(job) == "failed"

    job.refresh_from_db()
    assert (job.status, job.error_code) == (JobStatus.FAILED, "source_unavailable")
    assert DatasetVersion.objects.count() == 0
    assert store_keys(file_store) == []


# --- A staged upload is read once: by the pipeline, checked against the recorded digest --------------------------
def test_an_uploads_bytes_are_read_only_by_the_pipeline(dataset, scientist, file_store, monkeypatch):
    job = upload_job(dataset, scientist, CSV)

    def no_second_read(*args, **kwargs):
        raise AssertionError("read the staged upload or the Parquet copy outside the pipeline and the store's put")

    monkeypatch.setattr(file_store, "open", no_second_read)  # no verification pass, no download copy
    monkeypatch.setattr(task_module, "file_sha256", no_second_read)  # the Parquet copy hashed by put alone

    assert run(job) == "succeeded"

    version = DatasetVersion.objects.get()
    assert version.parquet_sha256 == file_store.stat(version.parquet_key).sha256
    assert version.sha256 == hashlib.sha256(CSV).hexdigest()


def test_a_duplicate_upload_is_recognised_from_the_recorded_digest_without_fetching_it(
    dataset, scientist, file_store, monkeypatch
):
    run(upload_job(dataset, scientist, CSV))

    def must_not_fetch(*args, **kwargs):
        raise AssertionError("fetched a duplicate")

    monkeypatch.setattr(file_store, "fetch_to", must_not_fetch)
    monkeypatch.setattr(file_store, "open", must_not_fetch)
    assert run(upload_job(dataset, scientist, CSV, name="again.csv")) == "deduplicated"


@pytest.mark.parametrize(
    "damaged",
    [b"customer_id,email,age\n1,ann@example.com,99\n", b"\x00\x01binary garbage"],
    ids=["still-parses", "no-longer-parses"],
)
def test_a_staged_upload_damaged_in_storage_fails_as_damaged_and_stores_nothing(
    damaged, dataset, scientist, file_store
):
    job = upload_job(dataset, scientist, CSV)
    overwrite_behind_the_stores_back(file_store, job.staging_key, damaged)  # the recorded digest is CSV's

    assert run(job) == "failed"

    job.refresh_from_db()
    assert (job.status, job.error_code) == (JobStatus.FAILED, "source_unavailable")
    assert "damaged in storage" in job.error
    assert DatasetVersion.objects.count() == 0
    assert store_keys(file_store) == []
