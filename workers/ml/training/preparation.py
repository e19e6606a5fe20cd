"""Data preparation as one scikit-learn ColumnTransformer, so the saved pipeline takes raw columns.

`build_pipeline(spec, params)` = Pipeline([("prepare", build_preprocessor(spec)), ("model", estimator)]). Every
statistic (imputation values, outlier bounds, scaling, categories, target encodings) is learned in `fit`, which the
training code calls on training rows only (each cross-validation fold refits it), so nothing leaks from validation or
test rows.

Groups of the ColumnTransformer, in output order (empty groups are left out):
- "numeric": to float -> outlier clipping (bounds learned on training rows, missing values ignored) -> imputation
  (mean, median, most frequent or a constant) -> scaling.
- "missing": with missing="indicator", one 0/1 column per numeric feature that had missing training values.
- "boolean": to 0/1 (true/false, yes/no, 1/0 as text too) -> the most frequent value for missing ones.
- "datetime": the chosen parts (year, month, ...) as numbers -> median for missing ones -> scaling.
- "categorical": values as text, missing ones filled with the training mode -> one-hot (unknown categories become
  all zeros), ordinal (unknown -> -1) or target encoding (scikit-learn's TargetEncoder, cross-fitted, seeded).
missing="drop" drops incomplete rows before fitting (workers.ml.training.data); the pipeline still imputes the
median, so a prediction request with a missing value gets an answer instead of an error.

Every transformer here is a module-level class (picklable) and names its output columns (get_feature_names_out);
`prepared_feature_sources(pipeline)` maps each prepared column back to its raw feature (SHAP sums over them).
"""

import warnings
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.impute import MissingIndicator, SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import (
    MinMaxScaler,
    OneHotEncoder,
    OrdinalEncoder,
    RobustScaler,
    StandardScaler,
    TargetEncoder,
)

from workers.ml.training.estimators import make_estimator
from workers.ml.training.spec import ExperimentSpec

TRUE_TEXT = frozenset({"true", "t", "yes", "y", "1", "1.0"})
FALSE_TEXT = frozenset({"false", "f", "no", "n", "0", "0.0"})
# Filled into a categorical column that had no value at all in the training rows (cannot happen after
# check_training_data, but a cross-validation fold of a mostly empty column can get there).
NO_CATEGORY = "(missing)"
IMPUTE_STRATEGY = {
    "drop": "median",
    "mean": "mean",
    "median": "median",
    "mode": "most_frequent",
    "constant": "constant",
    "indicator": "median",
}
TARGET_TYPE = {"binary": "binary", "multiclass": "multiclass", "regression": "continuous"}


def _remember_input(transformer: BaseEstimator, X) -> None:
    """What scikit-learn's fitted-transformer conventions expect (feature names for get_feature_names_out)."""
    transformer.n_features_in_ = X.shape[1]
    if isinstance(X, pd.DataFrame):
        transformer.feature_names_in_ = np.asarray(X.columns, dtype=object)


def _columns(X) -> list[pd.Series]:
    frame = X if isinstance(X, pd.DataFrame) else pd.DataFrame(np.asarray(X, dtype=object))
    return [frame.iloc[:, index] for index in range(frame.shape[1])]


def _as_float(column: pd.Series) -> np.ndarray:
    try:
        return column.to_numpy(dtype="float64", na_value=np.nan)
    except (TypeError, ValueError):
        return pd.to_numeric(column, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)


def category_text(column: pd.Series) -> pd.Series:
    """A categorical column's values as text, missing ones as NaN: 3 and 3.0 (an integer column with gaps is read
    as floats) are both "3", so training, the input signature and serving agree on the categories."""
    missing = column.isna()
    if pd.api.types.is_float_dtype(column):
        present = column[~missing]
        if ((present == np.floor(present)) & (present.abs() < 2**53)).all():
            column = column.astype("Int64")
    text = column.astype(object)
    if pd.api.types.infer_dtype(text, skipna=True) != "string":  # text already (the usual case): no per-value call
        text = text.map(str)
    return text.where(~missing, np.nan)


