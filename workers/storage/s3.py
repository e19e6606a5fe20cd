"""S3ArtifactStore: artifacts in an S3 bucket (AWS or any S3-compatible server: MinIO, SeaweedFS, Ceph RGW...).

Object key = the store's prefix + the artifact key (e.g. "tenant-a/" + "projects/<uuid>/..."). The SHA-256 travels in
the object's user metadata (`x-amz-meta-sha256`), set in the same request that creates the object, so an object and
its digest appear together or not at all.

Writes spool the stream to a local temporary file while hashing (bounded memory; needs the object's size in free
temporary space), because S3 metadata is fixed when the object is created and the digest is only known at the end.
The spooled file is then sent with the digest and, for `overwrite=False`, the condition `If-None-Match: *`:
- objects up to `part_size` (8 MiB): one PutObject;
- larger objects: a multipart upload of `part_size` parts, aborted on any error so no parts are left behind; when
  the write is conditional and the object is at most `conditional_single_put_limit` (5 GiB, the S3 PutObject limit),
  one streamed PutObject instead. SeaweedFS (4.48) evaluates `If-None-Match` on CompleteMultipartUpload outside the
  per-object lock it takes for PutObject, so two concurrent conditional completes can both succeed there; its
  conditional PutObject is atomic (tests/workers/storage/test_contract.py races them). AWS S3 documents an atomic
  check for both. See docs/adr/0004-artifact-store.md.
A 412 PreconditionFailed (or 409 ConditionalRequestConflict) on a conditional write raises ObjectExists.
"""

import contextlib
import io
import os
import posixpath
import re
import tempfile
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import BinaryIO
from urllib.parse import quote

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from workers.storage.base import (
    ArtifactStore,
    ChecksumMismatch,
    ObjectExists,
    ObjectNotFound,
    StorageError,
    StoredObject,
    UnsafeKey,
)
from workers.storage.keys import validate_key, validate_prefix
from workers.storage.streams import VerifyingReader, copy_hashing

MiB = 1 << 20
GiB = 1 << 30
DEFAULT_PART_SIZE = 8 * MiB
MIN_PART_SIZE = 5 * MiB  # S3: every part but the last
MAX_PARTS = 10_000
SINGLE_PUT_LIMIT = 5 * GiB
MAX_KEY_BYTES = 1024
MAX_PRESIGN_SECONDS = 7 * 24 * 3600  # SigV4 limit
METADATA_SHA256 = "sha256"  # sent as x-amz-meta-sha256

_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_EXISTS_CODES = {"PreconditionFailed", "ConditionalRequestConflict"}
_NOT_FOUND_CODES = {"NoSuchKey", "NotFound", "404"}


def validate_bucket(bucket: str) -> str:
    if not isinstance(bucket, str) or not _BUCKET.fullmatch(bucket) or ".." in bucket:
        raise ValueError(f"invalid S3 bucket name: {bucket!r}")
    return bucket


def normalise_prefix(prefix: str) -> str:
    """'' or a validated folder-like prefix ending in '/': 'tenant-a' and 'tenant-a/' both give 'tenant-a/'."""
    prefix = (prefix or "").strip("/")
    return f"{validate_key(prefix)}/" if prefix else ""


def attachment_disposition(download_name: str) -> str:
    """A Content-Disposition value for downloading as `download_name` (quotes, slashes and control characters
    removed; an ASCII fallback plus the RFC 5987 UTF-8 form when the name is not plain ASCII)."""
    cleaned = "".join(ch for ch in download_name if ch.isprintable() and ch not in '"\\/;').strip() or "download"
    fallback = cleaned.encode("ascii", "replace").decode("ascii").replace("?", "_")
    value = f'attachment; filename="{fallback}"'
    if fallback != cleaned:
        value += f"; filename*=UTF-8''{quote(cleaned, safe='')}"
    return value


class _FileSlice(io.RawIOBase):
    """A seekable read-only view of `length` bytes of the file `fd` from `start` (os.pread: no shared offset), so
    botocore can hash, send and, on a retry, rewind one part without it ever being in memory whole."""

    def __init__(self, fd: int, start: int, length: int):
        super().__init__()
        self._fd, self._start, self._length, self._pos = fd, start, length, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        view = memoryview(buffer).cast("B")
        count = min(len(view), self._length - self._pos)
        if count <= 0:
            return 0
        data = os.pread(self._fd, count, self._start + self._pos)
        view[: len(data)] = data
        self._pos += len(data)
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._length}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)


