"""Prediction inputs checked against a version's input signature (workers.ml.training.signature), column by column.

Both protocols parse their body into `{column: [values]}` and hand it here. Every problem is an InputError naming
the field; nothing is coerced silently: a number sent as text, a bool sent for a number, a category the model never
saw are refused, not converted. Rules per signature kind:
- numeric: JSON numbers (booleans only when the column's dtype is bool); finite;
- categorical: text, integers or booleans, refused unless among the signature's `categories` (unless the signature
  says it truncated them: then any value is accepted and the one-hot encoder ignores unseen ones);
- boolean: true/false, 0/1, or the text the pipeline reads as booleans ("yes", "no", ...);
- datetime: ISO 8601 text;
- null (missing) only where the training rows had missing values (`nullable`), the pipeline imputes it then.
"""

import math
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from workers.ml.training.preparation import FALSE_TEXT, TRUE_TEXT

BOOLEAN_TEXT = TRUE_TEXT | FALSE_TEXT


class InputError(ValueError):
    """A request the model cannot answer; `field` names what to fix."""

    def __init__(self, field: str, message: str, *, status: int = 400):
        self.field = field
        self.status = status
        super().__init__(f"{field}: {message}")


class ColumnCheck:
    """The compiled rules of one signature column (built once per version, used on every request)."""

    def __init__(self, column: dict[str, Any]):
        self.name = column["name"]
        self.kind = column["kind"]
        self.nullable = bool(column.get("nullable"))
        self.numbers_from_bool = column.get("dtype") == "bool"
        truncated = column.get("categories_truncated", False)
        self.categories = None if truncated else frozenset(column.get("categories") or ())

    def values(self, values: list[Any]) -> np.ndarray | list[Any]:
        """The column as the pipeline takes it, or InputError naming the first bad row."""
        check = getattr(self, f"_{self.kind}")
        for row, value in enumerate(values):
            if value is None:
                if not self.nullable:
                    raise InputError(self.name, f"row {row}: a value is required (the model never saw it missing).")
                continue
            check(row, value)
        if self.kind == "numeric":
            return np.array([np.nan if value is None else value for value in values], dtype="float64")
        return values

    def _refuse(self, row: int, value: Any, expected: str) -> None:
        raise InputError(self.name, f"row {row}: expected {expected}, got {_describe(value)}.")

    def _numeric(self, row: int, value: Any) -> None:
        if isinstance(value, bool):
            if not self.numbers_from_bool:
                self._refuse(row, value, "a number")
        elif not isinstance(value, int | float):
            self._refuse(row, value, "a number")
        elif not math.isfinite(value):
            raise InputError(self.name, f"row {row}: NaN and infinity are not allowed; send null for a missing value.")

    def _categorical(self, row: int, value: Any) -> None:
        if isinstance(value, float) or not isinstance(value, str | int):
            self._refuse(row, value, "a category (text or integer)")
        if self.categories is not None and category_key(value) not in self.categories:
            raise InputError(self.name, f"row {row}: {value!r} is not a category the model was trained on.")

    def _boolean(self, row: int, value: Any) -> None:
        if isinstance(value, bool) or (isinstance(value, int) and value in (0, 1)):
            return
        if not isinstance(value, str) or value.strip().lower() not in BOOLEAN_TEXT:
            self._refuse(row, value, "true or false")

    def _datetime(self, row: int, value: Any) -> None:
        if not isinstance(value, str):
            self._refuse(row, value, "an ISO 8601 date or datetime text")
        try:
            datetime.fromisoformat(value)
        except ValueError:
            self._refuse(row, value, "an ISO 8601 date or datetime text")


def category_key(value: Any) -> str:
    """A category as the signature records it (workers.ml.training.preparation.category_text)."""
    return str(value)


def _describe(value: Any) -> str:
    if isinstance(value, str):
        return f"text {value[:40]!r}"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    return f"a JSON {type(value).__name__.replace('dict', 'object').replace('list', 'array')}"


class InputValidator:
    """Turns `{column: [values]}` into the DataFrame the pipeline predicts on, or raises InputError."""

    def __init__(self, signature: dict[str, Any], *, max_rows: int):
        self.checks = [ColumnCheck(column) for column in signature["columns"]]
        self.names = [check.name for check in self.checks]
        self.max_rows = max_rows

    def frame(self, columns: dict[str, list[Any]]) -> pd.DataFrame:
        unknown = [name for name in columns if name not in set(self.names)]
        if unknown:
            raise InputError(unknown[0], f"unknown column; the model takes: {', '.join(self.names)}.")
        missing = [name for name in self.names if name not in columns]
        if missing:
            raise InputError(missing[0], "this column is required.")
        lengths = {len(columns[name]) for name in self.names}
        if len(lengths) != 1:
            raise InputError("inputs", "every column must have the same number of rows.")
        rows = lengths.pop()
        if rows == 0:
            raise InputError("inputs", "send at least one row.")
        if rows > self.max_rows:
            raise InputError("inputs", f"{rows} rows is over the limit of {self.max_rows} per request.", status=413)
        return pd.DataFrame({check.name: check.values(columns[check.name]) for check in self.checks})
