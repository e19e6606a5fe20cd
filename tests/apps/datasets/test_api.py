"""The datasets API: each endpoint's answer, its error shape, and pinned query counts for the lists."""

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from apps.accounts.choices import Role
from apps.accounts.models import User
from apps.audit.models import AuditEvent
from apps.datasets import services
from apps.datasets.choices import JobStatus
from apps.datasets.models import DataConnection, Dataset, IngestionJob
from tests.workers.tasks.dataset_helpers import make_version, queued_job, state, store_keys

pytestmark = pytest.mark.django_db

CSV = b"customer_id,email,age\n1,a@example.com,31\n2,b@example.com,42\n"


def url(project, *parts) -> str:
    return "/api/v1/projects/" + str(project.pk) + "/" + "".join(f"{part}/" for part in parts)


@pytest.fixture
def client(api_client_as, scientist):
    # A fresh instance, as a request would load: the policy caches membership roles on the user object.
    return api_client_as(User.objects.get(pk=scientist.pk))


# --- Datasets ---------------------------------------------------------------------------------------------------
def test_create_dataset_answers_201_with_the_dataset(client, project, scientist):
    response = client.post(url(project, "datasets"), {"name": "churn", "description": "Monthly"}, format="json")

    assert response.status_code == 201
    body = response.json()
    dataset = Dataset.objects.get()
    assert body == {
        "id": str(dataset.pk),
        "project": str(project.pk),
        "name": "churn",
        "description": "Monthly",
        "created_by": scientist.username,
        "created_at": body["created_at"],
        "updated_at": body["updated_at"],
        "latest_version_number": None,
        "version_count": 0,
        "validation_rules": {},
        "column_marks": {},
    }


def test_duplicate_dataset_name_is_a_400_naming_the_field(client, project, dataset):
    response = client.post(url(project, "datasets"), {"name": "churn"}, format="json")
    assert response.status_code == 400
    assert response.json() == {
        "message": "A dataset with this name already exists in the project.",
        "errors": {"name": ["A dataset with this name already exists in the project."]},
    }


def test_dataset_list_is_paginated_and_its_query_count_is_pinned(client, project, scientist, django_assert_num_queries):
    for index in range(6):
        make_version(services.dataset_create(project=project, actor=scientist, name=f"set-{index}"), 1)

    # project (visibility), count, page: the same whatever the number of datasets
    with django_assert_num_queries(3):
        response = client.get(url(project, "datasets"), {"page_size": 4})

    body = response.json()
    assert (response.status_code, body["count"], len(body["results"])) == (200, 6, 4)
    assert [row["name"] for row in body["results"]] == ["set-0", "set-1", "set-2", "set-3"]
    assert body["results"][0]["latest_version_number"] == 1


def test_dataset_list_filters_by_name(client, project, dataset, scientist):
    services.dataset_create(project=project, actor=scientist, name="payments")
    response = client.get(url(project, "datasets"), {"search": "pay"})
    assert [row["name"] for row in response.json()["results"]] == ["payments"]


def test_patch_changes_only_the_description(client, project, dataset):
    response = client.patch(url(project, "datasets", dataset.pk), {"description": "EU only"}, format="json")
    assert (response.status_code, response.json()["description"], response.json()["name"]) == (200, "EU only", "churn")


def test_dataset_of_another_project_is_404(client, project, project_factory, admin_user):
    other = project_factory()
    foreign = services.dataset_create(project=other, actor=admin_user, name="foreign")
    assert client.get(url(project, "datasets", foreign.pk)).status_code == 404


def test_rules_round_trip_normalised(client, project, dataset):
    response = client.put(
        url(project, "datasets", dataset.pk, "rules"),
        {"min_rows": 1000, "ranges": {"age": {"min": 0, "max": 120}}},
        format="json",
    )
    expected = {
        "expected_columns": None,
        "max_missing_share": None,
        "max_missing_share_by_column": {},
        "ranges": {"age": {"min": 0, "max": 120}},
        "allowed_categories": {},
        "unique_columns": [],
        "min_rows": 1000,
    }
    assert (response.status_code, response.json()) == (200, expected)
    assert client.get(url(project, "datasets", dataset.pk, "rules")).json() == expected


