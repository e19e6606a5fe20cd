"""S3ArtifactStore specifics: where objects and digests live, which requests a put makes, failures, prefixes."""

import hashlib
import urllib.error
import urllib.request

import pytest
from botocore.exceptions import EndpointConnectionError
from botocore.stub import Stubber

from tests.support.storage import backend_contents, generated_bytes
from workers.storage.base import ChecksumMismatch, ObjectExists, ObjectNotFound, StorageError, UnsafeKey
from workers.storage.s3 import S3ArtifactStore, attachment_disposition, normalise_prefix

MiB = 1 << 20
KEY = "projects/5c1d2a8e-8a3e-4f6c-9d55-0d7f1c2b3a41/runs/0b9f6c3e-2d6a-4f0e-8d1e-6a2f4b8c9d10/model.joblib"


class RecordingClient:
    """Passes every call to a real boto3 client, records (operation, kwargs without Body), and can make the n-th
    call of one operation fail."""

    def __init__(self, client, *, fail_on: tuple[str, int] | None = None):
        self._client = client
        self._fail_on = fail_on
        self.calls: list[tuple[str, dict]] = []

    def __getattr__(self, name):
        target = getattr(self._client, name)
        if not callable(target) or name.startswith("get_paginator") or name == "generate_presigned_url":
            return target

        def call(**kwargs):
            self.calls.append((name, {k: v for k, v in kwargs.items() if k != "Body"}))
            if self._fail_on == (name, sum(1 for op, _ in self.calls if op == name)):
                raise EndpointConnectionError(endpoint_url="http://127.0.0.1:1")
            return target(**kwargs)

        return call

    def operations(self) -> list[str]:
        return [name for name, _ in self.calls]


def _recording_store(s3_server, bucket, **kwargs):
    recorder = RecordingClient(s3_server.client(), fail_on=kwargs.pop("fail_on", None))
    return S3ArtifactStore(bucket, "tenant-a/", client=recorder, **kwargs), recorder


def test_an_object_lives_under_the_prefix_with_its_sha256_in_metadata(s3_store):
    data = b"weights"

    s3_store.put_bytes(KEY, data, content_type="application/octet-stream")

    head = s3_store.client.head_object(Bucket=s3_store.bucket, Key=f"tenant-a/{KEY}")
    assert head["Metadata"] == {"sha256": hashlib.sha256(data).hexdigest()}
    assert head["ContentType"] == "application/octet-stream"
    assert backend_contents(s3_store) == [f"tenant-a/{KEY}"]


def test_two_prefixes_in_one_bucket_do_not_see_each_other(s3_server, s3_bucket):
    tenant_a = s3_server.store(s3_bucket, "tenant-a/")
    tenant_b = s3_server.store(s3_bucket, "tenant-b")
    tenant_a.put_bytes("projects/p/x", b"a")

    assert tenant_b.exists("projects/p/x") is False
    assert list(tenant_b.list_keys("projects/")) == []
    with pytest.raises(ObjectNotFound):
        tenant_b.get_bytes("projects/p/x")
    tenant_b.put_bytes("projects/p/x", b"b", overwrite=False)
    assert tenant_a.get_bytes("projects/p/x") == b"a"
    assert tenant_b.get_bytes("projects/p/x") == b"b"


def test_objects_over_one_part_are_sent_in_8_mib_parts(s3_server, s3_bucket):
    store, recorder = _recording_store(s3_server, s3_bucket)

    store.put_bytes(KEY, generated_bytes(20 * MiB))

    assert recorder.operations() == [
        "create_multipart_upload",
        "upload_part",
        "upload_part",
        "upload_part",
        "complete_multipart_upload",
    ]
    assert [kwargs["ContentLength"] for name, kwargs in recorder.calls if name == "upload_part"] == [
        8 * MiB,
        8 * MiB,
        4 * MiB,
    ]
    assert "IfNoneMatch" not in recorder.calls[-1][1]
    assert recorder.calls[0][1]["Metadata"] == {"sha256": hashlib.sha256(generated_bytes(20 * MiB)).hexdigest()}


