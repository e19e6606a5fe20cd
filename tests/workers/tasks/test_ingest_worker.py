"""End to end: an upload through the API is ingested by a real worker process from the broker."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.accounts.choices import Role
from apps.audit.models import AuditEvent
from apps.datasets import services
from apps.datasets.choices import FINISHED_JOB_STATUSES, JobStatus
from apps.datasets.models import DatasetVersion, IngestionJob
from tests.workers.tasks.dataset_helpers import store_keys


def wait_for(predicate, timeout: float = 30, interval: float = 0.2):
    from tests.support.celery_worker import wait_for as wait  # imported here: the plugin module loads first

    return wait(predicate, timeout=timeout, interval=interval)


pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

CSV = b"customer_id,email,age\n1,ann@example.com,31\n2,bob@example.org,42\n"


@pytest.fixture
def artifacts(tmp_path, settings):
    folder = tmp_path / "artifacts"
    folder.mkdir()
    settings.ARTIFACT_STORE = f"file://{folder}"
    from apps.core.artifacts import artifact_store

    return artifact_store()


@pytest.fixture
def celery_worker_env(artifacts, settings):
    return {"ARTIFACT_STORE": settings.ARTIFACT_STORE}


def finished(job_id):
    return IngestionJob.objects.filter(pk=job_id, status__in=FINISHED_JOB_STATUSES).first()


def test_an_upload_through_the_api_becomes_a_version_on_a_real_worker(
    celery_worker_process, artifacts, project, member, api_client_as
):
    scientist = member(Role.SCIENTIST)
    dataset = services.dataset_create(project=project, actor=scientist, name="churn")
    client = api_client_as(scientist)

    response = client.post(
        f"/api/v1/projects/{project.pk}/datasets/{dataset.pk}/uploads/",
        {"file": SimpleUploadedFile("customers.csv", CSV, content_type="text/csv")},
        format="multipart",
    )
    assert response.status_code == 202
    job = wait_for(lambda: finished(response.json()["id"]), timeout=60)

    assert job is not None, celery_worker_process.log()
    assert job.status == JobStatus.SUCCEEDED, (job.error_code, job.error, celery_worker_process.log())
    version = DatasetVersion.objects.get(dataset=dataset)
    assert (version.number, version.row_count, version.column_count) == (1, 2, 3)
    assert store_keys(artifacts) == sorted([version.original_key, version.parquet_key])
    event = AuditEvent.objects.get(action="dataset.version_create")
    assert event.request_id == job.task_id  # written by the worker, under the task's id
    assert f"Task datasets.ingest[{job.task_id}] succeeded" in celery_worker_process.log(10**6)

    # The same bytes again: the worker finds the identical version instead of making a copy.
    again = client.post(
        f"/api/v1/projects/{project.pk}/datasets/{dataset.pk}/uploads/",
        {"file": SimpleUploadedFile("copy.csv", CSV, content_type="text/csv")},
        format="multipart",
    )
    second = wait_for(lambda: finished(again.json()["id"]), timeout=60)
    assert second is not None, celery_worker_process.log()
    assert (second.status, second.deduplicated, second.version_id) == (JobStatus.SUCCEEDED, True, version.pk)
    assert DatasetVersion.objects.count() == 1
