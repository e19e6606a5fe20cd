"""SQL sources: one read-only query, checked before connecting and run in a READ ONLY transaction.

The database tests run against the pytest-django test database (PostgreSQL only), reached through a plain DSN, as the
worker reaches a project's connection."""

import datetime as dt
import decimal
import hashlib
import uuid

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from workers.ml.data.errors import IngestError
from workers.ml.data.formats import FileFormat, SourceFormat
from workers.ml.data.limits import IngestLimits
from workers.ml.data.pipeline import process_sql
from workers.ml.data.sql import check_read_only_query

REFUSAL = "Only a single read-only query (SELECT or WITH ... SELECT) is allowed: "


@pytest.mark.parametrize(
    "query",
    [
        "SELECT * FROM customers",
        "select id, comment, lock from customers where note = 'drop table x; delete'",
        "WITH recent AS (SELECT * FROM customers) SELECT * FROM recent;",
        "(SELECT 1) UNION (SELECT 2)",
        "-- top customers\nSELECT 1",
    ],
)
def test_read_only_queries_pass_the_check(query):
    check_read_only_query(query)


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("INSERT INTO customers VALUES (9)", "it starts with 'INSERT'"),
        ("update customers set name = 'x'", "it starts with 'update'"),
        ("DELETE FROM customers", "it starts with 'DELETE'"),
        ("DROP TABLE customers", "it starts with 'DROP'"),
        ("TRUNCATE customers", "it starts with 'TRUNCATE'"),
        ("WITH gone AS (DELETE FROM customers RETURNING *) SELECT * FROM gone", "it contains DELETE"),
        ("SELECT * INTO copy_of_customers FROM customers", "it contains INTO"),
        ("SELECT * FROM customers FOR UPDATE", "it contains UPDATE"),
        ("SELECT 1; SELECT 2", "found 2 statements"),
        ("SELECT 1; DROP TABLE customers", "found 2 statements"),
        ("COPY customers TO STDOUT", "it starts with 'COPY'"),
        ("   ", "the query is empty"),
    ],
)
def test_anything_else_is_refused_by_the_check(query, reason):
    with pytest.raises(IngestError) as caught:
        check_read_only_query(query)
    assert caught.value.code == "sql_not_read_only"
    assert caught.value.message == REFUSAL + reason + "."


@pytest.fixture(scope="session")
def test_database_dsn(django_db_setup, django_db_blocker):
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("SQL sources are PostgreSQL databases; run with DATABASE_URL=postgres://...")
    settings = connection.settings_dict
    return make_conninfo(
        host=settings["HOST"] or "127.0.0.1",
        port=str(settings["PORT"] or 5432),
        user=settings["USER"],
        password=settings["PASSWORD"] or None,
        dbname=settings["NAME"],  # the test database once django_db_setup has run
    )


class Source:
    def __init__(self, dsn: str):
        self.dsn = dsn
        self.schema = f"src_{uuid.uuid4().hex[:10]}"
        self.table = f"{self.schema}.customers"
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {self.schema}")
            conn.execute(
                f"CREATE TABLE {self.table} (id integer PRIMARY KEY, name text, income numeric(10, 2), joined date, "
                "seen timestamptz, active boolean, prefs jsonb, uid uuid, score real)"
            )
            conn.execute(
                f"INSERT INTO {self.table} VALUES "
                "(1, 'Ana', 1200.50, '2024-01-05', '2024-01-05 10:00:00+00', true, '{\"tier\": \"gold\"}', "
                "'00000000-0000-0000-0000-000000000001', 0.5), "
                "(2, 'Bo', NULL, '2024-02-06', '2024-02-06 12:30:00+02', false, NULL, NULL, NULL), "
                "(3, NULL, 99.99, NULL, NULL, NULL, '[1, 2]', '00000000-0000-0000-0000-000000000003', 2.25)"
            )
            conn.execute(f"CREATE SEQUENCE {self.schema}.ticket")
            conn.execute(
                f"CREATE FUNCTION {self.schema}.sneaky() RETURNS integer LANGUAGE sql AS "
                f"$$ INSERT INTO {self.table} (id) VALUES (99) RETURNING id $$"
            )

    def state(self):
        """Everything a write could change: the rows, and the sequence."""
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            rows = conn.execute(f"SELECT * FROM {self.table} ORDER BY id").fetchall()
            ticket = conn.execute(f"SELECT last_value, is_called FROM {self.schema}.ticket").fetchone()
        return rows, ticket

    def drop(self):
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE")


@pytest.fixture
def source(db, test_database_dsn):
    # `db` makes pytest-django create the test database; the source tables live in their own schema in it.
    created = Source(test_database_dsn)
    yield created
    created.drop()


def run(source, query, workdir, **kwargs):
    return process_sql(
        dsn=kwargs.pop("dsn", source.dsn),
        query=query,
        workdir=workdir,
        limits=kwargs.pop("limits", IngestLimits()),
        rules=kwargs.pop("rules", {}),
        **kwargs,
    )


def refused(source, query, workdir, code, **kwargs) -> IngestError:
    before = source.state()
    with pytest.raises(IngestError) as caught:
        run(source, query, workdir, **kwargs)
    assert caught.value.code == code, caught.value.message
    assert source.state() == before
    assert list(workdir.iterdir()) == []
    return caught.value