def test_a_conditional_put_is_one_put_object_with_if_none_match(s3_server, s3_bucket):
    store, recorder = _recording_store(s3_server, s3_bucket)

    store.put_bytes(KEY, generated_bytes(20 * MiB), overwrite=False)

    assert recorder.operations() == ["put_object"]
    assert recorder.calls[0][1]["IfNoneMatch"] == "*"
    assert recorder.calls[0][1]["ContentLength"] == 20 * MiB


def test_a_conditional_multipart_upload_refuses_an_existing_key_and_leaves_no_parts(s3_server, s3_bucket):
    # Above conditional_single_put_limit a conditional write completes a multipart upload with If-None-Match.
    store, recorder = _recording_store(s3_server, s3_bucket, conditional_single_put_limit=0)
    store.put_bytes(KEY, b"original")
    recorder.calls.clear()

    with pytest.raises(ObjectExists):
        store.put_bytes(KEY, generated_bytes(9 * MiB), overwrite=False)

    assert recorder.operations() == [
        "create_multipart_upload",
        "upload_part",
        "upload_part",
        "complete_multipart_upload",
        "abort_multipart_upload",
    ]
    assert recorder.calls[3][1]["IfNoneMatch"] == "*"
    assert store.get_bytes(KEY) == b"original"
    assert backend_contents(store) == [f"tenant-a/{KEY}"]


def test_a_conditional_multipart_upload_creates_a_new_key(s3_server, s3_bucket):
    store, _ = _recording_store(s3_server, s3_bucket, conditional_single_put_limit=0)
    data = generated_bytes(9 * MiB, seed=4)

    store.put_bytes(KEY, data, overwrite=False)

    assert store.get_bytes(KEY) == data
    assert store.stat(KEY).sha256 == hashlib.sha256(data).hexdigest()


def test_a_multipart_upload_failing_on_a_part_is_aborted(s3_server, s3_bucket):
    store, recorder = _recording_store(s3_server, s3_bucket, fail_on=("upload_part", 2))

    with pytest.raises(StorageError):
        store.put_bytes(KEY, generated_bytes(20 * MiB))

    assert recorder.operations() == [
        "create_multipart_upload",
        "upload_part",
        "upload_part",
        "abort_multipart_upload",
    ]
    assert backend_contents(store) == []


def test_an_object_written_without_a_sha256_is_refused_unless_verification_is_off(s3_store):
    s3_store.client.put_object(Bucket=s3_store.bucket, Key=f"tenant-a/{KEY}", Body=b"from elsewhere")

    with pytest.raises(ChecksumMismatch):
        s3_store.get_bytes(KEY)
    with pytest.raises(ChecksumMismatch):
        s3_store.stat(KEY)
    assert s3_store.exists(KEY) is True
    assert s3_store.get_bytes(KEY, verify=False) == b"from elsewhere"


def test_a_missing_bucket_is_a_storage_error_not_a_missing_object(s3_server):
    store = s3_server.store("no-such-bucket-here", "tenant-a/")

    with pytest.raises(StorageError) as raised:
        store.get_bytes(KEY)

    assert not isinstance(raised.value, ObjectNotFound)


def test_the_server_refuses_an_unsigned_download(s3_store):
    s3_store.put_bytes(KEY, b"secret")
    unsigned = f"{s3_store.client.meta.endpoint_url}/{s3_store.bucket}/tenant-a/{KEY}"

    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.build_opener(urllib.request.ProxyHandler({})).open(unsigned, timeout=10)

    raised.value.close()
    assert raised.value.code == 403


# --- without a server ----------------------------------------------------------------------------------------------


