"""A SQL source: one read-only query, run in a READ ONLY transaction through a server-side cursor, into Parquet.

Two locks on the door: check_read_only_query() refuses anything but one SELECT (or WITH ... SELECT) with a clear
message before connecting, and PostgreSQL itself refuses any write the text check cannot see (a function such as
nextval() or a user function that writes) because the transaction is READ ONLY. The connection's role should be
read-only as well; that is the database owner's part.
"""

import datetime as dt
import decimal
import json
import uuid
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import sqlparse
from sqlparse import tokens as T

from workers.ml.data.errors import IngestError
from workers.ml.data.limits import IngestLimits, plural
from workers.ml.data.normalise import Normalised, ParquetSink, check_cells, check_column_names
from workers.ml.data.streams import sha256_of_file

FETCH_ROWS = 10_000
CONNECT_TIMEOUT_S = 10
CURSOR_NAME = "mlplatform_ingest"
_WRITE_KEYWORDS = {"INTO"}  # SELECT ... INTO creates a table

# PostgreSQL type OIDs -> the normalised Arrow type; anything else is kept as text.
_TYPES = {
    16: pa.bool_(),
    20: pa.int64(),
    21: pa.int64(),
    23: pa.int64(),
    26: pa.int64(),
    700: pa.float64(),
    701: pa.float64(),
    1700: pa.float64(),
    1082: pa.date32(),
    1114: pa.timestamp("us"),
    1184: pa.timestamp("us", tz="UTC"),
    17: pa.binary(),
}


def _refuse(reason: str) -> IngestError:
    return IngestError(
        "sql_not_read_only", f"Only a single read-only query (SELECT or WITH ... SELECT) is allowed: {reason}."
    )


def _leading_token(token):
    """The first real token, looking inside groups such as (SELECT ...) UNION (SELECT ...)."""
    while token is not None and token.is_group:
        inner = [
            t
            for t in token.tokens
            if not t.is_whitespace and t.ttype not in T.Comment and not t.match(T.Punctuation, "(")
        ]
        token = inner[0] if inner else None
    return token


def check_read_only_query(query: str) -> None:
    """Exactly one statement, a SELECT or WITH ... SELECT, that names no write anywhere (a data-modifying CTE,
    SELECT ... INTO, FOR UPDATE). Raises IngestError("sql_not_read_only") otherwise."""
    if not isinstance(query, str) or not query.strip():
        raise _refuse("the query is empty")
    statements = [s for s in sqlparse.parse(query) if s.token_first(skip_cm=True, skip_ws=True) is not None]
    if len(statements) != 1:
        raise _refuse(f"found {len(statements)} statements")
    statement = statements[0]
    first = _leading_token(statement.token_first(skip_cm=True, skip_ws=True))
    if first is None:
        raise _refuse("the query is empty")
    keyword = first.normalized.upper() if first.ttype in (T.Keyword.DML, T.Keyword.CTE, T.Keyword) else ""
    if keyword not in ("SELECT", "WITH"):
        raise _refuse(f"it starts with {str(first).split()[0][:40]!r}")
    for token in statement.flatten():
        word = token.normalized.upper()
        if token.ttype is T.Keyword.DML and word != "SELECT":
            raise _refuse(f"it contains {word}")
        if token.ttype is T.Keyword.DDL or (token.ttype is T.Keyword and word in _WRITE_KEYWORDS):
            raise _refuse(f"it contains {word}")


def _to_python(value, target: pa.DataType):
    if value is None:
        return None
    if pa.types.is_string(target):
        if isinstance(value, str):
            return value
        if isinstance(value, dict | list):
            return json.dumps(value, sort_keys=True, default=str)
        if isinstance(value, uuid.UUID | dt.timedelta | dt.time):
            return str(value)
        return str(value)
    if pa.types.is_floating(target) and isinstance(value, decimal.Decimal):
        return float(value)
    if pa.types.is_timestamp(target) and target.tz and isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC)
    return value


def _database_message(exc) -> str:
    diag = getattr(exc, "diag", None)
    primary = getattr(diag, "message_primary", None) if diag is not None else None
    return (primary or str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__).rstrip(".")


def normalise_sql(
    *,
    dsn: str,
    query: str,
    workdir: Path,
    limits: IngestLimits,
    timeout_s: int = 300,
    progress: Callable[[int], None] | None = None,
) -> Normalised:
    import psycopg  # imported here: only SQL ingestion needs a database driver

    check_read_only_query(query)
    text = query.strip().rstrip(";").strip()
    try:
        connection = psycopg.connect(dsn, autocommit=False, connect_timeout=CONNECT_TIMEOUT_S)
    except psycopg.Error as exc:
        raise IngestError("source_unavailable", f"Cannot connect to the database: {_database_message(exc)}.") from exc
    sink = ParquetSink(workdir, keep_bytes=limits.analysis_memory_bytes)
    try:
        try:
            connection.execute("SET TRANSACTION READ ONLY")
            connection.execute("SELECT set_config('statement_timeout', %s, true)", [f"{int(timeout_s) * 1000}"])
            with connection.cursor(name=CURSOR_NAME) as cursor:
                cursor.execute(text)
                description = cursor.description or []
                names = [column.name for column in description]
                check_column_names(names, limits, where="query result")
                types = [_TYPES.get(column.type_code, pa.string()) for column in description]
                schema = pa.schema([pa.field(name, kind) for name, kind in zip(names, types, strict=True)])
                sink.open(schema)
                while rows := cursor.fetchmany(FETCH_ROWS):
                    columns = list(zip(*rows, strict=True))
                    arrays = [
                        pa.array([_to_python(v, kind) for v in values], type=kind)
                        for values, kind in zip(columns, types, strict=True)
                    ]
                    batch = pa.RecordBatch.from_arrays(arrays, schema=schema)
                    check_cells(batch, limits, sink.rows)
                    sink.write(batch)
                    if progress:
                        progress(sink.rows)
        except psycopg.errors.QueryCanceled as exc:
            raise IngestError(
                "sql_error", f"The query ran longer than {timeout_s} s and was stopped ({_database_message(exc)})."
            ) from exc
        except psycopg.OperationalError as exc:
            raise IngestError(
                "source_unavailable", f"The database connection failed: {_database_message(exc)}."
            ) from exc
        except psycopg.Error as exc:
            raise IngestError("sql_error", f"The database refused the query: {_database_message(exc)}.") from exc
        finally:
            try:
                connection.rollback()
            finally:
                connection.close()
        if sink.rows == 0:
            raise IngestError("header_only", f"The query returned {plural(len(names), 'column')} but no rows.")
        rows = sink.rows
        path = sink.finish()
    except BaseException:
        sink.abort()
        raise
    digest, size = sha256_of_file(path)
    return Normalised(path, rows, len(names), digest, size, table=sink.kept_table())
