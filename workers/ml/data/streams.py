"""A read-only byte stream over a source file: hashes the raw bytes, inflates gzip while guarding against bombs,
and counts what it hands out. pyarrow's readers consume it through pa.PythonFile, so one pass over the file both
parses it and digests it."""

import hashlib
import io
import threading
import zlib
from pathlib import Path

from workers.ml.data.errors import IngestError
from workers.ml.data.limits import IngestLimits, human_bytes

RAW_CHUNK = 1024 * 1024
# A legitimate gzip can start with a highly compressible stretch; judge the ratio only past this much output.
RATIO_FLOOR_BYTES = 1024 * 1024


def bomb_error_for_ratio(ratio: int) -> IngestError:
    return IngestError(
        "decompression_bomb",
        f"The gzip file inflates more than {ratio} times its compressed size: it looks like a decompression bomb "
        "and was not unpacked.",
    )


def check_gzip_ratio(compressed: int, inflated: int, limits: IngestLimits) -> None:
    if inflated > limits.max_decompressed_bytes:
        raise IngestError(
            "decompression_bomb",
            f"The gzip file inflates to more than {human_bytes(limits.max_decompressed_bytes)}, the limit for "
            "decompressed data; it was not unpacked further.",
        )
    if inflated > RATIO_FLOOR_BYTES and inflated > limits.max_compression_ratio * max(compressed, 1):
        raise bomb_error_for_ratio(limits.max_compression_ratio)


class SourceStream(io.RawIOBase):
    """Read `path` (inflating it when `gzip`), updating `sha256` with the raw bytes as they are read.

    Counters: raw_bytes (read from disk), data_bytes (handed out), quotes (b'"' in what was handed out, when
    count_quotes). Errors raised here are also kept in `error`, since pyarrow may wrap exceptions raised in a read.
    """

    def __init__(
        self, path: Path, *, gzip: bool, limits: IngestLimits, count_quotes: bool = False, hash_raw: bool = True
    ):
        super().__init__()
        self._file = open(path, "rb")  # noqa: SIM115 - closed by close()
        self._gzip = gzip
        self._limits = limits
        self._inflater = zlib.decompressobj(wbits=31) if gzip else None
        self._count_quotes = count_quotes
        self.sha256 = hashlib.sha256()
        self._hash_raw = hash_raw
        self.raw_bytes = 0
        self.data_bytes = 0
        self.quotes = 0
        self.error: Exception | None = None
        self.at_eof = False

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def close(self) -> None:
        if not self.closed:
            self._file.close()
        super().close()

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def read(self, size: int = -1) -> bytes:
        try:
            if size is None or size < 0:
                return self.readall()
            data = self._read_inflated(size) if self._gzip else self._read_raw(size)
        except IngestError as exc:
            self.error = exc
            raise
        self.data_bytes += len(data)
        if self._count_quotes:
            self.quotes += data.count(b'"')
        if not data:
            self.at_eof = True
        return data

    def readall(self) -> bytes:
        parts = []
        while chunk := self.read(RAW_CHUNK):
            parts.append(chunk)
        return b"".join(parts)

    def drain(self) -> None:
        """Read to the end (so the digest and the counters cover the whole file)."""
        while self.read(RAW_CHUNK):
            pass

    def _read_raw(self, size: int) -> bytes:
        data = self._file.read(size)
        self.raw_bytes += len(data)
        if self._hash_raw:
            self.sha256.update(data)
        return data

    def _read_inflated(self, size: int) -> bytes:
        inflater = self._inflater
        parts: list[bytes] = []
        wanted = size
        while wanted > 0:
            if inflater.unconsumed_tail:
                chunk = inflater.decompress(inflater.unconsumed_tail, wanted)
            elif inflater.eof:
                rest = inflater.unused_data
                if not rest:
                    rest = self._read_raw(RAW_CHUNK)
                    if not rest:
                        break
                # A concatenated (multi-member) gzip: the next member starts right after this one.
                inflater = self._inflater = zlib.decompressobj(wbits=31)
                chunk = self._decompress(inflater, rest, wanted)
            else:
                raw = self._read_raw(RAW_CHUNK)
                if not raw:
                    raise IngestError("unsupported_format", "The gzip file is truncated: it ends in the middle.")
                chunk = self._decompress(inflater, raw, wanted)
            if chunk:
                parts.append(chunk)
                wanted -= len(chunk)
                check_gzip_ratio(self.raw_bytes, self.data_bytes + size - wanted, self._limits)
        return b"".join(parts)

    @staticmethod
    def _decompress(inflater, data: bytes, wanted: int) -> bytes:
        try:
            return inflater.decompress(data, wanted)
        except zlib.error as exc:
            raise IngestError(
                "unsupported_format", f"The gzip file is corrupt and cannot be decompressed ({exc})."
            ) from exc


def sha256_of_file(path: Path) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as handle:
        while chunk := handle.read(4 * RAW_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def utf8_problem(data: bytes, *, offset: int, line: int, final: bool) -> tuple[str | None, int]:
    """(message or None, bytes at the end to carry into the next chunk) for one chunk of a file being checked as
    UTF-8; `offset` and `line` are those of the chunk's first byte."""
    try:
        data.decode("utf-8")
        return None, 0
    except UnicodeDecodeError as exc:
        if exc.reason == "unexpected end of data" and not final and len(data) - exc.start < 4:
            try:
                data[: exc.start].decode("utf-8")
                return None, len(data) - exc.start
            except UnicodeDecodeError as earlier:
                exc = earlier
        bad_line = line + data.count(b"\n", 0, exc.start)
        return (
            f"The file is not valid UTF-8: byte 0x{data[exc.start]:02X} on line {bad_line:,} (byte offset "
            f"{offset + exc.start:,}) cannot be decoded. Save the file as UTF-8 (in Excel: 'CSV UTF-8'), or declare "
            "its encoding."
        ), 0


def not_utf8_error(source: Path, *, gzip: bool, limits: IngestLimits, column: str | None = None) -> IngestError:
    """not_utf8 naming the line and byte offset of the first bad byte (one more pass over the file, on error only)."""
    stream = SourceStream(source, gzip=gzip, limits=limits)
    offset, line, carry = 0, 1, b""
    try:
        while True:
            chunk = stream.read(RAW_CHUNK)
            data = carry + chunk
            message, keep = utf8_problem(data, offset=offset, line=line, final=not chunk)
            if message:
                return IngestError("not_utf8", message, column=column)
            done = data[: len(data) - keep]
            carry = data[len(done) :]
            offset += len(done)
            line += done.count(b"\n")
            if not chunk:
                break
    finally:
        stream.close()
    return IngestError(
        "not_utf8", "The file is not valid UTF-8. Save it as UTF-8 (in Excel: 'CSV UTF-8').", column=column
    )


class RawDigest:
    """SHA-256, size and quote count of a plain file, computed on a background thread (hashlib releases the GIL)
    while another thread parses the same file."""

    def __init__(self, path: Path):
        self.sha256 = hashlib.sha256()
        self.position = 0
        self.quotes = 0
        self._cancelled = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(path,), name="digest", daemon=True)
        self._thread.start()

    def _run(self, path: Path) -> None:
        with open(path, "rb") as handle:
            while not self._cancelled.is_set() and (chunk := handle.read(4 * RAW_CHUNK)):
                self.sha256.update(chunk)
                self.quotes += chunk.count(b'"')
                self.position += len(chunk)

    def finish(self, *, cancel: bool = False) -> None:
        if cancel:
            self._cancelled.set()
        self._thread.join()