def _is_not_found(exc: ClientError) -> bool:
    return _code(exc) in _NOT_FOUND_CODES or (_status(exc) == 404 and _code(exc) != "NoSuchBucket")


class S3ArtifactStore(ArtifactStore):
    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        client=None,
        aws_access_key_id: str | None = None,
        aws_secret_access_key: str | None = None,
        part_size: int = DEFAULT_PART_SIZE,
        conditional_single_put_limit: int = SINGLE_PUT_LIMIT,
        spool_dir: str | None = None,
    ):
        self.bucket = validate_bucket(bucket)
        self.prefix = normalise_prefix(prefix)
        if part_size < MIN_PART_SIZE:
            raise ValueError(f"part_size must be at least {MIN_PART_SIZE} bytes (S3's minimum part size)")
        self.part_size = part_size
        self.conditional_single_put_limit = min(conditional_single_put_limit, SINGLE_PUT_LIMIT)
        self.spool_dir = spool_dir
        self.uri = f"s3://{self.bucket}/{self.prefix}"
        if client is None:
            session = boto3.session.Session(
                aws_access_key_id=aws_access_key_id, aws_secret_access_key=aws_secret_access_key
            )
            config = Config(
                signature_version="s3v4",
                # Custom endpoints (MinIO, SeaweedFS, loopback) are reached by path, AWS by virtual host.
                s3={"addressing_style": "path" if endpoint_url else "auto"},
                retries={"mode": "standard", "max_attempts": 3},
                connect_timeout=10,
                read_timeout=120,
            )
            client = session.client(
                "s3", endpoint_url=endpoint_url or None, region_name=region or "us-east-1", config=config
            )
        self.client = client

    def __repr__(self) -> str:
        return f"S3ArtifactStore({self.uri!r})"

    # --- keys --------------------------------------------------------------------------------------------------

    def _object_key(self, key: str) -> str:
        full = self.prefix + validate_key(key)
        # Defence in depth: the final key must stay under the prefix and be in normal form (no '.', '..', '//').
        if not full.startswith(self.prefix) or posixpath.normpath(full) != full:
            raise UnsafeKey(f"key {key!r} escapes the store's prefix")
        if len(full.encode("utf-8")) > MAX_KEY_BYTES:
            raise UnsafeKey(f"key {key!r} is too long once prefixed ({len(full)} > {MAX_KEY_BYTES} bytes)")
        return full

    def _translate(self, exc: Exception, key: str) -> StorageError:
        if isinstance(exc, ClientError):
            if _code(exc) in _EXISTS_CODES or _status(exc) == 412:
                return ObjectExists(f"{key}: an object already exists under this key")
            if _is_not_found(exc):
                return ObjectNotFound(key)
            return StorageError(f"{key}: S3 {_code(exc) or _status(exc)} from bucket {self.bucket}: {exc}")
        return StorageError(f"{key}: S3 request to bucket {self.bucket} failed: {exc}")

    # --- writes ------------------------------------------------------------------------------------------------

    def put(self, key: str, stream: BinaryIO, *, overwrite: bool = True, content_type: str = "") -> StoredObject:
        object_key = self._object_key(key)
        with tempfile.TemporaryFile(dir=self.spool_dir) as spool:
            digest, size = copy_hashing(stream, spool)
            spool.flush()
            extra = {"Metadata": {METADATA_SHA256: digest}}
            if content_type:
                extra["ContentType"] = content_type
            condition = {} if overwrite else {"IfNoneMatch": "*"}
            single = size <= self.part_size or (not overwrite and size <= self.conditional_single_put_limit)
            try:
                if single:
                    spool.seek(0)
                    self.client.put_object(
                        Bucket=self.bucket, Key=object_key, Body=spool, ContentLength=size, **extra, **condition
                    )
                else:
                    self._put_multipart(object_key, spool.fileno(), size, extra, condition)
            except (ClientError, BotoCoreError) as exc:
                raise self._translate(exc, key) from exc
        return StoredObject(key=key, size=size, sha256=digest)

    def _put_multipart(self, object_key: str, fd: int, size: int, extra: dict, condition: dict) -> None:
        part_size = max(self.part_size, -(-size // MAX_PARTS))
        upload_id = self.client.create_multipart_upload(Bucket=self.bucket, Key=object_key, **extra)["UploadId"]
        try:
            parts = []
            for number, start in enumerate(range(0, size, part_size), start=1):
                length = min(part_size, size - start)
                response = self.client.upload_part(
                    Bucket=self.bucket,
                    Key=object_key,
                    UploadId=upload_id,
                    PartNumber=number,
                    Body=_FileSlice(fd, start, length),
                    ContentLength=length,
                )
                parts.append({"PartNumber": number, "ETag": response["ETag"]})
            self.client.complete_multipart_upload(
                Bucket=self.bucket, Key=object_key, UploadId=upload_id, MultipartUpload={"Parts": parts}, **condition
            )
        except BaseException:
            # No parts left behind (they cost storage and are invisible to list_objects); best effort.
            with contextlib.suppress(Exception):
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=object_key, UploadId=upload_id)
            raise

    def delete(self, key: str) -> None:
        object_key = self._object_key(key)
        try:
            self.client.delete_object(Bucket=self.bucket, Key=object_key)
        except (ClientError, BotoCoreError) as exc:
            error = self._translate(exc, key)
            if not isinstance(error, ObjectNotFound):
                raise error from exc

    # --- reads -------------------------------------------------------------------------------------------------

    @staticmethod
    def _recorded_digest(key: str, metadata: dict) -> str:
        digest = (metadata or {}).get(METADATA_SHA256, "").strip().lower()
        if not _HEX64.fullmatch(digest):
            raise ChecksumMismatch(f"{key}: no valid SHA-256 is recorded in the object's metadata")
        return digest

    def open(self, key: str, *, verify: bool = True) -> AbstractContextManager[BinaryIO]:
        object_key = self._object_key(key)
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=object_key)
        except (ClientError, BotoCoreError) as exc:
            raise self._translate(exc, key) from exc
        body = response["Body"]
        try:
            expected = self._recorded_digest(key, response.get("Metadata")) if verify else None
        except BaseException:
            body.close()
            raise
        return contextlib.closing(VerifyingReader(body, key=key, expected_sha256=expected))

    def stat(self, key: str) -> StoredObject:
        object_key = self._object_key(key)
        try:
            response = self.client.head_object(Bucket=self.bucket, Key=object_key)
        except (ClientError, BotoCoreError) as exc:
            raise self._translate(exc, key) from exc
        return StoredObject(
            key=key,
            size=int(response["ContentLength"]),
            sha256=self._recorded_digest(key, response.get("Metadata")),
        )

    def exists(self, key: str) -> bool:
        object_key = self._object_key(key)
        try:
            self.client.head_object(Bucket=self.bucket, Key=object_key)
        except (ClientError, BotoCoreError) as exc:
            error = self._translate(exc, key)
            if isinstance(error, ObjectNotFound):
                return False
            raise error from exc
        return True

    def list_keys(self, prefix: str) -> Iterator[str]:
        listing_prefix = self.prefix + validate_prefix(prefix)
        paginator = self.client.get_paginator("list_objects_v2")
        keys = []
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=listing_prefix):
                for item in page.get("Contents", []):
                    key = item["Key"][len(self.prefix) :]
                    try:
                        keys.append(validate_key(key))
                    except UnsafeKey:
                        continue  # written by something else; this store could never read it
        except (ClientError, BotoCoreError) as exc:
            raise self._translate(exc, prefix) from exc
        # AWS lists in byte order; a server whose listing walks a folder tree (SeaweedFS) puts "a/x" before "a-b".
        yield from sorted(keys)

    def presigned_url(self, key: str, *, expires_in: int = 300, download_name: str = "") -> str | None:
        object_key = self._object_key(key)
        if not 1 <= expires_in <= MAX_PRESIGN_SECONDS:
            raise ValueError(f"expires_in must be between 1 and {MAX_PRESIGN_SECONDS} seconds")
        params = {"Bucket": self.bucket, "Key": object_key}
        if download_name:
            params["ResponseContentDisposition"] = attachment_disposition(download_name)
        try:
            return self.client.generate_presigned_url("get_object", Params=params, ExpiresIn=expires_in)
        except (ClientError, BotoCoreError) as exc:  # e.g. no credentials configured
            raise self._translate(exc, key) from exc
