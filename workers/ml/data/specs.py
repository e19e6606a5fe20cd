"""Plain-Python specifications the portal checks user input with: validation rules, schema comparison, vocabularies.

STANDARD LIBRARY ONLY. The web process imports this one module of workers.ml (an import-linter exception), so it must
not pull in pyarrow, numpy, pandas or any other workers.ml module (tests/workers/ml/data/test_specs_is_light.py).
validation.py evaluates these rules against data.
"""

import math
from dataclasses import dataclass, field

SEMANTIC_TYPES = ("numeric", "categorical", "datetime", "text", "id", "boolean")
PII_KINDS = (
    "email",
    "phone",
    "ssn",
    "cpf",
    "card_number",
    "iban",
    "ip_address",
    "name",
    "address",
    "date_of_birth",
)
# The column types a schema reports (the normalised Parquet copy holds exactly these Arrow types:
# int64, float64, bool, string, date32, timestamp[us] (UTC when the source had a time zone), binary; "other" is a
# nested list/struct/map column kept as it came).
DTYPES = ("int64", "float64", "bool", "string", "date", "datetime", "binary", "other")
# Spellings people type for the same types; rules store the canonical name.
DTYPE_ALIASES = {
    "int": "int64",
    "integer": "int64",
    "float": "float64",
    "double": "float64",
    "number": "float64",
    "boolean": "bool",
    "str": "string",
    "text": "string",
    "timestamp": "datetime",
}
RULE_FIELDS = (
    "expected_columns",
    "max_missing_share",
    "max_missing_share_by_column",
    "ranges",
    "allowed_categories",
    "unique_columns",
    "min_rows",
)
MAX_NAME_LENGTH = 1024


class RulesError(ValueError):
    """Bad rules; `errors` maps each rule field to its messages (the API's {"errors": {field: [...]}})."""

    def __init__(self, errors: dict[str, list[str]]):
        self.errors = errors
        super().__init__("; ".join(f"{name}: {' '.join(messages)}" for name, messages in errors.items()))


@dataclass
class ValidationRules:
    """The checks every new version of a dataset must pass. Every part is optional.

    expected_columns: name -> dtype; a missing, extra or retyped column fails. None = no expectation, and then the
        pipeline uses the previous version's schema when there is one (so schema drift is caught by default).
    max_missing_share: the largest share (0..1) of missing values allowed in any column ...
    max_missing_share_by_column: ... unless a column has its own limit here.
    ranges: column -> {"min": x, "max": y} (either may be None); numeric columns.
    allowed_categories: column -> the only values allowed (compared as text; missing values are not checked here).
    unique_columns: key columns; each must hold unique, non-missing values on its own.
    min_rows: the fewest rows a version may have.
    """

    expected_columns: dict[str, str] | None = None
    max_missing_share: float | None = None
    max_missing_share_by_column: dict[str, float] = field(default_factory=dict)
    ranges: dict[str, dict] = field(default_factory=dict)
    allowed_categories: dict[str, list[str]] = field(default_factory=dict)
    unique_columns: list[str] = field(default_factory=list)
    min_rows: int | None = None

    @classmethod
    def from_dict(cls, data: dict | None) -> "ValidationRules":
        """Build from as_dict() form (missing keys = defaults). Raises RulesError (a ValueError) naming each bad
        field."""
        data = {} if data is None else data
        errors = rule_errors(data)
        if errors:
            raise RulesError(errors)
        expected = data.get("expected_columns") or None
        return cls(
            expected_columns=(
                {name: _canonical_dtype(dtype) for name, dtype in expected.items()} if expected is not None else None
            ),
            max_missing_share=_float_or_none(data.get("max_missing_share")),
            max_missing_share_by_column={
                name: float(share) for name, share in (data.get("max_missing_share_by_column") or {}).items()
            },
            ranges={
                name: {"min": _number_or_none(bounds.get("min")), "max": _number_or_none(bounds.get("max"))}
                for name, bounds in (data.get("ranges") or {}).items()
            },
            allowed_categories={
                name: _dedupe(str(v) if not isinstance(v, str) else v for v in values)
                for name, values in (data.get("allowed_categories") or {}).items()
            },
            unique_columns=_dedupe(data.get("unique_columns") or []),
            min_rows=int(data["min_rows"]) if data.get("min_rows") is not None else None,
        )

    def as_dict(self) -> dict:
        return {
            "expected_columns": dict(self.expected_columns) if self.expected_columns is not None else None,
            "max_missing_share": self.max_missing_share,
            "max_missing_share_by_column": dict(self.max_missing_share_by_column),
            "ranges": {name: {"min": b.get("min"), "max": b.get("max")} for name, b in self.ranges.items()},
            "allowed_categories": {name: list(values) for name, values in self.allowed_categories.items()},
            "unique_columns": list(self.unique_columns),
            "min_rows": self.min_rows,
        }

    @property
    def is_empty(self) -> bool:
        return self == ValidationRules()


