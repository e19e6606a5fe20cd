"""SQL ingestion against a real PostgreSQL source database (the local server; a database of its own, so the rows are
committed and visible to the worker's read-only connection whatever the test database is)."""

import os
import uuid
from urllib.parse import urlsplit

import pytest

from apps.datasets import services
from apps.datasets.choices import JobStatus, SourceKind
from apps.datasets.models import DatasetVersion, IngestionJob
from tests.workers.tasks.dataset_helpers import store_keys
from workers.tasks.datasets import ingest_dataset_task

psycopg = pytest.importorskip("psycopg")

pytestmark = pytest.mark.django_db


def _server() -> dict:
    """Where the source database lives: PostgreSQL from DATABASE_URL when it is one, else the local default."""
    url = os.environ.get("DATABASE_URL", "")
    parts = urlsplit(url) if url.startswith(("postgres://", "postgresql://")) else None
    return {
        "host": (parts.hostname if parts else None) or "127.0.0.1",
        "port": (parts.port if parts else None) or 5432,
        "user": (parts.username if parts else None) or "postgres",
        "password": (parts.password if parts else None) or "",
    }


@pytest.fixture(scope="session")
def source_db():
    """A throwaway database `customers` table (3 rows) and a sequence, dropped at the end of the session."""
    server = _server()
    name = f"mlp_src_{uuid.uuid4().hex[:10]}"
    admin_dsn = f"host={server['host']} port={server['port']} user={server['user']} dbname=postgres"
    if server["password"]:
        admin_dsn += f" password={server['password']}"
    try:
        admin = psycopg.connect(admin_dsn, autocommit=True, connect_timeout=3)
    except psycopg.Error as exc:
        pytest.skip(f"no PostgreSQL server for the SQL source tests: {exc}")
    admin.execute(f'CREATE DATABASE "{name}"')
    with psycopg.connect(admin_dsn.replace("dbname=postgres", f"dbname={name}"), autocommit=True) as source:
        source.execute("CREATE TABLE customers (id integer PRIMARY KEY, email text, age integer, joined date)")
        source.execute(
            "INSERT INTO customers VALUES (1, 'ann@example.com', 31, '2024-01-02'), "
            "(2, 'bob@example.org', 42, '2024-02-03'), (3, 'cid@example.net', NULL, '2024-03-04')"
        )
        source.execute("CREATE SEQUENCE ticket")
    try:
        yield {**server, "database": name, "admin_dsn": admin_dsn.replace("dbname=postgres", f"dbname={name}")}
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture
def connection(project, scientist, source_db):
    return services.connection_create(
        project=project,
        actor=scientist,
        name="warehouse",
        host=source_db["host"],
        port=source_db["port"],
        database=source_db["database"],
        username=source_db["user"],
        password=source_db["password"],
    )


def run(job) -> str:
    return ingest_dataset_task.apply(args=[str(job.pk)], task_id=f"task-{uuid.uuid4()}").get()


def rows(source_db, sql):
    with psycopg.connect(source_db["admin_dsn"]) as db:
        return db.execute(sql).fetchall()


QUERY = "SELECT id, email, age, joined FROM customers ORDER BY id"


def test_a_select_becomes_a_version_whose_original_is_the_query(dataset, scientist, connection, file_store):
    job = services.ingestion_start_sql(dataset=dataset, actor=scientist, connection=connection, query=QUERY)

    assert run(job) == "succeeded"

    version = DatasetVersion.objects.get()
    assert (version.source_kind, version.source_display, version.file_format) == (SourceKind.SQL, "warehouse", "sql")
    assert (version.row_count, version.column_count) == (3, 4)
    assert [(c["name"], c["dtype"]) for c in version.schema] == [
        ("id", "int64"),
        ("email", "string"),
        ("age", "int64"),
        ("joined", "date"),
    ]
    assert version.original_key.endswith("/v1/original.sql")
    assert file_store.get_bytes(version.original_key) == QUERY.encode()
    assert version.original_size == len(QUERY)
    assert store_keys(file_store) == sorted([version.original_key, version.parquet_key])


def test_rerunning_an_unchanged_query_deduplicates(dataset, scientist, connection, file_store):
    run(services.ingestion_start_sql(dataset=dataset, actor=scientist, connection=connection, query=QUERY))
    again = services.ingestion_start_sql(dataset=dataset, actor=scientist, connection=connection, query=QUERY + " ")

    assert run(again) == "deduplicated"
    assert DatasetVersion.objects.count() == 1


def sql_job(dataset, scientist, connection, query) -> IngestionJob:
    """A job whose query skipped the portal's quick check (the worker's check and the READ ONLY transaction must
    hold on their own)."""
    return IngestionJob.objects.create(
        project=dataset.project,
        dataset=dataset,
        source_kind=SourceKind.SQL,
        source_display=connection.name,
        connection=connection,
        query=query,
        created_by=scientist,
    )


def test_a_query_that_writes_is_refused_by_the_worker_and_writes_nothing(
    dataset, scientist, connection, file_store, source_db
):
    job = sql_job(dataset, scientist, connection, "DELETE FROM customers")

    run(job)

    job.refresh_from_db()
    assert (job.status, job.error_code) == (JobStatus.FAILED, "sql_not_read_only")
    assert rows(source_db, "SELECT count(*) FROM customers") == [(3,)]
    assert DatasetVersion.objects.count() == 0
    assert store_keys(file_store) == []


def test_a_select_that_writes_through_a_function_is_stopped_by_the_read_only_transaction(
    dataset, scientist, connection, file_store, source_db
):
    job = sql_job(dataset, scientist, connection, "SELECT nextval('ticket') AS n")

    run(job)

    job.refresh_from_db()
    assert (job.status, job.error_code) == (JobStatus.FAILED, "sql_error")
    assert "read-only transaction" in job.error
    assert rows(source_db, "SELECT last_value, is_called FROM ticket") == [(1, False)]
    assert store_keys(file_store) == []


def test_a_query_error_names_what_postgresql_said(dataset, scientist, connection, file_store):
    job = services.ingestion_start_sql(
        dataset=dataset, actor=scientist, connection=connection, query="SELECT * FROM missing_table"
    )

    run(job)

    job.refresh_from_db()
    assert (job.status, job.error_code) == (JobStatus.FAILED, "sql_error")
    assert 'relation "missing_table" does not exist' in job.error


def test_an_unreachable_database_fails_with_source_unavailable(dataset, scientist, project, file_store):
    unreachable = services.connection_create(
        project=project, actor=scientist, name="gone", host="127.0.0.1", port=1, database="x", username="x", password=""
    )
    job = services.ingestion_start_sql(dataset=dataset, actor=scientist, connection=unreachable, query="SELECT 1")

    run(job)

    job.refresh_from_db()
    assert (job.status, job.error_code) == (JobStatus.FAILED, "source_unavailable")
    assert job.error.startswith("Cannot connect to the database")
