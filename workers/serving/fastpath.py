"""A compiled prediction path: the fitted pipeline's arithmetic without pandas or the ColumnTransformer.

A one-row request spends most of its time in scikit-learn's per-call machinery (a DataFrame per group, input
checks, column selection), not in arithmetic. `compile_predictor(pipeline)` reads the fitted transformers of
workers.ml.training.preparation once and returns a `FastPredictor` that computes the same numbers from the
validated request columns (workers.serving.validation has already refused anything the signature does not allow):
- numeric: to float -> clip to the learned bounds -> impute the learned statistics -> scale (numpy vectors);
- missing: 0/1 flags of the columns MissingIndicator chose;
- boolean: 1/0 read as boolean_values does -> the learned most frequent value for missing ones;
- datetime: UTC date parts of strict ISO 8601 text -> learned medians -> scaling;
- categorical: text as category_text makes it, missing ones the learned mode -> one-hot / ordinal / target
  encoding through dicts of the fitted categories (unseen: zeros / -1 / the target mean, as the encoders do);
- the estimator on the float64 matrix: LightGBM's booster directly, linear models as a dot product, anything else
  the fitted estimator itself on the array.
Anything else (a transformer or option this module does not know) raises NotCompilable at compile time: the version
is served by the pipeline. A value the compiled path cannot read exactly like pandas would (a datetime text outside
the strict form, an integer category too large for a float) raises Fallback at predict time: that request goes
through the pipeline. Either way the answer is the pipeline's, never a different one.
"""

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit, softmax
from sklearn.base import is_regressor
from sklearn.compose import ColumnTransformer
from sklearn.impute import MissingIndicator, SimpleImputer
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import (
    MinMaxScaler,
    OneHotEncoder,
    OrdinalEncoder,
    RobustScaler,
    StandardScaler,
    TargetEncoder,
)

from workers.ml.training.preparation import (
    FALSE_TEXT,
    TRUE_TEXT,
    BooleanValues,
    Categories,
    DatetimeParts,
    OutlierClipper,
    ToFloat,
)

# Tolerance of the self-check at compile time (the test suite holds the compiled path to the same bound).
MATCH_TOLERANCE = 1e-9
# pandas reads integers with missing neighbours as float64: beyond 2**53 their text would differ from str(int).
EXACT_FLOAT_INTEGER = 2**53
# Timestamps pandas can represent (nanoseconds in int64); outside them to_datetime gives NaT.
PANDAS_YEARS = range(1678, 2262)
# The ISO 8601 forms read here; anything else (week dates, ordinal dates, basic format) goes to pandas.
STRICT_ISO = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:Z|[+-]\d{2}:\d{2})?)?")

SCALERS = (StandardScaler, RobustScaler, MinMaxScaler, None)  # None: the step is optional
Columns = dict[str, Sequence[Any]]  # validated request values per column (what InputValidator accepted)
Block = Callable[[Columns, int], np.ndarray]  # the prepared columns of one group, shape (rows, width)


class NotCompilable(Exception):
    """The pipeline holds something the compiled path cannot reproduce exactly: serve it with the pipeline."""


class Fallback(Exception):
    """A value the compiled path cannot read exactly as pandas would: predict this request with the pipeline."""


@dataclass(frozen=True)
class FastPredictor:
    blocks: tuple[Block, ...]
    estimate: Callable[[np.ndarray], np.ndarray]

    def predict(self, columns: Columns) -> np.ndarray:
        """Class probabilities (rows x classes) for a classifier, predicted values (rows,) for a regressor; raises
        Fallback when a value must be read by the pipeline."""
        rows = len(next(iter(columns.values())))
        prepared = np.hstack([block(columns, rows) for block in self.blocks])
        return self.estimate(prepared)


def compile_predictor(pipeline: Any, *, probe: Columns | None = None) -> FastPredictor:
    """The compiled path of a fitted build_pipeline pipeline, or NotCompilable. With `probe` (a few valid rows),
    the compiled path is checked against the pipeline on them first."""
    if not isinstance(pipeline, Pipeline) or [name for name, _ in pipeline.steps] != ["prepare", "model"]:
        raise NotCompilable("not a prepare -> model pipeline")
    predictor = FastPredictor(
        blocks=_compile_prepare(pipeline.named_steps["prepare"]),
        estimate=_compile_estimator(pipeline.named_steps["model"]),
    )
    if probe is not None:
        _check_against_pipeline(predictor, pipeline, probe)
    return predictor