def rule_errors(data) -> dict[str, list[str]]:
    """Field -> messages for rules in as_dict() form; {} when they are valid. Never raises."""
    if not isinstance(data, dict):
        return {"rules": ["Rules must be an object with any of: " + ", ".join(RULE_FIELDS) + "."]}
    errors: dict[str, list[str]] = {}

    def add(name: str, message: str) -> None:
        errors.setdefault(name, []).append(message)

    for key in data:
        if key not in RULE_FIELDS:
            add(str(key), f"Unknown rule '{key}'. Known rules: {', '.join(RULE_FIELDS)}.")

    expected = data.get("expected_columns")
    if expected is not None:
        if not isinstance(expected, dict):
            add("expected_columns", "Expected columns must map each column name to a type.")
        else:
            for name, dtype in expected.items():
                problem = _name_problem(name)
                if problem:
                    add("expected_columns", problem)
                elif not isinstance(dtype, str) or _canonical_dtype(dtype) not in DTYPES:
                    add(
                        "expected_columns",
                        f"Column '{name}': unknown type {dtype!r}. Choose one of: {', '.join(DTYPES)}.",
                    )

    share = data.get("max_missing_share")
    if share is not None and not _is_share(share):
        add("max_missing_share", f"Maximum missing share must be a number from 0 to 1, not {share!r}.")

    by_column = data.get("max_missing_share_by_column")
    if by_column is not None:
        if not isinstance(by_column, dict):
            add("max_missing_share_by_column", "Per-column missing shares must map column names to numbers.")
        else:
            for name, value in by_column.items():
                problem = _name_problem(name)
                if problem:
                    add("max_missing_share_by_column", problem)
                elif not _is_share(value):
                    add(
                        "max_missing_share_by_column",
                        f"Column '{name}': the maximum missing share must be a number from 0 to 1, not {value!r}.",
                    )

    ranges = data.get("ranges")
    if ranges is not None:
        if not isinstance(ranges, dict):
            add("ranges", 'Ranges must map column names to {"min": number, "max": number}.')
        else:
            for name, bounds in ranges.items():
                problem = _name_problem(name)
                if problem:
                    add("ranges", problem)
                    continue
                if not isinstance(bounds, dict) or set(bounds) - {"min", "max"}:
                    add("ranges", f'Column \'{name}\': a range is {{"min": number, "max": number}}.')
                    continue
                low, high = bounds.get("min"), bounds.get("max")
                if low is None and high is None:
                    add("ranges", f"Column '{name}': give a minimum, a maximum or both.")
                    continue
                bad = [label for label, value in (("minimum", low), ("maximum", high)) if not _is_number_or_none(value)]
                if bad:
                    add("ranges", f"Column '{name}': the {' and '.join(bad)} must be a finite number.")
                elif low is not None and high is not None and low > high:
                    add("ranges", f"Column '{name}': the minimum {low} is above the maximum {high}.")

    categories = data.get("allowed_categories")
    if categories is not None:
        if not isinstance(categories, dict):
            add("allowed_categories", "Allowed categories must map column names to lists of values.")
        else:
            for name, values in categories.items():
                problem = _name_problem(name)
                if problem:
                    add("allowed_categories", problem)
                elif not isinstance(values, list) or not values:
                    add("allowed_categories", f"Column '{name}': list at least one allowed value.")
                elif not all(isinstance(v, str | int | float) and not isinstance(v, bool) for v in values):
                    add("allowed_categories", f"Column '{name}': allowed values must be text or numbers.")

    unique = data.get("unique_columns")
    if unique is not None:
        if not isinstance(unique, list):
            add("unique_columns", "Unique columns must be a list of column names.")
        else:
            for name in unique:
                problem = _name_problem(name)
                if problem:
                    add("unique_columns", problem)

    min_rows = data.get("min_rows")
    if min_rows is not None and not (
        isinstance(min_rows, int | float)
        and not isinstance(min_rows, bool)
        and math.isfinite(min_rows)
        and float(min_rows).is_integer()
        and min_rows >= 0
    ):
        add("min_rows", f"Minimum rows must be a whole number of 0 or more, not {min_rows!r}.")
    return errors


def compare_schemas(old: list[dict] | None, new: list[dict] | None) -> dict:
    """What changed between two schemas ([{"name","dtype",...}]): added and removed names (in their schema's
    order), retyped columns, and how many columns kept their name and type."""
    old_types = {column["name"]: column.get("dtype") for column in old or []}
    new_types = {column["name"]: column.get("dtype") for column in new or []}
    return {
        "added": [name for name in new_types if name not in old_types],
        "removed": [name for name in old_types if name not in new_types],
        "type_changed": [
            {"name": name, "old": old_types[name], "new": dtype}
            for name, dtype in new_types.items()
            if name in old_types and old_types[name] != dtype
        ],
        "unchanged": sum(1 for name, dtype in new_types.items() if name in old_types and old_types[name] == dtype),
    }


def expected_columns_from_schema(schema: list[dict] | None) -> dict[str, str] | None:
    """A previous version's schema as expected columns (name -> dtype), or None without one."""
    if not schema:
        return None
    return {column["name"]: column["dtype"] for column in schema}


def _canonical_dtype(dtype: str) -> str:
    key = dtype.strip().lower()
    return DTYPE_ALIASES.get(key, key)


def _name_problem(name) -> str | None:
    if not isinstance(name, str) or not name.strip():
        return "Column names must be non-empty text."
    if len(name) > MAX_NAME_LENGTH:
        return f"Column name '{name[:40]}...' is longer than {MAX_NAME_LENGTH} characters."
    return None


def _is_share(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 1


def _is_number_or_none(value) -> bool:
    if value is None:
        return True
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _number_or_none(value):
    if value is None:
        return None
    return int(value) if isinstance(value, int) else float(value)


def _float_or_none(value):
    return None if value is None else float(value)


def _dedupe(values) -> list:
    return list(dict.fromkeys(values))
