"""The experiment specification: what to train on, how to prepare it, split it, search it and judge it.

STANDARD LIBRARY ONLY: the portal imports this module (an import-linter exception) to validate the form and the API
against a dataset version's columns before anything is queued; the worker rebuilds the same spec from the stored dict.
`ExperimentSpec.as_dict()` is what a run records; `spec_from_dict(spec.as_dict()) == spec`.

Validation has two layers, both returning {field: [messages]} (the API's field-level errors):
- `build_spec(data, columns=..., defaults=...)`: the request against the version's columns (schema and marks);
- `profile_errors(spec, profile, row_count)`: the spec against the version's stored profile (constant or missing
  target, one class, all-missing features, a class too small to stratify), so bad data is refused before queueing.
The worker checks the same conditions on the data itself and fails the run with the same message if they slip by.
"""

import math
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from workers.ml.training.algorithms import ALGORITHMS, default_algorithms

PROBLEM_TYPES = ("binary", "multiclass", "regression", "clustering")
SUPERVISED = ("binary", "multiclass", "regression")

# Metrics an experiment can rank by, per problem type (a superset of the project form's choices).
METRICS: dict[str, tuple[str, ...]] = {
    "binary": ("accuracy", "balanced_accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc", "log_loss"),
    "multiclass": ("accuracy", "balanced_accuracy", "f1_macro", "f1_weighted", "log_loss"),
    "regression": ("rmse", "mae", "mape", "r2"),
    "clustering": ("silhouette", "davies_bouldin", "calinski_harabasz"),
}
LOWER_IS_BETTER = frozenset({"log_loss", "rmse", "mae", "mape", "davies_bouldin"})
DEFAULT_METRIC = {"binary": "roc_auc", "multiclass": "f1_macro", "regression": "rmse", "clustering": "silhouette"}

MISSING_STRATEGIES = ("drop", "mean", "median", "mode", "constant", "indicator")
OUTLIER_STRATEGIES = ("none", "clip_quantiles", "iqr")
SCALINGS = ("none", "standard", "robust", "minmax")
ENCODINGS = ("onehot", "ordinal", "target")
DATETIME_PARTS = ("year", "month", "day", "dayofweek", "hour", "minute")
SPLIT_STRATEGIES = ("random", "stratified", "time")
SEARCH_METHODS = ("none", "grid", "random", "bayesian")
# How a feature is prepared. A column's semantic type (datasets) gives the default; the user may override it.
FEATURE_KINDS = ("numeric", "categorical", "datetime", "boolean")
# Column dtypes (workers.ml.data.specs.DTYPES) each feature kind accepts.
DTYPES_FOR_KIND = {
    "numeric": ("int64", "float64", "bool"),
    "categorical": ("int64", "string", "bool"),
    "datetime": ("date", "datetime"),
    "boolean": ("bool", "int64", "string"),
}
# Semantic types left out of the default feature list (identifiers and free text do not generalise).
NOT_DEFAULT_FEATURES = ("id", "text")

MAX_TRIALS = 500
MAX_TIMEOUT_SECONDS = 24 * 3600
MAX_CV_FOLDS = 20
MAX_SEED = 2**32 - 1


@dataclass(frozen=True)
class Preparation:
    missing: str = "median"  # numeric columns; categorical columns always get their most frequent value
    missing_constant: float = 0.0  # with missing="constant"
    outliers: str = "none"
    outlier_quantiles: tuple[float, float] = (0.01, 0.99)  # with outliers="clip_quantiles"
    scaling: str = "standard"
    encoding: str = "onehot"
    datetime_parts: tuple[str, ...] = ("year", "month", "day", "dayofweek")


@dataclass(frozen=True)
class Split:
    strategy: str = "stratified"  # "random" for regression and clustering
    train: float = 0.7
    validation: float = 0.15
    test: float = 0.15
    time_column: str | None = None  # with strategy="time": the oldest rows train, the newest test
    cv_folds: int = 5  # k-fold cross-validation on the training share; 0 = none


@dataclass(frozen=True)
class Search:
    method: str = "none"
    max_trials: int = 20
    timeout_seconds: int = 600