def pipeline_output(pipeline: Any, frame: pd.DataFrame) -> np.ndarray:
    """What the compiled path must reproduce: probabilities for a classifier, predictions for a regressor."""
    if hasattr(pipeline, "predict_proba"):
        return pipeline.predict_proba(frame)
    return pipeline.predict(frame)


def _check_against_pipeline(predictor: FastPredictor, pipeline: Pipeline, probe: Columns) -> None:
    try:
        compiled = predictor.predict(probe)
    except Fallback:
        return  # the probe itself needs pandas; the suite checks the compiled path on such models
    try:
        expected = pipeline_output(pipeline, pd.DataFrame({name: list(values) for name, values in probe.items()}))
    except Exception as exc:  # whatever the pipeline raises, there is nothing to compare with
        raise NotCompilable(f"the pipeline cannot predict the probe rows: {type(exc).__name__}: {exc}") from exc
    if compiled.shape != expected.shape or not np.allclose(compiled, expected, rtol=0, atol=MATCH_TOLERANCE):
        raise NotCompilable("the compiled path disagrees with the pipeline on the probe rows")


# --- the "prepare" ColumnTransformer ---------------------------------------------------------------------------


def _compile_prepare(prepare: Any) -> tuple[Block, ...]:
    if not isinstance(prepare, ColumnTransformer) or prepare.sparse_threshold != 0.0:
        raise NotCompilable("the prepare step is not a dense ColumnTransformer")
    compilers = {
        "numeric": _numeric_block,
        "missing": _missing_block,
        "boolean": _boolean_block,
        "datetime": _datetime_block,
        "categorical": _categorical_block,
    }
    blocks = []
    for name, transformer, columns in prepare.transformers_:
        if name == "remainder":
            if transformer != "drop":
                raise NotCompilable("a remainder that is not dropped")
            continue
        if name not in compilers or not isinstance(transformer, Pipeline):
            raise NotCompilable(f"unknown group {name!r}")
        block, width = compilers[name](transformer.steps, list(columns))
        span = prepare.output_indices_[name]
        if width != span.stop - span.start:
            raise NotCompilable(f"group {name!r}: {width} columns compiled, {span.stop - span.start} fitted")
        blocks.append(block)
    return tuple(blocks)


def _step_kinds(steps: list[tuple[str, Any]], expected: list[tuple[type, ...]]) -> list[Any]:
    """The steps' transformers when each is one of the expected types in order (optional ones marked with None)."""
    transformers = [transformer for _, transformer in steps]
    matched = []
    for types in expected:
        optional = None in types
        if transformers and isinstance(transformers[0], tuple(kind for kind in types if kind is not None)):
            matched.append(transformers.pop(0))
        elif optional:
            matched.append(None)
        else:
            raise NotCompilable(f"unexpected step {type(transformers[0]).__name__ if transformers else None}")
    if transformers:
        raise NotCompilable(f"unexpected step {type(transformers[0]).__name__}")
    return matched


def _float_matrix(columns: Columns, names: list[str], rows: int) -> np.ndarray:
    matrix = np.empty((rows, len(names)))
    for index, name in enumerate(names):
        values = columns[name]
        matrix[:, index] = values if isinstance(values, np.ndarray) else [np.nan if v is None else v for v in values]
    return matrix


def _imputation(imputer: SimpleImputer) -> np.ndarray:
    if imputer.add_indicator or not (isinstance(imputer.missing_values, float) and math.isnan(imputer.missing_values)):
        raise NotCompilable("an imputer that adds indicators or imputes something other than NaN")
    statistics = np.asarray(imputer.statistics_, dtype="float64")
    if np.isnan(statistics).any():  # a column the imputer drops (keep_empty_features=False)
        raise NotCompilable("an imputer that drops empty columns")
    return statistics


