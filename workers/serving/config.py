"""What a model server serves and how: the deployment file (JSON) and the environment.

The deployment file lists the versions to serve:
    {"models": [{"name", "version", "artifact_store", "artifact_key", "sha256", "signature",
                 "input_signature", "problem_type", "algorithm"?}],
     "default"?: {"name", "version"},
     "traffic"?: {"strategy": "direct" | "blue_green" | "canary" | "ab" | "shadow",
                  "routes": [{"version", "weight", "variant"?}], "sticky_key"?: "...", "shadow"?: {"version"}}}
`artifact_store` is a store URI (file:///..., s3://...), `sha256`/`signature` the recorded digest and HMAC of the
artifact (workers.ml.training.artifacts), `input_signature` the run's (workers.ml.training.signature), `algorithm`
the workers.ml.training.algorithms name (it picks the SHAP explainer). `default` (the first listed when absent)
names the endpoint's model, and is the version requests get when there is no `traffic` section.

`traffic` is how requests that name no version are spread over versions of the default model (the endpoint's
model; workers.serving.routing): integer weights summing to 100; `variant` labels a route in the prediction log
(the version by default). direct: one route at 100; blue_green: one route at 100, the others at 0 (loaded, checked,
ready to take over at once); canary: a split by weighted random; ab: a split by a stable hash of `sticky_key` (a
header, else the column of the first row), so one key always gets the same variant; shadow: live routes plus a
`shadow` version that gets a copy of the live traffic. Without `traffic`: direct to the default version.

`features` (optional): {"view", "entity_keys", "columns"}: the server fetches `columns` from the online feature store
(FEATURES_ONLINE_REDIS_URL) by the entity keys a request sends, for the rows that lack them (workers.serving.features).

Environment: SERVING_CONFIG (the file), MODEL_SIGNING_KEY, SERVING_LOG_DIR (prediction log folder),
SERVING_ADMIN_TOKEN (enables POST /admin/reload from loopback), and optional limits SERVING_MAX_BATCH_ROWS,
SERVING_MAX_BODY_BYTES, SERVING_LOG_ROTATE_BYTES, SERVING_LOG_ROTATE_SECONDS.
"""

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

VERSION_FIELDS = ("name", "version", "artifact_store", "artifact_key", "sha256", "signature", "problem_type")
PROBLEM_TYPES = ("binary", "multiclass", "regression")
STRATEGIES = ("direct", "blue_green", "canary", "ab", "shadow")
TOTAL_WEIGHT = 100


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
class Route:
    version: str
    weight: int
    variant: str


@dataclass(frozen=True)
class Traffic:
    strategy: str
    model: str  # the endpoint's model: the default version's name
    routes: tuple[Route, ...]
    sticky_key: str = ""
    shadow: str = ""  # the shadow version, for the shadow strategy

    def live_refs(self) -> list[tuple[str, str]]:
        """The versions the policy means to send live traffic to."""
        return [(self.model, route.version) for route in self.routes if route.weight > 0]


@dataclass(frozen=True)
class FeatureLookup:
    """Columns the server fetches from the online feature store by entity keys the client sends (apps/features)."""

    view: str
    entity_keys: tuple[str, ...]
    columns: tuple[str, ...]


@dataclass(frozen=True)
class Deployment:
    versions: tuple[VersionSpec, ...]
    default: tuple[str, str]
    traffic: Traffic
    features: FeatureLookup | None = None


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
    config_path: Path | None = None  # re-read by POST /admin/reload
    admin_token: str = ""  # POST /admin/reload is refused while empty


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
        default_ref = refs[0]
    elif not isinstance(default, dict) or (default.get("name"), default.get("version")) not in refs:
        raise ConfigError("default: {name, version} of a listed model version is required.")
    else:
        default_ref = (default["name"], default["version"])
    listed = [version for name, version in refs if name == default_ref[0]]
    if data.get("traffic") is None:
        only = Route(version=default_ref[1], weight=TOTAL_WEIGHT, variant=default_ref[1])
        traffic = Traffic(strategy="direct", model=default_ref[0], routes=(only,))
    else:
        traffic = parse_traffic(data["traffic"], model=default_ref[0], listed=listed)
    features = parse_features(data["features"]) if data.get("features") is not None else None
    return Deployment(versions=versions, default=default_ref, traffic=traffic, features=features)


def _names(where: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(item, str) and item for item in value):
        raise ConfigError(f"{where}: a non-empty list of column names is required.")
    return tuple(value)


def parse_features(data: Any) -> FeatureLookup:
    """The `features` section: {"view", "entity_keys": [...], "columns": [...]}."""
    if not isinstance(data, dict):
        raise ConfigError("features: expected an object {view, entity_keys, columns}.")
    unknown = sorted(set(data) - {"view", "entity_keys", "columns"})
    if unknown:
        raise ConfigError(f"features.{unknown[0]}: unknown field; features has view, entity_keys and columns.")
    if not isinstance(data.get("view"), str) or not data["view"]:
        raise ConfigError("features.view: the feature view's name is required.")
    keys, columns = (
        _names("features.entity_keys", data.get("entity_keys")),
        _names("features.columns", data.get("columns")),
    )
    if set(keys) & set(columns):
        raise ConfigError("features.columns: an entity key is sent by the client, not fetched.")
    return FeatureLookup(view=data["view"], entity_keys=keys, columns=columns)


