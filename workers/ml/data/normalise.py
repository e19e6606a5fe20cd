"""What every source becomes: one zstd Parquet file holding a small set of column types, written batch by batch.

Types in the normalised copy: int64, float64 (NaN stored as missing), bool, string, date32, timestamp[us] (UTC when
the source had a time zone), binary; nested list/struct/map columns are kept as they came ("other").
"""

import contextlib
import os
import queue
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from workers.ml.data.errors import IngestError
from workers.ml.data.limits import IngestLimits, human_bytes

PARQUET_NAME = "data.parquet"
PARTIAL_SUFFIX = ".partial"
PARQUET_COMPRESSION = "zstd"
PARQUET_COMPRESSION_LEVEL = 1
ROW_GROUP_ROWS = 128 * 1024  # batches are gathered into row groups of this size (fewer, larger groups read faster)


@dataclass
class Normalised:
    path: Path
    row_count: int
    column_count: int
    original_sha256: str
    original_size: int
    table: pa.Table | None = None  # the same normalised data in memory, when it fit the analysis budget


def target_type(source: pa.DataType) -> pa.DataType:
    """The normalised type for a source type."""
    if pa.types.is_dictionary(source):
        return target_type(source.value_type)
    if pa.types.is_integer(source):
        return pa.int64()
    if pa.types.is_floating(source) or pa.types.is_decimal(source):
        return pa.float64()
    if pa.types.is_boolean(source):
        return pa.bool_()
    if (
        pa.types.is_string(source)
        or pa.types.is_large_string(source)
        or pa.types.is_string_view(source)
        or pa.types.is_null(source)
        or pa.types.is_time(source)
    ):
        return pa.string()
    if pa.types.is_date(source):
        return pa.date32()
    if pa.types.is_timestamp(source):
        return pa.timestamp("us", tz="UTC" if source.tz else None)
    if pa.types.is_binary(source) or pa.types.is_large_binary(source) or pa.types.is_fixed_size_binary(source):
        return pa.binary()
    return source


def dtype_name(arrow_type: pa.DataType) -> str:
    """The schema's dtype for a normalised Arrow type (one of specs.DTYPES)."""
    if pa.types.is_int64(arrow_type):
        return "int64"
    if pa.types.is_float64(arrow_type):
        return "float64"
    if pa.types.is_boolean(arrow_type):
        return "bool"
    if pa.types.is_string(arrow_type):
        return "string"
    if pa.types.is_date(arrow_type):
        return "date"
    if pa.types.is_timestamp(arrow_type):
        return "datetime"
    if pa.types.is_binary(arrow_type):
        return "binary"
    return "other"


def target_schema(source: pa.Schema) -> pa.Schema:
    """The normalised schema: same names, normalised types, no metadata (nothing from the source is carried)."""
    return pa.schema([pa.field(f.name, target_type(f.type)) for f in source])


def normalise_array(array: pa.Array, target: pa.DataType) -> pa.Array:
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    if pa.types.is_floating(array.type) and array.null_count < len(array):
        nan = pc.is_nan(array)
        if pc.any(nan).as_py():
            array = pc.if_else(nan, pa.scalar(None, array.type), array)
    if array.type == target:
        return array
    if pa.types.is_time(array.type):
        return pc.cast(pc.cast(array, pa.time64("us")), pa.string())
    try:
        return pc.cast(array, target, safe=not pa.types.is_timestamp(target))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise IngestError(
            "unsupported_format", f"A column of type {array.type} cannot be stored as {target} ({exc})."
        ) from exc


