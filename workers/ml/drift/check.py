"""One drift check: a window of current rows against a model version's Reference, with Evidently's DataDriftPreset.

Evidently does the statistics: one Report with DataDriftPreset over the tested columns (the signature's numeric,
categorical and boolean columns, and the prediction column), each with the test Evidently itself would pick by
type and size (`reference.evidently_default_method`, decided from what the Reference precomputed plus the current
window's distinct values, then passed to the preset per column so Evidently does not recount them), or the one
forced with `method`. Its per-column score, threshold and verdict are what DriftResult reports. We add the typing
of the current frame, the dashboard summaries (histograms on the reference's bin edges, top category shares; numpy
and one value_counts per column) and the result.

- The share of drifted columns counts the features only; the prediction column is reported apart
  (`prediction_drift`). Evidently's own HTML report counts it among the columns.
- A window with fewer than `min_rows` rows is not tested (`status: "insufficient_data"`); so is a column with no
  value at all on either side (its entry says so and the share leaves it out).
- A current window over `max_current_rows` rows is sampled (seeded, uniform, without replacement) and the result
  says so; the monitoring app streams large windows through workers.ml.drift.sampling.reservoir_sample first and
  passes their size as `current_source_rows`.
"""

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

import workers.ml.drift  # noqa: F401 - sets Evidently's telemetry switches before it is imported
from workers.ml.drift import frames
from workers.ml.drift.reference import (
    FEW_VALUES,
    TOP_CATEGORIES,
    ColumnReference,
    Reference,
    evidently_default_method,
    present_values,
    sample_positions,
)

MIN_ROWS = 30
OK = "ok"
INSUFFICIENT_DATA = "insufficient_data"
NOT_TESTED = "not_tested"
TESTED = "tested"

frame_from_predictions = frames.frame_from_predictions  # the current frame of a window of logged predictions


@dataclass
class ColumnDrift:
    column: str
    kind: str
    status: str  # tested, insufficient_data (no value on a side) or not_tested (datetime)
    method: str | None  # Evidently's test name (e.g. wasserstein, jensenshannon, ks, chisquare, z)
    method_label: str | None  # ... as Evidently displays it (e.g. "Wasserstein distance (normed)")
    score: float | None  # the statistic or p-value Evidently reports
    threshold: float | None
    drifted: bool | None
    reference: dict[str, Any]  # summary for the dashboard (see workers.ml.drift.reference)
    current: dict[str, Any]
    is_prediction: bool = False


@dataclass
class DriftResult:
    status: str  # ok or insufficient_data
    columns: list[ColumnDrift]
    drifted_share: float | None  # of the tested feature columns
    drifted_columns: list[str]  # drifted feature columns
    dataset_drift: bool | None  # drifted_share >= share_threshold
    share_threshold: float
    prediction_drift: dict[str, Any] | None  # {"column", "drifted", "score", "method", "threshold"} or None
    reference_rows: int
    current_rows: int
    sampled: bool
    sampling: dict[str, Any]  # how each side was sampled
    evidently_version: str
    html: str | None = field(default=None, repr=False)  # Evidently's report, when asked for

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe (no NumPy scalars, no NaN), without the HTML."""
        data = asdict(self)
        data.pop("html")
        return _json_safe(data)


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def _current_summary(column: ColumnReference, values: pd.Series, present: pd.Series | None) -> dict[str, Any]:
    """The current side of the dashboard summary, on the reference's bins and categories."""
    missing = int(len(values) - (len(present) if present is not None else values.notna().sum()))
    reference = column.summary
    if reference["type"] == "histogram":
        numbers = present.to_numpy(dtype=np.float64)
        summary = {"type": "histogram", "edges": reference["edges"], "counts": [], "below": 0, "above": len(numbers)}
        if reference["edges"]:
            edges = np.asarray(reference["edges"], dtype=np.float64)
            counts, _ = np.histogram(numbers, bins=edges)
            summary.update(
                counts=counts.tolist(),
                below=int((numbers < edges[0]).sum()),
                above=int((numbers > edges[-1]).sum()),
            )
        return {**summary, "missing": missing}
    if reference["type"] == "range":
        moments = values.dropna()
        bounds = (moments.min().isoformat(), moments.max().isoformat()) if not moments.empty else (None, None)
        return {"type": "range", "min": bounds[0], "max": bounds[1], "missing": missing}
    counts = present.value_counts()
    categories = list(reference["categories"])
    seen = set(categories)
    categories += [str(value) for value in counts.index[:TOP_CATEGORIES] if str(value) not in seen]
    counts.index = counts.index.map(str)
    listed = counts.reindex(categories, fill_value=0)
    return {
        "type": "categories",
        "categories": categories,
        "counts": [int(count) for count in listed.to_numpy()],
        "other": int(counts.sum() - listed.sum()),
        "missing": missing,
    }


