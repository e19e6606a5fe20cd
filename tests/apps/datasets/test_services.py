"""Datasets services: each use case, its audit event, and that a refused call changes nothing."""

import io
from datetime import timedelta

import pytest
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.utils import timezone

from apps.accounts.choices import Role
from apps.audit.models import AuditEvent
from apps.core.crypto import DecryptionError, decrypt_text, encrypt_text
from apps.core.exceptions import ApplicationError
from apps.datasets import services
from apps.datasets.choices import JobStatus, SourceKind, ValidationStatus
from apps.datasets.models import DataConnection, Dataset, DatasetVersion, IngestionJob
from apps.projects.models import Project
from tests.workers.tasks.dataset_helpers import make_version, queued_job, state, store_keys, upload_job

pytestmark = pytest.mark.django_db

CSV = b"customer_id,email,age\n1,a@example.com,31\n2,b@example.com,42\n"


def last_event() -> AuditEvent:
    return AuditEvent.objects.order_by("-seq").first()


# --- Datasets ---------------------------------------------------------------------------------------------------
def test_scientist_creates_a_dataset_and_the_event_is_audited(project, scientist):
    dataset = services.dataset_create(project=project, actor=scientist, name="  churn  ", description=" Monthly ")

    assert (dataset.name, dataset.description, dataset.created_by) == ("churn", "Monthly", scientist)
    event = last_event()
    assert (event.action, event.actor, event.project_id, event.object_id) == (
        "dataset.create",
        scientist,
        project.pk,
        str(dataset.pk),
    )
    assert event.after == {"name": "churn", "description": "Monthly"}


@pytest.mark.parametrize("role", [Role.STAKEHOLDER, Role.REVIEWER, Role.COMPLIANCE])
def test_members_without_ingest_right_cannot_create_a_dataset_and_nothing_changes(project, member, role):
    actor = member(role)
    before = state()

    with pytest.raises(PermissionDenied):
        services.dataset_create(project=project, actor=actor, name="churn")

    assert state() == before


def test_outsider_cannot_create_a_dataset(project, outsider):
    with pytest.raises(PermissionDenied):
        services.dataset_create(project=project, actor=outsider, name="churn")
    assert Dataset.objects.count() == 0


def test_duplicate_dataset_name_in_a_project_is_a_field_error(dataset, project, scientist):
    before = state()
    with pytest.raises(ApplicationError) as error:
        services.dataset_create(project=project, actor=scientist, name="churn")
    assert error.value.errors == {"name": ["A dataset with this name already exists in the project."]}
    assert state() == before


def test_blank_dataset_name_is_a_field_error(project, scientist):
    with pytest.raises(ApplicationError) as error:
        services.dataset_create(project=project, actor=scientist, name="   ")
    assert error.value.errors == {"name": ["This field is required."]}
    assert Dataset.objects.count() == 0


def test_retired_project_takes_no_new_dataset(project, scientist):
    Project.objects.filter(pk=project.pk).update(status="retired")
    project.refresh_from_db()
    with pytest.raises(ApplicationError) as error:
        services.dataset_create(project=project, actor=scientist, name="churn")
    assert error.value.status == 409
    assert Dataset.objects.count() == 0


def test_dataset_update_records_before_and_after(dataset, scientist):
    services.dataset_update(dataset=dataset, actor=scientist, description="Churn per month, EU only")

    dataset.refresh_from_db()
    assert dataset.description == "Churn per month, EU only"
    event = last_event()
    assert event.action == "dataset.update"
    assert event.before == {"name": "churn", "description": "Monthly churn"}
    assert event.after == {"name": "churn", "description": "Churn per month, EU only"}


def test_reviewer_cannot_edit_a_dataset_and_nothing_changes(dataset, member):
    reviewer = member(Role.REVIEWER)
    before = state()
    with pytest.raises(PermissionDenied):
        services.dataset_update(dataset=dataset, actor=reviewer, description="x")
    with pytest.raises(PermissionDenied):
        services.dataset_rules_set(dataset=dataset, actor=reviewer, rules={"min_rows": 1})
    assert state() == before


