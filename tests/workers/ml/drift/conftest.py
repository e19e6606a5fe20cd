"""Seeded frames for the drift tests: numeric, categorical, boolean and datetime columns, with a binary model's
positive-class probability as its prediction."""

import numpy as np
import pandas as pd
import pytest

SIGNATURE = {
    "columns": [
        {"name": "income", "kind": "numeric"},
        {"name": "age", "kind": "numeric"},
        {"name": "region", "kind": "categorical"},
        {"name": "member", "kind": "boolean"},
        {"name": "signup", "kind": "datetime"},
    ],
    "target": {"name": "churn", "classes": [0, 1]},
}


def make_frame(rows: int, seed: int, *, income_shift: float = 0.0, region_shares=(0.5, 0.3, 0.2)) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    income = rng.normal(50_000 + income_shift, 10_000, rows)
    income[rng.random(rows) < 0.02] = np.nan
    region = rng.choice(["north", "south", "east"], rows, p=list(region_shares)).astype(object)
    region[rng.random(rows) < 0.02] = np.nan
    return pd.DataFrame(
        {
            "income": income,
            "age": rng.integers(18, 90, rows),
            "region": region,
            "member": rng.random(rows) < 0.3,
            "signup": pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(rng.integers(0, 365, rows), unit="D"),
        }
    )


def make_predictions(rows: int, seed: int, *, shift: float = 0.0) -> pd.Series:
    rng = np.random.default_rng(seed + 1000)
    return pd.Series(np.clip(rng.beta(2, 5, rows) + shift, 0.0, 1.0))


@pytest.fixture
def signature():
    return SIGNATURE