def _choose_method(column: ColumnReference, current_present: pd.Series) -> str:
    """Evidently's own choice (reference.evidently_default_method), counting distinct values only when the
    reference had few enough for the count to matter."""
    if column.few_values is None:
        distinct = FEW_VALUES + 1
    else:
        distinct = len(set(column.few_values).union(current_present.unique().tolist()))
    return evidently_default_method(column.kind, column.present_rows, distinct)


def _sample_current(current: pd.DataFrame, max_rows: int, seed: int) -> tuple[pd.DataFrame, bool]:
    positions = sample_positions(len(current), max_rows, seed)
    return (current, False) if positions is None else (current.iloc[positions], True)


def _typed_current(reference: Reference, current: pd.DataFrame) -> pd.DataFrame:
    return frames.type_frame(current, reference.kinds)


def _run_evidently(
    reference: Reference,
    current: pd.DataFrame,
    methods: dict[str, str],
    *,
    method: str | None,
    column_threshold: float | None,
    share_threshold: float,
):
    """Evidently's DataDriftPreset over the `methods` columns; returns (snapshot, {column: its drift result})."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.core.report import _default_input_data_generator
    from evidently.legacy.metrics import DataDriftTable
    from evidently.presets import DataDriftPreset

    names = list(methods)
    numeric = [name for name in names if reference.kinds[name] == "numeric"]
    definition = DataDefinition(
        numerical_columns=numeric,
        categorical_columns=[name for name in names if name not in numeric],
        text_columns=[],
        datetime_columns=[],
        unknown_columns=[],
        list_columns=[],
    )
    preset = DataDriftPreset(
        columns=names,
        drift_share=share_threshold,
        method=method,
        per_column_method=None if method else methods,
        threshold=column_threshold,
    )
    snapshot = Report([preset]).run(
        Dataset.from_pandas(current[names], data_definition=definition),
        Dataset.from_pandas(reference.frame[names], data_definition=definition),
    )
    # The preset's page is drawn from this table, already computed during the run: the same parameters find it in
    # the run's cache instead of computing it again.
    table = DataDriftTable(
        columns=preset.columns,
        stattest=preset.method,
        cat_stattest=preset.cat_method,
        num_stattest=preset.num_method,
        text_stattest=preset.text_method,
        per_column_stattest=preset.per_column_method,
        stattest_threshold=preset.threshold,
        cat_stattest_threshold=preset.cat_threshold,
        num_stattest_threshold=preset.num_threshold,
        text_stattest_threshold=preset.text_threshold,
        per_column_stattest_threshold=preset.per_column_threshold,
    )
    result, _ = snapshot.context.get_legacy_metric(table, _default_input_data_generator, None)
    return snapshot, result.drift_by_columns


def _evidently_version() -> str:
    import evidently

    return evidently.__version__


def drift_check(
    reference: Reference,
    current: pd.DataFrame,
    *,
    column_threshold: float | None = None,
    share_threshold: float = 0.5,
    method: str | None = None,
    min_rows: int = MIN_ROWS,
    max_current_rows: int = 100_000,
    current_source_rows: int | None = None,
    seed: int = 0,
    html: bool = False,
) -> DriftResult:
    """Drift of `current` (a frame of the signature's columns and, for prediction drift, the prediction column, e.g.
    from frame_from_predictions) against `reference`. `column_threshold` replaces each test's default threshold
    (Evidently's: 0.05 for p-values, 0.1 for distances); `method` forces one Evidently test on every column;
    `html=True` also keeps Evidently's HTML report of the same run in `.html`."""
    current, sampled_here = _sample_current(current, max_current_rows, seed)
    current = _typed_current(reference, current)
    enough = len(current) >= min_rows
    entries: dict[str, ColumnDrift] = {}
    methods: dict[str, str] = {}
    for column in reference.columns:
        values = current[column.name]
        present = present_values(values, column.kind) if column.tested else None
        entry = ColumnDrift(
            column=column.name,
            kind=column.kind,
            status=NOT_TESTED,
            method=None,
            method_label=None,
            score=None,
            threshold=None,
            drifted=None,
            reference=column.summary,
            current=_current_summary(column, values, present),
            is_prediction=column.is_prediction,
        )
        entries[column.name] = entry
        if not column.tested:
            continue
        if not enough or column.present_rows == 0 or present.empty:
            entry.status = INSUFFICIENT_DATA
            continue
        methods[column.name] = _choose_method(column, present)

    snapshot = None
    if methods:
        snapshot, by_column = _run_evidently(
            reference,
            current,
            methods,
            method=method,
            column_threshold=column_threshold,
            share_threshold=share_threshold,
        )
        for name, drift in by_column.items():
            entry = entries[name]
            entry.status = TESTED
            entry.method = method or methods[name]
            entry.method_label = drift.stattest_name
            entry.score = float(drift.drift_score)
            entry.threshold = float(drift.stattest_threshold)
            entry.drifted = bool(drift.drift_detected)
    return _result(
        reference,
        list(entries.values()),
        current_rows=len(current),
        share_threshold=share_threshold,
        sampling=_sampling(reference, len(current), sampled_here, current_source_rows, seed),
        html=snapshot.get_html_str(as_iframe=False) if html and snapshot is not None else None,
        status=OK if methods else INSUFFICIENT_DATA,
    )


def _sampling(
    reference: Reference, current_rows: int, sampled_here: bool, current_source_rows: int | None, seed: int
) -> dict[str, Any]:
    source = current_source_rows if current_source_rows is not None else None
    current_sampled = sampled_here or (source is not None and source > current_rows)
    return {
        "reference": {
            "sampled": reference.sampled,
            "rows": len(reference.frame),
            "source_rows": reference.source_rows,
            "how": f"seeded uniform sample without replacement (seed {reference.seed})" if reference.sampled else None,
        },
        "current": {
            "sampled": current_sampled,
            "rows": current_rows,
            "source_rows": source,
            "how": (
                f"seeded uniform sample without replacement (seed {seed})"
                if sampled_here
                else "uniform reservoir sample of the window"
                if current_sampled
                else None
            ),
        },
    }


def _result(
    reference: Reference,
    columns: list[ColumnDrift],
    *,
    current_rows: int,
    share_threshold: float,
    sampling: dict[str, Any],
    html: str | None,
    status: str,
) -> DriftResult:
    tested = [entry for entry in columns if entry.status == TESTED and not entry.is_prediction]
    drifted = [entry.column for entry in tested if entry.drifted]
    share = len(drifted) / len(tested) if tested else None
    prediction = next((entry for entry in columns if entry.is_prediction), None)
    prediction_drift = None
    if prediction is not None:
        prediction_drift = {
            "column": prediction.column,
            "status": prediction.status,
            "drifted": prediction.drifted,
            "score": prediction.score,
            "method": prediction.method,
            "threshold": prediction.threshold,
        }
    return DriftResult(
        status=status,
        columns=columns,
        drifted_share=share,
        drifted_columns=drifted,
        dataset_drift=None if share is None else share >= share_threshold,
        share_threshold=share_threshold,
        prediction_drift=prediction_drift,
        reference_rows=len(reference.frame),
        current_rows=current_rows,
        sampled=sampling["reference"]["sampled"] or sampling["current"]["sampled"],
        sampling=sampling,
        evidently_version=_evidently_version(),
        html=html,
    )


INSUFFICIENT_HTML = """<!DOCTYPE html>
<html lang="en"><head><meta charset="UTF-8"><title>Drift report</title></head>
<body><p>No drift report: the window has too few rows ({rows}) or no values to compare.</p></body></html>
"""


def drift_html(reference: Reference, current: pd.DataFrame, **options: Any) -> str:
    """Evidently's own HTML report of a drift check (self-contained: its script and font are inlined, nothing is
    loaded from elsewhere), or a short page saying why there is none. `options` as for drift_check."""
    result = drift_check(reference, current, html=True, **options)
    return result.html if result.html is not None else INSUFFICIENT_HTML.format(rows=result.current_rows)
