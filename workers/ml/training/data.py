"""The rows a run trains on: read from the version's Parquet copy, checked, and cleaned of untrainable rows.

`check_training_data` refuses what cannot be trained with a field-level TrainingDataError, with the same wording as
workers.ml.training.spec.profile_errors where the two overlap (the portal checks the stored profile before queueing;
this is the worker's check on the data itself). `trainable_rows` then drops the rows without a target value and, with
missing="drop", the rows missing any feature.
"""

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from workers.ml.training.errors import TrainingDataError
from workers.ml.training.preparation import boolean_values, category_text
from workers.ml.training.spec import DTYPES_FOR_KIND, ExperimentSpec

MIN_TRAINING_ROWS = 10  # as in spec.profile_errors
TARGET_ENCODER_FOLDS = 5  # scikit-learn TargetEncoder's default cv


def needed_columns(spec: ExperimentSpec) -> list[str]:
    """Features, target, sensitive columns and the time column, each once, in that order."""
    names = [*spec.features, spec.target, *spec.sensitive_columns, spec.split.time_column]
    return list(dict.fromkeys(name for name in names if name))


def load_frame(parquet_path: str | Path, spec: ExperimentSpec) -> pd.DataFrame:
    """Only the columns the run needs; dates become datetime64 (not Python date objects)."""
    available = set(pq.read_schema(parquet_path).names)
    columns = [name for name in needed_columns(spec) if name in available]
    table = pq.read_table(parquet_path, columns=columns)
    # Missing columns are reported by check_training_data with the field to fix, not as a read error here.
    frame = table.to_pandas(date_as_object=False)
    for field in table.schema:
        if pa.types.is_integer(field.type) and table.column(field.name).null_count:
            # pandas would turn integers with gaps into floats (3 -> 3.0); keep them integers, exactly.
            frame[field.name] = table.column(field.name).to_pandas(types_mapper={field.type: pd.Int64Dtype()}.get)
    return frame


def column_dtype(column: pd.Series) -> str:
    """The dataset dtype vocabulary (workers.ml.data.specs.DTYPES) for a pandas column."""
    if pd.api.types.is_bool_dtype(column):
        return "bool"
    if pd.api.types.is_integer_dtype(column):
        return "int64"
    if pd.api.types.is_float_dtype(column):
        return "float64"
    if pd.api.types.is_datetime64_any_dtype(column):
        return "datetime"
    inferred = pd.api.types.infer_dtype(column, skipna=True)
    return {
        "boolean": "bool",
        "integer": "int64",
        "floating": "float64",
        "mixed-integer-float": "float64",
        "date": "date",
        "datetime": "datetime",
        "datetime64": "datetime",
        "string": "string",
        "empty": "float64",  # nothing but missing values: refused as all-missing, not as a type
    }.get(inferred, "other")


def _check_columns_exist(frame: pd.DataFrame, spec: ExperimentSpec) -> None:
    if not spec.features:
        raise TrainingDataError("features", "Choose at least one feature column.")
    for name in spec.features:
        if name not in frame.columns:
            raise TrainingDataError("features", f"No column named {name!r} in this dataset version.")
    if spec.target and spec.target not in frame.columns:
        raise TrainingDataError("target", f"No column named {spec.target!r} in this dataset version.")
    for name in spec.sensitive_columns:
        if name not in frame.columns:
            raise TrainingDataError("sensitive_columns", f"No column named {name!r} in this dataset version.")
    time_column = spec.split.time_column
    if spec.split.strategy == "time":
        if not time_column or time_column not in frame.columns:
            raise TrainingDataError("split.time_column", f"No column named {time_column!r} in this dataset version.")
        if frame[time_column].isna().any():
            raise TrainingDataError(
                "split.time_column", f"{time_column!r} has missing values: every row needs one to be ordered."
            )


def _check_target(frame: pd.DataFrame, spec: ExperimentSpec) -> None:
    if not spec.target:
        if spec.preparation.encoding == "target":
            raise TrainingDataError("preparation.encoding", "Target encoding needs a target; clustering has none.")
        return
    values = frame[spec.target].dropna()
    distinct = values.nunique()
    if values.empty:
        raise TrainingDataError("target", f"{spec.target!r} has no values: every row is missing.")
    if distinct <= 1:
        raise TrainingDataError("target", f"{spec.target!r} is constant: there is nothing to learn.")
    if spec.problem_type == "binary" and distinct != 2:
        raise TrainingDataError(
            "target", f"{spec.target!r} has {distinct} classes; binary classification needs exactly 2."
        )
    if spec.problem_type == "multiclass" and distinct < 3:
        raise TrainingDataError(
            "target", f"{spec.target!r} has {distinct} classes; choose binary classification instead."
        )
    if spec.problem_type == "regression" and column_dtype(frame[spec.target]) not in ("int64", "float64"):
        raise TrainingDataError("target", f"{spec.target!r} is not numeric; regression needs a numeric target.")


