"""The artifact store the portal and the workers use, built from settings (ARTIFACT_STORE, S3_ENDPOINT_URL,
S3_REGION; S3 credentials come from boto3's usual sources). See docs/adr/0004-artifact-store.md."""

from functools import lru_cache

from django.conf import settings

from workers.storage.base import ArtifactStore
from workers.storage.factory import artifact_store_from_uri


def artifact_store() -> ArtifactStore:
    """One store per process for the current settings (a test that overrides them gets a store of its own)."""
    return _store_for(settings.ARTIFACT_STORE, settings.S3_ENDPOINT_URL or None, settings.S3_REGION or None)


@lru_cache(maxsize=32)
def _store_for(uri: str, endpoint_url: str | None, region: str | None) -> ArtifactStore:
    return artifact_store_from_uri(uri, endpoint_url=endpoint_url, region=region)
