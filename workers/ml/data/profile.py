"""One column at a time: its schema entry (dtype, nullable, semantic type) and its profile.

Profile entry: {"name", "dtype", "semantic_type", "count" (non-missing values), "missing", "missing_share",
"distinct" (distinct non-missing values), "min", "max", "mean", "std" (sample, ddof=1), "quantiles" ({"p05", "p25",
"p50", "p75", "p95"}, linear interpolation; numeric only), "top_values" ([{"value", "count"}], up to 10, most frequent
first, ties in order of first appearance; categorical/text/boolean/id), "histogram" ({"edges": 21, "counts": 20};
numeric and datetime)}. A part that does not apply is None. Every value is JSON-safe: no NaN or infinity (None),
datetimes as ISO 8601 strings.
"""

import datetime as dt
import math
import re
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from workers.ml.data.normalise import dtype_name

SAMPLE_SIZE = 2000
TOP_VALUES = 10
HISTOGRAM_BINS = 20
QUANTILES = {"p05": 0.05, "p25": 0.25, "p50": 0.5, "p75": 0.75, "p95": 0.95}
DATETIME_TEXT_SHARE = 0.95  # text columns where this share of a sample reads as ISO dates are datetimes
ID_NAME_TOKENS = {"id", "uuid", "guid", "key"}
_ISO_DATE = re.compile(
    r"^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})?)?$", re.IGNORECASE
)
_TOKENS = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")


@dataclass
class ColumnSummary:
    schema: dict
    profile: dict
    sample: list = field(default_factory=list)  # up to SAMPLE_SIZE non-missing values, spread over the column


def name_tokens(name: str) -> list[str]:
    """'customerID' -> ['customer', 'id']; 'E-Mail Address' -> ['e', 'mail', 'address']."""
    return [token.lower() for token in _TOKENS.findall(name)]


def json_value(value):
    """A Python/Arrow value as JSON-safe data."""
    if isinstance(value, pa.Scalar):
        value = value.as_py()
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, np.datetime64):
        return np.datetime_as_string(value, unit="us")
    return str(value)


def sample_values(column: pa.ChunkedArray, size: int = SAMPLE_SIZE) -> list:
    """Up to `size` non-missing values, evenly spread over the column (deterministic)."""
    present = len(column) - column.null_count
    if present == 0:
        return []
    values = column.drop_null() if column.null_count else column
    if present <= size:
        return values.to_pylist()
    indices = np.unique(np.linspace(0, present - 1, size).astype(np.int64))
    return values.take(pa.array(indices)).to_pylist()


def datetime_text_share(sample: list) -> float:
    if not sample:
        return 0.0
    return sum(1 for value in sample if isinstance(value, str) and _ISO_DATE.match(value.strip())) / len(sample)


def infer_semantic_type(name: str, dtype: str, *, count: int, distinct: int | None, sample: list, lengths=None) -> str:
    """numeric | categorical | datetime | text | id | boolean (see specs.SEMANTIC_TYPES)."""
    tokens = name_tokens(name)
    id_like_name = bool(tokens) and (tokens[-1] in ID_NAME_TOKENS or tokens[0] == "id")
    if dtype == "bool":
        return "boolean"
    if dtype in ("date", "datetime"):
        return "datetime"
    if dtype == "int64":
        if id_like_name and count and distinct is not None and distinct >= 0.99 * count:
            return "id"
        return "numeric"
    if dtype == "float64":
        return "numeric"
    if dtype != "string" or count == 0:
        return "text" if count else "categorical"
    if datetime_text_share(sample) > DATETIME_TEXT_SHARE:
        return "datetime"
    if id_like_name and distinct is not None and distinct >= 0.9 * count:
        return "id"
    shortest, longest, mean_length = lengths if lengths else (None, None, 0)
    if distinct == count and count >= 20 and shortest == longest:
        return "id"  # unique values of one fixed shape: codes, UUIDs
    if distinct is not None and distinct <= max(50, 0.05 * count) and mean_length <= 40:
        return "categorical"
    return "text"


