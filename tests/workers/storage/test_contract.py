"""The ArtifactStore contract, run against every implementation: a local folder and a real S3 server (SeaweedFS).

Each test gets a fresh store (`store` fixture: an empty folder, or an empty bucket under the prefix "tenant-a/").
"""

import hashlib
import threading
import tracemalloc
import urllib.error
import urllib.request

import pytest

from tests.support.storage import (
    GeneratedStream,
    backend_contents,
    generated_bytes,
    overwrite_behind_the_stores_back,
)
from workers.storage.base import ChecksumMismatch, ObjectExists, ObjectNotFound, StoredObject, UnsafeKey
from workers.storage.local import LocalArtifactStore

MiB = 1 << 20
KEY = "projects/5c1d2a8e-8a3e-4f6c-9d55-0d7f1c2b3a41/datasets/0b9f6c3e-2d6a-4f0e-8d1e-6a2f4b8c9d10/v1/data.parquet"
UNSAFE_KEYS = [
    "../x",
    "/etc/passwd",
    "a//b",
    "a/../b",
    "a\\b",
    "",
    "a/./b",
    "a/b\x00c",
    "a/b\nc",
    "a/b\n",  # `$` in a regex matches before a final newline: keys.py uses fullmatch
    "a/" + "b" * 300,
    "/".join(["segment"] * 200),  # 1599 characters
    ".hidden/x",
    "a/",
]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- writing and reading -----------------------------------------------------------------------------------------


def test_put_then_get_returns_the_same_bytes_and_their_sha256(store):
    data = b"id,churned\n1,0\n2,1\n"

    stored = store.put_bytes(KEY, data, content_type="text/csv")

    assert stored == StoredObject(key=KEY, size=19, sha256=sha256(data))
    assert store.get_bytes(KEY) == data


def test_an_empty_object_round_trips(store):
    stored = store.put_bytes("projects/empty", b"")

    assert stored == StoredObject(key="projects/empty", size=0, sha256=hashlib.sha256(b"").hexdigest())
    assert store.get_bytes("projects/empty") == b""
    assert store.stat("projects/empty") == stored


def test_put_file_and_download_to_copy_through_local_files(store, tmp_path):
    source = tmp_path / "source.bin"
    source.write_bytes(generated_bytes(3 * MiB + 5, seed=7))

    stored = store.put_file(KEY, source)
    copied = store.download_to(KEY, tmp_path / "copy.bin")

    assert stored == StoredObject(key=KEY, size=3 * MiB + 5, sha256=sha256(source.read_bytes()))
    assert copied == stored
    assert (tmp_path / "copy.bin").read_bytes() == source.read_bytes()