def test_bad_rules_are_a_400_with_field_errors(client, project, dataset):
    response = client.put(url(project, "datasets", dataset.pk, "rules"), {"min_rows": "many"}, format="json")
    body = response.json()
    assert response.status_code == 400
    assert body["message"] == "The validation rules are not valid: correct the fields marked."
    assert list(body["errors"]) == ["min_rows"]


def test_column_marks_patch_and_get(client, project, dataset):
    make_version(dataset, 1)
    response = client.patch(
        url(project, "datasets", dataset.pk, "column-marks"), {"marks": {"email": {"personal": True}}}, format="json"
    )
    expected = {"marks": {"email": {"personal": True, "sensitive": False, "excluded": False}}}
    assert (response.status_code, response.json()) == (200, expected)
    assert client.get(url(project, "datasets", dataset.pk, "column-marks")).json() == expected


def test_marking_an_unknown_column_is_a_400_on_that_column(client, project, dataset):
    make_version(dataset, 1)
    response = client.patch(
        url(project, "datasets", dataset.pk, "column-marks"), {"marks": {"salary": {"personal": True}}}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["errors"] == {"salary": ["The newest version has no column with this name."]}


# --- Uploads ----------------------------------------------------------------------------------------------------
def test_upload_answers_202_with_the_queued_job(client, project, dataset, file_store, scientist):
    upload = SimpleUploadedFile("customers.csv", CSV, content_type="text/csv")

    response = client.post(url(project, "datasets", dataset.pk, "uploads"), {"file": upload}, format="multipart")

    assert response.status_code == 202
    job = IngestionJob.objects.get()
    body = response.json()
    assert body == {
        "id": str(job.pk),
        "project": str(project.pk),
        "dataset": str(dataset.pk),
        "dataset_name": "churn",
        "source_kind": "upload",
        "source_display": "customers.csv",
        "s3_uri": "",
        "connection": None,
        "query": "",
        "status": "queued",
        "progress": 0.0,
        "progress_message": "Waiting for a worker.",
        "error_code": "",
        "error": "",
        "queued_at": body["queued_at"],
        "started_at": None,
        "finished_at": None,
        "attempts": 0,
        "version_number": None,
        "deduplicated": False,
        "created_by": scientist.username,
    }
    assert file_store.get_bytes(job.staging_key) == CSV


def test_upload_without_a_file_is_a_400_on_file(client, project, dataset, file_store):
    response = client.post(url(project, "datasets", dataset.pk, "uploads"), {}, format="multipart")
    assert response.status_code == 400
    assert response.json() == {"message": "Invalid input.", "errors": {"file": ["No file was submitted."]}}
    assert IngestionJob.objects.count() == 0


class UnreadableBody(io.RawIOBase):
    """A request body that fails the test if anyone reads it."""

    def read(self, *args):
        raise AssertionError("the body was read")

    readline = read


def big_request(client, path, *, declared: int):
    return client.generic(
        "POST",
        path,
        b"",
        content_type="multipart/form-data; boundary=XYZ",
        CONTENT_LENGTH=str(declared),
        **{"wsgi.input": UnreadableBody()},
    )


def test_upload_declared_over_the_limit_gets_413_without_the_body_being_read(
    client, project, dataset, file_store, settings
):
    settings.DATASET_MAX_UPLOAD_BYTES = 10 * 1024**2
    before = state()

    response = big_request(client, url(project, "datasets", dataset.pk, "uploads"), declared=50 * 1024**3)

    assert response.status_code == 413
    assert response.json() == {
        "message": "The file is larger than the 10.0 MB limit.",
        "errors": {"file": ["The file is larger than the 10.0 MB limit."]},
    }
    assert state() == before
    assert store_keys(file_store) == []


def test_session_user_over_the_limit_gets_413_before_the_csrf_check_reads_the_body(
    project, dataset, scientist, file_store
):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(scientist)  # a session, so DRF's SessionAuthentication runs its CSRF check
    before = state()

    response = big_request(client, url(project, "datasets", dataset.pk, "uploads"), declared=3 * 1024**3)

    assert response.status_code == 413
    assert response.json()["errors"] == {"file": ["The file is larger than the 2.0 GB limit."]}
    assert state() == before


def never_called(**kwargs):
    raise AssertionError("the whole body was parsed and handed to the service")


def test_upload_body_growing_past_the_limit_is_stopped_while_parsing(
    client, project, dataset, file_store, settings, monkeypatch
):
    settings.DATASET_MAX_UPLOAD_BYTES = 1000  # the multipart overhead allowance lets the declared length pass
    monkeypatch.setattr(services, "ingestion_start_upload", never_called)
    before = state()
    upload = SimpleUploadedFile("big.csv", b"a,b\n" + b"1,2\n" * 1000, content_type="text/csv")

    response = client.post(url(project, "datasets", dataset.pk, "uploads"), {"file": upload}, format="multipart")

    assert response.status_code == 413
    assert response.json()["message"] == "The file is larger than the 1000 bytes limit."
    assert state() == before
    assert store_keys(file_store) == []


def test_traversal_file_name_never_reaches_a_path(client, project, dataset, file_store, tmp_path):
    upload = SimpleUploadedFile("../../etc/passwd.csv", CSV, content_type="text/csv")

    response = client.post(url(project, "datasets", dataset.pk, "uploads"), {"file": upload}, format="multipart")

    assert response.status_code == 202
    job = IngestionJob.objects.get()
    # Django keeps only the last segment of an uploaded file name; the service keeps it as text only.
    assert response.json()["source_display"] == "passwd.csv"
    assert store_keys(file_store) == [f"projects/{project.pk}/uploads/{job.pk}/original"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["artifacts"]


# --- Other sources ----------------------------------------------------------------------------------------------
def test_s3_ingestion_answers_202(client, project, dataset, settings):
    settings.DATASET_IMPORT_S3_PREFIXES = ["s3://landing/exports/"]
    response = client.post(
        url(project, "datasets", dataset.pk, "ingestions"),
        {"source": "s3", "uri": "s3://landing/exports/customers.csv"},
        format="json",
    )
    assert (response.status_code, response.json()["source_kind"], response.json()["s3_uri"]) == (
        202,
        "s3",
        "s3://landing/exports/customers.csv",
    )


def test_s3_uri_outside_the_prefixes_is_a_400_on_uri(client, project, dataset, settings):
    settings.DATASET_IMPORT_S3_PREFIXES = ["s3://landing/exports/"]
    response = client.post(
        url(project, "datasets", dataset.pk, "ingestions"), {"source": "s3", "uri": "s3://private/x.csv"}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["errors"] == {"uri": ["Objects can be imported only from: s3://landing/exports/."]}


def make_connection(project, actor, **overrides) -> DataConnection:
    values = {
        "name": "warehouse",
        "host": "db.internal",
        "port": 5432,
        "database": "sales",
        "username": "reader",
        "password": "s3cr3t-p@ss",
    }
    values.update(overrides)
    return services.connection_create(project=project, actor=actor, **values)


def test_sql_insert_is_a_400_on_query_at_once(client, project, dataset, scientist):
    connection = make_connection(project, scientist)
    response = client.post(
        url(project, "datasets", dataset.pk, "ingestions"),
        {"source": "sql", "connection": str(connection.pk), "query": "INSERT INTO t VALUES (1)"},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["errors"] == {
        "query": ["Only a read-only SELECT query is allowed: this statement would change data or the database."]
    }
    assert IngestionJob.objects.count() == 0


def test_sql_with_an_unknown_connection_is_a_400_on_connection(client, project, dataset):
    response = client.post(
        url(project, "datasets", dataset.pk, "ingestions"),
        {"source": "sql", "connection": "00000000-0000-0000-0000-000000000001", "query": "SELECT 1"},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["errors"] == {"connection": ["Choose a connection of this project."]}


def test_sql_select_answers_202(client, project, dataset, scientist):
    connection = make_connection(project, scientist)
    response = client.post(
        url(project, "datasets", dataset.pk, "ingestions"),
        {"source": "sql", "connection": str(connection.pk), "query": "SELECT * FROM customers"},
        format="json",
    )
    assert (response.status_code, response.json()["connection"], response.json()["query"]) == (
        202,
        str(connection.pk),
        "SELECT * FROM customers",
    )


# --- Jobs -------------------------------------------------------------------------------------------------------
def test_job_list_filters_and_pins_its_query_count(client, project, dataset, scientist, django_assert_num_queries):
    version = make_version(dataset, 1)
    for _ in range(4):
        queued_job(dataset, scientist, status=JobStatus.SUCCEEDED, version=version)
    queued_job(dataset, scientist)

    with django_assert_num_queries(3):
        response = client.get(url(project, "ingestion-jobs"), {"status": "succeeded", "dataset": str(dataset.pk)})

    body = response.json()
    assert (body["count"], {row["version_number"] for row in body["results"]}) == (4, {1})


def test_cancel_a_job_then_cancel_again_is_409(client, project, dataset, scientist):
    job = queued_job(dataset, scientist)
    response = client.post(url(project, "ingestion-jobs", job.pk, "cancel"))
    assert (response.status_code, response.json()["status"]) == (200, "cancelled")

    again = client.post(url(project, "ingestion-jobs", job.pk, "cancel"))
    assert (again.status_code, again.json()) == (409, {"message": "The job is already cancelled.", "errors": {}})


# --- Versions ---------------------------------------------------------------------------------------------------
def test_version_list_pins_its_query_count(client, project, dataset, django_assert_num_queries):
    for number in range(1, 6):
        make_version(dataset, number)
    # project, dataset, count, page
    with django_assert_num_queries(4):
        response = client.get(url(project, "datasets", dataset.pk, "versions"))
    assert [row["number"] for row in response.json()["results"]] == [5, 4, 3, 2, 1]


def test_version_detail_shows_what_training_and_model_cards_need(client, project, dataset, scientist):
    make_version(dataset, 1, passed=False)
    services.dataset_column_marks_set(dataset=dataset, actor=scientist, marks={"age": {"sensitive": True}})

    body = client.get(url(project, "datasets", dataset.pk, "versions", 1)).json()

    assert (body["number"], body["validation_status"], body["usable_for_training"], body["overridden"]) == (
        1,
        "failed",
        False,
        False,
    )
    assert [(c["name"], c["sensitive"], [f["kind"] for f in c["pii"]]) for c in body["columns"]] == [
        ("customer_id", False, []),
        ("email", False, ["email"]),
        ("age", True, []),
    ]


def test_override_through_the_api(client, project, dataset, scientist):
    make_version(dataset, 1, passed=False)
    short = client.post(url(project, "datasets", dataset.pk, "versions", 1, "override"), {"reason": "ok"})
    assert (short.status_code, short.json()["errors"]) == (
        400,
        {"reason": ["Explain the override in at least 20 characters."]},
    )

    response = client.post(
        url(project, "datasets", dataset.pk, "versions", 1, "override"),
        {"reason": "The pilot export is small by design."},
        format="json",
    )
    body = response.json()
    assert (response.status_code, body["usable_for_training"], body["overridden_by"], body["override_reason"]) == (
        200,
        True,
        scientist.username,
        "The pilot export is small by design.",
    )


def test_compare_two_versions(client, project, dataset):
    make_version(dataset, 1, rows=10)
    make_version(
        dataset,
        2,
        rows=7,
        schema=[{"name": "customer_id", "dtype": "int64", "nullable": False, "semantic_type": "id"}],
    )
    response = client.get(url(project, "datasets", dataset.pk, "versions", 2, "compare"), {"with": 1})
    assert response.json() == {
        "old": 1,
        "new": 2,
        "added": [],
        "removed": ["email", "age"],
        "type_changed": [],
        "unchanged": 1,
        "row_count": {"old": 10, "new": 7, "delta": -3},
        "column_count": {"old": 3, "new": 1, "delta": -2},
    }
    missing = client.get(url(project, "datasets", dataset.pk, "versions", 2, "compare"), {"with": 9})
    assert (missing.status_code, missing.json()["errors"]) == (400, {"with": ["The dataset has no version 9."]})


def test_download_streams_the_stored_bytes_with_a_safe_file_name(client, project, dataset, file_store, scientist):
    Dataset.objects.filter(pk=dataset.pk).update(name='churn "EU"/../x')
    dataset.refresh_from_db()
    version = make_version(dataset, 1, original_size=len(CSV))
    file_store.put_bytes(version.original_key, CSV)

    response = client.get(url(project, "datasets", dataset.pk, "versions", 1, "download"), {"artifact": "original"})

    assert response.status_code == 200
    assert b"".join(response.streaming_content) == CSV
    assert response["Content-Type"] == "text/csv"
    assert response["Content-Disposition"] == 'attachment; filename="churn-EU-x-v1.csv"'
    assert AuditEvent.objects.filter(action="dataset.version_download", actor=scientist).count() == 1


def test_download_of_an_unknown_artifact_is_a_400(client, project, dataset):
    make_version(dataset, 1)
    response = client.get(url(project, "datasets", dataset.pk, "versions", 1, "download"), {"artifact": "secrets"})
    assert (response.status_code, response.json()["errors"]) == (400, {"artifact": ["Choose original or parquet."]})


# --- Connections ------------------------------------------------------------------------------------------------
def test_connection_password_is_write_only(client, project):
    created = client.post(
        url(project, "connections"),
        {"name": "warehouse", "host": "db", "port": 5432, "database": "sales", "username": "r", "password": "pw-123"},
        format="json",
    )
    connection = DataConnection.objects.get()
    listed = client.get(url(project, "connections"))
    detail = client.get(url(project, "connections", connection.pk))
    patched = client.patch(url(project, "connections", connection.pk), {"host": "db2"}, format="json")

    assert created.status_code == 201
    assert created.json() == {
        "id": str(connection.pk),
        "project": str(project.pk),
        "name": "warehouse",
        "engine": "postgresql",
        "host": "db",
        "port": 5432,
        "database": "sales",
        "username": "r",
        "password_set": True,
        "created_by": connection.created_by.username,
        "created_at": created.json()["created_at"],
        "updated_at": created.json()["updated_at"],
    }
    assert (patched.status_code, patched.json()["host"]) == (200, "db2")
    for response in (created, listed, detail, patched):
        assert b"pw-123" not in response.content
        assert b"encrypted" not in response.content


def test_connection_delete_answers_204_or_409_when_used(client, project, dataset, scientist):
    used = make_connection(project, scientist)
    services.ingestion_start_sql(dataset=dataset, actor=scientist, connection=used, query="SELECT 1")
    unused = make_connection(project, scientist, name="spare")

    assert client.delete(url(project, "connections", unused.pk)).status_code == 204
    refused = client.delete(url(project, "connections", used.pk))
    assert refused.status_code == 409
    assert list(DataConnection.objects.values_list("name", flat=True)) == ["warehouse"]


def test_connection_list_pins_its_query_count(client, project, scientist, django_assert_num_queries):
    for index in range(4):
        make_connection(project, scientist, name=f"db-{index}")
    # project, membership (policy), count, page
    with django_assert_num_queries(4):
        response = client.get(url(project, "connections"))
    assert response.json()["count"] == 4


def test_reviewer_sees_no_connection(api_client_as, project, scientist, member):
    make_connection(project, scientist)
    response = api_client_as(member(Role.REVIEWER)).get(url(project, "connections"))
    assert response.status_code == 403


def test_session_upload_growing_past_the_limit_is_stopped_while_the_csrf_check_parses_it(
    project, dataset, scientist, file_store, settings, monkeypatch
):
    settings.DATASET_MAX_UPLOAD_BYTES = 1000
    monkeypatch.setattr(services, "ingestion_start_upload", never_called)
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(scientist)
    client.cookies["csrftoken"] = "a" * 32  # with a CSRF cookie, the check reads the body for the form token
    before = state()
    upload = SimpleUploadedFile("big.csv", b"a,b\n" + b"1,2\n" * 1000, content_type="text/csv")

    response = client.post(url(project, "datasets", dataset.pk, "uploads"), {"file": upload}, format="multipart")

    assert response.status_code == 413
    assert state() == before
    assert store_keys(file_store) == []