@dataclass(frozen=True)
class ExperimentSpec:
    problem_type: str
    target: str | None  # None for clustering
    features: tuple[str, ...]
    feature_kinds: dict[str, str]  # feature -> one of FEATURE_KINDS
    algorithms: tuple[str, ...]
    primary_metric: str
    preparation: Preparation = field(default_factory=Preparation)
    split: Split = field(default_factory=Split)
    search: Search = field(default_factory=Search)
    sensitive_columns: tuple[str, ...] = ()
    seed: int = 42

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["features"] = list(self.features)
        data["algorithms"] = list(self.algorithms)
        data["sensitive_columns"] = list(self.sensitive_columns)
        data["preparation"]["outlier_quantiles"] = list(self.preparation.outlier_quantiles)
        data["preparation"]["datetime_parts"] = list(self.preparation.datetime_parts)
        return data

    def for_algorithm(self, name: str) -> "ExperimentSpec":
        """The spec one run trains: the same, with a single candidate."""
        return replace(self, algorithms=(name,))

    @property
    def higher_is_better(self) -> bool:
        return self.primary_metric not in LOWER_IS_BETTER


class SpecError(ValueError):
    """A bad spec; `errors` maps each field (dotted for nested ones, e.g. "split.train") to its messages."""

    def __init__(self, errors: dict[str, list[str]]):
        self.errors = errors
        super().__init__("; ".join(f"{name}: {' '.join(messages)}" for name, messages in errors.items()))


def spec_from_dict(data: dict[str, Any]) -> ExperimentSpec:
    """Rebuild a recorded spec (as_dict form). Trusts its input: use build_spec for anything a user sent."""
    preparation = dict(data.get("preparation") or {})
    if "outlier_quantiles" in preparation:
        preparation["outlier_quantiles"] = tuple(preparation["outlier_quantiles"])
    if "datetime_parts" in preparation:
        preparation["datetime_parts"] = tuple(preparation["datetime_parts"])
    return ExperimentSpec(
        problem_type=data["problem_type"],
        target=data.get("target"),
        features=tuple(data["features"]),
        feature_kinds=dict(data["feature_kinds"]),
        algorithms=tuple(data["algorithms"]),
        primary_metric=data["primary_metric"],
        preparation=Preparation(**preparation),
        split=Split(**(data.get("split") or {})),
        search=Search(**(data.get("search") or {})),
        sensitive_columns=tuple(data.get("sensitive_columns") or ()),
        seed=int(data.get("seed", 42)),
    )


# --- Building a spec from a request ---------------------------------------------------------------------------------


def default_kind(column: dict[str, Any]) -> str | None:
    """The feature kind a column gets by default (from its semantic type and dtype), or None if not a feature."""
    semantic = column.get("semantic_type")
    if semantic in FEATURE_KINDS:
        return semantic
    if column.get("dtype") in ("date", "datetime"):
        return "datetime"
    if column.get("dtype") in ("int64", "float64"):
        return "numeric"
    return None


def default_features(
    columns: list[dict[str, Any]], *, target: str | None, sensitive: list[str] | tuple[str, ...] = ()
) -> list[str]:
    """Every column but the target, excluded and personal columns (marked or flagged by PII detection), sensitive
    ones (marked, or named in `sensitive`: a protected attribute is for the fairness check, not a model input, unless
    the user picks it explicitly), ids and free text."""
    chosen = []
    for column in columns:
        name = column["name"]
        if name == target or name in sensitive or column.get("sensitive"):
            continue
        if column.get("excluded") or column.get("personal") or column.get("pii"):
            continue
        if column.get("semantic_type") in NOT_DEFAULT_FEATURES or default_kind(column) is None:
            continue
        chosen.append(column["name"])
    return chosen


def default_sensitive(columns: list[dict[str, Any]], *, target: str | None) -> list[str]:
    return [column["name"] for column in columns if column.get("sensitive") and column["name"] != target]


class _Errors(dict):
    def add(self, name: str, message: str) -> None:
        self.setdefault(name, []).append(message)


def _choice(errors: _Errors, name: str, value: Any, allowed: tuple[str, ...]) -> str | None:
    if value not in allowed:
        errors.add(name, f"Choose one of: {', '.join(allowed)}.")
        return None
    return value


def _number(errors: _Errors, name: str, value: Any, *, low: float, high: float, integer: bool = False):
    try:
        number = int(value) if integer else float(value)
        if integer and isinstance(value, float) and not value.is_integer():
            raise ValueError
        if isinstance(value, bool):
            raise ValueError
    except (TypeError, ValueError):
        errors.add(name, "Enter a whole number." if integer else "Enter a number.")
        return None
    if not math.isfinite(number) or not low <= number <= high:
        errors.add(name, f"Enter a value between {low:g} and {high:g}.")
        return None
    return number


