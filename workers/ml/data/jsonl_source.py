"""JSON Lines to Parquet in two streaming passes over chunks of whole lines (~8 MiB each): the first learns the
columns and their types from every line (fields may first appear late, numbers may be ints then floats); the second
parses again with that schema fixed and writes. The first line is checked before anything is parsed."""

import io
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.json as pa_json

from workers.ml.data.errors import IngestError
from workers.ml.data.formats import SourceFormat
from workers.ml.data.limits import IngestLimits, human_bytes
from workers.ml.data.normalise import (
    Normalised,
    ParquetSink,
    check_cells,
    check_column_names,
    normalise_batch,
    target_schema,
)
from workers.ml.data.streams import RAW_CHUNK, SourceStream, utf8_problem

CHUNK_BYTES = 8 * 1024 * 1024
MAX_LINE_BYTES = 64 * 1024 * 1024
_ROW = re.compile(r"in row (\d+)")
_CHANGED = re.compile(r"Column\((/[^)]*|)\) changed from (\w+) to (\w+) in row (\d+)")


def _chunks(source: Path, fmt: SourceFormat, limits: IngestLimits, stream_out: list) -> Iterator[tuple[int, bytes]]:
    """(number of the chunk's first line, chunk of whole lines), checking UTF-8 on the way."""
    stream = SourceStream(source, gzip=fmt.gzip, limits=limits)
    stream_out.append(stream)
    pending, line, offset = b"", 1, 0
    try:
        while True:
            data = stream.read(CHUNK_BYTES)
            if data:
                pending += data
                cut = pending.rfind(b"\n") + 1
                if cut == 0:
                    if len(pending) > MAX_LINE_BYTES:
                        raise IngestError(
                            "cell_too_long", f"Line {line:,} is longer than {human_bytes(MAX_LINE_BYTES)}."
                        )
                    continue
            else:
                cut = len(pending)
            chunk, pending = pending[:cut], pending[cut:]
            if offset == 0 and chunk.startswith(b"\xef\xbb\xbf"):
                chunk, offset = chunk[3:], 3
            if chunk:
                message, _ = utf8_problem(chunk, offset=offset, line=line, final=True)
                if message:
                    raise IngestError("not_utf8", message)
                yield line, chunk
                line += chunk.count(b"\n")
                offset += len(chunk)
            if not data:
                return
    finally:
        stream.close()


def _first_object(source: Path, fmt: SourceFormat, limits: IngestLimits) -> dict:
    """The first non-blank line as an object, read bounded, so a line of 100,000 fields is refused before pyarrow
    parses anything."""
    stream = SourceStream(source, gzip=fmt.gzip, limits=limits)
    buffer, number = b"", 1
    try:
        while True:
            chunk = stream.read(RAW_CHUNK)
            buffer += chunk
            while buffer[:1] in (b"\n", b"\r") and buffer:
                number += buffer[:1] == b"\n"
                buffer = buffer[1:]
            end = buffer.find(b"\n")
            if end >= 0 or not chunk:
                break
            if len(buffer) > MAX_LINE_BYTES:
                raise IngestError("cell_too_long", f"Line {number:,} is longer than {human_bytes(MAX_LINE_BYTES)}.")
    finally:
        stream.close()
    line = buffer[:end] if end >= 0 else buffer
    if not line.strip():
        raise IngestError("empty_file", "The file holds no data: it is empty or has only blank lines.")
    duplicates: list[str] = []

    def pairs(items):
        seen = set()
        for key, _ in items:
            if key in seen:
                duplicates.append(key)
            seen.add(key)
        return dict(items)

    try:
        first = json.loads(line.decode("utf-8-sig"), object_pairs_hook=pairs)
    except UnicodeDecodeError as exc:
        raise IngestError("not_utf8", f"Line {number:,} is not valid UTF-8 (byte offset {exc.start:,}).") from exc
    except ValueError as exc:
        raise IngestError("invalid_json", f"Line {number:,} is not valid JSON: {exc}.") from exc
    if not isinstance(first, dict):
        raise IngestError(
            "invalid_json", f"Line {number:,} is not a JSON object; each line must be one {{...}} object."
        )
    if duplicates:
        raise IngestError(
            "duplicate_column_names",
            f"Line {number:,} repeats the field {duplicates[0]!r}; field names must be unique.",
            column=duplicates[0],
        )
    check_column_names(list(first), limits, where="first line")
    return first


