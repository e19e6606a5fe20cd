"""Turn evaluation results into plain JSON: Python numbers and strings, lists, string keys, no NaN or infinity.

Results are stored in PostgreSQL JSON columns and drawn in the browser, where NaN is not valid JSON: a value that
cannot be computed is None ("not available"), never NaN.
"""

import datetime
import math
from typing import Any

import numpy as np
import pandas as pd


def plain(value: Any) -> Any:
    """One scalar as a JSON value (numpy numbers, timestamps and missing markers included)."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, int | bool):
        return value
    if isinstance(value, pd.Timestamp | datetime.date):
        return None if pd.isna(value) else value.isoformat()
    if pd.api.types.is_scalar(value) and pd.isna(value):
        return None
    return str(value)


def json_safe(value: Any) -> Any:
    """The whole structure, recursively (dict keys become strings)."""
    if isinstance(value, dict):
        return {str(plain(key)): json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple | np.ndarray | pd.Series | pd.Index):
        return [json_safe(item) for item in value]
    return plain(value)