def _string_list(errors: _Errors, name: str, value: Any) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, list | tuple) or not all(isinstance(item, str) for item in value):
        errors.add(name, "Give a list of column names.")
        return None
    return list(dict.fromkeys(value))


def _sub(data: dict, name: str, errors: _Errors) -> dict:
    value = data.get(name) or {}
    if not isinstance(value, dict):
        errors.add(name, "Give an object.")
        return {}
    return value


def _build_preparation(data: dict, errors: _Errors, *, algorithms: list[str]) -> Preparation:
    given = _sub(data, "preparation", errors)
    unknown = set(given) - {f.name for f in fields(Preparation)}
    for name in sorted(unknown):
        errors.add(f"preparation.{name}", "Unknown setting.")
    defaults = Preparation()
    missing = _choice(errors, "preparation.missing", given.get("missing", defaults.missing), MISSING_STRATEGIES)
    constant = _number(errors, "preparation.missing_constant", given.get("missing_constant", 0.0), low=-1e15, high=1e15)
    outliers = _choice(errors, "preparation.outliers", given.get("outliers", defaults.outliers), OUTLIER_STRATEGIES)
    quantiles = given.get("outlier_quantiles", defaults.outlier_quantiles)
    if not (
        isinstance(quantiles, list | tuple)
        and len(quantiles) == 2
        and all(isinstance(q, int | float) and not isinstance(q, bool) for q in quantiles)
        and 0 <= quantiles[0] < quantiles[1] <= 1
    ):
        errors.add("preparation.outlier_quantiles", "Give two quantiles, low < high, between 0 and 1.")
        quantiles = defaults.outlier_quantiles
    needs_scaling = any(ALGORITHMS[name].needs_scaling for name in algorithms if name in ALGORITHMS)
    scaling_default = "standard" if needs_scaling else "none"
    scaling = _choice(errors, "preparation.scaling", given.get("scaling", scaling_default), SCALINGS)
    encoding = _choice(errors, "preparation.encoding", given.get("encoding", defaults.encoding), ENCODINGS)
    parts = given.get("datetime_parts", defaults.datetime_parts)
    if not isinstance(parts, list | tuple) or any(part not in DATETIME_PARTS for part in parts):
        errors.add("preparation.datetime_parts", f"Choose from: {', '.join(DATETIME_PARTS)}.")
        parts = defaults.datetime_parts
    return Preparation(
        missing=missing or defaults.missing,
        missing_constant=constant if constant is not None else 0.0,
        outliers=outliers or defaults.outliers,
        outlier_quantiles=(float(quantiles[0]), float(quantiles[1])),
        scaling=scaling or scaling_default,
        encoding=encoding or defaults.encoding,
        datetime_parts=tuple(dict.fromkeys(parts)),
    )


def _build_split(data: dict, errors: _Errors, *, problem_type: str, by_name: dict[str, dict]) -> Split:
    given = _sub(data, "split", errors)
    for name in sorted(set(given) - {f.name for f in fields(Split)}):
        errors.add(f"split.{name}", "Unknown setting.")
    classification = problem_type in ("binary", "multiclass")
    default_strategy = "stratified" if classification else "random"
    strategy = _choice(errors, "split.strategy", given.get("strategy", default_strategy), SPLIT_STRATEGIES)
    if strategy == "stratified" and not classification:
        errors.add("split.strategy", "Stratified splits need a classification target; choose random or time.")
    shares = {}
    for name, default in (("train", 0.7), ("validation", 0.15), ("test", 0.15)):
        shares[name] = _number(errors, f"split.{name}", given.get(name, default), low=0, high=1)
    if all(value is not None for value in shares.values()):
        if not math.isclose(sum(shares.values()), 1.0, abs_tol=1e-6):
            errors.add("split.train", "Train, validation and test shares must add up to 1.")
        if shares["train"] < 0.1:
            errors.add("split.train", "Keep at least 10% of the rows for training.")
        if shares["test"] <= 0:  # every evaluation (clustering's too) is computed on held-out rows
            errors.add("split.test", "Keep some rows for the held-out test.")
    time_column = given.get("time_column") or None
    if strategy == "time":
        if not time_column:
            errors.add("split.time_column", "A time-ordered split needs the column that orders the rows.")
        elif time_column not in by_name:
            errors.add("split.time_column", f"No column named {time_column!r} in this dataset version.")
        elif by_name[time_column].get("dtype") not in ("date", "datetime", "int64", "float64"):
            errors.add("split.time_column", "Order by a date, datetime or numeric column.")
    folds = _number(errors, "split.cv_folds", given.get("cv_folds", 5), low=0, high=MAX_CV_FOLDS, integer=True)
    if folds == 1:
        errors.add("split.cv_folds", "Use 0 (no cross-validation) or at least 2 folds.")
    return Split(
        strategy=strategy or default_strategy,
        train=shares["train"] if shares["train"] is not None else 0.7,
        validation=shares["validation"] if shares["validation"] is not None else 0.15,
        test=shares["test"] if shares["test"] is not None else 0.15,
        time_column=time_column if strategy == "time" else None,
        cv_folds=folds if folds is not None else 5,
    )


