"""What a model server serves and how: the deployment file (JSON) and the environment.

The deployment file lists the versions to serve:
    {"models": [{"name", "version", "artifact_store", "artifact_key", "sha256", "signature",
                 "input_signature", "problem_type", "algorithm"?}],
     "default"?: {"name", "version"}}
`artifact_store` is a store URI (file:///..., s3://...), `sha256`/`signature` the recorded digest and HMAC of the
artifact (workers.ml.training.artifacts), `input_signature` the run's (workers.ml.training.signature), `algorithm`
the workers.ml.training.algorithms name (it picks the SHAP explainer). `default` is the version MLflow's
/invocations answers with (the first listed when absent).

Environment: SERVING_CONFIG (the file), MODEL_SIGNING_KEY, SERVING_LOG_DIR (prediction log folder), and optional
limits SERVING_MAX_BATCH_ROWS, SERVING_MAX_BODY_BYTES, SERVING_LOG_ROTATE_BYTES, SERVING_LOG_ROTATE_SECONDS.
"""

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

VERSION_FIELDS = ("name", "version", "artifact_store", "artifact_key", "sha256", "signature", "problem_type")
PROBLEM_TYPES = ("binary", "multiclass", "regression")


class ConfigError(ValueError):
    """The deployment file or the environment is unusable; the message names the field."""


@dataclass(frozen=True)
class VersionSpec:
    name: str
    version: str
    artifact_store: str
    artifact_key: str
    sha256: str
    signature: str
    problem_type: str
    input_signature: dict[str, Any] = field(hash=False, compare=False)
    algorithm: str = ""

    @property
    def ref(self) -> tuple[str, str]:
        return (self.name, self.version)


@dataclass(frozen=True)
class Deployment:
    versions: tuple[VersionSpec, ...]
    default: tuple[str, str]


@dataclass(frozen=True)
class Limits:
    max_batch_rows: int = 1000
    max_body_bytes: int = 4 * 1024 * 1024


@dataclass(frozen=True)
class Settings:
    deployment: Deployment
    signing_key: bytes
    log_dir: Path
    limits: Limits
    log_rotate_bytes: int = 64 * 1024 * 1024
    log_rotate_seconds: float = 3600.0


def _version_spec(entry: Any, position: int) -> VersionSpec:
    where = f"models[{position}]"
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: expected an object.")
    for name in VERSION_FIELDS:
        if not isinstance(entry.get(name), str) or not entry[name]:
            raise ConfigError(f"{where}.{name}: a non-empty string is required.")
    if entry["problem_type"] not in PROBLEM_TYPES:
        raise ConfigError(f"{where}.problem_type: one of {', '.join(PROBLEM_TYPES)}.")
    signature = entry.get("input_signature")
    if not isinstance(signature, dict) or not isinstance(signature.get("columns"), list) or not signature["columns"]:
        raise ConfigError(f"{where}.input_signature: an object with a non-empty 'columns' list is required.")
    return VersionSpec(
        **{name: entry[name] for name in VERSION_FIELDS},
        input_signature=signature,
        algorithm=str(entry.get("algorithm") or ""),
    )


def parse_deployment(data: Any) -> Deployment:
    if not isinstance(data, dict) or not isinstance(data.get("models"), list) or not data["models"]:
        raise ConfigError("models: a non-empty list of model versions is required.")
    versions = tuple(_version_spec(entry, position) for position, entry in enumerate(data["models"]))
    refs = [spec.ref for spec in versions]
    duplicates = sorted({ref for ref in refs if refs.count(ref) > 1})
    if duplicates:
        raise ConfigError(f"models: {duplicates[0][0]} version {duplicates[0][1]} is listed twice.")
    default = data.get("default")
    if default is None:
        return Deployment(versions=versions, default=refs[0])
    if not isinstance(default, dict) or (default.get("name"), default.get("version")) not in refs:
        raise ConfigError("default: {name, version} of a listed model version is required.")
    return Deployment(versions=versions, default=(default["name"], default["version"]))


def load_deployment(path: str | Path) -> Deployment:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"SERVING_CONFIG: cannot read {path}: {exc.strerror}.") from None
    except ValueError as exc:
        raise ConfigError(f"SERVING_CONFIG: {path} is not valid JSON ({exc}).") from None
    return parse_deployment(data)


def _positive_int(environ: dict[str, str], name: str, default: int) -> int:
    raw = environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value <= 0:
        raise ConfigError(f"{name}: a positive integer is required, got {raw!r}.")
    return value


def settings_from_env(environ: dict[str, str] | None = None) -> Settings:
    environ = dict(os.environ if environ is None else environ)
    for name in ("SERVING_CONFIG", "MODEL_SIGNING_KEY", "SERVING_LOG_DIR"):
        if not environ.get(name):
            raise ConfigError(f"{name} must be set.")
    return Settings(
        deployment=load_deployment(environ["SERVING_CONFIG"]),
        signing_key=environ["MODEL_SIGNING_KEY"].encode(),
        log_dir=Path(environ["SERVING_LOG_DIR"]),
        limits=Limits(
            max_batch_rows=_positive_int(environ, "SERVING_MAX_BATCH_ROWS", Limits.max_batch_rows),
            max_body_bytes=_positive_int(environ, "SERVING_MAX_BODY_BYTES", Limits.max_body_bytes),
        ),
        log_rotate_bytes=_positive_int(environ, "SERVING_LOG_ROTATE_BYTES", Settings.log_rotate_bytes),
        log_rotate_seconds=float(
            _positive_int(environ, "SERVING_LOG_ROTATE_SECONDS", int(Settings.log_rotate_seconds))
        ),
    )
