"""CSV and TSV to Parquet, streaming: the header is checked before anything is parsed, then pyarrow's streaming CSV
reader feeds a ParquetWriter one block at a time (normalise.pump), while the raw bytes are digested on the way.

pyarrow infers column types from the first block; when a later block disagrees ("x" in an int64 column), the file
is read again with that column's type widened (int64 -> float64 -> string). Parse errors are mapped to stable codes;
when pyarrow's message is not precise enough, a diagnosis pass with Python's csv module (strict) finds the line.
"""

import codecs
import csv
import io
import re
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pa_csv

from workers.ml.data.errors import IngestError
from workers.ml.data.formats import SourceFormat
from workers.ml.data.limits import IngestLimits, human_bytes, plural
from workers.ml.data.normalise import Normalised, ParquetSink, check_column_names, pump, target_schema
from workers.ml.data.streams import RAW_CHUNK, RawDigest, SourceStream, not_utf8_error

BLOCK_SIZE = 4 * 1024 * 1024  # measured: 4 MiB blocks parse fastest here (bench/ingest.py)
MAX_NAME_BYTES = 1024  # a header line may be at most max_columns * (MAX_NAME_BYTES + 1) bytes long
MAX_BLOCK_SIZE = 256 * 1024 * 1024
MAX_RETRIES = 64
UTF8_BOM = codecs.BOM_UTF8

_CONVERSION = re.compile(
    r"In CSV column #(\d+): (?:Row #(\d+): )?CSV conversion error to ([^:]+): invalid value '(.*)'", re.DOTALL
)
_COLUMN = re.compile(r"In CSV column #(\d+)")
_EXPECTED = re.compile(r"Expected (\d+) columns, got (\d+)")
_FLOAT = re.compile(r"^[+-]?(\d+\.?\d*([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?|inf|nan)$", re.IGNORECASE)
_INT = re.compile(r"^[+-]?\d+$")


class _Retype(Exception):  # control flow: never leaves this module
    def __init__(self, column: str, new_type: pa.DataType):
        self.column, self.new_type = column, new_type


class _GrowBlock(Exception):  # a row longer than the block: read again with bigger blocks
    pass


def read_header(
    source: Path, fmt: SourceFormat, limits: IngestLimits, *, encoding: str | None = None
) -> tuple[list[str], bool]:
    """(column names, whether anything follows the header line) from the first non-blank line, read bounded:
    a header longer than max_columns * 1 KiB is refused before it is parsed."""
    budget = max(64 * 1024, limits.max_columns * (MAX_NAME_BYTES + 1))
    stream = SourceStream(source, gzip=fmt.gzip, limits=limits)
    try:
        buffer = b""
        end = -1
        while True:
            chunk = stream.read(min(RAW_CHUNK, budget + 1 - len(buffer)))
            buffer += chunk
            if buffer.startswith(UTF8_BOM):
                buffer = buffer[len(UTF8_BOM) :]
            buffer = buffer.lstrip(b"\r\n")
            end = _record_end(buffer)
            if end >= 0 or not chunk or len(buffer) > budget:
                break
        more = end >= 0 and bool(buffer[end + 1 :].strip(b"\r\n"))
        while end >= 0 and not more and (chunk := stream.read(RAW_CHUNK)):  # only blank lines so far
            more = bool(chunk.strip(b"\r\n"))
    finally:
        stream.close()
    if not buffer.strip():
        raise IngestError("empty_file", "The file holds no data: it is empty or has only blank lines.")
    if end < 0 and len(buffer) > budget:
        separators = buffer.count(fmt.delimiter.encode())
        if separators >= limits.max_columns:
            raise IngestError(
                "too_many_columns",
                f"The header line is longer than {human_bytes(budget)} and has more than {separators:,} columns; "
                f"the limit is {limits.max_columns:,}. Nothing was parsed.",
            )
        raise IngestError(
            "cell_too_long",
            f"The header line is longer than {human_bytes(budget)} without ending: a column name is too long, or "
            "the file is not a CSV.",
        )
    line = buffer[:end] if end >= 0 else buffer
    try:
        text = line.decode(encoding or "utf-8")
    except (UnicodeDecodeError, LookupError) as exc:
        if isinstance(exc, LookupError):
            raise IngestError("not_utf8", f"Unknown text encoding {encoding!r}.") from exc
        raise IngestError(
            "not_utf8",
            f"The header line is not valid UTF-8 (byte 0x{line[exc.start]:02X} at position {exc.start + 1}). "
            "Save the file as UTF-8 (in Excel: 'CSV UTF-8'), or declare its encoding.",
        ) from exc
    separators = text.count(fmt.delimiter)
    if separators + 1 > limits.max_columns:  # cheap bound before csv parsing 100,000 names
        raise IngestError(
            "too_many_columns",
            f"The header has {separators + 1:,} columns; the limit is {limits.max_columns:,}. Nothing was parsed.",
        )
    names = next(csv.reader([text.rstrip("\r\n")], delimiter=fmt.delimiter, strict=False), [])
    check_column_names(names, limits)
    return names, more


