"""LocalArtifactStore: artifacts as plain files under one folder (development, single-machine installs, tests).

Layout under `root` (see docs/adr/0004-artifact-store.md):
    <root>/<key>                       the object's bytes, exactly as written (plain files: cp, rsync and tar work)
    <root>/.sha256/<key>.sha256        its SHA-256, 64 hex digits and a newline, written with the object
    <root>/<dir of key>/.tmp-*         a put in progress (renamed or linked into place when complete)

Names that start with "." can never be a key segment (keys.validate_key), so neither the sidecar folder nor a
temporary file can collide with an object, and list_keys skips them.

Writes: the stream is copied to a temporary file in the target's own folder while hashing, fsynced, then published
atomically: `os.replace` when overwriting, `os.link` when not (link fails with EEXIST if the key exists: the kernel
decides, there is no check-then-write window). The sidecar is written (temp file + os.replace) before the object is
replaced, and right after a conditional link succeeds. The two files cannot change in one step, so a reader racing a
writer, or an object left by a crash between the steps, can see bytes whose recorded digest is missing or belongs
to the other version: that read fails with ChecksumMismatch, never the reverse (unverified bytes passed as good).

Copies (`copy`) hard-link the source's file under a temporary name in the destination's folder, read the source's
recorded digest, then publish the link like a put with that digest: no bytes are read or written, and a copy of
bytes that do not match their digest fails verification under the new key as well. `fetch_to` hard-links an
object's file into a local folder the same way (an unverified read: the caller checks the bytes it reads).
"""

import contextlib
import errno
import os
import secrets
import tempfile
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import BinaryIO

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

SIDECAR_DIR = ".sha256"
SIDECAR_SUFFIX = ".sha256"
TEMP_PREFIX = ".tmp-"
_HEX = frozenset("0123456789abcdef")
# os.link failures that mean "no hard link possible here" (another file system, none supported, too many links):
# copy falls back to streaming the bytes.
_NO_HARD_LINK_ERRNOS = frozenset({errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP})


