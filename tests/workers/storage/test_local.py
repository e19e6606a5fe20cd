"""LocalArtifactStore specifics: the on-disk layout, symlinks, sidecars, folders."""

import hashlib
import os

import pytest

from workers.storage.base import ChecksumMismatch, ObjectExists, StorageError, UnsafeKey
from workers.storage.local import LocalArtifactStore

KEY = "projects/5c1d2a8e-8a3e-4f6c-9d55-0d7f1c2b3a41/uploads/0b9f6c3e-2d6a-4f0e-8d1e-6a2f4b8c9d10/original"


@pytest.fixture
def store(tmp_path):
    return LocalArtifactStore(tmp_path / "artifacts")


def _files(root):
    return sorted(path.relative_to(root).as_posix() for path in root.rglob("*") if path.is_file())


def test_an_object_is_a_plain_file_with_its_sha256_in_a_hidden_sidecar(store):
    store.put_bytes(KEY, b"id,churned\n")

    assert (store.root / KEY).read_bytes() == b"id,churned\n"
    assert (store.root / ".sha256" / f"{KEY}.sha256").read_text() == hashlib.sha256(b"id,churned\n").hexdigest() + "\n"
    assert _files(store.root) == [f".sha256/{KEY}.sha256", KEY]


def test_the_root_folder_is_created_and_its_uri_names_it(tmp_path):
    store = LocalArtifactStore(tmp_path / "new" / "artifacts")

    assert (tmp_path / "new" / "artifacts").is_dir()
    assert store.uri == f"file://{tmp_path / 'new' / 'artifacts'}"


def test_a_relative_root_is_refused():
    with pytest.raises(ValueError, match="absolute"):
        LocalArtifactStore("var/artifacts")


def test_a_symlinked_folder_pointing_outside_the_root_is_refused(store, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, store.root / "projects")

    with pytest.raises(UnsafeKey, match="outside"):
        store.put_bytes("projects/x", b"escaped")
    with pytest.raises(UnsafeKey):
        store.exists("projects/x")
    with pytest.raises(UnsafeKey):
        list(store.list_keys("projects/"))
    assert list(outside.iterdir()) == []


def test_a_symlinked_object_pointing_outside_the_root_is_not_read(store, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("not an artifact")
    (store.root / "projects").mkdir()
    os.symlink(secret, store.root / "projects" / "x")

    with pytest.raises(UnsafeKey):
        store.get_bytes("projects/x", verify=False)


def test_temporary_and_hidden_files_are_not_listed(store):
    store.put_bytes("projects/p/a", b"a")
    (store.root / "projects" / "p" / ".tmp-abandoned").write_bytes(b"half an upload")

    assert list(store.list_keys("projects/")) == ["projects/p/a"]


def test_an_object_without_its_sidecar_is_refused_unless_verification_is_off(store):
    store.put_bytes(KEY, b"data")
    (store.root / ".sha256" / f"{KEY}.sha256").unlink()

    with pytest.raises(ChecksumMismatch, match="no SHA-256"):
        store.get_bytes(KEY)
    with pytest.raises(ChecksumMismatch):
        store.stat(KEY)
    assert store.get_bytes(KEY, verify=False) == b"data"


def test_a_malformed_sidecar_is_refused(store):
    store.put_bytes(KEY, b"data")
    (store.root / ".sha256" / f"{KEY}.sha256").write_text("not a digest\n")

    with pytest.raises(ChecksumMismatch, match="malformed"):
        store.get_bytes(KEY)


def test_a_key_below_an_existing_object_is_a_storage_error(store):
    store.put_bytes("projects/p", b"an object")

    with pytest.raises(StorageError, match="parent"):
        store.put_bytes("projects/p/child", b"x")
    assert store.get_bytes("projects/p") == b"an object"


@pytest.mark.parametrize("overwrite", [True, False])
def test_a_key_that_is_a_folder_of_objects_is_a_storage_error(store, overwrite):
    store.put_bytes("projects/p/child", b"x")

    with pytest.raises(StorageError, match="folder") as raised:
        store.put_bytes("projects/p", b"y", overwrite=overwrite)

    assert not isinstance(raised.value, ObjectExists)
    assert _files(store.root) == [".sha256/projects/p/child.sha256", "projects/p/child"]


def test_delete_removes_the_sidecar_too(store):
    store.put_bytes(KEY, b"data")

    store.delete(KEY)

    assert _files(store.root) == []


COPY_KEY = "projects/5c1d2a8e-8a3e-4f6c-9d55-0d7f1c2b3a41/datasets/0b9f6c3e-2d6a-4f0e-8d1e-6a2f4b8c9d10/v1/original.csv"


def test_copy_hard_links_the_file_and_writes_the_destination_sidecar(store):
    store.put_bytes(KEY, b"id,churned\n")

    store.copy(KEY, COPY_KEY)

    assert os.stat(store.root / COPY_KEY).st_ino == os.stat(store.root / KEY).st_ino
    digest = hashlib.sha256(b"id,churned\n").hexdigest() + "\n"
    assert (store.root / ".sha256" / f"{COPY_KEY}.sha256").read_text() == digest
    assert _files(store.root) == sorted([f".sha256/{KEY}.sha256", f".sha256/{COPY_KEY}.sha256", KEY, COPY_KEY])


def test_copy_streams_the_bytes_when_no_hard_link_can_be_made(store, monkeypatch):
    import errno

    store.put_bytes(KEY, b"id,churned\n")

    real_link = os.link

    def no_link_from_the_source(src, dst, *args, **kwargs):  # as if the destination were on another file system
        if str(src).endswith(KEY):
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        return real_link(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "link", no_link_from_the_source)

    copied = store.copy(KEY, COPY_KEY)

    assert copied.sha256 == hashlib.sha256(b"id,churned\n").hexdigest()
    assert os.stat(store.root / COPY_KEY).st_ino != os.stat(store.root / KEY).st_ino
    assert store.get_bytes(COPY_KEY) == b"id,churned\n"
    assert _files(store.root) == sorted([f".sha256/{KEY}.sha256", f".sha256/{COPY_KEY}.sha256", KEY, COPY_KEY])


def test_copy_of_an_object_without_its_sidecar_publishes_nothing(store):
    store.put_bytes(KEY, b"id,churned\n")
    (store.root / ".sha256" / f"{KEY}.sha256").unlink()

    with pytest.raises(ChecksumMismatch):
        store.copy(KEY, COPY_KEY)

    assert store.exists(COPY_KEY) is False
    assert _files(store.root) == [KEY]
