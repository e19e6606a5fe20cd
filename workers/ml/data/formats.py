"""What a source file is: by its magic bytes first (gzip, Parquet), then by its display name's extension.

The display name is only ever looked at for its extension: it never becomes a path (see pipeline.py).
"""

import zlib
from dataclasses import dataclass
from enum import StrEnum
from pathlib import PurePosixPath

from workers.ml.data.errors import IngestError

GZIP_MAGIC = b"\x1f\x8b"
PARQUET_MAGIC = b"PAR1"
HEAD_BYTES = 64 * 1024  # how much of a file sniff_format wants to see


class FileFormat(StrEnum):
    CSV = "csv"
    TSV = "tsv"
    PARQUET = "parquet"
    JSONL = "jsonl"


@dataclass(frozen=True)
class SourceFormat:
    format: FileFormat
    gzip: bool

    @property
    def extension(self) -> str:
        return f".{self.format.value}" + (".gz" if self.gzip else "")

    @property
    def delimiter(self) -> str:
        return "\t" if self.format == FileFormat.TSV else ","


_EXTENSIONS = {
    ".csv": FileFormat.CSV,
    ".tsv": FileFormat.TSV,
    ".tab": FileFormat.TSV,
    ".parquet": FileFormat.PARQUET,
    ".jsonl": FileFormat.JSONL,
    ".ndjson": FileFormat.JSONL,
}
ACCEPTED = ".csv, .tsv, .parquet, .jsonl or .ndjson (the text formats optionally gzip-compressed, .gz)"

# Magic numbers of files people upload by mistake, so the message can say what the file seems to be.
_KNOWN_BINARIES = (
    (b"PK\x03\x04", "a ZIP archive (an Excel .xlsx workbook?)"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old Office document (an Excel .xls workbook?)"),
    (b"%PDF", "a PDF document"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"BZh", "a bzip2 archive"),
    (b"\xfd7zXZ\x00", "an xz archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"\x28\xb5\x2f\xfd", "a Zstandard archive"),
    (b"SQLite format 3\x00", "an SQLite database"),
    (b"ARROW1", "an Arrow IPC file"),
    (b"\x7fELF", "an executable"),
    (b"MZ", "a Windows executable"),
)
_CONTROL_BYTES = bytes(b for b in range(32) if b not in (9, 10, 12, 13)) + b"\x7f"


def _extension_of(display_name: str) -> tuple[str, bool]:
    """('.csv', True) for 'Sales 2024.CSV.gz'. Only the last path segment counts, whatever separators it holds."""
    name = PurePosixPath(display_name.replace("\\", "/")).name.strip().lower()
    gz = name.endswith(".gz")
    if gz:
        name = name[:-3]
    suffix = PurePosixPath(name).suffix if "." in name else ""
    return suffix, gz


def _check_text(head: bytes, fmt: FileFormat) -> None:
    """Refuse a binary file that carries a text format's name (NUL bytes, control bytes, known magic numbers)."""
    what = next((label for magic, label in _KNOWN_BINARIES if head.startswith(magic)), None)
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise IngestError(
            "not_utf8", "The file is UTF-16 encoded text. Save it as UTF-8 (for example 'CSV UTF-8') and upload again."
        )
    if what is None:
        if b"\x00" in head:
            what = "binary data (it contains NUL bytes)"
        else:
            controls = sum(head.count(bytes([b])) for b in _CONTROL_BYTES)
            if controls > max(2, len(head) // 200):
                what = f"binary data ({controls} control bytes in its first {len(head)} bytes)"
    if what is not None:
        raise IngestError(
            "binary_file", f"The file is named like a {fmt.value.upper()} file but looks like {what}, not text."
        )


def _inflate_head(head: bytes, max_ratio: int) -> bytes:
    """The first HEAD_BYTES of what a gzip head inflates to; refuses a bomb before anything else is judged (a bomb
    of zeros would otherwise be called binary). Inflates at most max_ratio * len(head) bytes, 1 MiB at a time."""
    inflater = zlib.decompressobj(wbits=31)
    try:
        inner = inflater.decompress(head, HEAD_BYTES)
        inflated = len(inner)
        while inflater.unconsumed_tail and inflated <= max_ratio * len(head):
            inflated += len(inflater.decompress(inflater.unconsumed_tail, 1024 * 1024))
    except zlib.error as exc:
        raise IngestError(
            "unsupported_format", f"The file starts like a gzip archive but cannot be decompressed ({exc})."
        ) from exc
    consumed = len(head) - len(inflater.unconsumed_tail)
    if inflated > 1024 * 1024 and inflated > max_ratio * max(consumed, 1):
        raise IngestError(
            "decompression_bomb",
            f"The gzip file inflates more than {max_ratio} times its compressed size: it looks like a decompression "
            "bomb and was not unpacked.",
        )
    return inner


def sniff_format(display_name: str, head: bytes, *, max_compression_ratio: int = 200) -> SourceFormat:
    """Decide the format from the first bytes (HEAD_BYTES is plenty) and the display name.

    Raises IngestError: empty_file for no bytes, decompression_bomb for a gzip whose head already inflates more than
    max_compression_ratio times, binary_file for a binary file named like a text format, unsupported_format for
    anything else that is not one of the accepted formats.
    """
    if not head:
        raise IngestError("empty_file", "The file is empty (0 bytes).")
    extension, named_gz = _extension_of(display_name)
    named_format = _EXTENSIONS.get(extension)

    if head.startswith(GZIP_MAGIC):
        inner = _inflate_head(head, max_compression_ratio)
        if inner.startswith(PARQUET_MAGIC) or named_format == FileFormat.PARQUET:
            raise IngestError(
                "unsupported_format",
                "The file is a gzip-compressed Parquet file. Parquet is compressed already: upload the .parquet file "
                "itself.",
            )
        if named_format is None:
            raise IngestError(
                "unsupported_format",
                f"The file is gzip-compressed, but its name does not say what is inside. Accepted: {ACCEPTED}.",
            )
        if not inner:
            raise IngestError("empty_file", "The file is an empty gzip archive (0 bytes of data inside).")
        _check_text(inner, named_format)
        return SourceFormat(named_format, gzip=True)

    if head.startswith(PARQUET_MAGIC):
        return SourceFormat(FileFormat.PARQUET, gzip=False)
    if named_gz:
        raise IngestError("unsupported_format", "The file is named .gz but is not gzip-compressed.")
    if named_format == FileFormat.PARQUET:
        raise IngestError("unsupported_format", "The file is named .parquet but is not a Parquet file.")
    if named_format is None:
        what = next((label for magic, label in _KNOWN_BINARIES if head.startswith(magic)), None)
        found = f"It looks like {what}. " if what else ""
        shown = f"'{extension}'" if extension else "no extension"
        raise IngestError("unsupported_format", f"Unsupported file type ({shown}). {found}Accepted: {ACCEPTED}.")
    _check_text(head, named_format)
    return SourceFormat(named_format, gzip=False)