def test_rules_are_stored_normalised_and_audited(dataset, scientist):
    services.dataset_rules_set(
        dataset=dataset,
        actor=scientist,
        rules={"min_rows": 100, "expected_columns": {"age": "integer"}, "unique_columns": ["customer_id"]},
    )

    dataset.refresh_from_db()
    expected = {
        "expected_columns": {"age": "int64"},
        "max_missing_share": None,
        "max_missing_share_by_column": {},
        "ranges": {},
        "allowed_categories": {},
        "unique_columns": ["customer_id"],
        "min_rows": 100,
    }
    assert dataset.validation_rules == expected
    event = last_event()
    assert (event.action, event.before, event.after) == (
        "dataset.rules_set",
        {"validation_rules": {}},
        {"validation_rules": expected},
    )


def test_invalid_rules_are_field_errors_and_change_nothing(dataset, scientist):
    before = state()
    with pytest.raises(ApplicationError) as error:
        services.dataset_rules_set(
            dataset=dataset, actor=scientist, rules={"min_rows": -1, "max_missing_share": 2, "colour": "red"}
        )
    assert set(error.value.errors) == {"min_rows", "max_missing_share", "colour"}
    assert error.value.errors["colour"] == [
        "Unknown rule 'colour'. Known rules: expected_columns, max_missing_share, max_missing_share_by_column, "
        "ranges, allowed_categories, unique_columns, min_rows."
    ]
    assert state() == before


def test_column_marks_are_merged_and_unmarked_columns_dropped(dataset, scientist):
    make_version(dataset, 1)
    services.dataset_column_marks_set(dataset=dataset, actor=scientist, marks={"email": {"personal": True}})
    services.dataset_column_marks_set(
        dataset=dataset, actor=scientist, marks={"age": {"sensitive": True, "excluded": True}}
    )
    services.dataset_column_marks_set(dataset=dataset, actor=scientist, marks={"customer_id": {"personal": False}})

    dataset.refresh_from_db()
    assert dataset.column_marks == {
        "age": {"personal": False, "sensitive": True, "excluded": True},
        "email": {"personal": True, "sensitive": False, "excluded": False},
    }
    event = last_event()
    assert event.action == "dataset.column_marks_set"
    assert event.after == {"column_marks": dataset.column_marks}


def test_compliance_officer_may_mark_columns_but_a_stakeholder_may_not(dataset, member):
    make_version(dataset, 1)
    services.dataset_column_marks_set(
        dataset=dataset, actor=member(Role.COMPLIANCE), marks={"email": {"personal": True}}
    )
    before = state()
    with pytest.raises(PermissionDenied):
        services.dataset_column_marks_set(
            dataset=dataset, actor=member(Role.STAKEHOLDER), marks={"email": {"personal": False}}
        )
    assert state() == before


def test_marking_a_column_the_newest_version_lacks_is_a_field_error(dataset, scientist):
    make_version(dataset, 1)
    before = state()
    with pytest.raises(ApplicationError) as error:
        services.dataset_column_marks_set(
            dataset=dataset,
            actor=scientist,
            marks={"salary": {"personal": True}, "email": {"secret": True}, "age": {"excluded": "yes"}},
        )
    assert error.value.errors == {
        "salary": ["The newest version has no column with this name."],
        "email": ["Unknown mark: secret (use personal, sensitive, excluded)."],
        "age": ["Each mark is true or false."],
    }
    assert state() == before


def test_marks_need_a_version_first(dataset, scientist):
    with pytest.raises(ApplicationError) as error:
        services.dataset_column_marks_set(dataset=dataset, actor=scientist, marks={"email": {"personal": True}})
    assert error.value.message == "The dataset has no version yet: there are no columns to mark."


# --- Connections ------------------------------------------------------------------------------------------------
def connection_args(**overrides):
    values = {
        "name": "warehouse",
        "host": "db.internal",
        "port": 5432,
        "database": "sales",
        "username": "reader",
        "password": "s3cr3t-p@ss",
    }
    values.update(overrides)
    return values