def test_a_select_ingests_with_types_and_values(source, tmp_path):
    processed = run(source, f"SELECT * FROM {source.table} ORDER BY id", tmp_path, rules={"min_rows": 3})
    assert processed.source_format == SourceFormat(FileFormat.PARQUET, gzip=False)
    assert (processed.row_count, processed.column_count) == (3, 9)
    assert [(c["name"], c["dtype"]) for c in processed.schema] == [
        ("id", "int64"), ("name", "string"), ("income", "float64"), ("joined", "date"), ("seen", "datetime"),
        ("active", "bool"), ("prefs", "string"), ("uid", "string"), ("score", "float64"),
    ]  # fmt: skip
    import pyarrow.parquet as pq

    assert pq.read_table(processed.parquet_path).to_pylist() == [
        {"id": 1, "name": "Ana", "income": 1200.5, "joined": dt.date(2024, 1, 5),
         "seen": dt.datetime(2024, 1, 5, 10, tzinfo=dt.UTC), "active": True, "prefs": '{"tier": "gold"}',
         "uid": "00000000-0000-0000-0000-000000000001", "score": 0.5},
        {"id": 2, "name": "Bo", "income": None, "joined": dt.date(2024, 2, 6),
         "seen": dt.datetime(2024, 2, 6, 10, 30, tzinfo=dt.UTC), "active": False, "prefs": None, "uid": None,
         "score": None},
        {"id": 3, "name": None, "income": 99.99, "joined": None, "seen": None, "active": None, "prefs": "[1, 2]",
         "uid": "00000000-0000-0000-0000-000000000003", "score": 2.25},
    ]  # fmt: skip
    assert processed.original_sha256 == hashlib.sha256(processed.parquet_path.read_bytes()).hexdigest()
    assert processed.original_size == processed.parquet_path.stat().st_size
    assert processed.validation["passed"] is True
    assert decimal.Decimal("99.99") == decimal.Decimal(str(processed.profile[2]["min"]))


def test_rerunning_an_unchanged_query_gives_the_same_digest(source, tmp_path):
    first = run(source, f"SELECT * FROM {source.table} ORDER BY id", tmp_path / "one")
    second = run(source, f"SELECT * FROM {source.table} ORDER BY id", tmp_path / "two")
    assert first.original_sha256 == second.original_sha256


def test_a_large_result_streams_in_batches(source, tmp_path):
    processed = run(source, "SELECT g AS n, md5(g::text) AS h FROM generate_series(1, 25000) AS g", tmp_path)
    assert processed.row_count == 25000
    assert processed.profile[0]["max"] == 25000


@pytest.mark.parametrize(
    "query",
    [
        "INSERT INTO {t} (id) VALUES (50)",
        "UPDATE {t} SET name = 'hacked'",
        "DELETE FROM {t}",
        "DROP TABLE {t}",
        "WITH gone AS (DELETE FROM {t} RETURNING *) SELECT * FROM gone",
        "SELECT * FROM {t}; SELECT 1",
        "SELECT 1; DROP TABLE {t}",
        "SELECT * INTO {s}.copy FROM {t}",
        "TRUNCATE {t}",
    ],
)
def test_a_writing_query_is_refused_and_changes_nothing(source, tmp_path, query):
    refused(source, query.format(t=source.table, s=source.schema), tmp_path, "sql_not_read_only")


def test_a_write_hidden_in_a_function_is_stopped_by_the_read_only_transaction(source, tmp_path):
    error = refused(source, f"SELECT nextval('{source.schema}.ticket')", tmp_path, "sql_error")
    assert error.message == "The database refused the query: cannot execute nextval() in a read-only transaction."
    error = refused(source, f"SELECT {source.schema}.sneaky()", tmp_path, "sql_error")
    assert error.message == "The database refused the query: cannot execute INSERT in a read-only transaction."


def test_database_errors_say_what_postgresql_said(source, tmp_path):
    error = refused(source, f"SELECT nope FROM {source.table}", tmp_path, "sql_error")
    assert error.message == 'The database refused the query: column "nope" does not exist.'
    error = refused(source, f"SELECT * FROM {source.schema}.missing", tmp_path, "sql_error")
    assert error.message == f'The database refused the query: relation "{source.schema}.missing" does not exist.'


def test_a_query_over_the_time_limit_is_stopped(source, tmp_path):
    error = refused(source, "SELECT pg_sleep(5)", tmp_path, "sql_error", timeout_s=1)
    assert error.message == (
        "The query ran longer than 1 s and was stopped (canceling statement due to statement timeout)."
    )


def test_an_unreachable_database_is_source_unavailable(source, tmp_path):
    dsn = make_conninfo(source.dsn, port="1")
    error = refused(source, "SELECT 1", tmp_path, "source_unavailable", dsn=dsn)
    assert error.message.startswith("Cannot connect to the database: ")


def test_result_limits_apply(source, tmp_path):
    error = refused(source, "SELECT 1 AS a, 2 AS b, 3 AS c", tmp_path, "too_many_columns",
                    limits=IngestLimits(max_columns=2))  # fmt: skip
    assert error.message == "The query result has 3 columns; the limit is 2. Nothing was parsed."
    error = refused(source, "SELECT 1 AS a, 2 AS a", tmp_path, "duplicate_column_names")
    assert error.message == "Column names must be unique; this name appears more than once: 'a' (columns 1, 2)."
    error = refused(source, "SELECT repeat('x', 2000) AS t", tmp_path, "cell_too_long",
                    limits=IngestLimits(max_cell_bytes=1024))  # fmt: skip
    assert error.message == "Column 't', row 1: a value is 2 KiB long; the limit is 1 KiB."
    error = refused(source, f"SELECT * FROM {source.table} WHERE false", tmp_path, "header_only")
    assert error.message == "The query returned 9 columns but no rows."
