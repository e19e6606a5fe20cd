"""The artifact store interface: every dataset file and model artifact goes through one of these.

Implementations (chosen by URI scheme in `workers.storage.factory.artifact_store_from_uri`):
- `file:///abs/path`    -> LocalArtifactStore (workers/storage/local.py)
- `s3://bucket/prefix`  -> S3ArtifactStore (workers/storage/s3.py), any S3-compatible endpoint

Contract (tests/workers/storage/test_contract.py runs the same suite against both):
- Keys are built by the server (workers/storage/keys.py), never from user strings; `validate_key` refuses anything
  that could escape the store's root or prefix (absolute, `..`, backslashes, empty segments, control characters).
- `put` streams (never holds the whole object in memory), computes the SHA-256 while writing, records it with the
  object (S3 metadata / a sidecar for local files) and returns it. `overwrite=False` is a conditional write: if the
  key exists, `ObjectExists` is raised and the stored object is untouched (S3: `If-None-Match: *`).
- Reads verify: `open`/`iter_chunks`/`download_to` recompute the SHA-256 while reading and raise `ChecksumMismatch`
  at the end when it differs from the recorded one (callers must consume to the end to be protected).
- `copy` duplicates an object under another key with its recorded SHA-256, with the same conditional-write and
  verification guarantees (local: a hard link; default: a verified read streamed into `put`).
- `fetch_to` places the bytes in a local file without verifying them and returns the recorded SHA-256, for a caller
  that checks it against its own digest of what it reads (local: a hard link, no byte copied).
- A failed or interrupted `put` leaves no object under the key (local: temp file + atomic rename; S3: multipart
  upload aborted).
"""

from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

CHUNK_SIZE = 1 << 20  # 1 MiB


class StorageError(Exception):
    """Base class of every artifact store error."""


class UnsafeKey(StorageError):
    """A key that could escape the store's root or prefix, or is otherwise malformed."""


class ObjectNotFound(StorageError):
    pass


class ObjectExists(StorageError):
    """A conditional write (overwrite=False) found an object already under the key."""


class ChecksumMismatch(StorageError):
    """The bytes read do not hash to the SHA-256 recorded when the object was written."""


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    sha256: str


class ArtifactStore(ABC):
    """Streaming object storage with recorded and verified SHA-256 digests."""

    #: The URI this store was built from, e.g. "file:///srv/artifacts" or "s3://bucket/prefix".
    uri: str

    @abstractmethod
    def put(self, key: str, stream: BinaryIO, *, overwrite: bool = True, content_type: str = "") -> StoredObject:
        """Write `stream` (read in chunks until EOF) under `key`."""

    def put_file(self, key: str, path: Path, *, overwrite: bool = True, content_type: str = "") -> StoredObject:
        with open(path, "rb") as stream:
            return self.put(key, stream, overwrite=overwrite, content_type=content_type)

    def put_bytes(self, key: str, data: bytes, *, overwrite: bool = True, content_type: str = "") -> StoredObject:
        import io

        return self.put(key, io.BytesIO(data), overwrite=overwrite, content_type=content_type)

    @abstractmethod
    def open(self, key: str, *, verify: bool = True) -> AbstractContextManager[BinaryIO]:
        """A readable stream of the object; with verify, reading to EOF raises ChecksumMismatch on corruption."""

    def iter_chunks(self, key: str, *, chunk_size: int = CHUNK_SIZE, verify: bool = True) -> Iterator[bytes]:
        with self.open(key, verify=verify) as stream:
            while chunk := stream.read(chunk_size):
                yield chunk

    def download_to(self, key: str, path: Path, *, verify: bool = True) -> StoredObject:
        """Copy the object to a local file (for libraries that need a seekable file, e.g. Parquet readers).

        With verify, the verifying reader already hashes every byte and raises ChecksumMismatch at EOF when they do
        not match the recorded digest, so the bytes are hashed once: the digest returned is the reader's (equal to
        the recorded one once the read completed). Without verify there is no recorded digest to trust, so the bytes
        are hashed while they are written."""
        import hashlib

        sha, size = (None if verify else hashlib.sha256()), 0
        with self.open(key, verify=verify) as stream, open(path, "wb") as out:
            while chunk := stream.read(CHUNK_SIZE):
                out.write(chunk)
                if sha is not None:
                    sha.update(chunk)
                size += len(chunk)
            digest = sha.hexdigest() if sha is not None else getattr(stream, "sha256", None)
        if digest is None:  # an implementation whose reader does not expose its digest
            digest = self.stat(key).sha256
        return StoredObject(key=key, size=size, sha256=digest)

    def fetch_to(self, key: str, path: Path) -> StoredObject:
        """Make the object's bytes readable at the new local file `path` WITHOUT verifying them; returns the
        object's size and its recorded SHA-256.

        For a caller that reads every byte anyway and hashes what it reads (the ingestion pipeline): it compares
        its own digest with the returned `sha256`, so the bytes are read once instead of once to verify and once
        to use. Until that comparison passes the file is untrusted. The file may share storage with the object
        (local: a hard link), so it must only be read. FileExistsError if `path` exists; ObjectNotFound if the key
        holds no object. This default reads the recorded digest, then streams an unverified read into the file:
        an object replaced in between gives bytes that do not match the digest, which the caller's check catches.
        """
        recorded = self.stat(key)
        size = 0
        with self.open(key, verify=False) as stream, open(path, "xb") as out:
            while chunk := stream.read(CHUNK_SIZE):
                out.write(chunk)
                size += len(chunk)
        return StoredObject(key=key, size=size, sha256=recorded.sha256)

    def copy(self, src_key: str, dst_key: str, *, overwrite: bool = False) -> StoredObject:
        """Copy the object under `src_key` to `dst_key` with its recorded SHA-256; returns the new object.

        `overwrite=False` (the default) is a conditional write like `put`'s: ObjectExists if `dst_key` holds an
        object, which is left untouched. ObjectNotFound if `src_key` holds none. This default streams a verified
        read of the source into `put`: a source whose bytes no longer match its recorded digest raises
        ChecksumMismatch and leaves nothing under `dst_key`. Implementations may do better (a hard link, a
        server-side copy) as long as these guarantees hold."""
        from workers.storage.keys import validate_key

        validate_key(src_key)
        validate_key(dst_key)
        with self.open(src_key, verify=True) as stream:
            return self.put(dst_key, stream, overwrite=overwrite)

    def get_bytes(self, key: str, *, verify: bool = True) -> bytes:
        return b"".join(self.iter_chunks(key, verify=verify))

    @abstractmethod
    def stat(self, key: str) -> StoredObject:
        """Size and recorded SHA-256 of an object; ObjectNotFound if absent."""

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove the object; no error if it is already gone."""

    @abstractmethod
    def list_keys(self, prefix: str) -> Iterator[str]:
        """Keys under `prefix` (itself a validated key prefix), in lexical order."""

    def presigned_url(self, key: str, *, expires_in: int = 300, download_name: str = "") -> str | None:
        """A time-limited URL a browser can download from directly, or None when the store cannot make one
        (local folder): the portal then streams the object itself."""
        return None
