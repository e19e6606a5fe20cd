"""S3 against a real S3-compatible server (SeaweedFS, tests/support/seaweedfs.py): importing an object that is already
in a bucket, and ingesting into an artifact store that is itself S3 (conditional writes included)."""

import uuid

import pytest

from apps.datasets import services
from apps.datasets.choices import JobStatus, SourceKind
from apps.datasets.models import DatasetVersion
from tests.workers.tasks.dataset_helpers import store_keys, upload_job
from workers.tasks.datasets import ingest_dataset_task

pytestmark = pytest.mark.django_db

CSV = b"customer_id,email,age\n1,ann@example.com,31\n2,bob@example.org,42\n"


def run(job) -> str:
    return ingest_dataset_task.apply(args=[str(job.pk)], task_id=f"task-{uuid.uuid4()}").get()


@pytest.fixture
def s3_env(s3_server, settings, monkeypatch):
    """The portal's S3 settings and credentials pointing at the test server."""
    settings.S3_ENDPOINT_URL = s3_server.endpoint_url
    settings.S3_REGION = s3_server.region
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_key)
    return s3_server


@pytest.fixture
def landing(s3_env, settings):
    """A bucket others write exports to; the platform may import from its exports/ folder."""
    bucket = s3_env.make_bucket("landing")
    settings.DATASET_IMPORT_S3_PREFIXES = [f"s3://{bucket}/exports/"]
    return bucket


def test_an_object_under_an_allowed_prefix_becomes_a_version(landing, s3_env, dataset, scientist, file_store):
    s3_env.client().put_object(Bucket=landing, Key="exports/2024/customers.csv", Body=CSV)  # no recorded SHA-256
    uri = f"s3://{landing}/exports/2024/customers.csv"
    job = services.ingestion_start_s3(dataset=dataset, actor=scientist, uri=uri)

    assert run(job) == "succeeded"

    version = DatasetVersion.objects.get()
    assert (version.source_kind, version.source_display, version.row_count, version.file_format) == (
        SourceKind.S3,
        uri,
        2,
        "csv",
    )
    assert file_store.get_bytes(version.original_key) == CSV
    # the source object is left as it was
    assert s3_env.client().get_object(Bucket=landing, Key="exports/2024/customers.csv")["Body"].read() == CSV


def test_importing_the_same_object_twice_deduplicates(landing, s3_env, dataset, scientist, file_store):
    s3_env.client().put_object(Bucket=landing, Key="exports/customers.csv", Body=CSV)
    uri = f"s3://{landing}/exports/customers.csv"
    run(services.ingestion_start_s3(dataset=dataset, actor=scientist, uri=uri))

    assert run(services.ingestion_start_s3(dataset=dataset, actor=scientist, uri=uri)) == "deduplicated"
    assert DatasetVersion.objects.count() == 1


def test_a_missing_object_fails_with_source_unavailable(landing, dataset, scientist, file_store):
    uri = f"s3://{landing}/exports/nothing-here.csv"
    job = services.ingestion_start_s3(dataset=dataset, actor=scientist, uri=uri)

    run(job)

    job.refresh_from_db()
    assert (job.status, job.error_code, job.error) == (
        JobStatus.FAILED,
        "source_unavailable",
        f"There is no object at {uri}.",
    )
    assert store_keys(file_store) == []


def test_an_object_over_the_size_limit_is_refused(landing, s3_env, dataset, scientist, file_store, settings):
    settings.DATASET_MAX_UPLOAD_BYTES = 40
    s3_env.client().put_object(Bucket=landing, Key="exports/big.csv", Body=CSV)
    job = services.ingestion_start_s3(dataset=dataset, actor=scientist, uri=f"s3://{landing}/exports/big.csv")

    run(job)

    job.refresh_from_db()
    assert (job.status, job.error_code, job.error) == (
        JobStatus.FAILED,
        "too_large",
        "The object is larger than the 40 bytes limit.",
    )
    assert DatasetVersion.objects.count() == 0


def test_a_bucket_the_platform_cannot_read_fails_clearly(s3_env, settings, dataset, scientist, file_store):
    settings.DATASET_IMPORT_S3_PREFIXES = ["s3://no-such-bucket-for-mlp/exports/"]
    job = services.ingestion_start_s3(dataset=dataset, actor=scientist, uri="s3://no-such-bucket-for-mlp/exports/x.csv")

    run(job)

    job.refresh_from_db()
    assert (job.status, job.error_code) == (JobStatus.FAILED, "source_unavailable")


def test_ingesting_into_an_s3_artifact_store_uses_conditional_writes(s3_env, settings, dataset, scientist):
    bucket = s3_env.make_bucket("artifacts")
    settings.ARTIFACT_STORE = f"s3://{bucket}/platform"
    from apps.core.artifacts import artifact_store

    store = artifact_store()
    taken = f"projects/{dataset.project_id}/datasets/{dataset.pk}/v1/original.csv"
    store.put_bytes(taken, b"another job's bytes")  # v1 is taken by a job that has not recorded yet

    job = upload_job(dataset, scientist, CSV)
    assert run(job) == "succeeded"

    version = DatasetVersion.objects.get()
    assert version.number == 2
    assert store.get_bytes(taken) == b"another job's bytes"
    assert store.get_bytes(version.original_key) == CSV
    assert store.stat(version.parquet_key).sha256 == version.parquet_sha256
    assert store_keys(store) == sorted([taken, version.original_key, version.parquet_key])  # staging removed


def test_download_from_an_s3_store_redirects_to_a_presigned_url(s3_env, settings, dataset, scientist, api_client_as):
    import urllib.request

    settings.ARTIFACT_STORE = f"s3://{s3_env.make_bucket('artifacts')}/platform"
    run(upload_job(dataset, scientist, CSV))
    version = DatasetVersion.objects.get()

    response = api_client_as(scientist).get(
        f"/api/v1/projects/{dataset.project_id}/datasets/{dataset.pk}/versions/1/download/", {"artifact": "original"}
    )

    assert response.status_code == 302
    location = response["Location"]
    assert location.startswith(s3_env.endpoint_url + "/")
    with urllib.request.urlopen(location, timeout=10) as download:  # noqa: S310 (loopback test server)
        assert download.read() == CSV
        assert 'filename="churn-v1.csv"' in download.headers["Content-Disposition"]
    assert version.original_key in location