def _build_search(data: dict, errors: _Errors) -> Search:
    given = _sub(data, "search", errors)
    for name in sorted(set(given) - {f.name for f in fields(Search)}):
        errors.add(f"search.{name}", "Unknown setting.")
    method = _choice(errors, "search.method", given.get("method", "none"), SEARCH_METHODS)
    trials = _number(errors, "search.max_trials", given.get("max_trials", 20), low=0, high=MAX_TRIALS, integer=True)
    if method not in (None, "none") and trials == 0:
        errors.add("search.max_trials", "A search needs a budget of at least one trial.")
    timeout = _number(
        errors,
        "search.timeout_seconds",
        given.get("timeout_seconds", 600),
        low=0,
        high=MAX_TIMEOUT_SECONDS,
        integer=True,
    )
    if method not in (None, "none") and timeout == 0:
        errors.add("search.timeout_seconds", "A search needs a time budget of at least one second.")
    return Search(method=method or "none", max_trials=trials or 0, timeout_seconds=timeout or 0)


def _build_features(
    data: dict,
    errors: _Errors,
    *,
    columns: list[dict],
    by_name: dict[str, dict],
    target: str | None,
    sensitive: list[str],
) -> tuple[list[str], dict[str, str]]:
    features = _string_list(errors, "features", data.get("features"))
    if features is None and "features" not in errors:
        features = default_features(columns, target=target, sensitive=sensitive)
    features = features or []
    if not features and "features" not in errors:
        errors.add("features", "Choose at least one feature column.")
    given_kinds = data.get("feature_kinds") or {}
    if not isinstance(given_kinds, dict):
        errors.add("feature_kinds", "Give an object of column -> kind.")
        given_kinds = {}
    kinds: dict[str, str] = {}
    for name in features:
        column = by_name.get(name)
        if column is None:
            errors.add("features", f"No column named {name!r} in this dataset version.")
            continue
        if name == target:
            errors.add("features", f"{name!r} is the target; it cannot also be a feature.")
            continue
        kind = given_kinds.get(name) or default_kind(column)
        if kind not in FEATURE_KINDS:
            errors.add("feature_kinds", f"{name!r}: choose how to treat it ({', '.join(FEATURE_KINDS)}).")
            continue
        if column.get("dtype") not in DTYPES_FOR_KIND[kind]:
            errors.add(
                "feature_kinds",
                f"{name!r} holds {column.get('dtype')} values; it cannot be used as a {kind} feature.",
            )
            continue
        kinds[name] = kind
    for name in sorted(set(given_kinds) - set(features)):
        errors.add("feature_kinds", f"{name!r} is not among the chosen features.")
    return features, kinds


