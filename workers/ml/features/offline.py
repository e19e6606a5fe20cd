"""The offline store: materialised feature values as Parquet partitions, and the point-in-time join.

A feature version's values are stored as partitions, one per materialised time range (the portal keeps them in the
artifact store under `features/<feature version id>/<start>_<end>.parquet`), each with the entity keys,
`event_timestamp` (naive UTC) and one value column (`compute_feature_values` output).

`point_in_time_join` attaches to every spine row, for each feature, the value of that entity's latest event with
`event_timestamp <= ` the row's timestamp: never a later one. Rules:
- ties: when one entity has several rows at the same `event_timestamp` (a time range materialised again, or two
  events at one instant), the row written last wins: the one in the later partition of `FeatureInput.paths` (give
  them in the order they were written), and within a partition the later row;
- late data: an event written in a later partition with an earlier timestamp is used from its own timestamp on, and
  does not hide an event with a later timestamp;
- `max_age`: the value is NULL when its event is older than the row's timestamp minus `max_age` (an event exactly
  `max_age` old is used);
- NULL when the entity has no event at or before the row's timestamp, or no event at all;
- the spine's rows keep their order and all their columns.
Timestamps are compared in UTC (naive spine timestamps are taken as UTC). DuckDB reads the partitions and the spine
lazily and runs one ASOF LEFT JOIN per feature under a memory limit, spilling to a temporary folder.
"""

import os
import tempfile
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import NamedTuple

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from workers.ml.features.expressions import quote_identifier
from workers.ml.features.transforms import EVENT_TIMESTAMP, utc_naive

DEFAULT_MEMORY_LIMIT = "2GB"
# Ties are broken by (partition position, row in partition) packed into one BIGINT: 2**40 rows per partition.
_ROW_BITS = 40


class FeatureInput(NamedTuple):
    """One feature of a point-in-time join: its output column `name`, its partitions in the order they were
    written, its maximum age, and the value column in the partitions (None: the one column that is neither an
    entity key nor `event_timestamp`)."""

    name: str
    paths: Sequence[str | Path]
    max_age: timedelta | None = None
    column: str | None = None


# --- partitions -----------------------------------------------------------------------------------------------


