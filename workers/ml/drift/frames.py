"""Frames typed by a model version's input signature, as the drift check compares them.

Per signature kind (workers.ml.training.signature):
- numeric: float64, what does not parse is NaN;
- categorical: text (workers.ml.training.preparation.category_text: 3 and 3.0 are both "3"), missing is NaN;
- boolean: the text "true"/"false" (true/false, yes/no, 1/0 as text too), anything else NaN; Evidently treats it as
  a categorical column;
- datetime: UTC timestamps, NaT where missing. Evidently's DataDriftPreset does not test datetime columns (a window
  of recent predictions is always later than the training rows), so they are carried for the summary only.

The prediction column (`prediction_kind`), from a logged record's outputs {"predict": label, "predict_proba": [...]}:
- binary: the positive class's probability, `predict_proba[1]` (probabilities follow the sorted classes of the
  signature's target, the second being scikit-learn's positive class); a record without probabilities gives 1.0 or
  0.0 from its label. Numeric, so a shift in confidence shows even while the labels stay the same.
- multiclass: the predicted label as text (categorical);
- regression: the predicted value (numeric).
"""

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from workers.ml.training.preparation import FALSE_TEXT, TRUE_TEXT, category_text, to_datetime

PREDICTION_COLUMN = "prediction"
TESTED_KINDS = ("numeric", "categorical", "boolean")


def problem_type(signature: dict) -> str:
    """binary, multiclass or regression, from the signature's target classes."""
    target = signature.get("target") or {}
    classes = target.get("classes")
    if not classes:
        return "regression"
    return "binary" if len(classes) == 2 else "multiclass"


def prediction_kind(signature: dict) -> str:
    """How the prediction column is compared: numeric (binary probability, regression value) or categorical."""
    return "categorical" if problem_type(signature) == "multiclass" else "numeric"


def prediction_column_name(signature: dict) -> str:
    """`prediction`, unless a feature already has that name (then `prediction_`, `prediction__`, ...)."""
    names = {column["name"] for column in signature["columns"]}
    name = PREDICTION_COLUMN
    while name in names:
        name += "_"
    return name


def _boolean_text(column: pd.Series) -> pd.Series:
    if pd.api.types.is_bool_dtype(column) and not column.isna().any():
        return pd.Series(np.where(column.to_numpy(dtype=bool), "true", "false"), index=column.index, dtype=object)
    text = column.astype(object).map(lambda value: str(value).strip().lower(), na_action="ignore")
    typed = pd.Series(np.nan, index=column.index, dtype=object)
    typed[text.isin(TRUE_TEXT)] = "true"
    typed[text.isin(FALSE_TEXT)] = "false"
    return typed


def type_column(column: pd.Series, kind: str) -> pd.Series:
    """One column as the drift check compares it (see the module docstring). A column already typed is returned as
    it is, without a copy."""
    if kind == "numeric":
        if column.dtype == np.float64:
            return column
        if pd.api.types.is_bool_dtype(column):
            return column.astype("float64")
        return pd.to_numeric(column, errors="coerce").astype("float64")
    if kind == "categorical":
        if column.dtype == object and pd.api.types.infer_dtype(column, skipna=True) in ("string", "empty"):
            return column
        return category_text(column)
    if kind == "boolean":
        return _boolean_text(column)
    if kind == "datetime":
        if isinstance(column.dtype, pd.DatetimeTZDtype):
            return column
        return to_datetime(column)
    raise ValueError(f"Unknown column kind {kind!r}")


def type_frame(frame: pd.DataFrame, kinds: dict[str, str]) -> pd.DataFrame:
    """The `kinds` columns of `frame`, typed; a column missing from `frame` is all missing (it was never sent)."""
    columns = {}
    for name, kind in kinds.items():
        column = frame[name] if name in frame.columns else pd.Series(np.nan, index=frame.index, dtype=object)
        columns[name] = type_column(column, kind)
    return pd.DataFrame(columns, index=frame.index, copy=False)


def _prediction_value(outputs: dict[str, Any], problem: str, positive_label: Any) -> Any:
    if problem == "binary":
        probabilities = outputs.get("predict_proba")
        if probabilities is not None and len(probabilities) == 2:
            return probabilities[1]
        label = outputs.get("predict")
        return np.nan if label is None else float(str(label) == str(positive_label))
    return outputs.get("predict")


def frame_from_predictions(records: Iterable[dict[str, Any]], *, signature: dict) -> pd.DataFrame:
    """Logged prediction records ({"inputs": {column: value}, "outputs": {...}}, workers.serving.prediction_log) as a
    frame of the signature's columns typed by kind, plus the prediction column (see the module docstring). An input
    a record lacks is missing (NaN); inputs outside the signature are ignored. One pass over `records`."""
    problem = problem_type(signature)
    classes = (signature.get("target") or {}).get("classes") or []
    positive_label = classes[1] if problem == "binary" else None
    names = [column["name"] for column in signature["columns"]]
    values: dict[str, list[Any]] = {name: [] for name in names}
    predictions: list[Any] = []
    for record in records:
        inputs = record.get("inputs") or {}
        for name in names:
            values[name].append(inputs.get(name))
        predictions.append(_prediction_value(record.get("outputs") or {}, problem, positive_label))
    kinds = {column["name"]: column["kind"] for column in signature["columns"]}
    frame = type_frame(pd.DataFrame({name: pd.Series(values[name], dtype=object) for name in names}), kinds)
    frame[prediction_column_name(signature)] = type_column(
        pd.Series(predictions, dtype=object), prediction_kind(signature)
    )
    return frame