def build_spec(
    data: dict[str, Any], *, columns: list[dict[str, Any]], defaults: dict[str, Any] | None = None
) -> ExperimentSpec:
    """Validate a launch request against a dataset version's columns and fill in the defaults.

    `columns`: apps.datasets.selectors.version_effective_columns (name, dtype, semantic_type, personal, sensitive,
    excluded, pii). `defaults`: {"problem_type", "primary_metric"} from the project. Raises SpecError.
    """
    if not isinstance(data, dict):
        raise SpecError({"non_field_errors": ["Send the experiment spec as an object."]})
    defaults = defaults or {}
    errors = _Errors()
    by_name = {column["name"]: column for column in columns}

    problem_type = _choice(
        errors, "problem_type", data.get("problem_type") or defaults.get("problem_type"), PROBLEM_TYPES
    )
    target = data.get("target") or None
    if problem_type in SUPERVISED:
        if not target:
            errors.add("target", "Choose the column to predict.")
        elif target not in by_name:
            errors.add("target", f"No column named {target!r} in this dataset version.")
    elif problem_type == "clustering" and target:
        errors.add("target", "Clustering has no target; leave it empty.")

    algorithms = _string_list(errors, "algorithms", data.get("algorithms"))
    if algorithms is None and "algorithms" not in errors:
        algorithms = default_algorithms(problem_type) if problem_type else []
    algorithms = algorithms or []
    if not algorithms and "algorithms" not in errors:
        errors.add("algorithms", "Choose at least one algorithm.")
    for name in algorithms:
        if name not in ALGORITHMS:
            errors.add("algorithms", f"Unknown algorithm {name!r}; choose from: {', '.join(ALGORITHMS)}.")
        elif problem_type and problem_type not in ALGORITHMS[name].problem_types:
            errors.add("algorithms", f"{ALGORITHMS[name].label} does not do {problem_type}.")

    sensitive = _string_list(errors, "sensitive_columns", data.get("sensitive_columns"))
    if sensitive is None:
        sensitive = default_sensitive(columns, target=target)
    for name in sensitive:
        if name not in by_name:
            errors.add("sensitive_columns", f"No column named {name!r} in this dataset version.")
        elif name == target:
            errors.add("sensitive_columns", "The target cannot be a sensitive column.")

    features, kinds = _build_features(
        data, errors, columns=columns, by_name=by_name, target=target, sensitive=sensitive
    )

    metric = data.get("primary_metric") or None
    if metric is None and problem_type:
        project_metric = defaults.get("primary_metric")
        metric = project_metric if project_metric in METRICS[problem_type] else DEFAULT_METRIC[problem_type]
    if problem_type and metric not in METRICS[problem_type]:
        errors.add("primary_metric", f"For {problem_type}, choose one of: {', '.join(METRICS[problem_type])}.")

    seed = _number(errors, "seed", data.get("seed", 42), low=0, high=MAX_SEED, integer=True)
    preparation = _build_preparation(data, errors, algorithms=algorithms)
    split = _build_split(data, errors, problem_type=problem_type or "", by_name=by_name)
    search = _build_search(data, errors)
    if search.method != "none" and split.validation <= 0 and split.cv_folds < 2:
        errors.add("split.validation", "A search needs validation rows or cross-validation (2 folds or more).")
    if problem_type == "clustering" and preparation.encoding == "target":
        errors.add("preparation.encoding", "Target encoding needs a target; clustering has none.")
    known = {f.name for f in fields(ExperimentSpec)}
    for name in sorted(set(data) - known):
        errors.add(name, "Unknown field.")
    if errors:
        raise SpecError(dict(errors))
    return ExperimentSpec(
        problem_type=problem_type,
        target=target if problem_type in SUPERVISED else None,
        features=tuple(features),
        feature_kinds=kinds,
        algorithms=tuple(algorithms),
        primary_metric=metric,
        preparation=preparation,
        split=split,
        search=search,
        sensitive_columns=tuple(sensitive),
        seed=seed,
    )


def profile_errors(spec: ExperimentSpec, *, profile: list[dict[str, Any]], row_count: int) -> dict[str, list[str]]:
    """What the version's stored profile already shows to be untrainable (see the module docstring)."""
    errors = _Errors()
    by_name = {entry["name"]: entry for entry in profile}
    if row_count < 10:
        errors.add("dataset_version", f"The version has {row_count} rows; training needs at least 10.")
    target = by_name.get(spec.target) if spec.target else None
    if target is not None:
        distinct = target.get("distinct") or 0
        if (target.get("missing_share") or 0) >= 1:
            errors.add("target", f"{spec.target!r} has no values: every row is missing.")
        elif distinct <= 1:
            errors.add("target", f"{spec.target!r} is constant: there is nothing to learn.")
        elif spec.problem_type == "binary" and distinct != 2:
            errors.add("target", f"{spec.target!r} has {distinct} classes; binary classification needs exactly 2.")
        elif spec.problem_type == "multiclass" and distinct < 3:
            errors.add("target", f"{spec.target!r} has {distinct} classes; choose binary classification instead.")
        if spec.split.strategy == "stratified":
            for top in target.get("top_values") or []:
                if top.get("count", 0) < 2:
                    errors.add(
                        "split.strategy",
                        f"Class {top.get('value')!r} of {spec.target!r} has a single row: it cannot be stratified "
                        "across train and test. Remove it, or choose a random split.",
                    )
    for name in spec.features:
        entry = by_name.get(name)
        if entry is not None and (entry.get("missing_share") or 0) >= 1:
            errors.add("features", f"{name!r} has no values: every row is missing. Leave it out.")
    return dict(errors)
