"""The declarative transformations a feature is defined by, and computing a feature's values from its source rows.

A transformation is a plain dict (stored as JSON with the feature version), checked by `validate_transformation`:
- {"kind": "passthrough", "column"}: the column as it is;
- {"kind": "expression", "expression"}: arithmetic over numeric columns of one row (workers.ml.features.expressions);
- {"kind": "log", "column"}: the natural logarithm, missing where the value is <= 0 (use an expression with
  log1p for counts that can be 0);
- {"kind": "clip", "column", "lower", "upper"}: the value limited to [lower, upper] (either bound may be null);
- {"kind": "bucketize", "column", "boundaries"}: the index of the bucket, boundaries strictly increasing:
  0 below boundaries[0], i for boundaries[i-1] <= x < boundaries[i], len(boundaries) from the last one up;
- {"kind": "date_part", "column", "part"}: year, month, day, weekday (Monday = 0), hour or dayofyear (1-based), in
  UTC;
- {"kind": "window", "column" (or "*" with count), "function", "window"}: an aggregate per entity over the events in
  (t - window, t] at each event time t of that entity: the current event and every event of the same entity at the
  same timestamp are included, the event exactly `window` earlier is not. Functions: count (non-missing values, or
  rows with "*"), sum, mean, min, max, last (the latest non-missing value; among events at the same timestamp the
  one later in the source), distinct_count. Windows: "<n>m", "<n>h" or "<n>d" (1h, 1d, 7d, 30d, 90m, 14d ...).

Timestamps are handled as UTC: time-zone-aware columns are converted to UTC, naive ones are taken as UTC; the output's
`event_timestamp` is naive UTC (datetime64[us]). Source rows with a missing timestamp or entity key are skipped (they
cannot be placed in time or attached to an entity).
"""

import itertools
import re
from datetime import timedelta
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from workers.ml.features.expressions import ExpressionError, parse_expression, quote_identifier

KINDS = ("passthrough", "expression", "log", "clip", "bucketize", "date_part", "window")
DATE_PARTS = ("year", "month", "day", "weekday", "hour", "dayofyear")
WINDOW_FUNCTIONS = ("count", "sum", "mean", "min", "max", "last", "distinct_count")
NUMERIC_FUNCTIONS = ("sum", "mean", "min", "max")
NUMERIC_KINDS = ("numeric", "boolean")
WINDOW_PATTERN = re.compile(r"^([1-9][0-9]{0,5})([mhd])$")
MAX_WINDOW = timedelta(days=3660)
MAX_BOUNDARIES = 1000
EVENT_TIMESTAMP = "event_timestamp"
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


class TransformationError(ValueError):
    """A transformation spec that cannot be used; `field` names the spec field at fault."""

    def __init__(self, field: str, message: str):
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


# --- validation -----------------------------------------------------------------------------------------------


def validate_transformation(spec: dict, *, source_columns: dict[str, str]) -> dict:
    """The normalised spec (only its known fields), checked against the source's columns (name -> kind:
    numeric, categorical, datetime, text, id, boolean); TransformationError(field, message) otherwise."""
    if not isinstance(spec, dict):
        raise TransformationError("kind", "The transformation must be an object.")
    kind = spec.get("kind")
    if kind not in KINDS:
        raise TransformationError("kind", f"Unknown kind {kind!r}. Choose one of: {', '.join(KINDS)}.")
    if kind == "expression":
        return _validate_expression(spec, source_columns)
    if kind == "window":
        return _validate_window(spec, source_columns)
    kinds_allowed = {"date_part": ("datetime",), "passthrough": None}.get(kind, NUMERIC_KINDS)
    column = _source_column(spec, source_columns, kinds_allowed)
    normalised: dict[str, Any] = {"kind": kind, "column": column}
    if kind == "clip":
        normalised |= _validate_bounds(spec)
    elif kind == "bucketize":
        normalised["boundaries"] = _validate_boundaries(spec.get("boundaries"))
    elif kind == "date_part":
        if spec.get("part") not in DATE_PARTS:
            raise TransformationError("part", f"Choose one of: {', '.join(DATE_PARTS)}.")
        normalised["part"] = spec["part"]
    return normalised


def _source_column(spec: dict, source_columns: dict[str, str], kinds: tuple[str, ...] | None) -> str:
    column = spec.get("column")
    if not isinstance(column, str) or not column:
        raise TransformationError("column", "Name a source column.")
    if column not in source_columns:
        raise TransformationError("column", f"The source has no column '{column}'.")
    if kinds is not None and source_columns[column] not in kinds:
        raise TransformationError(
            "column", f"Column '{column}' is {source_columns[column]}; this needs a {' or '.join(kinds)} column."
        )
    return column


