"""The input signature of a trained model: what a prediction request is validated against.

{"columns": [{"name", "kind", "dtype", "nullable", ...}], "target": {"name", "classes"} | None}
- kind: the feature kind the pipeline prepares it as; dtype: the dataset dtype (workers.ml.data.specs.DTYPES);
- nullable: the training rows had missing values in it (the pipeline imputes either way);
- categorical: "categories", the values seen in the training rows as text (workers.ml.training.preparation.
  category_text), most frequent first, at most MAX_CATEGORIES ("categories_truncated" says when more were seen);
- numeric: "min" and "max" of the training rows; datetime: "min" and "max" as ISO 8601 text.
Computed on the training rows only, like every other statistic of the pipeline.
"""

from typing import Any

import pandas as pd

from workers.ml.training.data import column_dtype
from workers.ml.training.preparation import category_text, to_datetime
from workers.ml.training.spec import ExperimentSpec

MAX_CATEGORIES = 1000


def _plain(value: Any) -> Any:
    """A JSON-safe Python scalar (NumPy scalars become int/float/bool/str)."""
    return value.item() if hasattr(value, "item") else value


def _column(frame: pd.DataFrame, name: str, kind: str) -> dict[str, Any]:
    column = frame[name]
    entry: dict[str, Any] = {
        "name": name,
        "kind": kind,
        "dtype": column_dtype(column),
        "nullable": bool(column.isna().any()),
    }
    present = column.dropna()
    if kind == "categorical":
        counts = category_text(present).value_counts()
        entry["categories"] = [str(value) for value in counts.index[:MAX_CATEGORIES]]
        entry["categories_truncated"] = len(counts) > MAX_CATEGORIES
    elif kind == "numeric" and not present.empty:
        values = pd.to_numeric(present.astype("float64"), errors="coerce")
        entry["min"], entry["max"] = float(values.min()), float(values.max())
    elif kind == "datetime":
        moments = to_datetime(present).dropna()
        if not moments.empty:
            entry["min"], entry["max"] = moments.min().isoformat(), moments.max().isoformat()
    return entry


def input_signature(frame: pd.DataFrame, spec: ExperimentSpec) -> dict[str, Any]:
    """The signature of a model trained on `frame` (the training rows) with `spec`."""
    columns = [_column(frame, name, spec.feature_kinds[name]) for name in spec.features]
    target = None
    if spec.target:
        classes = None
        if spec.problem_type in ("binary", "multiclass"):
            classes = [_plain(value) for value in sorted(frame[spec.target].dropna().unique())]
        target = {"name": spec.target, "classes": classes}
    return {"columns": columns, "target": target}