def write_partition(values: pd.DataFrame, path: str | Path) -> Path:
    """`values` (entity keys, event_timestamp, the value column) as a zstd Parquet file at `path`, written to a
    temporary name then renamed, so a reader never sees half a partition."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = values.copy(deep=False)
    frame[EVENT_TIMESTAMP] = utc_naive(frame[EVENT_TIMESTAMP])
    table = pa.Table.from_pandas(frame, preserve_index=False)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        pq.write_table(table, temporary, compression="zstd")
        temporary.replace(path)
    finally:
        temporary.unlink(missing_ok=True)
    return path


def sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def partitions_sql(paths: Sequence[str | Path]) -> str:
    """A DuckDB table expression reading `paths` as one table, lazily, with `__order` (a later partition or a later
    row within one is greater: the tie order above)."""
    if not paths:
        raise ValueError("A feature needs at least one partition.")
    files = ", ".join(sql_string(str(Path(path).resolve())) for path in paths)
    positions = ", ".join(f"({sql_string(str(Path(path).resolve()))}, {index})" for index, path in enumerate(paths))
    return f"""(
        SELECT parts.* EXCLUDE (filename, file_row_number),
               (files.position::BIGINT << {_ROW_BITS}) + parts.file_row_number AS __order
        FROM read_parquet([{files}], filename = true, file_row_number = true, union_by_name = true) AS parts
        JOIN (VALUES {positions}) AS files(filename, position) USING (filename)
    )"""  # noqa: S608


def read_partitions(paths: Sequence[str | Path], *, connection: duckdb.DuckDBPyConnection | None = None):
    """The partitions as one lazy DuckDB relation (`.df()`, `.arrow()` or SQL on it reads them)."""
    connection = connection or duckdb.connect()
    return connection.sql(f"SELECT * EXCLUDE (__order) FROM {partitions_sql(paths)} ORDER BY __order")  # noqa: S608


# --- the point-in-time join -----------------------------------------------------------------------------------
# SQL here is built only from quote_identifier() names, sql_string() literals and integers (hence the noqa: S608).


def point_in_time_join(
    spine: pd.DataFrame | str | Path,
    *,
    entity_keys: list[str],
    timestamp: str,
    features: list[FeatureInput],
    memory_limit: str = DEFAULT_MEMORY_LIMIT,
    threads: int | None = None,
) -> pd.DataFrame:
    """The spine (a DataFrame or a Parquet file) with one column per feature: each row's latest value at or before
    its timestamp (see the module's rules)."""
    _check_names(spine, timestamp, features)
    with tempfile.TemporaryDirectory(prefix="pit-join-") as spill, duckdb.connect() as connection:
        connection.execute("SET TimeZone = 'UTC'")
        connection.execute(f"SET memory_limit = {sql_string(memory_limit)}")
        connection.execute(f"SET threads = {int(threads or os.cpu_count() or 1)}")
        connection.execute(f"SET temp_directory = {sql_string(spill)}")
        if isinstance(spine, pd.DataFrame):
            # Only the keys and the timestamp go through DuckDB; the values are attached to the spine itself, so
            # its columns keep their exact types.
            keys = pd.DataFrame({key: spine[key].to_numpy() for key in entity_keys})
            keys["__ts"] = utc_naive(spine[timestamp]).to_numpy()
            keys["__spine_row"] = np.arange(len(spine))
            connection.register("spine_keys", keys)
            source, spine_columns = "(SELECT * FROM spine_keys)", ""
        else:
            source = f"""(SELECT *, CAST({quote_identifier(timestamp)} AS TIMESTAMP) AS __ts,
                                 file_row_number AS __spine_row
                          FROM read_parquet({sql_string(str(spine))}, file_row_number = true))"""  # noqa: S608
            spine_columns = "spine.* EXCLUDE (__ts, __spine_row, file_row_number), "
        query = _join_sql(source, spine_columns, entity_keys, features)
        joined = connection.sql(query).df()
    if not isinstance(spine, pd.DataFrame):
        return joined.drop(columns="__spine_row")
    result = spine.copy()
    for feature in features:
        result[feature.name] = joined[feature.name].to_numpy()
    return result


def _check_names(spine, timestamp: str, features: list[FeatureInput]) -> None:
    names = [feature.name for feature in features]
    if len(set(names)) != len(names):
        raise ValueError("Two features have the same output name.")
    spine_columns = set(spine.columns) if isinstance(spine, pd.DataFrame) else set(pq.read_schema(spine).names)
    clashes = spine_columns & set(names)
    if clashes:
        raise ValueError(f"Feature names clash with spine columns: {', '.join(sorted(clashes))}.")
    if timestamp not in spine_columns:
        raise ValueError(f"The spine has no column '{timestamp}'.")


def _value_column(feature: FeatureInput, entity_keys: list[str]) -> str:
    if feature.column:
        return feature.column
    schema = pq.read_schema(feature.paths[0])
    values = [name for name in schema.names if name not in (*entity_keys, EVENT_TIMESTAMP)]
    if len(values) != 1:
        raise ValueError(f"Feature '{feature.name}': name its value column (the partitions have {values}).")
    return values[0]


def _join_sql(source: str, spine_columns: str, entity_keys: list[str], features: list[FeatureInput]) -> str:
    keys = [quote_identifier(key) for key in entity_keys]
    ctes = [f"spine AS {source}"]
    selects, joins = [], []
    for index, feature in enumerate(features):
        alias, value = f"f{index}", quote_identifier(_value_column(feature, entity_keys))
        # One row per (entity, event_timestamp): the one written last (arg_max_null keeps a NULL it wrote).
        ctes.append(
            f"""{alias} AS (
                SELECT {", ".join(keys)}, {quote_identifier(EVENT_TIMESTAMP)} AS __ts,
                       arg_max_null({value}, __order) AS __value
                FROM {partitions_sql(feature.paths)}
                GROUP BY ALL
            )"""  # noqa: S608
        )
        matched = " AND ".join(f"spine.{key} = {alias}.{key}" for key in keys)
        joins.append(f"ASOF LEFT JOIN {alias} ON {matched} AND spine.__ts >= {alias}.__ts")
        fresh = "TRUE"
        if feature.max_age is not None:
            microseconds = int(feature.max_age / timedelta(microseconds=1))
            fresh = f"{alias}.__ts >= spine.__ts - INTERVAL ({microseconds}) MICROSECONDS"
        selects.append(f"CASE WHEN {fresh} THEN {alias}.__value END AS {quote_identifier(feature.name)}")
    return f"""
        WITH {", ".join(ctes)}
        SELECT {spine_columns}spine.__spine_row, {", ".join(selects)}
        FROM spine {" ".join(joins)}
        ORDER BY spine.__spine_row
    """  # noqa: S608