def _present_numpy(column: pa.ChunkedArray) -> np.ndarray:
    """The non-missing values of a numeric or temporal column as one numpy array (int64/float64/int32)."""
    values = column.drop_null() if column.null_count else column
    array = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    if pa.types.is_timestamp(array.type) or pa.types.is_date64(array.type):
        array = array.view(pa.int64())
    elif pa.types.is_date32(array.type):
        array = array.view(pa.int32())
    return array.to_numpy(zero_copy_only=False)


def _distinct_sorted(ordered: np.ndarray) -> int:
    return int(ordered.size and 1 + np.count_nonzero(ordered[1:] != ordered[:-1]))


def _quantile(ordered: np.ndarray, q: float) -> float:
    """Linear interpolation between closest ranks (numpy's and Arrow's default)."""
    position = q * (ordered.size - 1)
    low = math.floor(position)
    high = min(low + 1, ordered.size - 1)
    a, b = float(ordered[low]), float(ordered[high])
    return a if a == b else a + (b - a) * (position - low)


def _histogram(ordered: np.ndarray) -> dict | None:
    """20 equal-width bins over sorted finite values, as numpy.histogram draws them (the last bin includes its right
    edge), counted with a binary search per edge instead of a pass over the values. Edges are measured from the
    smallest value, so a narrow spread of large numbers (timestamps in microseconds) still gets distinct edges."""
    if ordered.size == 0:
        return None
    origin = float(ordered[0])
    span = float(ordered[-1]) - origin
    low, high = (-0.5, 0.5) if span == 0 else (0.0, span)
    edges = np.linspace(low, high, HISTOGRAM_BINS + 1)
    if np.any(edges[:-1] >= edges[1:]):  # a spread too narrow for 20 distinct float edges
        return None
    shifted_edges = edges + origin
    positions = np.searchsorted(ordered, shifted_edges[:-1], side="left")
    counts = np.diff(np.append(positions, ordered.size))
    return {"edges": [origin + float(edge) for edge in edges], "counts": [int(c) for c in counts]}


def _numeric_stats(values: np.ndarray, ordered: np.ndarray, semantic: str) -> dict:
    """From the non-missing values and the same values sorted: min, max, mean, std, quantiles, histogram."""
    finite = ordered
    if ordered.dtype.kind == "f":
        # Sorted, so the infinities sit at the ends.
        finite = ordered[np.searchsorted(ordered, -np.inf, side="right") : np.searchsorted(ordered, np.inf)]
    stats = {
        "min": json_value(ordered[0].item()),
        "max": json_value(ordered[-1].item()),
    }
    with np.errstate(invalid="ignore", over="ignore"):  # infinities make the mean and std undefined: None
        stats["mean"] = json_value(float(np.mean(values, dtype=np.float64)))
        stats["std"] = json_value(float(np.std(values, ddof=1, dtype=np.float64))) if values.size > 1 else None
    if semantic == "numeric":
        stats["quantiles"] = {key: json_value(_quantile(ordered, q)) for key, q in QUANTILES.items()}
        stats["histogram"] = _histogram(finite)
    return stats


def _timestamps(column: pa.ChunkedArray) -> pa.ChunkedArray | None:
    """A date, timestamp or ISO-text column as timestamp[us] (values that do not parse become missing)."""
    kind = column.type
    if pa.types.is_timestamp(kind):
        return column if kind.unit == "us" else pc.cast(column, pa.timestamp("us", tz=kind.tz))
    if pa.types.is_date(kind):
        return pc.cast(column, pa.timestamp("us"))
    if pa.types.is_string(kind):
        try:
            return pc.cast(column, pa.timestamp("us"))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
        for fmt in ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d"):
            parsed = pc.strptime(column, format=fmt, unit="us", error_is_null=True)
            if parsed.null_count < len(parsed):
                return parsed
    return None


def _iso(micros: float, tz: str | None) -> str:
    moment = dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=round(micros))
    return moment.isoformat() + ("+00:00" if tz else "")