@pytest.mark.parametrize("overwrite", [True, False], ids=["overwrite", "conditional"])
def test_a_20_mib_stream_goes_in_and_out_in_bounded_memory(store, overwrite):
    size = 20 * MiB
    expected = hashlib.sha256()
    reference = GeneratedStream(size, seed=42)
    while chunk := reference.read(MiB):
        expected.update(chunk)
    store.put_bytes("projects/warm-up", b"x")  # lazily loaded client machinery is not what we measure
    store.get_bytes("projects/warm-up")

    tracemalloc.start()
    try:
        stored = store.put(KEY, GeneratedStream(size, seed=42), overwrite=overwrite)
        read_back = hashlib.sha256()
        for chunk in store.iter_chunks(KEY):
            read_back.update(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert stored == StoredObject(key=KEY, size=size, sha256=expected.hexdigest())
    assert read_back.hexdigest() == expected.hexdigest()
    assert peak < 16 * MiB, f"peak traced memory {peak / MiB:.1f} MiB"


def test_open_streams_the_object_in_pieces(store):
    data = generated_bytes(100_000, seed=3)
    store.put_bytes(KEY, data)

    with store.open(KEY) as stream:
        first = stream.read(10)
        rest = stream.read()

    assert first == data[:10]
    assert first + rest == data


def test_overwrite_replaces_the_bytes_and_the_recorded_sha256(store):
    store.put_bytes(KEY, b"first version")

    stored = store.put_bytes(KEY, b"second, longer version")

    assert store.get_bytes(KEY) == b"second, longer version"
    assert store.stat(KEY) == stored == StoredObject(key=KEY, size=22, sha256=sha256(b"second, longer version"))


# --- stat, exists, list, delete ------------------------------------------------------------------------------------


def test_stat_reports_the_size_and_the_sha256_recorded_at_write(store):
    data = generated_bytes(12_345, seed=1)
    store.put_bytes(KEY, data)

    assert store.stat(KEY) == StoredObject(key=KEY, size=12_345, sha256=sha256(data))


def test_exists_is_true_only_for_a_stored_object(store):
    store.put_bytes("projects/p/a", b"a")

    assert store.exists("projects/p/a") is True
    assert store.exists("projects/p/b") is False
    assert store.exists("projects/p") is False


def test_list_keys_returns_the_keys_under_a_prefix_in_lexical_order(store):
    for key in ["projects/a/y/z", "projects/a/x", "projects/a-b/1", "projects/ab/1", "projects/b/2", "other/1"]:
        store.put_bytes(key, key.encode())

    assert list(store.list_keys("projects/a/")) == ["projects/a/x", "projects/a/y/z"]
    assert list(store.list_keys("projects/a")) == ["projects/a-b/1", "projects/a/x", "projects/a/y/z", "projects/ab/1"]
    assert list(store.list_keys("projects/")) == [
        "projects/a-b/1",
        "projects/a/x",
        "projects/a/y/z",
        "projects/ab/1",
        "projects/b/2",
    ]
    assert list(store.list_keys("projects/c/")) == []
    assert list(store.list_keys("nothing")) == []


def test_delete_removes_the_object_and_repeating_it_is_harmless(store):
    store.put_bytes("projects/p/a", b"a")
    store.put_bytes("projects/p/b", b"b")

    store.delete("projects/p/a")
    store.delete("projects/p/a")
    store.delete("projects/p/never-written")

    assert store.exists("projects/p/a") is False
    assert list(store.list_keys("projects/")) == ["projects/p/b"]
    with pytest.raises(ObjectNotFound):
        store.get_bytes("projects/p/a")


def test_a_deleted_key_can_be_written_again_conditionally(store):
    store.put_bytes(KEY, b"old")
    store.delete(KEY)

    store.put_bytes(KEY, b"new", overwrite=False)

    assert store.get_bytes(KEY) == b"new"
    assert store.stat(KEY).sha256 == sha256(b"new")


def test_missing_objects_raise_object_not_found(store):
    with pytest.raises(ObjectNotFound):
        store.get_bytes(KEY)
    with pytest.raises(ObjectNotFound):
        store.open(KEY)
    with pytest.raises(ObjectNotFound):
        store.stat(KEY)
    with pytest.raises(ObjectNotFound):
        list(store.iter_chunks(KEY))
    assert backend_contents(store) == []


# --- conditional writes --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [100, 9 * MiB], ids=["small", "over-one-part"])
def test_conditional_put_on_an_existing_key_raises_and_keeps_the_original(store, size):
    original = generated_bytes(size, seed=1)
    store.put_bytes(KEY, original)
    before = backend_contents(store)

    with pytest.raises(ObjectExists):
        store.put_bytes(KEY, generated_bytes(size, seed=2), overwrite=False)

    assert store.get_bytes(KEY) == original
    assert store.stat(KEY) == StoredObject(key=KEY, size=size, sha256=sha256(original))
    assert backend_contents(store) == before


@pytest.mark.parametrize(("size", "rounds"), [(1000, 8), (9 * MiB, 2)], ids=["small", "over-one-part"])
def test_of_two_concurrent_conditional_puts_exactly_one_wins(store, size, rounds):
    for round_number in range(rounds):
        key = f"projects/race/{round_number}"
        payloads = [generated_bytes(size, seed=10 * round_number + i) for i in range(2)]
        outcomes: dict[int, str] = {}
        barrier = threading.Barrier(2)

        def write(i, key=key, payloads=payloads, outcomes=outcomes, barrier=barrier):
            barrier.wait()
            try:
                store.put_bytes(key, payloads[i], overwrite=False)
                outcomes[i] = "won"
            except ObjectExists:
                outcomes[i] = "exists"

        threads = [threading.Thread(target=write, args=(i,)) for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert sorted(outcomes.values()) == ["exists", "won"], f"round {round_number}: {outcomes}"
        winner = payloads[next(i for i, outcome in outcomes.items() if outcome == "won")]
        assert store.get_bytes(key) == winner
        assert store.stat(key).sha256 == sha256(winner)


# --- integrity -----------------------------------------------------------------------------------------------------


def test_bytes_changed_behind_the_stores_back_fail_verification(store, tmp_path):
    store.put_bytes(KEY, b"the model weights, as trained")
    overwrite_behind_the_stores_back(store, KEY, b"the model weights, tampered!")

    with pytest.raises(ChecksumMismatch):
        store.get_bytes(KEY)
    with pytest.raises(ChecksumMismatch):
        store.download_to(KEY, tmp_path / "copy.bin")
    with pytest.raises(ChecksumMismatch), store.open(KEY) as stream:
        stream.read()
    assert store.get_bytes(KEY, verify=False) == b"the model weights, tampered!"


def test_a_truncated_object_fails_verification(store):
    data = generated_bytes(50_000, seed=5)
    store.put_bytes(KEY, data)
    overwrite_behind_the_stores_back(store, KEY, data[:-1])

    with pytest.raises(ChecksumMismatch):
        store.get_bytes(KEY)


def test_a_put_whose_stream_fails_midway_leaves_no_object(store):
    with pytest.raises(OSError, match="went away"):
        store.put(KEY, GeneratedStream(20 * MiB, fail_after=3 * MiB))

    assert store.exists(KEY) is False
    assert backend_contents(store) == []


def test_a_failed_overwrite_leaves_the_previous_object_intact(store):
    store.put_bytes(KEY, b"previous")
    before = backend_contents(store)

    with pytest.raises(OSError, match="went away"):
        store.put(KEY, GeneratedStream(10 * MiB, fail_after=MiB))

    assert store.get_bytes(KEY) == b"previous"
    assert store.stat(KEY).sha256 == sha256(b"previous")
    assert backend_contents(store) == before


# --- keys ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", UNSAFE_KEYS)
def test_unsafe_keys_are_refused_by_every_operation(store, key):
    operations = [
        lambda: store.put_bytes(key, b"x"),
        lambda: store.put_bytes(key, b"x", overwrite=False),
        lambda: store.get_bytes(key),
        lambda: store.open(key),
        lambda: store.stat(key),
        lambda: store.exists(key),
        lambda: store.delete(key),
        lambda: store.presigned_url(key),
    ]
    for operation in operations:
        with pytest.raises(UnsafeKey):
            operation()

    assert backend_contents(store) == []


@pytest.mark.parametrize("prefix", ["../", "/etc", "a/../b", "", "a\\b", "a//b/"])
def test_unsafe_list_prefixes_are_refused(store, prefix):
    with pytest.raises(UnsafeKey):
        list(store.list_keys(prefix))


# --- downloads -----------------------------------------------------------------------------------------------------


def _no_proxy_opener():
    return urllib.request.build_opener(urllib.request.ProxyHandler({}))


def test_presigned_url_is_none_for_a_local_folder_and_downloads_the_object_from_s3(store):
    data = generated_bytes(70_000, seed=9)
    store.put_bytes(KEY, data)

    url = store.presigned_url(KEY, expires_in=60, download_name="churn v1.parquet")

    if isinstance(store, LocalArtifactStore):
        assert url is None
        return
    assert url.startswith(store.client.meta.endpoint_url + "/")
    with _no_proxy_opener().open(url, timeout=10) as response:
        assert response.status == 200
        assert response.headers["Content-Disposition"] == 'attachment; filename="churn v1.parquet"'
        assert response.read() == data


def test_presigned_url_names_a_non_ascii_download_and_strips_header_breaking_characters(store):
    store.put_bytes(KEY, b"data")

    url = store.presigned_url(KEY, download_name='résumé "final"\r\n.csv')

    if isinstance(store, LocalArtifactStore):
        assert url is None
        return
    with _no_proxy_opener().open(url, timeout=10) as response:
        assert response.headers["Content-Disposition"] == (
            "attachment; filename=\"r_sum_ final.csv\"; filename*=UTF-8''r%C3%A9sum%C3%A9%20final.csv"
        )
        assert response.read() == b"data"


# --- copies --------------------------------------------------------------------------------------------------------

COPY_KEY = "projects/5c1d2a8e-8a3e-4f6c-9d55-0d7f1c2b3a41/datasets/0b9f6c3e-2d6a-4f0e-8d1e-6a2f4b8c9d10/v1/original.csv"


def test_copy_duplicates_the_bytes_and_their_recorded_sha256(store):
    data = generated_bytes(3 * MiB + 5, seed=11)
    source = store.put_bytes(KEY, data)

    copied = store.copy(KEY, COPY_KEY)

    assert copied == StoredObject(key=COPY_KEY, size=3 * MiB + 5, sha256=sha256(data))
    assert store.stat(COPY_KEY) == copied
    assert store.get_bytes(COPY_KEY) == data
    assert store.stat(KEY) == source
    assert store.get_bytes(KEY) == data


def test_a_copy_outlives_its_source_and_is_independent_of_later_writes(store):
    store.put_bytes(KEY, b"staged upload")
    store.copy(KEY, COPY_KEY)

    store.put_bytes(KEY, b"overwritten source")
    assert store.get_bytes(COPY_KEY) == b"staged upload"
    store.delete(KEY)

    assert store.get_bytes(COPY_KEY) == b"staged upload"
    assert store.stat(COPY_KEY) == StoredObject(key=COPY_KEY, size=13, sha256=sha256(b"staged upload"))
    assert list(store.list_keys("projects/")) == [COPY_KEY]


def test_conditional_copy_onto_an_existing_key_raises_and_keeps_the_destination(store):
    store.put_bytes(KEY, b"new bytes")
    store.put_bytes(COPY_KEY, b"existing destination")
    before = backend_contents(store)

    with pytest.raises(ObjectExists):
        store.copy(KEY, COPY_KEY, overwrite=False)
    with pytest.raises(ObjectExists):
        store.copy(KEY, COPY_KEY)  # conditional is the default

    assert store.get_bytes(COPY_KEY) == b"existing destination"
    assert store.stat(COPY_KEY) == StoredObject(key=COPY_KEY, size=20, sha256=sha256(b"existing destination"))
    assert backend_contents(store) == before


def test_copy_with_overwrite_replaces_the_destination(store):
    store.put_bytes(KEY, b"new bytes")
    store.put_bytes(COPY_KEY, b"existing destination")

    copied = store.copy(KEY, COPY_KEY, overwrite=True)

    assert copied == StoredObject(key=COPY_KEY, size=9, sha256=sha256(b"new bytes"))
    assert store.get_bytes(COPY_KEY) == b"new bytes"
    assert store.stat(COPY_KEY) == copied


def test_copy_of_a_missing_object_raises_object_not_found_and_writes_nothing(store):
    with pytest.raises(ObjectNotFound):
        store.copy(KEY, COPY_KEY)

    assert store.exists(COPY_KEY) is False
    assert backend_contents(store) == []


def test_a_copy_of_corrupted_bytes_never_verifies(store):
    store.put_bytes(KEY, b"the model weights, as trained")
    overwrite_behind_the_stores_back(store, KEY, b"the model weights, tampered!")

    try:
        store.copy(KEY, COPY_KEY)
    except ChecksumMismatch:  # a streamed copy verifies the source as it reads it: nothing is written
        assert store.exists(COPY_KEY) is False
        return
    # a copy that moves no bytes (a hard link) keeps the source's recorded digest: the copy fails verification
    assert store.stat(COPY_KEY).sha256 == sha256(b"the model weights, as trained")
    with pytest.raises(ChecksumMismatch):
        store.get_bytes(COPY_KEY)


@pytest.mark.parametrize("key", UNSAFE_KEYS)
def test_copy_refuses_unsafe_source_and_destination_keys(store, key):
    store.put_bytes(KEY, b"x")
    before = backend_contents(store)

    with pytest.raises(UnsafeKey):
        store.copy(KEY, key)
    with pytest.raises(UnsafeKey):
        store.copy(key, COPY_KEY)
    with pytest.raises(UnsafeKey):
        store.copy(KEY, key, overwrite=True)

    assert backend_contents(store) == before