def normalise_batch(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    columns = [normalise_array(column, field.type) for column, field in zip(batch.columns, schema, strict=True)]
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def check_cells(batch: pa.RecordBatch, limits: IngestLimits, rows_before: int) -> None:
    """Refuse a text or binary value longer than max_cell_bytes, naming the column and the row (1-based)."""
    for name, column in zip(batch.schema.names, batch.columns, strict=True):
        if not (pa.types.is_string(column.type) or pa.types.is_binary(column.type)) or len(column) == 0:
            continue
        # Cheap precheck: no value can be longer than the whole column's data buffer.
        if column.buffers()[2] is None or column.buffers()[2].size <= limits.max_cell_bytes:
            continue
        lengths = pc.binary_length(column)
        longest = pc.max(lengths).as_py()
        if longest is not None and longest > limits.max_cell_bytes:
            row = rows_before + pc.index(lengths, longest).as_py() + 1
            raise IngestError(
                "cell_too_long",
                f"Column '{name}', row {row:,}: a value is {human_bytes(longest)} long; the limit is "
                f"{human_bytes(limits.max_cell_bytes)}.",
                column=name,
            )


def check_column_names(names: list[str], limits: IngestLimits, *, where: str = "header") -> None:
    """Column count, empty names and duplicate names, each with a message that names the culprits."""
    if len(names) > limits.max_columns:
        raise IngestError(
            "too_many_columns",
            f"The {where} has {len(names):,} columns; the limit is {limits.max_columns:,}. Nothing was parsed.",
        )
    for position, name in enumerate(names, start=1):
        if not name.strip():
            raise IngestError(
                "empty_column_name", f"Column {position} has no name: every column needs one in the {where}."
            )
    positions: dict[str, list[int]] = {}
    for position, name in enumerate(names, start=1):
        positions.setdefault(name, []).append(position)
    duplicates = {name: where_ for name, where_ in positions.items() if len(where_) > 1}
    if duplicates:
        listed = "; ".join(
            f"'{name}' (columns {', '.join(str(p) for p in where_)})" for name, where_ in list(duplicates.items())[:10]
        )
        raise IngestError(
            "duplicate_column_names",
            f"Column names must be unique; {'this name appears' if len(duplicates) == 1 else 'these names appear'} "
            f"more than once: {listed}.",
            column=next(iter(duplicates)),
        )


class ParquetSink:
    """Writes batches to <workdir>/data.parquet.partial and renames it to data.parquet only when finished; abort()
    deletes the partial file, so an error never leaves a finished-looking Parquet behind.

    It also keeps the batches it wrote while they total at most `keep_bytes` (kept_table()), so the analysis of a
    small or medium dataset does not decode the Parquet file it just encoded; past the budget it lets them go."""

    def __init__(self, workdir: Path, *, keep_bytes: int = 0):
        self.final_path = Path(workdir) / PARQUET_NAME
        self.partial_path = Path(workdir) / (PARQUET_NAME + PARTIAL_SUFFIX)
        self.keep_bytes = keep_bytes
        self._writer: pq.ParquetWriter | None = None
        self.schema: pa.Schema | None = None
        self.rows = 0
        self._pending: list[pa.RecordBatch] = []
        self._pending_rows = 0
        self._kept: list[pa.RecordBatch] | None = []
        self._kept_bytes = 0

    def open(self, schema: pa.Schema) -> None:
        self.abort()
        self.schema = schema
        self.rows = 0
        self._pending, self._pending_rows = [], 0
        self._kept, self._kept_bytes = [], 0
        self._writer = pq.ParquetWriter(
            self.partial_path,
            schema,
            compression=PARQUET_COMPRESSION,
            compression_level=PARQUET_COMPRESSION_LEVEL,
            # Dictionary pages cost more time than they save once zstd sees the repeats (measured: bench/ingest.py).
            use_dictionary=False,
            # Min/max statistics where readers can use them to skip row groups; not for text (costly, rarely used).
            write_statistics=[f.name for f in schema if dtype_name(f.type) not in ("string", "binary", "other")],
        )

    def write(self, batch: pa.RecordBatch) -> None:
        if batch.num_rows:
            self._pending.append(batch)
            self._pending_rows += batch.num_rows
            self.rows += batch.num_rows
            self._keep(batch)
            if self._pending_rows >= ROW_GROUP_ROWS:
                self._flush()

    def _keep(self, batch: pa.RecordBatch) -> None:
        if self._kept is None:
            return
        self._kept_bytes += batch.nbytes
        if self._kept_bytes > self.keep_bytes:
            self._kept = None  # over the budget: the analysis reads the finished file instead
        else:
            self._kept.append(batch)

    def kept_table(self) -> pa.Table | None:
        """Every batch written, as one table, when they fit the budget; else None."""
        if self._kept is None or self.schema is None:
            return None
        return pa.Table.from_batches(self._kept, schema=self.schema)

    def _flush(self) -> None:
        if self._pending:
            self._writer.write_table(pa.Table.from_batches(self._pending), row_group_size=self._pending_rows)
            self._pending, self._pending_rows = [], 0

    def finish(self) -> Path:
        self._flush()
        self._writer.close()
        self._writer = None
        os.replace(self.partial_path, self.final_path)
        return self.final_path

    def abort(self) -> None:
        self._kept, self._kept_bytes = [], 0
        if self._writer is not None:
            with contextlib.suppress(Exception):  # the file is being thrown away
                self._writer.close()
            self._writer = None
        self.partial_path.unlink(missing_ok=True)
        self.final_path.unlink(missing_ok=True)


def pump(
    batches: Iterable[pa.RecordBatch | bytes],
    sink: ParquetSink,
    limits: IngestLimits,
    *,
    after_batch: Callable[[], None] | None = None,
    on_bytes: Callable[[bytes], None] | None = None,
) -> None:
    """Normalise, check and write `batches` to the open `sink` on a writer thread while this thread keeps reading,
    so parsing and Parquet encoding overlap (both release the GIL); bytes among the batches go to on_bytes on the
    writer thread, in order (a digest). The first error on either side stops both and is raised here."""
    handoff: queue.Queue = queue.Queue(maxsize=4)
    failures: list[BaseException] = []

    def write() -> None:
        while (batch := handoff.get()) is not None:
            if failures:
                continue  # keep draining so the reader never blocks
            try:
                if isinstance(batch, bytes):
                    on_bytes(batch)
                    continue
                batch = normalise_batch(batch, sink.schema)
                check_cells(batch, limits, sink.rows)
                sink.write(batch)
            except BaseException as exc:  # re-raised in the reading thread
                failures.append(exc)

    writer = threading.Thread(target=write, name="parquet-writer", daemon=True)
    writer.start()
    try:
        for batch in batches:
            if failures:
                break
            handoff.put(batch)
            if after_batch:
                after_batch()
    finally:
        handoff.put(None)
        writer.join()
    if failures:
        raise failures[0]