def _offline_store(prefix: str = "tenant-a/") -> S3ArtifactStore:
    """A store whose endpoint nobody listens on (port 9, discard): for what needs no server."""
    return S3ArtifactStore(
        "artifacts",
        prefix,
        endpoint_url="http://127.0.0.1:9",
        region="eu-west-1",
        aws_access_key_id="AKIAOFFLINE",
        aws_secret_access_key="offline-secret",
    )


@pytest.mark.parametrize("code, status", [("PreconditionFailed", 412), ("ConditionalRequestConflict", 409)])
def test_a_refused_condition_is_object_exists(code, status):
    store = _offline_store()
    with Stubber(store.client) as stubber:
        stubber.add_client_error("put_object", service_error_code=code, http_status_code=status)

        with pytest.raises(ObjectExists):
            store.put_bytes(KEY, b"x", overwrite=False)


@pytest.mark.parametrize(
    ("prefix", "normalised"), [("", ""), ("/", ""), ("tenant-a", "tenant-a/"), ("/a/b/", "a/b/"), ("a/b", "a/b/")]
)
def test_prefixes_are_normalised_to_folders(prefix, normalised):
    assert normalise_prefix(prefix) == normalised
    assert _offline_store(prefix).uri == f"s3://artifacts/{normalised}"


@pytest.mark.parametrize("prefix", ["../x", "a/../b", "a//b", "a\\b", "a/.b"])
def test_an_unsafe_prefix_is_refused(prefix):
    with pytest.raises(UnsafeKey):
        _offline_store(prefix)


@pytest.mark.parametrize("bucket", ["ab", "Upper", "under_score", "a..b", "-start", "x" * 64, "", "bucket\n"])
def test_an_invalid_bucket_name_is_refused(bucket):
    with pytest.raises(ValueError, match="bucket"):
        S3ArtifactStore(bucket, client=object())


def test_a_key_too_long_once_prefixed_is_refused():
    store = _offline_store("p" * 100)
    key = "/".join(["k" * 99] * 10)  # 999 characters: a valid key, 1100 bytes under the prefix

    with pytest.raises(UnsafeKey, match="too long"):
        store.presigned_url(key)


@pytest.mark.parametrize("expires_in", [0, -1, 7 * 24 * 3600 + 1])
def test_presigned_url_lifetimes_outside_sigv4_limits_are_refused(expires_in):
    with pytest.raises(ValueError, match="expires_in"):
        _offline_store().presigned_url(KEY, expires_in=expires_in)


def test_presigned_url_is_signed_for_the_prefixed_key_and_lifetime():
    url = _offline_store().presigned_url(KEY, expires_in=120)

    assert url.startswith(f"http://127.0.0.1:9/artifacts/tenant-a/{KEY}?")
    assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in url
    assert "X-Amz-Credential=AKIAOFFLINE%2F" in url
    assert "%2Feu-west-1%2Fs3%2Faws4_request" in url
    assert "X-Amz-Expires=120" in url
    assert "X-Amz-Signature=" in url
    assert "response-content-disposition" not in url


@pytest.mark.parametrize(
    ("name", "header"),
    [
        ("churn.csv", 'attachment; filename="churn.csv"'),
        ('a"b\\c/d;e.csv', 'attachment; filename="abcde.csv"'),
        ("\r\n", 'attachment; filename="download"'),
        ("données.csv", "attachment; filename=\"donn_es.csv\"; filename*=UTF-8''donn%C3%A9es.csv"),
    ],
)
def test_attachment_disposition_is_a_safe_header_value(name, header):
    assert attachment_disposition(name) == header


def test_a_part_size_under_the_s3_minimum_is_refused():
    with pytest.raises(ValueError, match="part_size"):
        S3ArtifactStore("artifacts", client=object(), part_size=1024)


def test_presigning_without_credentials_is_a_storage_error(monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/config")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    store = S3ArtifactStore("artifacts", endpoint_url="http://127.0.0.1:9")

    with pytest.raises(StorageError, match="credentials"):
        store.presigned_url(KEY)