def _impute(matrix: np.ndarray, statistics: np.ndarray) -> np.ndarray:
    missing = np.isnan(matrix)
    if missing.any():
        matrix = np.where(missing, statistics, matrix)
    return matrix


def _scaling(scaler: Any) -> Callable[[np.ndarray], np.ndarray]:
    """The scaler's transform, in its own order of operations (so the floats are the same)."""
    if scaler is None:
        return lambda matrix: matrix
    if isinstance(scaler, StandardScaler):
        mean = scaler.mean_ if scaler.with_mean else None
        scale = scaler.scale_ if scaler.with_std else None
        return lambda matrix: _shift_divide(matrix, mean, scale)
    if isinstance(scaler, RobustScaler):
        center = scaler.center_ if scaler.with_centering else None
        scale = scaler.scale_ if scaler.with_scaling else None
        return lambda matrix: _shift_divide(matrix, center, scale)
    if isinstance(scaler, MinMaxScaler):
        if scaler.clip:
            raise NotCompilable("MinMaxScaler(clip=True)")
        return lambda matrix: matrix * scaler.scale_ + scaler.min_
    raise NotCompilable(f"unknown scaler {type(scaler).__name__}")


def _shift_divide(matrix: np.ndarray, shift: np.ndarray | None, scale: np.ndarray | None) -> np.ndarray:
    if shift is not None:
        matrix = matrix - shift
    if scale is not None:
        matrix = matrix / scale
    return matrix


def _numeric_block(steps, names: list[str]) -> tuple[Block, int]:
    _, clipper, imputer, scaler = _step_kinds(
        steps,
        [(ToFloat,), (OutlierClipper, None), (SimpleImputer,), (StandardScaler, RobustScaler, MinMaxScaler, None)],
    )
    bounds = (clipper.lower_, clipper.upper_) if clipper is not None else None
    statistics = _imputation(imputer)
    scale = _scaling(scaler)

    def block(columns: Columns, rows: int) -> np.ndarray:
        matrix = _float_matrix(columns, names, rows)
        if bounds is not None:
            matrix = np.clip(matrix, *bounds)
        return scale(_impute(matrix, statistics))

    return block, len(names)


def _missing_block(steps, names: list[str]) -> tuple[Block, int]:
    _, indicator = _step_kinds(steps, [(ToFloat,), (MissingIndicator,)])
    if not (isinstance(indicator.missing_values, float) and math.isnan(indicator.missing_values)):
        raise NotCompilable("a MissingIndicator that is not NaN-based")
    flagged = [names[index] for index in indicator.features_]
    # With error_on_new, MissingIndicator refuses a missing value in a column it did not flag: the pipeline raises.
    unflagged = [name for name in names if name not in flagged] if indicator.error_on_new else []

    def block(columns: Columns, rows: int) -> np.ndarray:
        if unflagged and np.isnan(_float_matrix(columns, unflagged, rows)).any():
            raise Fallback("a missing value where MissingIndicator refuses one")
        return np.isnan(_float_matrix(columns, flagged, rows)).astype("float64")

    return block, len(flagged)


def _boolean_value(value: Any) -> float:
    """boolean_values for one validated value: a bool or 0/1 (non-zero is true), or text such as "yes"."""
    if value is None:
        return np.nan
    if isinstance(value, str):
        text = value.strip().lower()
        return 1.0 if text in TRUE_TEXT else 0.0 if text in FALSE_TEXT else np.nan
    return 1.0 if value != 0 else 0.0


def _boolean_block(steps, names: list[str]) -> tuple[Block, int]:
    _, imputer = _step_kinds(steps, [(BooleanValues,), (SimpleImputer,)])
    statistics = _imputation(imputer)

    def block(columns: Columns, rows: int) -> np.ndarray:
        matrix = np.empty((rows, len(names)))
        for index, name in enumerate(names):
            matrix[:, index] = [_boolean_value(value) for value in columns[name]]
        return _impute(matrix, statistics)

    return block, len(names)


def _moment(value: str) -> datetime:
    """One validated ISO text as pandas' to_datetime(utc=True) reads it, or Fallback when pandas must parse it."""
    if not STRICT_ISO.fullmatch(value):
        raise Fallback(f"datetime text {value!r} outside the strict ISO 8601 form")
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    if moment.year not in PANDAS_YEARS:
        raise Fallback(f"datetime {value!r} outside pandas' range")
    return moment


