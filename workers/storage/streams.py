"""Stream helpers shared by the artifact store implementations: hash while copying, verify while reading."""

import hashlib
import hmac
import io
from typing import BinaryIO

from workers.storage.base import CHUNK_SIZE, ChecksumMismatch


def copy_hashing(source: BinaryIO, target: BinaryIO, *, chunk_size: int = CHUNK_SIZE) -> tuple[str, int]:
    """Copy `source` to `target` in chunks until EOF; return (SHA-256 hex digest, size). Never holds more than one
    chunk. Whatever `source.read` raises propagates unchanged (the caller removes what it wrote)."""
    sha, size = hashlib.sha256(), 0
    while chunk := source.read(chunk_size):
        if not isinstance(chunk, bytes | bytearray | memoryview):
            raise TypeError(f"the stream must be opened in binary mode, it returned {type(chunk).__name__}")
        target.write(chunk)
        sha.update(chunk)
        size += len(chunk)
    return sha.hexdigest(), size


class VerifyingReader(io.RawIOBase):
    """A read-only stream over `raw` that hashes what passes through and, at EOF, raises ChecksumMismatch when the
    SHA-256 of everything read differs from `expected_sha256` (None = no verification).

    The check happens only when a read reaches EOF, so callers must read to the end to be protected (the base
    class's `iter_chunks`, `download_to` and `get_bytes` do). The mismatch is sticky: every later read raises too.
    """

    def __init__(self, raw, *, key: str, expected_sha256: str | None):
        super().__init__()
        self._raw = raw
        self._key = key
        self._expected = expected_sha256
        self._sha = hashlib.sha256()
        self._eof = False
        self._failure: ChecksumMismatch | None = None
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self._failure is not None:
            raise self._failure
        view = memoryview(buffer).cast("B")
        if not len(view):
            return 0
        if self._eof:
            return 0
        data = self._raw.read(len(view))
        if not data:
            self._eof = True
            self._check()
            return 0
        count = len(data)
        view[:count] = data
        self._sha.update(data)
        self.bytes_read += count
        return count

    def _check(self) -> None:
        if self._expected is None:
            return
        actual = self._sha.hexdigest()
        if not hmac.compare_digest(actual, self._expected):
            self._failure = ChecksumMismatch(
                f"{self._key}: the bytes read hash to {actual}, the store recorded {self._expected}"
            )
            raise self._failure

    @property
    def sha256(self) -> str:
        """SHA-256 of the bytes read so far."""
        return self._sha.hexdigest()

    def close(self) -> None:
        if self.closed:
            return
        try:
            self._raw.close()
        finally:
            super().close()