def _record_end(buffer: bytes) -> int:
    """Index of the newline ending the first record (a newline outside quotes), or -1."""
    position = buffer.find(b"\n")
    while position >= 0 and buffer.count(b'"', 0, position) % 2:
        position = buffer.find(b"\n", position + 1)
    return position


def normalise_csv(
    source: Path,
    workdir: Path,
    fmt: SourceFormat,
    limits: IngestLimits,
    *,
    encoding: str | None = None,
    progress: Callable[[float], None] | None = None,
) -> Normalised:
    names, more = read_header(source, fmt, limits, encoding=encoding)
    if not more:
        raise IngestError(
            "header_only", f"The file has a header ({plural(len(names), 'column')}) but no data rows under it."
        )
    overrides: dict[str, pa.DataType] = {}
    block_size = BLOCK_SIZE
    sink = ParquetSink(workdir, keep_bytes=limits.analysis_memory_bytes)
    try:
        for _ in range(MAX_RETRIES):
            try:
                return _stream(source, fmt, names, overrides, sink, limits, encoding, progress, block_size)
            except _Retype as retype:
                overrides[retype.column] = retype.new_type
            except _GrowBlock:
                block_size *= 4
        # Columns kept changing type: read every column as text, once and for all.
        overrides = dict.fromkeys(names, pa.string())
        return _stream(source, fmt, names, overrides, sink, limits, encoding, progress, block_size)
    except BaseException:
        sink.abort()
        raise


def _stream(source, fmt, names, overrides, sink, limits, encoding, progress, block_size) -> Normalised:
    """pyarrow's streaming CSV reader feeds a writer thread (see normalise.pump). A gzip is read through a
    SourceStream (inflated, digested, guarded against bombs); a plain file is handed to pyarrow by path, faster than
    any Python file object, and digested on a thread of its own (hashlib releases the GIL)."""
    size = source.stat().st_size
    stream = SourceStream(source, gzip=True, limits=limits, count_quotes=True) if fmt.gzip else None
    digest = None if fmt.gzip else RawDigest(source)
    finished = False
    try:
        reader = pa_csv.open_csv(
            stream if stream is not None else str(source),
            read_options=pa_csv.ReadOptions(block_size=block_size, use_threads=True, encoding=encoding or "utf8"),
            parse_options=pa_csv.ParseOptions(delimiter=fmt.delimiter, newlines_in_values=True),
            convert_options=pa_csv.ConvertOptions(
                column_types=overrides, strings_can_be_null=True, quoted_strings_can_be_null=True
            ),
        )
        schema = reader.schema
        binary = [f.name for f in schema if pa.types.is_binary(f.type)]
        if binary:  # pyarrow falls back to binary when the text is not valid UTF-8
            raise _not_utf8(source, fmt, limits, encoding, column=binary[0])
        sink.open(target_schema(schema))

        def report() -> None:
            if progress:
                done = stream.raw_bytes if stream is not None else digest.position
                progress(min(done / max(size, 1), 1.0))

        pump(reader, sink, limits, after_batch=report)
        if stream is not None:
            stream.drain()
        finished = True
    except IngestError:
        if stream is not None and stream.error is not None:
            raise stream.error from None
        raise
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        if stream is not None and stream.error is not None:
            raise stream.error from None
        raise _map_error(str(exc), source, fmt, names, overrides, limits, encoding, block_size) from exc
    finally:
        if stream is not None:
            stream.close()
        if digest is not None:
            digest.finish(cancel=not finished)
    if stream is not None:
        sha256, raw_bytes, quotes = stream.sha256.hexdigest(), stream.raw_bytes, stream.quotes
    else:
        sha256, raw_bytes, quotes = digest.sha256.hexdigest(), digest.position, digest.quotes
    if quotes % 2:
        # An odd number of quote characters: a quoted value may run to the end of the file unnoticed by pyarrow.
        problem = diagnose(source, fmt, limits, encoding)
        if problem is not None:
            raise problem
    if sink.rows == 0:
        raise IngestError(
            "header_only", f"The file has a header ({plural(len(names), 'column')}) but no data rows under it."
        )
    rows = sink.rows
    path = sink.finish()
    return Normalised(path, rows, len(names), sha256, raw_bytes, table=sink.kept_table())