def _datetime_column(values: Sequence[Any], parts: tuple[str, ...]) -> list[list[float]]:
    """DatetimeParts for one validated column (UTC; naive is UTC), one list of parts per row."""
    texts = [value for value in values if value is not None]
    aware = {STRICT_ISO.fullmatch(text) is not None and _has_offset(text) for text in texts}
    if len(aware) > 1:
        # pandas gives a naive value that follows an offset the previous value's offset: leave that to pandas.
        raise Fallback("naive and offset datetimes in one column")
    rows = []
    for value in values:
        if value is None:
            rows.append([np.nan] * len(parts))
            continue
        moment = _moment(value)
        fields = {
            "year": moment.year,
            "month": moment.month,
            "day": moment.day,
            "dayofweek": moment.weekday(),
            "hour": moment.hour,
            "minute": moment.minute,
        }
        rows.append([float(fields[part]) for part in parts])
    return rows


def _has_offset(text: str) -> bool:
    return text.endswith("Z") or (len(text) > 10 and text[-6] in "+-" and text[-3] == ":")


def _datetime_block(steps, names: list[str]) -> tuple[Block, int]:
    extractor, imputer, scaler = _step_kinds(steps, [(DatetimeParts,), (SimpleImputer,), SCALERS])
    parts = tuple(extractor.parts)
    if not set(parts) <= {"year", "month", "day", "dayofweek", "hour", "minute"}:
        raise NotCompilable(f"unknown datetime parts {parts}")
    statistics = _imputation(imputer)
    scale = _scaling(scaler)
    width = len(names) * len(parts)

    def block(columns: Columns, rows: int) -> np.ndarray:
        matrix = np.empty((rows, width))
        for index, name in enumerate(names):
            start = index * len(parts)
            matrix[:, start : start + len(parts)] = _datetime_column(columns[name], parts)
        return scale(_impute(matrix, statistics))

    return block, width


def _category_texts(values: Sequence[Any], mode: str) -> list[str]:
    """category_text + the Categories fill for one validated column (text, integers or booleans, None missing)."""
    has_missing = any(value is None for value in values)
    texts = []
    for value in values:
        if value is None:
            texts.append(mode)
            continue
        if has_missing and isinstance(value, int) and not isinstance(value, bool) and abs(value) >= EXACT_FLOAT_INTEGER:
            raise Fallback("an integer category beyond float precision next to a missing value")
        texts.append(str(value))
    return texts


def _categorical_block(steps, names: list[str]) -> tuple[Block, int]:
    categories, encoder = _step_kinds(steps, [(Categories,), (OneHotEncoder, OrdinalEncoder, TargetEncoder)])
    modes = list(categories.most_frequent_)
    encode, width = _compile_encoder(encoder)

    def block(columns: Columns, rows: int) -> np.ndarray:
        texts = [_category_texts(columns[name], mode) for name, mode in zip(names, modes, strict=True)]
        return encode(texts, rows)

    return block, width


def _category_indexes(encoder: Any) -> list[dict[str, int]]:
    indexes = []
    for seen in encoder.categories_:
        if not all(isinstance(category, str) for category in seen):
            raise NotCompilable("categories that are not text")
        indexes.append({category: position for position, category in enumerate(seen)})
    return indexes