class LocalArtifactStore(ArtifactStore):
    def __init__(self, root: Path | str):
        root = Path(root)
        if not root.is_absolute():
            raise ValueError(f"the artifact folder must be an absolute path, got {str(root)!r}")
        root.mkdir(parents=True, exist_ok=True)
        self.root = root.resolve(strict=True)
        self.uri = f"file://{self.root}"

    def __repr__(self) -> str:
        return f"LocalArtifactStore({str(self.root)!r})"

    # --- paths -------------------------------------------------------------------------------------------------

    def _inside(self, path: Path, base: Path, key: str) -> Path:
        """`path` with every symlink resolved, refused unless it stays under `base` (defence in depth: validate_key
        already refused '..' and absolute keys; this also catches a symlinked folder pointing elsewhere)."""
        resolved = path.resolve(strict=False)
        if resolved == base or not resolved.is_relative_to(base):
            raise UnsafeKey(f"key {key!r} resolves outside the artifact folder")
        return resolved

    def _object_path(self, key: str) -> Path:
        validate_key(key)
        return self._inside(self.root / key, self.root, key)

    def _sidecar_path(self, key: str) -> Path:
        validate_key(key)
        return self._inside(self.root / SIDECAR_DIR / (key + SIDECAR_SUFFIX), self.root / SIDECAR_DIR, key)

    def _read_sidecar(self, key: str) -> str:
        try:
            digest = self._sidecar_path(key).read_text(encoding="ascii").strip()
        except (FileNotFoundError, NotADirectoryError):
            raise ChecksumMismatch(f"{key}: no SHA-256 is recorded for this object") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ChecksumMismatch(f"{key}: the recorded SHA-256 cannot be read ({exc})") from exc
        if len(digest) != 64 or not set(digest) <= _HEX:
            raise ChecksumMismatch(f"{key}: the recorded SHA-256 is malformed")
        return digest

    def _write_sidecar(self, key: str, digest: str) -> None:
        path = self._sidecar_path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="ascii") as out:
                out.write(digest + "\n")
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    @staticmethod
    def _fsync_dir(path: Path) -> None:
        with contextlib.suppress(OSError):
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    # --- writes ------------------------------------------------------------------------------------------------

    @staticmethod
    def _make_parent(key: str, path: Path) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise StorageError(f"{key}: a parent of this key is an object, not a folder") from None

    def _publish(self, key: str, path: Path, tmp: str, digest: str, *, overwrite: bool) -> None:
        """Make the complete temporary file `tmp` (in the key's folder) the object under `key`, with its digest,
        in the order described in the module docstring."""
        if overwrite:
            if path.is_dir():
                raise StorageError(f"{key}: this key is a folder of other objects")
            self._write_sidecar(key, digest)
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)
            except FileExistsError:
                if path.is_dir():
                    raise StorageError(f"{key}: this key is a folder of other objects") from None
                raise ObjectExists(f"{key}: an object already exists under this key") from None
            self._write_sidecar(key, digest)
        self._fsync_dir(path.parent)

    def put(self, key: str, stream: BinaryIO, *, overwrite: bool = True, content_type: str = "") -> StoredObject:
        path = self._object_path(key)
        self._make_parent(key, path)
        fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                digest, size = copy_hashing(stream, out)
                out.flush()
                os.fsync(out.fileno())
            self._publish(key, path, tmp, digest, overwrite=overwrite)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        return StoredObject(key=key, size=size, sha256=digest)

    def copy(self, src_key: str, dst_key: str, *, overwrite: bool = False) -> StoredObject:
        """A hard link: no byte is read or written. The source's file is first linked to a temporary name in the
        destination's folder (pinning the bytes, like `open` opens the data before reading the digest), then its
        recorded digest is read, then the link is published exactly like a put (sidecar before the object when
        overwriting, right after the conditional link otherwise). The digest is copied, not recomputed: bytes that
        no longer match it fail verification under the new key too. Objects are never modified in place (every
        write publishes a new file), so sharing the file between the two keys is safe. Falls back to the streamed
        copy when the folders cannot share a file (another file system, no hard links there)."""
        src = self._object_path(src_key)
        dst = self._object_path(dst_key)
        if not src.is_file():
            raise ObjectNotFound(src_key)
        self._make_parent(dst_key, dst)
        tmp = self._link_to_temp(src, dst.parent, src_key)
        if tmp is None:
            return super().copy(src_key, dst_key, overwrite=overwrite)
        try:
            digest = self._read_sidecar(src_key)
            size = os.stat(tmp).st_size
            self._publish(dst_key, dst, tmp, digest, overwrite=overwrite)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        return StoredObject(key=dst_key, size=size, sha256=digest)

    def fetch_to(self, key: str, path: Path) -> StoredObject:
        """A hard link at `path` to the object's file (no byte read or written), then its recorded digest, in the
        order `open` uses; the streamed copy when `path` is on another file system. Objects are never modified in
        place, so the link keeps the bytes that were linked even if the key is overwritten or deleted meanwhile."""
        source = self._object_path(key)
        if not source.is_file():
            raise ObjectNotFound(key)
        try:
            os.link(source, path)
        except (FileNotFoundError, NotADirectoryError):
            if not Path(path).parent.is_dir():
                raise
            raise ObjectNotFound(key) from None
        except OSError as exc:
            if exc.errno in _NO_HARD_LINK_ERRNOS:
                return super().fetch_to(key, path)
            raise
        try:
            return StoredObject(key=key, size=os.stat(path).st_size, sha256=self._read_sidecar(key))
        except BaseException:
            os.unlink(path)
            raise

    @staticmethod
    def _link_to_temp(src: Path, folder: Path, src_key: str) -> str | None:
        """Hard-link `src` to a fresh temporary name in `folder`; None when hard links cannot be made there."""
        for _ in range(10):
            tmp = str(folder / f"{TEMP_PREFIX}{secrets.token_hex(8)}")
            try:
                os.link(src, tmp)
            except FileExistsError:
                continue  # a name collision with another write in progress: pick another name
            except (FileNotFoundError, NotADirectoryError):
                raise ObjectNotFound(src_key) from None
            except OSError as exc:
                if exc.errno in _NO_HARD_LINK_ERRNOS:
                    return None
                raise
            return tmp
        raise StorageError(f"{src_key}: could not pick a temporary name in {folder}")

    def delete(self, key: str) -> None:
        path = self._object_path(key)
        with contextlib.suppress(FileNotFoundError, IsADirectoryError, NotADirectoryError):
            path.unlink()
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            self._sidecar_path(key).unlink()

    # --- reads -------------------------------------------------------------------------------------------------

    def open(self, key: str, *, verify: bool = True) -> AbstractContextManager[BinaryIO]:
        path = self._object_path(key)
        try:
            raw = open(path, "rb")  # noqa: SIM115 - closed by the VerifyingReader
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise ObjectNotFound(key) from None
        try:
            # The data is opened first, the digest read second (see the module docstring for why).
            expected = self._read_sidecar(key) if verify else None
        except BaseException:
            raw.close()
            raise
        return contextlib.closing(VerifyingReader(raw, key=key, expected_sha256=expected))

    def stat(self, key: str) -> StoredObject:
        path = self._object_path(key)
        try:
            info = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            raise ObjectNotFound(key) from None
        if not path.is_file():
            raise ObjectNotFound(key)
        return StoredObject(key=key, size=info.st_size, sha256=self._read_sidecar(key))

    def exists(self, key: str) -> bool:
        return self._object_path(key).is_file()

    def list_keys(self, prefix: str) -> Iterator[str]:
        prefix = validate_prefix(prefix)
        folder = prefix if prefix.endswith("/") else prefix.rpartition("/")[0]
        base = self._inside(self.root / folder, self.root, prefix) if folder else self.root
        keys = []
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = [name for name in dirnames if not name.startswith(".")]
            relative_dir = Path(dirpath).relative_to(self.root).as_posix()
            for name in filenames:
                if name.startswith("."):
                    continue
                key = name if relative_dir == "." else f"{relative_dir}/{name}"
                if key.startswith(prefix):
                    keys.append(key)
        yield from sorted(keys)

    def presigned_url(self, key: str, *, expires_in: int = 300, download_name: str = "") -> str | None:
        """None: a folder cannot hand out URLs, the portal streams the object itself (the key is still checked)."""
        validate_key(key)
        return None