class ToFloat(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Numbers (and booleans) as a float matrix; what does not parse becomes missing. Stateless."""

    def fit(self, X, y=None):
        _remember_input(self, X)
        return self

    def transform(self, X):
        return np.column_stack([_as_float(column) for column in _columns(X)])


class OutlierClipper(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Clips each column to bounds learned on the training rows: the given quantiles ("clip_quantiles") or
    1.5 inter-quartile ranges beyond the quartiles ("iqr"). Missing values are ignored when learning and kept."""

    def __init__(self, method: str = "iqr", quantiles: tuple[float, float] = (0.01, 0.99)):
        self.method = method
        self.quantiles = quantiles

    def fit(self, X, y=None):
        _remember_input(self, X)
        values = np.asarray(X, dtype="float64")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an all-missing column: NaN bounds, handled below
            if self.method == "clip_quantiles":
                self.lower_ = np.nanquantile(values, self.quantiles[0], axis=0)
                self.upper_ = np.nanquantile(values, self.quantiles[1], axis=0)
            elif self.method == "iqr":
                first, third = np.nanquantile(values, [0.25, 0.75], axis=0)
                spread = third - first
                self.lower_ = first - 1.5 * spread
                self.upper_ = third + 1.5 * spread
            else:
                raise ValueError(f"Unknown outlier method {self.method!r}.")
        # A column with no training value has no bounds: leave it alone.
        self.lower_ = np.where(np.isnan(self.lower_), -np.inf, self.lower_)
        self.upper_ = np.where(np.isnan(self.upper_), np.inf, self.upper_)
        return self

    def transform(self, X):
        return np.clip(np.asarray(X, dtype="float64"), self.lower_, self.upper_)


def boolean_values(column: pd.Series) -> np.ndarray:
    """1.0/0.0 for True/False, non-zero/zero numbers, or text such as "yes"/"no"; NaN for anything else."""
    if pd.api.types.is_bool_dtype(column) or pd.api.types.is_numeric_dtype(column):
        values = column.to_numpy(dtype="float64", na_value=np.nan)
        return np.where(np.isnan(values), np.nan, (values != 0).astype("float64"))
    text = column.astype(object).map(lambda value: str(value).strip().lower() if pd.notna(value) else "")
    return np.where(text.isin(TRUE_TEXT), 1.0, np.where(text.isin(FALSE_TEXT), 0.0, np.nan))


class BooleanValues(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Booleans as 1.0/0.0 (see boolean_values); anything else is missing. Stateless."""

    def fit(self, X, y=None):
        _remember_input(self, X)
        return self

    def transform(self, X):
        return np.column_stack([boolean_values(column) for column in _columns(X)])


class DatetimeParts(TransformerMixin, BaseEstimator):
    """The chosen parts (year, month, day, dayofweek, hour, minute) of each datetime column as numbers; missing or
    unparseable values give NaN. Text is read as ISO 8601 (what a prediction request sends). Stateless."""

    def __init__(self, parts: tuple[str, ...] = ("year", "month", "day", "dayofweek")):
        self.parts = parts

    def fit(self, X, y=None):
        _remember_input(self, X)
        return self

    def transform(self, X):
        outputs = []
        for column in _columns(X):
            moments = to_datetime(column)
            for part in self.parts:
                outputs.append(getattr(moments.dt, part).to_numpy(dtype="float64", na_value=np.nan))
        return np.column_stack(outputs) if outputs else np.empty((len(X), 0))

    def get_feature_names_out(self, input_features=None):
        names = input_features if input_features is not None else getattr(self, "feature_names_in_", None)
        if names is None:
            names = [f"x{index}" for index in range(self.n_features_in_)]
        return np.asarray([f"{name}_{part}" for name in names for part in self.parts], dtype=object)


def to_datetime(column: pd.Series) -> pd.Series:
    """Datetimes in UTC (naive values are taken as UTC), NaT where missing or unparseable."""
    if pd.api.types.is_datetime64_any_dtype(column):
        return pd.to_datetime(column, utc=True)
    return pd.to_datetime(column.astype(object), errors="coerce", utc=True, format="ISO8601")


class Categories(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Categorical values as text (see category_text), missing ones filled with the column's most frequent training
    value (the smallest on a tie, like SimpleImputer)."""

    def fit(self, X, y=None):
        _remember_input(self, X)
        self.most_frequent_ = [self._mode(category_text(column)) for column in _columns(X)]
        return self

    @staticmethod
    def _mode(text: pd.Series) -> str:
        counts = text.value_counts()
        if counts.empty:
            return NO_CATEGORY
        return min(counts.index[counts == counts.iloc[0]])

    def transform(self, X):
        filled = [
            category_text(column).fillna(mode).to_numpy(dtype=object)
            for column, mode in zip(_columns(X), self.most_frequent_, strict=True)
        ]
        return np.column_stack(filled)


def _scaler(scaling: str):
    return {"standard": StandardScaler, "robust": RobustScaler, "minmax": MinMaxScaler}[scaling]()


def _numeric_steps(spec: ExperimentSpec) -> list[tuple[str, Any]]:
    preparation = spec.preparation
    steps: list[tuple[str, Any]] = [("to_float", ToFloat())]
    if preparation.outliers != "none":
        steps.append(("outliers", OutlierClipper(preparation.outliers, preparation.outlier_quantiles)))
    steps.append(
        (
            "impute",
            SimpleImputer(
                strategy=IMPUTE_STRATEGY[preparation.missing],
                fill_value=preparation.missing_constant,
                keep_empty_features=True,
            ),
        )
    )
    if preparation.scaling != "none":
        steps.append(("scale", _scaler(preparation.scaling)))
    return steps


def _encoder(spec: ExperimentSpec):
    encoding = spec.preparation.encoding
    if encoding == "onehot":
        return OneHotEncoder(handle_unknown="ignore", sparse_output=False)
    if encoding == "ordinal":
        return OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1)
    if spec.problem_type not in TARGET_TYPE:
        raise ValueError("Target encoding needs a target; clustering has none.")
    return TargetEncoder(target_type=TARGET_TYPE[spec.problem_type], random_state=spec.seed)


def _features_of_kind(spec: ExperimentSpec, kind: str) -> list[str]:
    return [name for name in spec.features if spec.feature_kinds.get(name) == kind]


def build_preprocessor(spec: ExperimentSpec) -> ColumnTransformer:
    """The unfitted "prepare" step for spec.features (see the module docstring)."""
    preparation = spec.preparation
    numeric = _features_of_kind(spec, "numeric")
    datetime = _features_of_kind(spec, "datetime")
    groups: list[tuple[str, Any, list[str]]] = [("numeric", Pipeline(_numeric_steps(spec)), numeric)]
    if preparation.missing == "indicator":
        groups.append(
            (
                "missing",
                Pipeline([("to_float", ToFloat()), ("flag", MissingIndicator(features="missing-only"))]),
                numeric,
            )
        )
    groups.append(
        (
            "boolean",
            Pipeline(
                [
                    ("to_bool", BooleanValues()),
                    ("impute", SimpleImputer(strategy="most_frequent", keep_empty_features=True)),
                ]
            ),
            _features_of_kind(spec, "boolean"),
        )
    )
    datetime_steps: list[tuple[str, Any]] = [
        ("parts", DatetimeParts(tuple(preparation.datetime_parts))),
        ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
    ]
    if preparation.scaling != "none":
        datetime_steps.append(("scale", _scaler(preparation.scaling)))
    if datetime and preparation.datetime_parts:
        groups.append(("datetime", Pipeline(datetime_steps), datetime))
    groups.append(
        (
            "categorical",
            Pipeline([("categories", Categories()), ("encode", _encoder(spec))]),
            _features_of_kind(spec, "categorical"),
        )
    )
    return ColumnTransformer([group for group in groups if group[2]], remainder="drop", sparse_threshold=0.0)


def build_pipeline(spec: ExperimentSpec, params: dict[str, Any]) -> Pipeline:
    """The unfitted pipeline of a one-algorithm spec (spec.for_algorithm): raw columns in, predictions out."""
    if len(spec.algorithms) != 1:
        raise ValueError(f"A pipeline trains one algorithm; the spec lists {len(spec.algorithms)}.")
    estimator = make_estimator(spec.algorithms[0], spec.problem_type, params, spec.seed)
    return Pipeline([("prepare", build_preprocessor(spec)), ("model", estimator)])


def _group_sources(name: str, transformer: Pipeline, columns: list[str]) -> list[str]:
    if name == "missing":
        return [columns[index] for index in transformer.named_steps["flag"].features_]
    if name == "datetime":
        parts = transformer.named_steps["parts"].parts
        return [column for column in columns for _ in parts]
    if name == "categorical":
        encoder = transformer.named_steps["encode"]
        if isinstance(encoder, OneHotEncoder):
            return [column for column, seen in zip(columns, encoder.categories_, strict=True) for _ in seen]
        if isinstance(encoder, TargetEncoder) and encoder.target_type_ == "multiclass":
            return [column for column in columns for _ in encoder.classes_]
    return list(columns)


def prepared_feature_sources(pipeline: Pipeline) -> list[str]:
    """For each column the fitted "prepare" step outputs, in order, the raw feature it was made from."""
    prepare: ColumnTransformer = pipeline.named_steps["prepare"]
    sources: list[str] = []
    for name, transformer, columns in prepare.transformers_:
        if name == "remainder":
            continue
        group = _group_sources(name, transformer, list(columns))
        span = prepare.output_indices_[name]
        if len(group) != span.stop - span.start:
            raise RuntimeError(f"Prepared group {name!r} has {span.stop - span.start} columns, mapped {len(group)}.")
        sources.extend(group)
    return sources
