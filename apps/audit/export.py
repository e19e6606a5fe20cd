"""Encoding audit events as CSV or JSON Lines, chunk by chunk, and the digest of exactly those bytes.

Nothing here holds more than one chunk of rows: callers pass an iterator over database rows (a queryset's
`.iterator()`), and get back an iterator of byte chunks. The same rows always give the same bytes, which is what lets
the export compute its digest in a first pass and stream the identical body in a second one.
"""

import base64
import csv
import hashlib
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum

from apps.audit.chain import format_timestamp

# The exported columns, in order; each is a field of AuditEvent (project_id is the project's UUID).
EXPORT_COLUMNS = (
    "seq",
    "occurred_at",
    "actor_username",
    "action",
    "object_type",
    "object_id",
    "project_id",
    "before",
    "after",
    "request_id",
    "client_ip",
    "prev_hash",
    "hash",
)

# OWASP CSV injection: a spreadsheet treats a cell starting with one of these as a formula.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

# Rows encoded into one chunk of the response body.
ROWS_PER_CHUNK = 500


class ExportFormat(StrEnum):
    CSV = "csv"
    JSONL = "jsonl"

    @property
    def label(self) -> str:
        return {"csv": "CSV", "jsonl": "JSON Lines"}[self.value]

    @property
    def content_type(self) -> str:
        return {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson; charset=utf-8"}[self.value]


def export_filename(fmt: ExportFormat, upto: int) -> str:
    return f"audit-{upto}.{fmt.value}"


def neutralise_cell(text: str) -> str:
    """Prefix a single quote to a cell a spreadsheet would read as a formula; other cells are left as they are."""
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def _json_text(value) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


_OCCURRED_AT = EXPORT_COLUMNS.index("occurred_at")
_JSON_COLUMNS = frozenset({EXPORT_COLUMNS.index("before"), EXPORT_COLUMNS.index("after")})


def _plain(row: tuple) -> dict:
    """A database row (values in EXPORT_COLUMNS order) as JSON-ready values."""
    record = dict(zip(EXPORT_COLUMNS, row, strict=True))
    record["occurred_at"] = format_timestamp(record["occurred_at"])
    record["project_id"] = str(record["project_id"]) if record["project_id"] is not None else None
    return record


def _csv_cells(row: tuple) -> list[str]:
    """A database row as CSV cells: JSON text for before/after, empty for none, formulas neutralised."""
    cells = []
    for index, value in enumerate(row):
        if value is None:
            text = ""
        elif index == _OCCURRED_AT:
            text = format_timestamp(value)
        elif index in _JSON_COLUMNS:
            text = _json_text(value)
        else:
            text = str(value)
        cells.append(neutralise_cell(text))
    return cells


def _jsonl_line(row: tuple) -> str:
    return json.dumps(_plain(row), ensure_ascii=False, separators=(",", ":")) + "\n"


def _csv_text_writer():
    """A CSV writer that returns the text of the rows it is given (one reused buffer, cleared each time)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def write(rows_of_cells: Iterable[Iterable[str]]) -> str:
        buffer.seek(0)
        buffer.truncate()
        writer.writerows(rows_of_cells)
        return buffer.getvalue()

    return write


def encode_rows(rows: Iterable[tuple], fmt: ExportFormat) -> Iterator[tuple[bytes, int]]:
    """Yield (chunk of the body, number of events in it); CSV starts with its header row (0 events)."""
    if fmt == ExportFormat.CSV:
        write_csv = _csv_text_writer()
        yield write_csv([EXPORT_COLUMNS]).encode(), 0

        def encode_batch(batch: list[tuple]) -> str:
            return write_csv(_csv_cells(row) for row in batch)

    else:

        def encode_batch(batch: list[tuple]) -> str:
            return "".join(_jsonl_line(row) for row in batch)

    batch: list[tuple] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= ROWS_PER_CHUNK:
            yield encode_batch(batch).encode(), len(batch)
            batch = []
    if batch:
        yield encode_batch(batch).encode(), len(batch)


def encode_body(rows: Iterable[tuple], fmt: ExportFormat) -> Iterator[bytes]:
    for chunk, _count in encode_rows(rows, fmt):
        yield chunk


@dataclass(frozen=True)
class ExportDigest:
    sha256: str  # hex
    count: int  # events in the body
    size: int  # bytes in the body

    @property
    def base64(self) -> str:
        return base64.b64encode(bytes.fromhex(self.sha256)).decode()


def digest_rows(rows: Iterable[tuple], fmt: ExportFormat) -> ExportDigest:
    """The SHA-256, event count and size of the body `encode_rows` gives for `rows`, in constant memory."""
    sha = hashlib.sha256()
    count = size = 0
    for chunk, in_chunk in encode_rows(rows, fmt):
        sha.update(chunk)
        count += in_chunk
        size += len(chunk)
    return ExportDigest(sha256=sha.hexdigest(), count=count, size=size)


def digest_headers(digest: ExportDigest) -> dict[str, str]:
    """The digest as X-Export-SHA256 (hex), Digest (RFC 3230) and Content-Digest (RFC 9530)."""
    return {
        "X-Export-SHA256": digest.sha256,
        "Digest": f"sha-256={digest.base64}",
        "Content-Digest": f"sha-256=:{digest.base64}:",
    }


def sidecar_text(digest: ExportDigest, filename: str) -> str:
    """The sidecar file, in `sha256sum` format: `sha256sum -c audit-42.csv.sha256` checks the export."""
    return f"{digest.sha256}  {filename}\n"