def _route(entry: Any, position: int, listed: list[str], model: str) -> Route:
    where = f"traffic.routes[{position}]"
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: expected an object {{version, weight}}.")
    unknown = sorted(set(entry) - {"version", "weight", "variant"})
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]}: unknown field; a route has version, weight and variant.")
    version, weight = entry.get("version"), entry.get("weight")
    if version not in listed:
        raise ConfigError(f"{where}.version: {version!r} is not a listed version of {model}.")
    if not isinstance(weight, int) or isinstance(weight, bool) or not 0 <= weight <= TOTAL_WEIGHT:
        raise ConfigError(f"{where}.weight: an integer from 0 to {TOTAL_WEIGHT} is required, got {weight!r}.")
    variant = entry.get("variant", version)
    if not isinstance(variant, str) or not variant:
        raise ConfigError(f"{where}.variant: a non-empty string is required.")
    return Route(version=version, weight=weight, variant=variant)


def _check_strategy(traffic: Traffic) -> None:
    """The rules that make each strategy what its name says."""
    weights = [route.weight for route in traffic.routes]
    if traffic.strategy == "direct" and weights != [TOTAL_WEIGHT]:
        raise ConfigError(f"traffic.routes: direct sends all traffic to one version (one route of {TOTAL_WEIGHT}).")
    if traffic.strategy == "blue_green" and sorted(weights)[-1:] != [TOTAL_WEIGHT]:
        raise ConfigError(
            f"traffic.routes: blue_green switches at once: one route of {TOTAL_WEIGHT}, the others 0 (no split)."
        )
    if traffic.strategy in ("canary", "ab") and len(weights) < 2:
        raise ConfigError(f"traffic.routes: {traffic.strategy} splits traffic: at least two routes are required.")
    if traffic.strategy == "ab" and not traffic.sticky_key:
        raise ConfigError("traffic.sticky_key: ab needs the header or column that keeps a client on one variant.")
    if traffic.strategy != "ab" and traffic.sticky_key:
        raise ConfigError(f"traffic.sticky_key: only the ab strategy is sticky, not {traffic.strategy}.")
    if traffic.strategy == "shadow" and not traffic.shadow:
        raise ConfigError("traffic.shadow: the shadow strategy needs {version} of the version that gets a copy.")
    if traffic.strategy != "shadow" and traffic.shadow:
        raise ConfigError(f"traffic.shadow: only the shadow strategy has a shadow version, not {traffic.strategy}.")


def parse_traffic(data: Any, *, model: str, listed: list[str]) -> Traffic:
    """The `traffic` section, for the versions of `model` listed in the deployment."""
    if not isinstance(data, dict):
        raise ConfigError("traffic: expected an object {strategy, routes}.")
    unknown = sorted(set(data) - {"strategy", "routes", "sticky_key", "shadow"})
    if unknown:
        raise ConfigError(f"traffic.{unknown[0]}: unknown field; traffic has strategy, routes, sticky_key, shadow.")
    if data.get("strategy") not in STRATEGIES:
        raise ConfigError(f"traffic.strategy: one of {', '.join(STRATEGIES)}, got {data.get('strategy')!r}.")
    entries = data.get("routes")
    if not isinstance(entries, list) or not entries:
        raise ConfigError("traffic.routes: a non-empty list of {version, weight} is required.")
    routes = tuple(_route(entry, position, listed, model) for position, entry in enumerate(entries))
    for field_name in ("version", "variant"):
        values = [getattr(route, field_name) for route in routes]
        twice = [value for value in values if values.count(value) > 1]
        if twice:
            raise ConfigError(f"traffic.routes: {field_name} {twice[0]!r} is routed twice.")
    total = sum(route.weight for route in routes)
    if total != TOTAL_WEIGHT:
        raise ConfigError(f"traffic.routes: the weights sum to {total}, not {TOTAL_WEIGHT}.")
    sticky_key = data.get("sticky_key", "")
    if not isinstance(sticky_key, str):
        raise ConfigError("traffic.sticky_key: a header or column name is required.")
    shadow = data.get("shadow")
    shadow_version = ""
    if shadow is not None:
        if not isinstance(shadow, dict) or shadow.get("version") not in listed:
            raise ConfigError(f"traffic.shadow.version: one of the listed versions of {model} is required.")
        shadow_version = shadow["version"]
        if shadow_version in [route.version for route in routes]:
            raise ConfigError(f"traffic.shadow.version: {shadow_version!r} also takes live traffic.")
    traffic = Traffic(
        strategy=data["strategy"], model=model, routes=routes, sticky_key=sticky_key, shadow=shadow_version
    )
    _check_strategy(traffic)
    return traffic


def check_traffic_ready(traffic: Traffic, *, ready: set[tuple[str, str]], failures: dict[tuple[str, str], str]):
    """ConfigError naming the first route with live weight (or the shadow) whose version is not loaded.

    The server keeps serving either way (workers.serving.routing sends that traffic to the ready versions); this is
    how a reload tells its caller the policy it asked for is not the one running."""
    for position, route in enumerate(traffic.routes):
        ref = (traffic.model, route.version)
        if route.weight > 0 and ref not in ready:
            reason = failures.get(ref, "not loaded")
            raise ConfigError(
                f"traffic.routes[{position}].version: {traffic.model} version {route.version} is not ready ({reason})."
            )
    if traffic.shadow and (traffic.model, traffic.shadow) not in ready:
        reason = failures.get((traffic.model, traffic.shadow), "not loaded")
        raise ConfigError(f"traffic.shadow.version: {traffic.model} version {traffic.shadow} is not ready ({reason}).")


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
        config_path=Path(environ["SERVING_CONFIG"]),
        admin_token=environ.get("SERVING_ADMIN_TOKEN", ""),
    )