def _map_error(message, source, fmt, names, overrides, limits, encoding, block_size) -> Exception:
    conversion = _CONVERSION.search(message)
    if conversion and conversion.group(3).strip() != "string":
        column = names[int(conversion.group(1))]
        if column not in overrides or overrides[column] != pa.string():
            return _Retype(column, _widen(conversion.group(3).strip(), conversion.group(4)))
    if "invalid UTF8" in message or "UTF-8" in message:
        position = _COLUMN.search(message)
        column = names[int(position.group(1))] if position else None
        return _not_utf8(source, fmt, limits, encoding, column=column)
    if "straddling" in message and block_size < MAX_BLOCK_SIZE:
        return _GrowBlock()
    problem = diagnose(source, fmt, limits, encoding)
    if problem is not None:
        return problem
    expected = _EXPECTED.search(message)
    if "straddling" in message:
        return IngestError(
            "cell_too_long", f"A single row is longer than {human_bytes(block_size)}; rows must be shorter than that."
        )
    if expected:
        return IngestError(
            "ragged_rows",
            f"A row has {expected.group(2)} fields where the header has {expected.group(1)}: {message.split(': ')[-1]}",
        )
    return IngestError("ragged_rows", f"The file cannot be parsed as {fmt.format.value.upper()}: {message}")


def _widen(failed_type: str, value: str) -> pa.DataType:
    """The type to retry a column with after `value` did not convert to `failed_type`."""
    if failed_type in ("int64", "null") and _FLOAT.match(value.strip()):
        return pa.int64() if failed_type == "null" and _INT.match(value.strip()) else pa.float64()
    return pa.string()


def _text_stream(source: Path, fmt: SourceFormat, limits: IngestLimits, encoding: str | None):
    raw = SourceStream(source, gzip=fmt.gzip, limits=limits)
    return io.TextIOWrapper(io.BufferedReader(raw, RAW_CHUNK), encoding=encoding or "utf-8-sig", newline="")


def diagnose(source: Path, fmt: SourceFormat, limits: IngestLimits, encoding: str | None) -> IngestError | None:
    """Read the file with Python's strict csv reader and describe the first real problem, with its line number:
    unbalanced_quotes, ragged_rows, cell_too_long or not_utf8. None when it finds nothing wrong."""
    csv.field_size_limit(max(limits.max_cell_bytes + 1, 131072))
    text = _text_stream(source, fmt, limits, encoding)
    reader = csv.reader(text, delimiter=fmt.delimiter, strict=True)
    width = None
    try:
        for row in reader:
            if not row:
                continue
            if width is None:
                width = len(row)
            elif len(row) != width:
                if any("\n" in value for value in row):  # a quote left open swallowed line ends
                    return _unbalanced(reader.line_num)
                return IngestError(
                    "ragged_rows",
                    f"Line {reader.line_num:,} has {len(row)} fields where the header has {width}; every row must "
                    "have one value per column.",
                )
    except csv.Error as exc:
        text_of = str(exc)
        if "field larger than field limit" in text_of:
            return IngestError(
                "cell_too_long",
                f"Line {reader.line_num:,}: a value is longer than {human_bytes(limits.max_cell_bytes)}, the limit.",
            )
        return _unbalanced(reader.line_num, detail=text_of)
    except UnicodeDecodeError:
        return _not_utf8(source, fmt, limits, encoding)
    finally:
        text.close()
    return None


def _unbalanced(line: int, detail: str = "") -> IngestError:
    return IngestError(
        "unbalanced_quotes",
        f"Unbalanced quotes: a quoted value is not closed properly (found by line {line:,}"
        + (f": {detail}" if detail else "")
        + '). Close every opening " and write a quote inside a quoted value as "".',
    )


def _not_utf8(source: Path, fmt: SourceFormat, limits: IngestLimits, encoding: str | None, column=None) -> IngestError:
    if encoding and codecs.lookup(encoding).name != "utf-8":
        return IngestError("not_utf8", f"The file cannot be decoded as {encoding}.", column=column)
    return not_utf8_error(source, gzip=fmt.gzip, limits=limits, column=column)