def test_connection_password_is_stored_encrypted_and_never_audited(project, scientist):
    connection = services.connection_create(project=project, actor=scientist, **connection_args())

    assert connection.encrypted_password != "s3cr3t-p@ss"
    assert "s3cr3t" not in connection.encrypted_password
    assert decrypt_text(connection.encrypted_password) == "s3cr3t-p@ss"
    event = last_event()
    assert event.action == "connection.create"
    assert event.after == {
        "name": "warehouse",
        "engine": "postgresql",
        "host": "db.internal",
        "port": 5432,
        "database": "sales",
        "username": "reader",
        "password_set": True,
    }
    assert not AuditEvent.objects.filter(after__icontains="s3cr3t").exists()


def test_invalid_connection_fields_are_named(project, scientist):
    with pytest.raises(ApplicationError) as error:
        services.connection_create(
            project=project, actor=scientist, **connection_args(name="", host="db host;", port=70000)
        )
    assert error.value.errors == {
        "name": ["This field is required."],
        "host": ["A host name or IP address: letters, digits, '.', '-', ':' only."],
        "port": ["A port number between 1 and 65535."],
    }
    assert DataConnection.objects.count() == 0


def test_reviewer_cannot_register_a_connection(project, member):
    before = state()
    with pytest.raises(PermissionDenied):
        services.connection_create(project=project, actor=member(Role.REVIEWER), **connection_args())
    assert state() == before


def test_connection_update_keeps_the_password_unless_a_new_one_is_given(project, scientist):
    connection = services.connection_create(project=project, actor=scientist, **connection_args())
    stored = connection.encrypted_password

    services.connection_update(connection=connection, actor=scientist, host="db2.internal")
    connection.refresh_from_db()
    assert (connection.host, connection.encrypted_password) == ("db2.internal", stored)
    event = last_event()
    assert (event.before["host"], event.after["host"], "password_changed" in event.after) == (
        "db.internal",
        "db2.internal",
        False,
    )

    services.connection_update(connection=connection, actor=scientist, password="n3w-pass")
    connection.refresh_from_db()
    assert decrypt_text(connection.encrypted_password) == "n3w-pass"
    assert last_event().after["password_changed"] is True
    assert not AuditEvent.objects.filter(after__icontains="n3w-pass").exists()


def test_connection_used_by_a_job_cannot_be_deleted(project, scientist, dataset):
    connection = services.connection_create(project=project, actor=scientist, **connection_args())
    services.ingestion_start_sql(dataset=dataset, actor=scientist, connection=connection, query="SELECT 1 AS one")
    before = state()

    with pytest.raises(ApplicationError) as error:
        services.connection_delete(connection=connection, actor=scientist)

    assert error.value.status == 409
    assert (
        error.value.message == "This connection was used by 1 ingestion job; it is kept so their record stays complete."
    )
    assert state() == before


def test_unused_connection_is_deleted_and_audited(project, scientist):
    connection = services.connection_create(project=project, actor=scientist, **connection_args())
    services.connection_delete(connection=connection, actor=scientist)

    assert DataConnection.objects.count() == 0
    event = last_event()
    assert (event.action, event.object_id, event.before["name"]) == (
        "connection.delete",
        str(connection.pk),
        "warehouse",
    )


def test_field_encryption_uses_fallback_secret_keys_after_rotation(settings):
    settings.FIELD_ENCRYPTION_KEY = ""
    settings.SECRET_KEY = "old-secret-key-for-the-test"
    token = encrypt_text("pw")
    settings.SECRET_KEY = "new-secret-key-for-the-test"
    settings.SECRET_KEY_FALLBACKS = ["old-secret-key-for-the-test"]
    assert decrypt_text(token) == "pw"
    settings.SECRET_KEY_FALLBACKS = []
    with pytest.raises(DecryptionError):
        decrypt_text(token)


def test_field_encryption_key_must_be_a_fernet_key(settings):
    settings.FIELD_ENCRYPTION_KEY = "not-a-key"
    with pytest.raises(ImproperlyConfigured):
        encrypt_text("pw")


def test_tampered_ciphertext_is_refused():
    token = encrypt_text("pw")
    tampered = token[:-6] + ("A" if token[-6] != "A" else "B") + token[-5:]
    with pytest.raises(DecryptionError):
        decrypt_text(tampered)


