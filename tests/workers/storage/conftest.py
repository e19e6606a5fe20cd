"""Fixtures of the artifact store tests: `store` runs each contract test once per implementation."""

import pytest

from workers.storage.local import LocalArtifactStore


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path):
    if request.param == "local":
        return LocalArtifactStore(tmp_path / "artifacts")
    return request.getfixturevalue("s3_store")