def normalise_jsonl(
    source: Path,
    workdir: Path,
    fmt: SourceFormat,
    limits: IngestLimits,
    *,
    progress: Callable[[float], None] | None = None,
) -> Normalised:
    _first_object(source, fmt, limits)
    size = source.stat().st_size
    schema: pa.Schema | None = None
    streams: list[SourceStream] = []
    for first_line, chunk in _chunks(source, fmt, limits, streams):
        table = _parse(chunk, first_line, None)
        schema = table.schema if schema is None else _unify(schema, table.schema, first_line)
        if len(schema) > limits.max_columns:
            raise IngestError(
                "too_many_columns",
                f"The lines hold {len(schema):,} different fields; the limit is {limits.max_columns:,} columns.",
            )
        if progress:
            progress(0.5 * min(streams[-1].raw_bytes / max(size, 1), 1.0))
    if schema is None or len(schema) == 0:
        raise IngestError("invalid_json", "The JSON objects have no fields: there are no columns to keep.")
    check_column_names(schema.names, limits, where="lines")
    original_sha256, original_size = streams[-1].sha256.hexdigest(), streams[-1].raw_bytes

    read_schema = pa.schema([pa.field(f.name, pa.string() if pa.types.is_null(f.type) else f.type) for f in schema])
    out_schema = target_schema(read_schema)
    sink = ParquetSink(workdir, keep_bytes=limits.analysis_memory_bytes)
    try:
        sink.open(out_schema)
        streams.clear()
        for first_line, chunk in _chunks(source, fmt, limits, streams):
            for batch in _parse(chunk, first_line, read_schema).to_batches():
                batch = normalise_batch(batch, out_schema)
                check_cells(batch, limits, sink.rows)
                sink.write(batch)
            if progress:
                progress(0.5 + 0.5 * min(streams[-1].raw_bytes / max(size, 1), 1.0))
        rows = sink.rows
        path = sink.finish()
    except BaseException:
        sink.abort()
        raise
    return Normalised(path, rows, len(out_schema), original_sha256, original_size, table=sink.kept_table())


def _parse(chunk: bytes, first_line: int, schema: pa.Schema | None) -> pa.Table:
    parse_options = (
        pa_json.ParseOptions(explicit_schema=schema, unexpected_field_behavior="error")
        if schema is not None
        else pa_json.ParseOptions()
    )
    try:
        return pa_json.read_json(
            io.BytesIO(chunk),
            read_options=pa_json.ReadOptions(use_threads=True, block_size=max(len(chunk) + 1, 1024 * 1024)),
            parse_options=parse_options,
        )
    except pa.ArrowInvalid as exc:
        raise _map_error(str(exc), chunk, first_line) from exc


def _line_of_row(chunk: bytes, first_line: int, row: int) -> int:
    """pyarrow counts rows without blank lines; turn its row index into the file's line number."""
    seen = -1
    for index, text in enumerate(chunk.split(b"\n")):
        if text.strip():
            seen += 1
            if seen == row:
                return first_line + index
    return first_line


def _map_error(message: str, chunk: bytes, first_line: int) -> IngestError:
    for index, text in enumerate(chunk.split(b"\n")):
        if not text.strip():
            continue
        line = first_line + index
        try:
            value = json.loads(text)
        except ValueError as exc:
            return IngestError("invalid_json", f"Line {line:,} is not valid JSON: {exc}.")
        if not isinstance(value, dict):
            return IngestError(
                "invalid_json", f"Line {line:,} is not a JSON object; each line must be one {{...}} object."
            )
    changed = _CHANGED.search(message)
    if changed:
        field = changed.group(1).lstrip("/") or "(top level)"
        line = _line_of_row(chunk, first_line, int(changed.group(4)))
        return IngestError(
            "invalid_json",
            f"Field '{field}' changes from {changed.group(2)} to {changed.group(3)} on line {line:,}; each field must "
            "keep one type.",
            column=field,
        )
    row = _ROW.search(message)
    where = f" near line {_line_of_row(chunk, first_line, int(row.group(1))):,}" if row else ""
    return IngestError("invalid_json", f"The file is not valid JSON Lines{where}: {message}")


def _merge_types(old: pa.DataType, new: pa.DataType, name: str, line: int) -> pa.DataType:
    if old == new or pa.types.is_null(new):
        return old
    if pa.types.is_null(old):
        return new
    if _numeric(old) and _numeric(new):
        return pa.float64() if pa.types.is_floating(old) or pa.types.is_floating(new) else pa.int64()
    if _temporal(old) and _temporal(new):
        return pa.timestamp("us")
    if (_temporal(old) or pa.types.is_string(old)) and (_temporal(new) or pa.types.is_string(new)):
        return pa.string()  # dates in some lines, other text in others: keep the text
    if pa.types.is_struct(old) and pa.types.is_struct(new):
        merged = _unify(pa.schema(list(old)), pa.schema(list(new)), line, prefix=f"{name}.")
        return pa.struct(list(merged))
    if pa.types.is_list(old) and pa.types.is_list(new):
        return pa.list_(_merge_types(old.value_type, new.value_type, name, line))
    raise IngestError(
        "invalid_json",
        f"Field '{name}' holds {_kind(old)} before line {line:,} and {_kind(new)} from there on; each field must keep "
        "one type.",
        column=name,
    )


def _unify(old: pa.Schema, new: pa.Schema, line: int, prefix: str = "") -> pa.Schema:
    fields = {f.name: f.type for f in old}
    for f in new:
        fields[f.name] = _merge_types(fields[f.name], f.type, prefix + f.name, line) if f.name in fields else f.type
    return pa.schema(list(fields.items()))


def _numeric(t: pa.DataType) -> bool:
    return pa.types.is_integer(t) or pa.types.is_floating(t)


def _temporal(t: pa.DataType) -> bool:
    return pa.types.is_timestamp(t) or pa.types.is_date(t)


def _kind(t: pa.DataType) -> str:
    if _numeric(t):
        return "numbers"
    if pa.types.is_boolean(t):
        return "true/false"
    if pa.types.is_string(t) or _temporal(t):
        return "text"
    if pa.types.is_struct(t):
        return "objects"
    if pa.types.is_list(t):
        return "lists"
    return str(t)