def _validate_expression(spec: dict, source_columns: dict[str, str]) -> dict:
    numeric = {name for name, kind in source_columns.items() if kind in NUMERIC_KINDS}
    try:
        expr = parse_expression(spec.get("expression"), columns=numeric)
    except ExpressionError as error:
        if not isinstance(spec.get("expression"), str):
            raise TransformationError("expression", "Write an expression.") from None
        raise TransformationError("expression", error.message) from None
    return {"kind": "expression", "expression": spec["expression"].strip(), "columns": sorted(expr.columns)}


def _number(value: Any, field: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not np.isfinite(value):
        raise TransformationError(field, "Must be a finite number or null.")
    return float(value)


def _validate_bounds(spec: dict) -> dict:
    lower, upper = _number(spec.get("lower"), "lower"), _number(spec.get("upper"), "upper")
    if lower is None and upper is None:
        raise TransformationError("lower", "Give a lower bound, an upper bound or both.")
    if lower is not None and upper is not None and lower > upper:
        raise TransformationError("upper", "Must not be below the lower bound.")
    return {"lower": lower, "upper": upper}


def _validate_boundaries(boundaries: Any) -> list[float]:
    if not isinstance(boundaries, list) or not boundaries:
        raise TransformationError("boundaries", "Give a non-empty list of numbers.")
    if len(boundaries) > MAX_BOUNDARIES:
        raise TransformationError("boundaries", f"At most {MAX_BOUNDARIES} boundaries.")
    numbers = [_number(value, "boundaries") for value in boundaries]
    if None in numbers or any(b <= a for a, b in itertools.pairwise(numbers)):
        raise TransformationError("boundaries", "Boundaries must be numbers in strictly increasing order.")
    return numbers


def parse_window(text: Any) -> timedelta:
    """ "90m", "1h", "7d" ... as a timedelta; TransformationError("window", ...) otherwise."""
    match = WINDOW_PATTERN.match(text) if isinstance(text, str) else None
    if not match:
        raise TransformationError("window", "Write a length like 90m, 1h, 1d, 7d or 30d (minutes, hours, days).")
    window = timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    if window > MAX_WINDOW:
        raise TransformationError("window", f"At most {MAX_WINDOW.days} days.")
    return window


def _validate_window(spec: dict, source_columns: dict[str, str]) -> dict:
    function = spec.get("function")
    if function not in WINDOW_FUNCTIONS:
        raise TransformationError("function", f"Choose one of: {', '.join(WINDOW_FUNCTIONS)}.")
    parse_window(spec.get("window"))
    if spec.get("column") == "*":
        if function != "count":
            raise TransformationError("column", "'*' (every event) only works with count.")
        column = "*"
    else:
        column = _source_column(spec, source_columns, NUMERIC_KINDS if function in NUMERIC_FUNCTIONS else None)
    return {"kind": "window", "column": column, "function": function, "window": spec["window"]}


# --- computing ------------------------------------------------------------------------------------------------


def utc_naive(values: pd.Series) -> pd.Series:
    """Timestamps as naive UTC datetime64[us] (aware ones converted to UTC, naive ones taken as UTC)."""
    if not pd.api.types.is_datetime64_any_dtype(values):
        values = pd.to_datetime(values, utc=True, format="mixed")
    if getattr(values.dt, "tz", None) is not None:
        values = values.dt.tz_convert("UTC").dt.tz_localize(None)
    return values.astype("datetime64[us]")


def compute_feature_values(
    source: pd.DataFrame,
    *,
    entity_keys: list[str],
    timestamp: str,
    spec: dict,
    name: str,
    start=None,
    end=None,
) -> pd.DataFrame:
    """One row per source event with its timestamp in [start, end) (either bound may be None): the entity keys,
    `event_timestamp` and the feature's value in column `name`, ordered as the source. Window features read the
    source rows before `start` they need, so materialising [a, b) then [b, c) gives the rows of [a, c)."""
    events = _events(source, entity_keys, timestamp)
    start_ts, end_ts = _bound(start), _bound(end)
    in_range = np.ones(len(events), dtype=bool)
    if start_ts is not None:
        in_range &= (events[EVENT_TIMESTAMP] >= start_ts).to_numpy()
    if end_ts is not None:
        in_range &= (events[EVENT_TIMESTAMP] < end_ts).to_numpy()
    if spec["kind"] == "window":
        values = _window_values(events, entity_keys, spec, start_ts, end_ts, in_range)
        rows = events.loc[in_range]
    else:
        rows = events.loc[in_range]
        values = row_values(rows, spec)
    result = rows[[*entity_keys, EVENT_TIMESTAMP]].reset_index(drop=True)
    result[name] = values.reset_index(drop=True) if isinstance(values, pd.Series) else values
    return result


def _bound(value) -> pd.Timestamp | None:
    if value is None:
        return None
    moment = pd.Timestamp(value)
    return moment.tz_convert("UTC").tz_localize(None) if moment.tzinfo else moment


def _events(source: pd.DataFrame, entity_keys: list[str], timestamp: str) -> pd.DataFrame:
    """The source with `event_timestamp` (naive UTC) added, rows without timestamp or key dropped."""
    events = source.copy(deep=False)
    events[EVENT_TIMESTAMP] = utc_naive(source[timestamp])
    complete = events[[*entity_keys, EVENT_TIMESTAMP]].notna().all(axis=1)
    return events.loc[complete].reset_index(drop=True)


def row_values(rows: pd.DataFrame, spec: dict) -> pd.Series:
    """The value of a row-wise transformation (every kind but window) for each row."""
    kind = spec["kind"]
    if kind == "passthrough":
        return rows[spec["column"]]
    if kind == "expression":
        return parse_expression(spec["expression"], columns=set(rows.columns)).evaluate(rows)
    if kind == "date_part":
        moments = utc_naive(rows[spec["column"]]).dt
        part = {"weekday": moments.weekday, "dayofyear": moments.dayofyear}.get(spec["part"])
        return (part if part is not None else getattr(moments, spec["part"])).astype("Int64")
    values = pd.to_numeric(rows[spec["column"]], errors="coerce").astype("float64")
    if kind == "log":
        with np.errstate(all="ignore"):
            return np.log(values.where(values > 0))
    if kind == "clip":
        return values.clip(lower=spec["lower"], upper=spec["upper"])
    if kind == "bucketize":
        buckets = np.searchsorted(np.asarray(spec["boundaries"], dtype="float64"), values.to_numpy(), side="right")
        return pd.Series(buckets, index=rows.index, dtype="Int64").mask(values.isna())
    raise TransformationError("kind", f"Unknown kind {kind!r}.")


_WINDOW_SQL = {
    "count": "count({value})",
    "sum": "sum({value})",
    "mean": "avg({value})",
    "min": "min({value})",
    "max": "max({value})",
    # The latest non-missing value: greatest (timestamp, source position); __seq is that order within an entity.
    "last": "arg_max({value}, __seq) FILTER (WHERE {value} IS NOT NULL)",
    "distinct_count": "count(DISTINCT {value})",
}


def _window_values(
    events: pd.DataFrame, entity_keys: list[str], spec: dict, start_ts, end_ts, in_range: np.ndarray
) -> pd.Series:
    """The window aggregate at each event in range, from the events in range and the ones a window before."""
    window = parse_window(spec["window"])
    needed = np.ones(len(events), dtype=bool)
    if start_ts is not None:
        needed &= (events[EVENT_TIMESTAMP] > start_ts - window).to_numpy()
    if end_ts is not None:
        needed &= (events[EVENT_TIMESTAMP] < end_ts).to_numpy()
    column = spec["column"]
    frame = pd.DataFrame({f"__key{i}": events[key] for i, key in enumerate(entity_keys)})
    frame["__ts"] = events[EVENT_TIMESTAMP]
    frame["__value"] = 1 if column == "*" else events[column]
    if spec["function"] in NUMERIC_FUNCTIONS:
        frame["__value"] = pd.to_numeric(frame["__value"], errors="coerce").astype("float64")
    frame["__row"] = np.arange(len(events))
    frame["__in_range"] = in_range
    frame = frame.loc[needed]
    # (t - window, t] on microsecond timestamps is [t - window + 1us, t]; RANGE frames include the current row's peers.
    microseconds = int(window / timedelta(microseconds=1)) - 1
    aggregate = _WINDOW_SQL[spec["function"]].format(value="__value")
    partition = ", ".join(quote_identifier(f"__key{i}") for i in range(len(entity_keys)))
    query = f"""
        SELECT __row, __in_range, {aggregate} OVER (
            PARTITION BY {partition} ORDER BY __ts
            RANGE BETWEEN INTERVAL ({microseconds}) MICROSECONDS PRECEDING AND CURRENT ROW
        ) AS __result
        FROM (SELECT *, row_number() OVER (PARTITION BY {partition} ORDER BY __ts, __row) AS __seq FROM frame)
    """  # noqa: S608
    with duckdb.connect() as connection:
        connection.execute("SET TimeZone = 'UTC'")
        connection.register("frame", frame)
        result = connection.sql(f"SELECT __row, __result FROM ({query}) WHERE __in_range ORDER BY __row").df()  # noqa: S608
    values = result["__result"]
    if spec["function"] in ("count", "distinct_count"):
        return values.astype("Int64")
    return values
