"""Evaluates specs.ValidationRules against a version's data, one column at a time, into a report a person can read.

Report: {"passed": bool, "checks": [{"rule", "column", "passed", "message", "details"}]}, checks in this order:
min_rows, expected_columns (the previous version's schema when the rules name none), max_missing_share per column,
range, allowed_categories and unique per rule column. A rule naming a column the data lacks fails ("not found").
"""

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from workers.ml.data.limits import plural
from workers.ml.data.normalise import dtype_name
from workers.ml.data.specs import ValidationRules, expected_columns_from_schema

EXAMPLES = 5


_n = plural


def _number(value) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"{value}" if not isinstance(value, float) else repr(value)


def _pct(share: float) -> str:
    percent = share * 100
    if 0 < percent < 0.1:
        return f"{percent:.2g}%"
    return f"{percent:.1f}%"


def _check(rule: str, column: str | None, passed: bool, message: str, **details) -> dict:
    return {"rule": rule, "column": column, "passed": passed, "message": message, "details": details}


@dataclass
class ValidationReport:
    checks: list[dict] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(check["passed"] for check in self.checks)

    def as_dict(self) -> dict:
        return {"passed": self.passed, "checks": list(self.checks)}


class Validator:
    """Feed it every column (column()), then ask for the report (report())."""

    def __init__(self, rules: ValidationRules | dict, *, row_count: int, previous_schema: list[dict] | None = None):
        self.rules = rules if isinstance(rules, ValidationRules) else ValidationRules.from_dict(rules)
        self.row_count = row_count
        self.expected = self.rules.expected_columns
        self.expected_source = "rules"
        if self.expected is None and previous_schema:
            self.expected = expected_columns_from_schema(previous_schema)
            self.expected_source = "previous_version"
        self._missing: list[dict] = []
        self._range: dict[str, dict] = {}
        self._categories: dict[str, dict] = {}
        self._unique: dict[str, dict] = {}

    def column(self, name: str, column: pa.ChunkedArray | pa.Array) -> None:
        self.record(self.column_checks(name, column))

    def column_checks(self, name: str, column: pa.ChunkedArray | pa.Array) -> dict[str, dict]:
        """The checks of one column by rule name; changes nothing, so columns can be checked on several threads."""
        rules = self.rules
        checks = {}
        limit = rules.max_missing_share_by_column.get(name, rules.max_missing_share)
        if limit is not None:
            checks["max_missing_share"] = self._check_missing(name, column, limit)
        if name in rules.ranges:
            checks["range"] = self._check_range(name, column, rules.ranges[name])
        if name in rules.allowed_categories:
            checks["allowed_categories"] = self._check_categories(name, column, rules.allowed_categories[name])
        if name in rules.unique_columns:
            checks["unique"] = self._check_unique(name, column)
        return checks

    def record(self, checks: dict[str, dict]) -> None:
        """Add one column's checks (call in column order)."""
        if "max_missing_share" in checks:
            self._missing.append(checks["max_missing_share"])
        for rule, found in (("range", self._range), ("allowed_categories", self._categories), ("unique", self._unique)):
            if rule in checks:
                found[checks[rule]["column"]] = checks[rule]

    def report(self, schema: list[dict]) -> ValidationReport:
        checks = []
        if self.rules.min_rows is not None:
            checks.append(self._check_min_rows())
        if self.expected is not None:
            checks.append(self._check_expected(schema))
        checks.extend(self._missing)
        for rule, wanted, found in (
            ("range", self.rules.ranges, self._range),
            ("allowed_categories", self.rules.allowed_categories, self._categories),
            ("unique", self.rules.unique_columns, self._unique),
        ):
            for name in wanted:
                checks.append(found.get(name) or _check(rule, name, False, f"{name}: column not found in the data."))
        return ValidationReport(checks)

    def _check_min_rows(self) -> dict:
        rows, minimum = self.row_count, self.rules.min_rows
        if rows >= minimum:
            message = f"The dataset has {_n(rows, 'row')} (at least {minimum:,} required)."
        else:
            message = f"The dataset has {_n(rows, 'row')}; at least {minimum:,} are required."
        return _check("min_rows", None, rows >= minimum, message, rows=rows, min_rows=minimum)

    def _check_expected(self, schema: list[dict]) -> dict:
        found = {column["name"]: column["dtype"] for column in schema}
        expected = self.expected
        missing = [name for name in expected if name not in found]
        unexpected = [name for name in found if name not in expected]
        retyped = [
            {"name": name, "expected": dtype, "found": found[name]}
            for name, dtype in expected.items()
            if name in found and found[name] != dtype
        ]
        origin = " (from the previous version's schema)" if self.expected_source == "previous_version" else ""
        if not (missing or unexpected or retyped):
            message = f"All {_n(len(expected), 'expected column')} are present with the expected types{origin}."
        else:
            parts = []
            if missing:
                parts.append(f"missing {', '.join(missing)}")
            if unexpected:
                parts.append(f"unexpected {', '.join(unexpected)}")
            parts.extend(f"{r['name']} is {r['found']}, expected {r['expected']}" for r in retyped)
            message = f"The columns differ from the expected columns{origin}: " + "; ".join(parts) + "."
        return _check(
            "expected_columns",
            None,
            not (missing or unexpected or retyped),
            message,
            missing=missing,
            unexpected=unexpected,
            type_changed=retyped,
            source=self.expected_source,
        )

    def _check_missing(self, name: str, column, limit: float) -> dict:
        rows = len(column)
        missing = column.null_count
        share = missing / rows if rows else 0.0
        passed = share <= limit
        if passed:
            message = f"{name}: {_pct(share)} missing (limit {_pct(limit)})."
        else:
            message = f"{name}: {_pct(share)} missing, above the limit of {_pct(limit)}."
        return _check("max_missing_share", name, passed, message, missing=missing, share=share, limit=limit)

    def _check_range(self, name: str, column, bounds: dict) -> dict:
        low, high = bounds.get("min"), bounds.get("max")
        dtype = dtype_name(column.type)
        if dtype not in ("int64", "float64"):
            return _check("range", name, False, f"{name}: a range needs a numeric column; this one is {dtype}.")
        below = pc.sum(pc.less(column, low)).as_py() or 0 if low is not None else 0
        above = pc.sum(pc.greater(column, high)).as_py() or 0 if high is not None else 0
        seen = pc.min_max(column)
        seen_min, seen_max = seen["min"].as_py(), seen["max"].as_py()
        problems = []
        if below:
            problems.append(f"{_n(below, 'value')} below the minimum {_number(low)} (min seen {_number(seen_min)})")
        if above:
            problems.append(f"{_n(above, 'value')} above the maximum {_number(high)} (max seen {_number(seen_max)})")
        if problems:
            message = f"{name}: " + " and ".join(problems) + "."
        elif low is not None and high is not None:
            message = f"{name}: all values within [{_number(low)}, {_number(high)}]."
        elif low is not None:
            message = f"{name}: all values at least {_number(low)}."
        else:
            message = f"{name}: all values at most {_number(high)}."
        return _check(
            "range",
            name,
            not problems,
            message,
            below=below,
            above=above,
            min=low,
            max=high,
            min_seen=seen_min,
            max_seen=seen_max,
        )

    def _check_categories(self, name: str, column, allowed: list[str]) -> dict:
        text = column if pa.types.is_string(column.type) else pc.cast(column, pa.string())
        outside = pc.and_(pc.invert(pc.is_in(text, value_set=pa.array(allowed, pa.string()))), pc.is_valid(text))
        rows = pc.sum(outside).as_py() or 0
        if rows == 0:
            return _check(
                "allowed_categories",
                name,
                True,
                f"{name}: all values are among the {_n(len(allowed), 'allowed category', 'allowed categories')}.",
                rows_outside=0,
                examples=[],
            )
        examples = pc.unique(text.filter(outside)).to_pylist()[:EXAMPLES]
        listed = ", ".join(f"'{value}'" for value in examples)
        return _check(
            "allowed_categories",
            name,
            False,
            f"{name}: {_n(rows, 'row holds', 'rows hold')} values outside the allowed categories: {listed}.",
            rows_outside=rows,
            examples=examples,
        )

    def _check_unique(self, name: str, column) -> dict:
        missing = column.null_count
        present = column.drop_null() if missing else column
        if dtype_name(column.type) in ("int64", "float64", "date", "datetime"):
            # Numbers and dates: one sort finds the repeats (much cheaper than hashing a million keys).
            array = present.combine_chunks() if isinstance(present, pa.ChunkedArray) else present
            kind = array.type
            if pa.types.is_timestamp(kind):
                array = array.view(pa.int64())
            elif pa.types.is_date32(kind):
                array = array.view(pa.int32())
            ordered = np.sort(array.to_numpy(zero_copy_only=False))
            repeats = np.unique(ordered[1:][ordered[1:] == ordered[:-1]])
            duplicated = int(repeats.size)
            examples = pa.array(repeats[:EXAMPLES]).cast(kind).to_pylist() if duplicated else []
        else:
            counted = pc.value_counts(present)
            repeated = pc.greater(counted.field("counts"), 1)
            duplicated = pc.sum(repeated).as_py() or 0
            examples = counted.field("values").filter(repeated).to_pylist()[:EXAMPLES]
        examples = [v if isinstance(v, int | float | str | bool) else str(v) for v in examples]
        problems = []
        if duplicated:
            listed = ", ".join(_number(v) if not isinstance(v, str) else f"'{v}'" for v in examples)
            problems.append(f"{_n(duplicated, 'value appears', 'values appear')} more than once (e.g. {listed})")
        if missing:
            problems.append(f"{_n(missing, 'missing value')} in a key column")
        if problems:
            message = f"{name}: " + "; ".join(problems) + "."
        else:
            message = f"{name}: all {len(column):,} values are unique."
        return _check(
            "unique", name, not problems, message, duplicated_values=duplicated, missing=missing, examples=examples
        )


def validate_table(table: pa.Table, rules: ValidationRules | dict, previous_schema: list[dict] | None = None) -> dict:
    """The report for an in-memory table (its columns must be normalised already); for tests and small data."""
    validator = Validator(rules, row_count=table.num_rows, previous_schema=previous_schema)
    for name, column in zip(table.column_names, table.columns, strict=True):
        validator.column(name, column)
    schema = [{"name": name, "dtype": dtype_name(column.type)} for name, column in zip(table.column_names,
              table.columns, strict=True)]  # fmt: skip
    return validator.report(schema).as_dict()
