"""Helpers for tests of the artifact store: generated streams and a look behind a store's interface."""

import random
from pathlib import Path

from workers.storage.base import CHUNK_SIZE
from workers.storage.local import LocalArtifactStore
from workers.storage.s3 import S3ArtifactStore


class GeneratedStream:
    """`size` deterministic pseudo-random bytes (seeded), made as they are read: never held whole. With
    `fail_after`, read raises OSError once that many bytes have been handed out, like a dropped upload."""

    def __init__(self, size: int, *, seed: int = 0, fail_after: int | None = None):
        self._rng = random.Random(seed)
        self._remaining = size
        self._given = 0
        self._fail_after = fail_after

    def read(self, n: int = -1) -> bytes:
        if self._fail_after is not None and self._given >= self._fail_after:
            raise OSError("the client went away mid-upload")
        count = min(self._remaining, CHUNK_SIZE if n is None or n < 0 else n)
        self._remaining -= count
        self._given += count
        return self._rng.randbytes(count)


def generated_bytes(size: int, *, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size) if size else b""


def backend_contents(store) -> list[str]:
    """Everything the backend holds behind the store's interface: every file under a local root (sidecars and
    temporary files included), or every object in the bucket plus every unfinished multipart upload."""
    if isinstance(store, LocalArtifactStore):
        return sorted(path.relative_to(store.root).as_posix() for path in Path(store.root).rglob("*") if path.is_file())
    assert isinstance(store, S3ArtifactStore)
    objects = store.client.list_objects_v2(Bucket=store.bucket).get("Contents", [])
    uploads = store.client.list_multipart_uploads(Bucket=store.bucket).get("Uploads", [])
    return sorted([item["Key"] for item in objects] + [f"(unfinished upload) {item['Key']}" for item in uploads])


def overwrite_behind_the_stores_back(store, key: str, data: bytes) -> None:
    """Replace an object's bytes without the store: its recorded SHA-256 stays the old one."""
    if isinstance(store, LocalArtifactStore):
        (store.root / key).write_bytes(data)
        return
    full_key = store.prefix + key
    metadata = store.client.head_object(Bucket=store.bucket, Key=full_key)["Metadata"]
    store.client.put_object(Bucket=store.bucket, Key=full_key, Body=data, Metadata=metadata)
