"""The reference of a model version's drift checks, computed once per version (not per check).

`build_reference` keeps a seeded uniform sample of at most `max_rows` training rows (the signature's columns only,
typed by kind: workers.ml.drift.frames), the model's predictions on them as the prediction column, and per column
what every later check would otherwise recompute on the reference:
- `present_rows` (non-missing, finite values) and `few_values` (the distinct values when there are at most
  FEW_VALUES): with the current window's values, these finish Evidently's choice of test (`evidently_default_method`)
  without touching the reference rows again;
- the dashboard summary: numeric, a histogram (NUMERIC_BINS equal-width bins over the reference range; a check counts
  the current values into the same edges); categorical and boolean, the TOP_CATEGORIES most frequent values' counts;
  datetime, the range.

Stored as one Parquet file (`to_parquet`/`from_parquet`): the sample as its columns and everything else as JSON in
the schema metadata under METADATA_KEY, so the monitoring app keeps it as one artifact and loads it per check.
"""

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from workers.ml.drift import frames

METADATA_KEY = b"mlplatform.drift.reference"
FORMAT_VERSION = 1
FEW_VALUES = 5  # Evidently picks its test differently for columns with at most this many distinct values
SMALL_REFERENCE_ROWS = 1000  # ... and for references of at most this many rows (per column, missing values left out)
NUMERIC_BINS = 20
TOP_CATEGORIES = 20


def evidently_default_method(kind: str, present_rows: int, distinct_values: int) -> str:
    """The test Evidently 0.7 picks when none is forced (evidently.legacy.calculations.stattests.registry.
    _get_default_stattest): `present_rows` is the reference column's non-missing count, `distinct_values` counts
    the distinct values of reference and current together. `kind` is numeric or categorical (boolean counts as
    categorical). Returned as Evidently's test name."""
    numeric = kind == "numeric"
    if present_rows <= SMALL_REFERENCE_ROWS:
        if numeric and distinct_values > FEW_VALUES:
            return "ks"
        return "chisquare" if distinct_values > 2 else "z"
    if numeric and distinct_values > FEW_VALUES:
        return "wasserstein"
    return "jensenshannon"


@dataclass(frozen=True)
class ColumnReference:
    name: str
    kind: str  # numeric, categorical, boolean or datetime (the prediction column: numeric or categorical)
    present_rows: int
    few_values: list[Any] | None  # the distinct reference values when there are at most FEW_VALUES, else None
    summary: dict[str, Any]
    is_prediction: bool = False

    @property
    def tested(self) -> bool:
        """Evidently's DataDriftPreset tests numeric, categorical (and text) columns, not datetime ones."""
        return self.kind in frames.TESTED_KINDS


@dataclass
class Reference:
    frame: pd.DataFrame  # the sample, typed; the prediction column last when there is one
    columns: list[ColumnReference]  # the signature's columns in order, then the prediction column
    problem_type: str  # binary, multiclass or regression
    prediction_column: str | None
    source_rows: int  # training rows the sample was drawn from
    max_rows: int
    seed: int
    evidently_version: str = field(default="")

    @property
    def sampled(self) -> bool:
        return self.source_rows > len(self.frame)

    @property
    def kinds(self) -> dict[str, str]:
        return {column.name: column.kind for column in self.columns}

    def column(self, name: str) -> ColumnReference:
        return next(column for column in self.columns if column.name == name)

    def metadata(self) -> dict[str, Any]:
        return {
            "format": FORMAT_VERSION,
            "columns": [asdict(column) for column in self.columns],
            "problem_type": self.problem_type,
            "prediction_column": self.prediction_column,
            "source_rows": self.source_rows,
            "max_rows": self.max_rows,
            "seed": self.seed,
            "evidently_version": self.evidently_version,
        }

    def to_parquet(self, path: str | Path) -> None:
        table = pa.Table.from_pandas(self.frame, preserve_index=False)
        metadata = {**(table.schema.metadata or {}), METADATA_KEY: json.dumps(self.metadata()).encode()}
        pq.write_table(table.replace_schema_metadata(metadata), path, compression="zstd")

    @classmethod
    def from_parquet(cls, path: str | Path) -> "Reference":
        table = pq.read_table(path)
        raw = (table.schema.metadata or {}).get(METADATA_KEY)
        if raw is None:
            raise ValueError(f"{path} is not a drift reference (no {METADATA_KEY.decode()} metadata)")
        metadata = json.loads(raw)
        if metadata["format"] != FORMAT_VERSION:
            raise ValueError(f"Drift reference format {metadata['format']} is not {FORMAT_VERSION}")
        columns = [ColumnReference(**column) for column in metadata["columns"]]
        frame = table.to_pandas()
        for column in columns:
            if frame[column.name].dtype == object:  # Parquet gives None for a missing text value; the frames use NaN
                frame[column.name] = frame[column.name].where(frame[column.name].notna(), np.nan)
        return cls(
            frame=frame,
            columns=columns,
            problem_type=metadata["problem_type"],
            prediction_column=metadata["prediction_column"],
            source_rows=metadata["source_rows"],
            max_rows=metadata["max_rows"],
            seed=metadata["seed"],
            evidently_version=metadata["evidently_version"],
        )