def _compile_encoder(encoder: Any) -> tuple[Callable[[list[list[str]], int], np.ndarray], int]:
    """(texts per column, rows) -> the encoded matrix, and its width."""
    indexes = _category_indexes(encoder)
    if isinstance(encoder, OneHotEncoder):
        if (
            encoder.drop is not None
            or encoder.handle_unknown != "ignore"
            or encoder.min_frequency is not None
            or encoder.max_categories is not None
        ):
            raise NotCompilable("a one-hot encoder with drop, infrequent categories or errors on unknown ones")
        offsets = np.cumsum([0] + [len(index) for index in indexes]).tolist()
        width = offsets[-1]

        def one_hot(texts: list[list[str]], rows: int) -> np.ndarray:
            matrix = np.zeros((rows, width))
            for feature, (column, index) in enumerate(zip(texts, indexes, strict=True)):
                for row, text in enumerate(column):
                    position = index.get(text)
                    if position is not None:  # an unseen category is all zeros (handle_unknown="ignore")
                        matrix[row, offsets[feature] + position] = 1.0
            return matrix

        return one_hot, width
    if isinstance(encoder, OrdinalEncoder):
        if (
            encoder.handle_unknown != "use_encoded_value"
            or encoder.min_frequency is not None
            or encoder.max_categories is not None
        ):
            raise NotCompilable("an ordinal encoder without an encoded value for unknown categories")
        unknown = float(encoder.unknown_value)

        def ordinal(texts: list[list[str]], rows: int) -> np.ndarray:
            matrix = np.empty((rows, len(indexes)))
            for feature, (column, index) in enumerate(zip(texts, indexes, strict=True)):
                matrix[:, feature] = [float(index.get(text, unknown)) for text in column]
            return matrix

        return ordinal, len(indexes)
    return _compile_target_encoder(encoder, indexes)


def _compile_target_encoder(encoder: TargetEncoder, indexes: list[dict[str, int]]):
    """Fitted encodings per category; an unseen category gets the target mean (per class when multiclass)."""
    per_feature = len(encoder.classes_) if encoder.target_type_ == "multiclass" else 1
    means = np.atleast_1d(np.asarray(encoder.target_mean_, dtype="float64"))
    # encodings_ is feature-major: feature f, class c at f * n_classes + c.
    tables = []
    for feature, index in enumerate(indexes):
        encodings = [np.asarray(encoder.encodings_[feature * per_feature + c]) for c in range(per_feature)]
        tables.append({text: [float(e[position]) for e in encodings] for text, position in index.items()})
    unknown = [float(mean) for mean in means]
    width = len(indexes) * per_feature

    def target(texts: list[list[str]], rows: int) -> np.ndarray:
        matrix = np.empty((rows, width))
        for feature, (column, table) in enumerate(zip(texts, tables, strict=True)):
            start = feature * per_feature
            for row, text in enumerate(column):
                matrix[row, start : start + per_feature] = table.get(text, unknown)
        return matrix

    return target, width


# --- the estimator ---------------------------------------------------------------------------------------------


def _compile_estimator(model: Any) -> Callable[[np.ndarray], np.ndarray]:
    module = type(model).__module__
    if module.startswith("lightgbm"):
        return _lightgbm(model)
    if isinstance(model, LogisticRegression):
        return _logistic(model)
    if isinstance(model, Ridge | LinearRegression):
        coef, intercept = np.asarray(model.coef_), model.intercept_
        if coef.ndim != 1:
            raise NotCompilable("a multi-output linear model")
        return lambda matrix: matrix @ coef + intercept
    if hasattr(model, "predict_proba"):
        return model.predict_proba
    if is_regressor(model):
        return model.predict
    raise NotCompilable(f"unknown estimator {type(model).__name__}")


def _lightgbm(model: Any) -> Callable[[np.ndarray], np.ndarray]:
    """LGBMClassifier.predict_proba / LGBMRegressor.predict as their booster computes them (same iterations)."""
    if callable(getattr(model, "objective", None)):
        raise NotCompilable("a custom LightGBM objective (predict_proba would give raw scores)")
    booster = model.booster_
    is_binary_classifier = hasattr(model, "predict_proba") and model.n_classes_ == 2

    def estimate(matrix: np.ndarray) -> np.ndarray:
        # One thread: the server runs one prediction at a time per process, a thread pool only adds hand-offs.
        result = booster.predict(matrix, num_threads=1)
        return np.vstack((1.0 - result, result)).transpose() if is_binary_classifier else result

    return estimate


def _logistic(model: LogisticRegression) -> Callable[[np.ndarray], np.ndarray]:
    coef, intercept = model.coef_.T, model.intercept_
    if len(model.classes_) == 2:

        def binary(matrix: np.ndarray) -> np.ndarray:
            probability = expit((matrix @ coef + intercept).ravel())
            return np.vstack([1 - probability, probability]).T

        return binary
    return lambda matrix: softmax(matrix @ coef + intercept, axis=1)
