"""Parquet to normalised Parquet. The schema and the file's key-value metadata are inspected first, without
letting pyarrow rebuild any extension type, and a file carrying a Python (pickled) extension type is refused before a
single row is read. Rows are then streamed batch by batch into a clean file (no source metadata is carried over)."""

import base64
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from workers.ml.data.errors import IngestError
from workers.ml.data.limits import IngestLimits, plural
from workers.ml.data.normalise import Normalised, ParquetSink, check_column_names, pump, target_schema
from workers.ml.data.streams import sha256_of_file

BATCH_ROWS = 64 * 1024
EXTENSION_NAME = b"ARROW:extension:name"
EXTENSION_METADATA = b"ARROW:extension:metadata"
PYTHON_EXTENSION_NAMES = (b"arrow.py_extension_type", b"arrow.py_ext")
PICKLE_MARKERS = (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05")


def _unsafe_reason(metadata: dict | None) -> str | None:
    for key, value in (metadata or {}).items():
        if key == EXTENSION_NAME and value.startswith(PYTHON_EXTENSION_NAMES):
            return f"a Python extension type ({value.decode('latin-1')})"
        if key == EXTENSION_METADATA and value[:1] == b"\x80":
            return "extension metadata that is a pickled Python object"
        if value.startswith(PICKLE_MARKERS):
            return f"metadata '{key.decode('latin-1', 'replace')}' that is a pickled Python object"
    return None


def _walk_fields(fields):
    for field in fields:
        yield field
        kind = field.type
        if pa.types.is_struct(kind):
            yield from _walk_fields(list(kind))
        elif pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind):
            yield from _walk_fields([kind.value_field])
        elif pa.types.is_map(kind):
            yield from _walk_fields([kind.key_field, kind.item_field])


def check_parquet_safe(parquet: pq.ParquetFile) -> None:
    """unsafe_parquet if any field, the schema or the file metadata names a Python extension type or holds a
    pickle. Also looks inside the serialized Arrow schema the file carries."""
    schema = parquet.schema_arrow
    reason = None
    for field in _walk_fields(list(schema)):
        reason = _unsafe_reason(field.metadata)
        if reason is None and isinstance(field.type, pa.BaseExtensionType):
            reason = f"an extension type ({field.type.extension_name})"
        if reason is not None:
            reason += f" in column '{field.name}'"
            break
    raw = dict(parquet.metadata.metadata or {})
    if reason is None:
        reason = _unsafe_reason(schema.metadata) or _unsafe_reason(raw)
    serialized = raw.get(b"ARROW:schema")
    if reason is None and serialized:
        try:
            decoded = base64.b64decode(serialized)
        except ValueError:
            decoded = serialized
        if any(name in decoded for name in PYTHON_EXTENSION_NAMES):
            reason = "a Python extension type in its Arrow schema"
    if reason is not None:
        raise IngestError(
            "unsafe_parquet",
            f"The Parquet file carries {reason}. Reading it could run code, so it was refused; write it again "
            "without Python extension types (plain columns only).",
        )


def normalise_parquet(
    source: Path,
    workdir: Path,
    limits: IngestLimits,
    *,
    progress: Callable[[float], None] | None = None,
) -> Normalised:
    original_sha256, original_size = sha256_of_file(source)
    try:
        parquet = pq.ParquetFile(source)
    except (pa.ArrowInvalid, OSError) as exc:
        raise IngestError("unsupported_format", f"The Parquet file cannot be read: {exc}.") from exc
    check_parquet_safe(parquet)
    schema = parquet.schema_arrow
    check_column_names(schema.names, limits, where="Parquet schema")
    if parquet.metadata.num_rows == 0:
        raise IngestError("header_only", f"The Parquet file has {plural(len(schema.names), 'column')} but no rows.")
    out_schema = target_schema(schema)
    sink = ParquetSink(workdir, keep_bytes=limits.analysis_memory_bytes)
    total = parquet.metadata.num_rows
    try:
        sink.open(out_schema)
        pump(
            parquet.iter_batches(batch_size=BATCH_ROWS, use_threads=True),
            sink,
            limits,
            after_batch=(lambda: progress(min(sink.rows / total, 1.0))) if progress else None,
        )
        rows = sink.rows
        path = sink.finish()
    except (pa.ArrowInvalid, OSError) as exc:
        sink.abort()
        raise IngestError("unsupported_format", f"The Parquet file cannot be read: {exc}.") from exc
    except BaseException:
        sink.abort()
        raise
    return Normalised(path, rows, len(out_schema), original_sha256, original_size, table=sink.kept_table())