def _check_features(frame: pd.DataFrame, spec: ExperimentSpec) -> None:
    for name in spec.features:
        column = frame[name]
        if column.isna().all():
            raise TrainingDataError("features", f"{name!r} has no values: every row is missing. Leave it out.")
        kind = spec.feature_kinds.get(name)
        if kind not in DTYPES_FOR_KIND:
            raise TrainingDataError("feature_kinds", f"{name!r}: choose how to treat it.")
        dtype = column_dtype(column)
        if dtype not in DTYPES_FOR_KIND[kind]:
            raise TrainingDataError(
                "feature_kinds", f"{name!r} holds {dtype} values; it cannot be used as a {kind} feature."
            )
        if kind == "boolean":
            _check_boolean(name, column)


def _check_boolean(name: str, column: pd.Series) -> None:
    present = column.dropna()
    values = boolean_values(present)
    if np.isnan(values).any():
        strange = sorted(set(category_text(present[np.isnan(values)])))[:3]
        raise TrainingDataError(
            "feature_kinds",
            f"{name!r} holds values that are not true/false ({', '.join(map(repr, strange))}); "
            "treat it as categorical.",
        )


def _check_rows(rows: pd.DataFrame, spec: ExperimentSpec, total: int) -> None:
    if len(rows) < MIN_TRAINING_ROWS:
        if spec.preparation.missing == "drop" and len(rows) < total:
            raise TrainingDataError(
                "preparation.missing",
                f"Only {len(rows)} rows have every feature; training needs at least {MIN_TRAINING_ROWS}. "
                "Fill missing values instead of dropping rows.",
            )
        raise TrainingDataError(
            "dataset_version", f"The version has {len(rows)} usable rows; training needs at least {MIN_TRAINING_ROWS}."
        )
    if spec.problem_type in ("binary", "multiclass"):
        _check_class_sizes(rows[spec.target].value_counts(), spec)


def _check_class_sizes(counts: pd.Series, spec: ExperimentSpec) -> None:
    if spec.split.strategy == "stratified":
        for value, count in counts.items():
            if count < 2:
                raise TrainingDataError(
                    "split.strategy",
                    f"Class {value!r} of {spec.target!r} has a single row: it cannot be stratified across train "
                    "and test. Remove it, or choose a random split.",
                )
    categorical = any(spec.feature_kinds.get(name) == "categorical" for name in spec.features)
    if spec.preparation.encoding == "target" and categorical:
        # TargetEncoder cross-fits on TARGET_ENCODER_FOLDS folds of the rows it is fitted on (the training rows,
        # or a cross-validation fold of them): each class needs that many rows there.
        folds = spec.split.cv_folds
        fitted_share = spec.split.train * ((folds - 1) / folds if folds >= 2 else 1.0)
        needed = math.ceil(TARGET_ENCODER_FOLDS / fitted_share) + 1
        for value, count in counts.items():
            if count < needed:
                raise TrainingDataError(
                    "preparation.encoding",
                    f"Class {value!r} of {spec.target!r} has {count} rows; target encoding needs at least {needed} "
                    "with these shares. Choose one-hot or ordinal encoding.",
                )


def check_training_data(frame: pd.DataFrame, spec: ExperimentSpec) -> None:
    """Raise TrainingDataError(field, message) for the first reason the data cannot be trained on."""
    if spec.split.test <= 0:
        raise TrainingDataError("split.test", "Keep some rows for the held-out test.")
    _check_columns_exist(frame, spec)
    _check_target(frame, spec)
    _check_features(frame, spec)
    _check_rows(trainable_rows(frame, spec), spec, len(frame))


def trainable_rows(frame: pd.DataFrame, spec: ExperimentSpec) -> pd.DataFrame:
    """The rows with a target value and (missing="drop") every feature, renumbered 0..n-1."""
    keep = pd.Series(True, index=frame.index)
    if spec.target:
        keep &= frame[spec.target].notna()
    if spec.preparation.missing == "drop":
        keep &= frame[list(spec.features)].notna().all(axis=1)
    rows = frame.loc[keep].reset_index(drop=True)
    if spec.target:
        rows[spec.target] = _plain_target(rows[spec.target])
    return rows


def _plain_target(target: pd.Series) -> pd.Series:
    """A target without gaps in a plain NumPy dtype (estimators and metrics do not all take pandas' nullable ones)."""
    if isinstance(target.dtype, pd.Int64Dtype):
        return target.astype("int64")
    if target.dtype == object and pd.api.types.infer_dtype(target) == "boolean":
        return target.astype(bool)
    return target