# --- Starting ingestion -----------------------------------------------------------------------------------------
def test_upload_is_staged_under_a_server_key_and_dispatched_after_commit(
    dataset, scientist, file_store, sent_tasks, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        job = upload_job(dataset, scientist, CSV)

    assert job.status == JobStatus.QUEUED
    assert job.staging_key == f"projects/{dataset.project_id}/uploads/{job.pk}/original"
    assert file_store.get_bytes(job.staging_key) == CSV
    assert sent_tasks == [("datasets.ingest", [str(job.pk)], "default")]
    event = last_event()
    assert (event.action, event.object_id, event.after["source_display"]) == (
        "dataset.ingest_start",
        str(job.pk),
        "customers.csv",
    )


def test_nothing_is_dispatched_when_the_transaction_rolls_back(dataset, scientist, file_store, sent_tasks):
    # django_db runs the test in a transaction that never commits: on_commit callbacks never run.
    upload_job(dataset, scientist, CSV)
    assert sent_tasks == []


class ExplodingStream(io.RawIOBase):
    def read(self, size=-1):
        raise AssertionError("the body must not be read")


def test_upload_declared_over_the_limit_is_refused_before_reading(dataset, scientist, file_store, settings):
    settings.DATASET_MAX_UPLOAD_BYTES = 1024
    before = state()

    with pytest.raises(ApplicationError) as error:
        services.ingestion_start_upload(
            dataset=dataset, actor=scientist, stream=ExplodingStream(), display_name="big.csv", size=1025
        )

    assert error.value.status == 413
    assert error.value.message == "The file is larger than the 1.0 KB limit."
    assert error.value.errors == {"file": ["The file is larger than the 1.0 KB limit."]}
    assert state() == before
    assert store_keys(file_store) == []


def test_upload_growing_past_the_limit_while_streaming_leaves_nothing(dataset, scientist, file_store, settings):
    settings.DATASET_MAX_UPLOAD_BYTES = 1024
    before = state()

    with pytest.raises(ApplicationError) as error:
        services.ingestion_start_upload(
            dataset=dataset, actor=scientist, stream=io.BytesIO(b"x" * 5000), display_name="big.csv", size=None
        )

    assert error.value.status == 413
    assert state() == before
    assert store_keys(file_store) == []


def test_default_limit_message_names_two_gigabytes(dataset, scientist, file_store):
    with pytest.raises(ApplicationError) as error:
        services.ingestion_start_upload(
            dataset=dataset, actor=scientist, stream=ExplodingStream(), display_name="x.csv", size=2 * 1024**3 + 1
        )
    assert error.value.message == "The file is larger than the 2.0 GB limit."


def test_traversal_file_name_is_kept_only_as_a_display_name(dataset, scientist, file_store, tmp_path):
    job = upload_job(dataset, scientist, CSV, name="../../etc/passwd.csv")

    assert job.source_display == "../../etc/passwd.csv"
    assert job.staging_key == f"projects/{dataset.project_id}/uploads/{job.pk}/original"
    assert store_keys(file_store) == [job.staging_key]
    assert not (tmp_path / "etc").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["artifacts"]


def test_display_name_loses_control_characters_and_is_capped():
    assert services.clean_display_name("evil\x00\u202ename\r\n.csv") == "evilname.csv"
    assert services.clean_display_name("a" * 300 + ".csv") == "a" * 255
    assert services.clean_display_name("\x07") == "upload"


def test_stakeholder_cannot_upload_and_nothing_is_staged(dataset, member, file_store, sent_tasks):
    before = state()
    with pytest.raises(PermissionDenied):
        upload_job(dataset, member(Role.STAKEHOLDER), CSV)
    assert state() == before
    assert store_keys(file_store) == []
    assert sent_tasks == []


def test_s3_import_needs_an_allowed_prefix(dataset, scientist, settings):
    settings.DATASET_IMPORT_S3_PREFIXES = ["s3://landing/exports/"]
    before = state()
    cases = {
        "s3://landing/other/x.csv": "Objects can be imported only from: s3://landing/exports/.",
        "s3://landing/exports-evil/x.csv": "Objects can be imported only from: s3://landing/exports/.",
        "https://landing/exports/x.csv": "Give an S3 URI: s3://bucket/path/to/file.csv.",
        "s3://landing/exports/../secret.csv": (
            "The object key is not allowed: use letters, digits, '.', '_', '-' and '/' between path segments."
        ),
    }
    for uri, message in cases.items():
        with pytest.raises(ApplicationError) as error:
            services.ingestion_start_s3(dataset=dataset, actor=scientist, uri=uri)
        assert error.value.errors == {"uri": [message]}, uri
    assert state() == before


def test_s3_import_is_refused_when_not_enabled(dataset, scientist, settings):
    settings.DATASET_IMPORT_S3_PREFIXES = []
    with pytest.raises(ApplicationError) as error:
        services.ingestion_start_s3(dataset=dataset, actor=scientist, uri="s3://landing/exports/x.csv")
    assert error.value.errors == {
        "uri": ["Importing from S3 is not enabled: an administrator sets DATASET_IMPORT_S3_PREFIXES."]
    }


def test_s3_import_under_an_allowed_prefix_queues_a_job(dataset, scientist, settings):
    settings.DATASET_IMPORT_S3_PREFIXES = ["s3://landing/exports"]
    job = services.ingestion_start_s3(dataset=dataset, actor=scientist, uri=" s3://landing/exports/2024/x.csv ")
    assert (job.source_kind, job.s3_uri, job.source_display, job.staging_key) == (
        SourceKind.S3,
        "s3://landing/exports/2024/x.csv",
        "s3://landing/exports/2024/x.csv",
        "",
    )


@pytest.mark.parametrize(
    "query",
    [
        "INSERT INTO customers VALUES (1)",
        "SELECT 1; DROP TABLE customers",
        "WITH gone AS (DELETE FROM customers RETURNING *) SELECT * FROM gone",
        "SELECT * INTO copy FROM customers",
        "UPDATE customers SET age = 1",
    ],
)
def test_sql_that_writes_is_refused_at_once_on_the_query_field(project, dataset, scientist, query):
    connection = services.connection_create(project=project, actor=scientist, **connection_args())
    before = state()
    with pytest.raises(ApplicationError) as error:
        services.ingestion_start_sql(dataset=dataset, actor=scientist, connection=connection, query=query)
    assert list(error.value.errors) == ["query"]
    assert state() == before


def test_sql_needs_a_connection_of_the_same_project(dataset, scientist, project_factory, admin_user):
    other = project_factory()
    connection = services.connection_create(project=other, actor=admin_user, **connection_args())
    with pytest.raises(ApplicationError) as error:
        services.ingestion_start_sql(dataset=dataset, actor=scientist, connection=connection, query="SELECT 1")
    assert error.value.errors == {"connection": ["Choose a connection of this project."]}
    assert IngestionJob.objects.count() == 0


def test_select_query_queues_a_sql_job(project, dataset, scientist):
    connection = services.connection_create(project=project, actor=scientist, **connection_args())
    job = services.ingestion_start_sql(
        dataset=dataset, actor=scientist, connection=connection, query="  SELECT id, 'delete' AS word FROM t  "
    )
    assert (job.source_kind, job.connection, job.query, job.source_display) == (
        SourceKind.SQL,
        connection,
        "SELECT id, 'delete' AS word FROM t",
        "warehouse",
    )


# --- The worker's side ------------------------------------------------------------------------------------------
def test_a_job_is_claimed_once(dataset, scientist):
    job = queued_job(dataset, scientist)

    claimed = services.ingestion_job_claim(job_id=job.pk, task_id="task-1")
    again = services.ingestion_job_claim(job_id=job.pk, task_id="task-2")

    assert claimed is not None
    assert (claimed.status, claimed.task_id, claimed.attempts) == (JobStatus.RUNNING, "task-1", 1)
    assert again is None


def test_a_redelivered_task_takes_its_running_job_back(dataset, scientist):
    job = queued_job(dataset, scientist)
    services.ingestion_job_claim(job_id=job.pk, task_id="task-1")

    again = services.ingestion_job_claim(job_id=job.pk, task_id="task-1")

    assert (again.status, again.attempts) == (JobStatus.RUNNING, 2)


def test_a_finished_job_is_not_claimable(dataset, scientist):
    job = queued_job(dataset, scientist, status=JobStatus.CANCELLED, task_id="task-1")
    assert services.ingestion_job_claim(job_id=job.pk, task_id="task-1") is None
    job.refresh_from_db()
    assert (job.status, job.attempts) == (JobStatus.CANCELLED, 0)


def test_progress_reports_whether_the_job_still_runs(dataset, scientist):
    job = queued_job(dataset, scientist)
    services.ingestion_job_claim(job_id=job.pk, task_id="t")

    assert services.ingestion_job_progress(job_id=job.pk, fraction=1.7, message="Parsing") is True
    job.refresh_from_db()
    assert (job.progress, job.progress_message) == (1.0, "Parsing")

    services.ingestion_job_cancel(job=job, actor=scientist)
    assert services.ingestion_job_progress(job_id=job.pk, fraction=0.5, message="Parsing") is False


def test_failing_a_job_records_code_message_and_audit_once(dataset, scientist):
    job = queued_job(dataset, scientist)
    services.ingestion_job_claim(job_id=job.pk, task_id="t")
    events = AuditEvent.objects.count()

    services.ingestion_job_fail(job_id=job.pk, code="ragged_rows", message="Row 3 has 4 fields; the header has 3.")
    services.ingestion_job_fail(job_id=job.pk, code="other", message="ignored")

    job.refresh_from_db()
    assert (job.status, job.error_code, job.error) == (
        JobStatus.FAILED,
        "ragged_rows",
        "Row 3 has 4 fields; the header has 3.",
    )
    assert job.finished_at is not None
    assert AuditEvent.objects.count() == events + 1
    event = last_event()
    assert (event.action, event.actor_id, event.after["error_code"]) == ("dataset.ingest_failed", None, "ragged_rows")


def processed(**overrides):
    values = {
        "original_sha256": "a" * 64,
        "file_format": "csv",
        "row_count": 2,
        "column_count": 3,
        "schema": [
            {"name": "customer_id", "dtype": "int64", "nullable": False, "semantic_type": "id"},
            {"name": "email", "dtype": "string", "nullable": False, "semantic_type": "text"},
            {"name": "age", "dtype": "int64", "nullable": False, "semantic_type": "numeric"},
        ],
        "profile": [{"name": "age"}],
        "pii_findings": [{"column": "email", "kind": "email", "share": 1.0, "reason": "x"}],
        "validation": {"passed": False, "checks": [{"rule": "min_rows", "passed": False}]},
        "validation_rules": {"min_rows": 10},
    }
    values.update(overrides)
    return values


def record(job, number=1, **overrides):
    return services.dataset_version_record(
        job_id=job.pk,
        processed=processed(**overrides),
        original_key="k/original.csv",
        original_size=60,
        parquet_key="k/data.parquet",
        parquet_sha256="b" * 64,
        parquet_size=900,
        number=number,
    )


def test_recording_a_version_finishes_the_job_and_is_audited(dataset, scientist):
    make_version(dataset, 1, schema=[{"name": "email", "dtype": "string", "nullable": True, "semantic_type": "text"}])
    services.dataset_column_marks_set(dataset=dataset, actor=scientist, marks={"email": {"personal": True}})
    job = queued_job(dataset, scientist)
    services.ingestion_job_claim(job_id=job.pk, task_id="t")

    version = record(job, number=2)

    job.refresh_from_db()
    assert (job.status, job.version, job.progress, job.deduplicated) == (JobStatus.SUCCEEDED, version, 1.0, False)
    assert (version.number, version.row_count, version.validation_status, version.created_by) == (
        2,
        2,
        ValidationStatus.FAILED,
        scientist,
    )
    assert version.column_marks == {"email": {"personal": True, "sensitive": False, "excluded": False}}
    assert version.validation_rules == {"min_rows": 10}
    assert version.usable_for_training is False
    event = last_event()
    assert (event.action, event.after["number"], event.after["pii_columns"], event.after["requested_by"]) == (
        "dataset.version_create",
        2,
        ["email"],
        scientist.username,
    )


def test_recording_for_a_cancelled_job_is_refused(dataset, scientist):
    job = queued_job(dataset, scientist)
    services.ingestion_job_claim(job_id=job.pk, task_id="t")
    services.ingestion_job_cancel(job=job, actor=scientist)

    with pytest.raises(services.JobNotRunning):
        record(job)
    assert DatasetVersion.objects.count() == 0


def test_deduplicated_job_points_at_the_existing_version(dataset, scientist):
    existing = make_version(dataset, 1)
    job = queued_job(dataset, scientist)
    services.ingestion_job_claim(job_id=job.pk, task_id="t")

    services.ingestion_job_deduplicate(job_id=job.pk, version=existing)

    job.refresh_from_db()
    assert (job.status, job.version, job.deduplicated, job.progress_message) == (
        JobStatus.SUCCEEDED,
        existing,
        True,
        "Identical to version 1.",
    )
    assert last_event().action == "dataset.ingest_deduplicated"
    assert DatasetVersion.objects.count() == 1


def test_cancelling_a_queued_upload_removes_its_staged_file(
    dataset, scientist, file_store, django_capture_on_commit_callbacks
):
    job = upload_job(dataset, scientist, CSV)
    with django_capture_on_commit_callbacks(execute=True):
        services.ingestion_job_cancel(job=job, actor=scientist)

    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED
    assert store_keys(file_store) == []
    assert (last_event().action, last_event().before, last_event().after) == (
        "dataset.ingest_cancel",
        {"status": "queued"},
        {"status": "cancelled"},
    )


def test_a_finished_job_cannot_be_cancelled(dataset, scientist):
    job = queued_job(dataset, scientist, status=JobStatus.SUCCEEDED)
    with pytest.raises(ApplicationError) as error:
        services.ingestion_job_cancel(job=job, actor=scientist)
    assert (error.value.status, error.value.message) == (409, "The job is already succeeded.")


def test_reviewer_cannot_cancel_a_job(dataset, scientist, member):
    job = queued_job(dataset, scientist)
    before = state()
    with pytest.raises(PermissionDenied):
        services.ingestion_job_cancel(job=job, actor=member(Role.REVIEWER))
    assert state() == before


# --- Sweep ------------------------------------------------------------------------------------------------------
def test_sweep_fails_jobs_whose_worker_died_and_requeues_lost_dispatches(dataset, scientist, sent_tasks):
    now = timezone.now()
    dead = queued_job(dataset, scientist, status=JobStatus.RUNNING, heartbeat_at=now - timedelta(minutes=30))
    alive = queued_job(dataset, scientist, status=JobStatus.RUNNING, heartbeat_at=now - timedelta(minutes=1))
    lost = queued_job(dataset, scientist)
    fresh = queued_job(dataset, scientist)
    ancient = queued_job(dataset, scientist)
    IngestionJob.objects.filter(pk=lost.pk).update(updated_at=now - timedelta(minutes=20))
    IngestionJob.objects.filter(pk=ancient.pk).update(
        updated_at=now - timedelta(hours=30), queued_at=now - timedelta(hours=30)
    )

    result = services.ingestion_jobs_sweep(stale_after_minutes=10, requeue_after_minutes=5)

    assert result == {"failed_stale": 1, "failed_never_started": 1, "requeued": 1}
    statuses = dict(IngestionJob.objects.values_list("pk", "status"))
    assert statuses == {
        dead.pk: JobStatus.FAILED,
        alive.pk: JobStatus.RUNNING,
        lost.pk: JobStatus.QUEUED,
        fresh.pk: JobStatus.QUEUED,
        ancient.pk: JobStatus.FAILED,
    }
    dead.refresh_from_db()
    assert dead.error_code == "worker_lost"
    assert dead.error == (
        "The worker stopped responding (no heartbeat for 10 minutes): it was probably restarted or ran out of "
        "memory. Nothing was saved; start the ingestion again."
    )


@pytest.mark.django_db(transaction=True)
def test_sweep_dispatches_the_lost_job_again_after_commit(project, scientist, sent_tasks):
    dataset = services.dataset_create(project=project, actor=scientist, name="churn")
    lost = queued_job(dataset, scientist)
    IngestionJob.objects.filter(pk=lost.pk).update(updated_at=timezone.now() - timedelta(minutes=20))

    services.ingestion_jobs_sweep(stale_after_minutes=10, requeue_after_minutes=5)

    assert sent_tasks == [("datasets.ingest", [str(lost.pk)], "default")]


# --- Override ---------------------------------------------------------------------------------------------------
def test_scientist_overrides_a_failed_version_with_a_reason(dataset, scientist):
    version = make_version(dataset, 3, passed=False)

    services.version_override_validation(
        version=version, actor=scientist, reason="  Row minimum is for the full export; this is the pilot.  "
    )

    version.refresh_from_db()
    assert version.override_reason == "Row minimum is for the full export; this is the pilot."
    assert (version.overridden_by, version.usable_for_training) == (scientist, True)
    event = last_event()
    assert (event.action, event.actor, event.after) == (
        "dataset.version_override",
        scientist,
        {"usable_for_training": True, "number": 3, "reason": "Row minimum is for the full export; this is the pilot."},
    )
    services.version_require_usable_for_training(version=version)


def test_override_reason_must_be_twenty_characters(dataset, scientist):
    version = make_version(dataset, 1, passed=False)
    before = state()
    with pytest.raises(ApplicationError) as error:
        services.version_override_validation(version=version, actor=scientist, reason="   too short     ")
    assert error.value.errors == {"reason": ["Explain the override in at least 20 characters."]}
    assert state() == before


def test_a_passed_or_already_overridden_version_cannot_be_overridden(dataset, scientist):
    passed = make_version(dataset, 1)
    with pytest.raises(ApplicationError) as error:
        services.version_override_validation(version=passed, actor=scientist, reason="x" * 30)
    assert (error.value.status, error.value.message) == (
        409,
        "Only a version that failed validation can be overridden.",
    )

    failed = make_version(dataset, 2, passed=False)
    services.version_override_validation(version=failed, actor=scientist, reason="x" * 30)
    with pytest.raises(ApplicationError) as error:
        services.version_override_validation(version=failed, actor=scientist, reason="y" * 30)
    assert error.value.message == "This version is already overridden."


@pytest.mark.parametrize("who", ["admin", Role.COMPLIANCE, Role.REVIEWER, Role.STAKEHOLDER])
def test_only_a_project_scientist_may_override(dataset, member, admin_user, who):
    version = make_version(dataset, 1, passed=False)
    actor = admin_user if who == "admin" else member(who)
    before = state()
    with pytest.raises(PermissionDenied):
        services.version_override_validation(version=version, actor=actor, reason="x" * 30)
    assert state() == before


def test_a_failed_version_without_override_cannot_be_used_for_training(dataset):
    version = make_version(dataset, 3, passed=False)
    with pytest.raises(ApplicationError) as error:
        services.version_require_usable_for_training(version=version)
    message = "Version 3 of churn failed validation and has no override: it cannot be used for training."
    assert (error.value.message, error.value.errors) == (message, {"dataset_version": [message]})


def test_download_is_recorded_in_the_audit_trail(dataset, member):
    version = make_version(dataset, 1)
    compliance = member(Role.COMPLIANCE)
    services.dataset_version_download_record(version=version, actor=compliance, artifact="parquet")
    event = last_event()
    assert (event.action, event.actor, event.after) == (
        "dataset.version_download",
        compliance,
        {"number": 1, "artifact": "parquet"},
    )


def test_outsider_download_is_refused(dataset, outsider):
    version = make_version(dataset, 1)
    with pytest.raises(PermissionDenied):
        services.dataset_version_download_record(version=version, actor=outsider, artifact="original")
    assert not AuditEvent.objects.filter(action="dataset.version_download").exists()


def test_connection_with_same_name_in_the_project_is_a_field_error(project, scientist):
    services.connection_create(project=project, actor=scientist, **connection_args())
    with pytest.raises(ApplicationError) as error:
        services.connection_create(project=project, actor=scientist, **connection_args(host="other"))
    assert error.value.errors == {"name": ["A connection with this name already exists in the project."]}
    assert DataConnection.objects.count() == 1


def test_staged_upload_is_removed_when_the_job_cannot_be_written(dataset, scientist, file_store, monkeypatch):
    """If writing the job row fails after the bytes were staged, the staged object is removed."""

    def boom(**kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(services, "_create_job", boom)
    with pytest.raises(RuntimeError):
        upload_job(dataset, scientist, CSV)
    assert store_keys(file_store) == []
    assert IngestionJob.objects.count() == 0
