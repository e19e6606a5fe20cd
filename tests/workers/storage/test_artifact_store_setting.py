"""apps.core.artifacts.artifact_store(): the store named by the settings, one per process and settings."""

from apps.core.artifacts import artifact_store
from workers.storage.local import LocalArtifactStore
from workers.storage.s3 import S3ArtifactStore


def test_the_store_follows_artifact_store_and_is_reused(settings, tmp_path):
    settings.ARTIFACT_STORE = f"file://{tmp_path}/artifacts"

    first = artifact_store()

    assert isinstance(first, LocalArtifactStore)
    assert first.root == tmp_path / "artifacts"
    assert artifact_store() is first


def test_changed_settings_give_a_new_store(settings, tmp_path):
    settings.ARTIFACT_STORE = f"file://{tmp_path}/one"
    one = artifact_store()

    settings.ARTIFACT_STORE = f"file://{tmp_path}/two"
    two = artifact_store()

    assert two is not one
    assert two.root == tmp_path / "two"


def test_an_s3_setting_uses_the_endpoint_and_region_settings(settings):
    settings.ARTIFACT_STORE = "s3://mlplatform/artifacts"
    settings.S3_ENDPOINT_URL = "http://minio:9000"
    settings.S3_REGION = "eu-central-1"

    store = artifact_store()

    assert isinstance(store, S3ArtifactStore)
    assert (store.bucket, store.prefix) == ("mlplatform", "artifacts/")
    assert store.client.meta.endpoint_url == "http://minio:9000"
    assert store.client.meta.region_name == "eu-central-1"


def test_an_empty_endpoint_setting_means_aws(settings):
    settings.ARTIFACT_STORE = "s3://mlplatform"
    settings.S3_ENDPOINT_URL = ""
    settings.S3_REGION = "us-east-1"

    store = artifact_store()

    assert store.client.meta.endpoint_url == "https://s3.amazonaws.com"
    assert store.client.meta.config.s3["addressing_style"] == "auto"
