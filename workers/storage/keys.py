"""Every artifact key is built here, from ids the server generated, never from user strings.

Layout:
    projects/<project uuid>/uploads/<job uuid>/original             an upload waiting for its ingestion job
    projects/<project uuid>/datasets/<dataset uuid>/v<n>/original<ext>   the bytes the user gave, as given
    projects/<project uuid>/datasets/<dataset uuid>/v<n>/data.parquet    the normalised copy
    projects/<project uuid>/experiments/<experiment uuid>/runs/<run uuid>/model.joblib   a trained run's pipeline
    projects/<project uuid>/models/<registered model uuid>/v<n>/model.joblib   a registered version's own copy
"""

import re
import uuid

from workers.storage.base import UnsafeKey

_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")
_ALLOWED_ORIGINAL_EXTENSIONS = {".csv", ".tsv", ".parquet", ".jsonl", ".csv.gz", ".tsv.gz", ".jsonl.gz", ".sql"}


def validate_key(key: str) -> str:
    """Return `key` if it is a safe relative key: segments of letters, digits, '.', '_', '-', no '..', no empty
    segment, no leading '/', at most 1024 characters. Raise UnsafeKey otherwise."""
    if not isinstance(key, str) or not key or len(key) > 1024:
        raise UnsafeKey(f"invalid key: {key!r}")
    if key.startswith("/") or "\\" in key:
        raise UnsafeKey(f"key must be relative and use '/': {key!r}")
    for segment in key.split("/"):
        if segment in ("", ".", "..") or not _SEGMENT.fullmatch(segment):
            raise UnsafeKey(f"unsafe key segment {segment!r} in {key!r}")
    return key


def validate_prefix(prefix: str) -> str:
    """A key prefix for listing: a valid key, optionally ending in '/'."""
    return validate_key(prefix.rstrip("/")) + ("/" if prefix.endswith("/") else "")


def _uuid(value) -> str:
    return str(uuid.UUID(str(value)))


def upload_staging_key(*, project_id, job_id) -> str:
    return validate_key(f"projects/{_uuid(project_id)}/uploads/{_uuid(job_id)}/original")


def _version_prefix(project_id, dataset_id, version: int) -> str:
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise UnsafeKey(f"version must be a positive integer, got {version!r}")
    return f"projects/{_uuid(project_id)}/datasets/{_uuid(dataset_id)}/v{version}"


def dataset_original_key(*, project_id, dataset_id, version: int, extension: str) -> str:
    if extension not in _ALLOWED_ORIGINAL_EXTENSIONS:
        raise UnsafeKey(f"unexpected extension {extension!r}")
    return validate_key(f"{_version_prefix(project_id, dataset_id, version)}/original{extension}")


def dataset_parquet_key(*, project_id, dataset_id, version: int) -> str:
    return validate_key(f"{_version_prefix(project_id, dataset_id, version)}/data.parquet")


def run_model_key(*, project_id, experiment_id, run_id) -> str:
    """One key per run: a redelivered training task finds its own earlier upload there instead of adding another."""
    return validate_key(
        f"projects/{_uuid(project_id)}/experiments/{_uuid(experiment_id)}/runs/{_uuid(run_id)}/model.joblib"
    )


def model_version_key(*, project_id, model_id, version: int) -> str:
    """The registry's copy of a version's artifact: written once (conditionally), never replaced."""
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise UnsafeKey(f"version must be a positive integer, got {version!r}")
    return validate_key(f"projects/{_uuid(project_id)}/models/{_uuid(model_id)}/v{version}/model.joblib")