def _datetime_stats(column: pa.ChunkedArray) -> dict:
    stamps = _timestamps(column)
    if stamps is None or stamps.null_count == len(stamps):
        return {}
    micros = np.sort(_present_numpy(stamps))
    stats = {"min": _iso(micros[0], stamps.type.tz), "max": _iso(micros[-1], stamps.type.tz)}
    if pa.types.is_date(column.type):
        minmax = pc.min_max(column)
        stats = {"min": json_value(minmax["min"]), "max": json_value(minmax["max"])}
    histogram = _histogram(micros)
    if histogram:
        histogram["edges"] = [_iso(edge, stamps.type.tz) for edge in histogram["edges"]]
    stats["histogram"] = histogram
    return stats


def _counted(column: pa.ChunkedArray) -> tuple[pa.Array, pa.Array] | None:
    """(values, counts) of the non-missing values, in order of first appearance; None for nested columns."""
    try:
        counted = pc.value_counts(column)
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid, pa.ArrowTypeError):
        return None
    values, counts = counted.field("values"), counted.field("counts")
    if values.null_count:
        keep = pc.is_valid(values)
        values, counts = values.filter(keep), counts.filter(keep)
    return values, counts


def _top_values(values: pa.Array, counts: pa.Array) -> list[dict]:
    order = pc.array_sort_indices(counts, order="descending")[:TOP_VALUES]  # stable: ties keep first appearance
    return [
        {"value": json_value(v), "count": int(c)}
        for v, c in zip(values.take(order).to_pylist(), counts.take(order).to_pylist(), strict=True)
    ]


def summarise_column(name: str, column: pa.ChunkedArray) -> ColumnSummary:
    """Schema entry, profile and a value sample of one (normalised) column."""
    rows = len(column)
    missing = column.null_count
    count = rows - missing
    dtype = dtype_name(column.type)
    numeric = dtype in ("int64", "float64")
    temporal = dtype in ("date", "datetime")
    stats: dict = {}
    counted = None
    if count and (numeric or temporal):
        # Sorting is the cheapest exact route to the distinct count for numbers and dates (numpy's SIMD sort), and
        # the sorted values give the quantiles too.
        values = _present_numpy(column)
        ordered = np.sort(values)
        distinct = _distinct_sorted(ordered)
    elif count:
        counted = _counted(column)
        distinct = len(counted[0]) if counted is not None else None
    else:
        distinct = 0
    sample = sample_values(column) if dtype == "string" else []
    lengths = None
    if dtype == "string" and count:
        text_lengths = pc.binary_length(column)  # bytes, not characters: as good for "one fixed shape", and cheap
        extremes = pc.min_max(text_lengths)
        lengths = (extremes["min"].as_py(), extremes["max"].as_py(), pc.mean(text_lengths).as_py() or 0)
    semantic = infer_semantic_type(name, dtype, count=count, distinct=distinct, sample=sample, lengths=lengths)

    if count:
        if numeric:
            stats = _numeric_stats(values, ordered, semantic)
        elif semantic == "datetime":
            stats = _datetime_stats(column)
        elif dtype == "bool":
            stats["mean"] = json_value(pc.mean(pc.cast(column, pa.float64())))
        if semantic in ("categorical", "text", "boolean", "id"):
            if counted is None and distinct == count:
                # Every value appears once: the top values are simply the first ten (ties keep first appearance).
                first = (column.drop_null() if missing else column).slice(0, TOP_VALUES).to_pylist()
                stats["top_values"] = [{"value": json_value(value), "count": 1} for value in first]
            else:
                counted = counted or _counted(column)
                if counted is not None:
                    stats["top_values"] = _top_values(*counted)
    profile = {
        "name": name,
        "dtype": dtype,
        "semantic_type": semantic,
        "count": count,
        "missing": missing,
        "missing_share": (missing / rows) if rows else 0.0,
        "distinct": distinct,
        "min": None,
        "max": None,
        "mean": None,
        "std": None,
        "quantiles": None,
        "top_values": None,
        "histogram": None,
    }
    profile.update(stats)
    schema = {"name": name, "dtype": dtype, "nullable": missing > 0, "semantic_type": semantic}
    return ColumnSummary(schema=schema, profile=profile, sample=sample)
