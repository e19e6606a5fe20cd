"""artifact_store_from_uri picks the implementation by URI scheme and refuses anything it cannot use safely."""

import pytest

from workers.storage.factory import artifact_store_from_uri
from workers.storage.local import LocalArtifactStore
from workers.storage.s3 import S3ArtifactStore


def test_a_file_uri_gives_a_local_store_on_that_folder(tmp_path):
    store = artifact_store_from_uri(f"file://{tmp_path}/artifacts")

    assert isinstance(store, LocalArtifactStore)
    assert store.root == tmp_path / "artifacts"
    assert store.uri == f"file://{tmp_path}/artifacts"


def test_a_file_uri_may_name_localhost_and_percent_encode(tmp_path):
    store = artifact_store_from_uri(f"file://localhost{tmp_path}/my%20artifacts")

    assert store.root == tmp_path / "my artifacts"


def test_an_s3_uri_gives_an_s3_store_with_bucket_prefix_endpoint_and_region():
    store = artifact_store_from_uri(
        "s3://mlplatform/prod/artifacts/", endpoint_url="http://minio:9000", region="eu-west-1"
    )

    assert isinstance(store, S3ArtifactStore)
    assert (store.bucket, store.prefix, store.uri) == (
        "mlplatform",
        "prod/artifacts/",
        "s3://mlplatform/prod/artifacts/",
    )
    assert store.client.meta.endpoint_url == "http://minio:9000"
    assert store.client.meta.region_name == "eu-west-1"
    assert store.client.meta.config.s3["addressing_style"] == "path"


def test_an_s3_uri_without_a_prefix_uses_the_whole_bucket():
    store = artifact_store_from_uri("s3://mlplatform")

    assert (store.bucket, store.prefix) == ("mlplatform", "")
    assert store.client.meta.region_name == "us-east-1"


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("gs://bucket/prefix", "'gs'"),
        ("http://example.com/artifacts", "'http'"),
        ("/srv/artifacts", "'(none)'"),
        ("", "empty"),
        ("file:relative/path", "absolute"),
        ("file://server/share/artifacts", "local absolute folder"),
        ("s3://", "bucket"),
        ("s3://Not_A_Bucket/x", "bucket"),
        ("s3://bucket/../escape", "prefix"),
        ("s3://bucket/a//b", "prefix"),
        ("s3://key:secret@bucket/x", "credentials"),
        ("s3://bucket/x?versionId=1", "query"),
        ("file:///srv/artifacts#top", "fragment"),
    ],
)
def test_unusable_uris_are_refused_with_a_clear_reason(uri, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        artifact_store_from_uri(uri)