def present_values(column: pd.Series, kind: str) -> pd.Series:
    """The values Evidently tests: missing and infinite ones left out (it does the same before every test)."""
    if kind == "numeric":
        values = column.to_numpy()
        return column[np.isfinite(values)]
    return column.dropna()


def numeric_summary(present: pd.Series) -> dict[str, Any]:
    values = present.to_numpy(dtype=np.float64)
    if values.size == 0:
        return {"edges": [], "counts": []}
    counts, edges = np.histogram(values, bins=NUMERIC_BINS)
    return {"edges": edges.tolist(), "counts": counts.tolist()}


def category_summary(present: pd.Series) -> dict[str, Any]:
    counts = present.value_counts()
    top = counts.iloc[:TOP_CATEGORIES]
    return {
        "categories": [str(value) for value in top.index],
        "counts": [int(count) for count in top.to_numpy()],
        "other": int(counts.iloc[TOP_CATEGORIES:].sum()),
    }


def datetime_summary(column: pd.Series) -> dict[str, Any]:
    present = column.dropna()
    if present.empty:
        return {"min": None, "max": None}
    return {"min": present.min().isoformat(), "max": present.max().isoformat()}


def column_summary(column: pd.Series, kind: str, present: pd.Series | None) -> dict[str, Any]:
    """The dashboard summary of one column (see the module docstring), with its missing count."""
    missing = int(len(column) - (len(present) if present is not None else column.notna().sum()))
    if kind == "numeric":
        return {"type": "histogram", **numeric_summary(present), "missing": missing}
    if kind == "datetime":
        return {"type": "range", **datetime_summary(column), "missing": missing}
    return {"type": "categories", **category_summary(present), "missing": missing}


def few_distinct_values(present: pd.Series) -> list[Any] | None:
    distinct = present.unique()
    if len(distinct) > FEW_VALUES:
        return None
    return sorted(value.item() if hasattr(value, "item") else value for value in distinct)


def column_reference(column: pd.Series, kind: str, *, is_prediction: bool = False) -> ColumnReference:
    if kind not in frames.TESTED_KINDS:
        return ColumnReference(column.name, kind, int(column.notna().sum()), None, column_summary(column, kind, None))
    present = present_values(column, kind)
    return ColumnReference(
        name=column.name,
        kind=kind,
        present_rows=len(present),
        few_values=few_distinct_values(present),
        summary=column_summary(column, kind, present),
        is_prediction=is_prediction,
    )


def sample_positions(rows: int, max_rows: int, seed: int) -> np.ndarray | None:
    """Sorted positions of a seeded uniform sample without replacement, or None when every row fits."""
    if rows <= max_rows:
        return None
    return np.sort(np.random.default_rng(seed).choice(rows, size=max_rows, replace=False))


def _check_predictions(predictions: pd.Series, problem: str) -> None:
    if problem != "binary":
        return
    values = pd.to_numeric(predictions, errors="coerce")
    if values.isna().any() or not values.between(0.0, 1.0).all():
        raise ValueError("A binary model's reference predictions must be the positive class's probabilities")


def build_reference(
    frame: pd.DataFrame,
    *,
    signature: dict,
    predictions: pd.Series | None,
    max_rows: int = 100_000,
    seed: int = 0,
) -> Reference:
    """The reference of a model version: `frame` is its training rows, `signature` its input signature
    (workers.ml.training.signature), `predictions` the model's prediction on each of those rows, in the same order
    (binary: the positive class's probability; multiclass: the label; regression: the value), or None."""
    if predictions is not None and len(predictions) != len(frame):
        raise ValueError(f"{len(predictions)} predictions for {len(frame)} rows")
    problem = frames.problem_type(signature)
    kinds = {column["name"]: column["kind"] for column in signature["columns"]}
    positions = sample_positions(len(frame), max_rows, seed)
    rows = frame[list(kinds)] if positions is None else frame[list(kinds)].iloc[positions]
    sample = frames.type_frame(rows.reset_index(drop=True), kinds)
    prediction_column = None
    if predictions is not None:
        _check_predictions(predictions, problem)
        prediction_column = frames.prediction_column_name(signature)
        chosen = predictions if positions is None else predictions.iloc[positions]
        kinds[prediction_column] = frames.prediction_kind(signature)
        sample[prediction_column] = frames.type_column(chosen.reset_index(drop=True), kinds[prediction_column])
    columns = [
        column_reference(sample[name], kind, is_prediction=name == prediction_column) for name, kind in kinds.items()
    ]
    return Reference(
        frame=sample,
        columns=columns,
        problem_type=problem,
        prediction_column=prediction_column,
        source_rows=len(frame),
        max_rows=max_rows,
        seed=seed,
        evidently_version=_evidently_version(),
    )


def _evidently_version() -> str:
    from importlib.metadata import version

    return version("evidently")
