"""ArtifactStore.fetch_to, against every implementation: the object's bytes in a local file, unverified, with the
recorded SHA-256 for the caller to check against its own digest of what it reads."""

import hashlib
import os

import pytest

from tests.support.storage import generated_bytes, overwrite_behind_the_stores_back
from workers.storage.base import ObjectNotFound, StoredObject
from workers.storage.local import LocalArtifactStore

KEY = "projects/5c1d2a8e-8a3e-4f6c-9d55-0d7f1c2b3a41/uploads/0b9f6c3e-2d6a-4f0e-8d1e-6a2f4b8c9d10/source"


def test_fetch_to_places_the_bytes_and_returns_the_recorded_digest(store, tmp_path):
    data = generated_bytes(2 * (1 << 20) + 3, seed=11)
    stored = store.put_bytes(KEY, data)

    fetched = store.fetch_to(KEY, tmp_path / "source")

    assert fetched == stored == StoredObject(key=KEY, size=len(data), sha256=hashlib.sha256(data).hexdigest())
    assert (tmp_path / "source").read_bytes() == data


def test_fetch_to_does_not_verify_so_damaged_bytes_arrive_with_the_digest_they_fail(store, tmp_path):
    stored = store.put_bytes(KEY, b"id\n1\n")
    overwrite_behind_the_stores_back(store, KEY, b"id\n2\n")

    fetched = store.fetch_to(KEY, tmp_path / "source")

    assert (tmp_path / "source").read_bytes() == b"id\n2\n"
    assert fetched.sha256 == stored.sha256 != hashlib.sha256(b"id\n2\n").hexdigest()


def test_fetch_to_a_missing_key_raises_object_not_found_and_writes_nothing(store, tmp_path):
    with pytest.raises(ObjectNotFound):
        store.fetch_to(KEY, tmp_path / "source")

    assert not (tmp_path / "source").exists()


def test_fetch_to_never_replaces_an_existing_file(store, tmp_path):
    store.put_bytes(KEY, b"id\n1\n")
    (tmp_path / "source").write_bytes(b"mine")

    with pytest.raises(FileExistsError):
        store.fetch_to(KEY, tmp_path / "source")

    assert (tmp_path / "source").read_bytes() == b"mine"


def test_the_local_store_links_the_file_and_keeps_the_fetched_bytes_when_the_key_is_overwritten(tmp_path):
    store = LocalArtifactStore(tmp_path / "artifacts")
    store.put_bytes(KEY, b"id\n1\n")

    store.fetch_to(KEY, tmp_path / "source")
    store.put_bytes(KEY, b"id\n2\n")  # a new file under the key; the linked one is untouched

    assert os.stat(tmp_path / "source").st_nlink == 1
    assert (tmp_path / "source").read_bytes() == b"id\n1\n"


def test_the_local_store_links_instead_of_copying(tmp_path):
    store = LocalArtifactStore(tmp_path / "artifacts")
    store.put_bytes(KEY, b"id\n1\n")

    store.fetch_to(KEY, tmp_path / "source")

    assert os.stat(tmp_path / "source").st_ino == os.stat(store.root / KEY).st_ino
