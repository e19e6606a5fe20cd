"""Small seeded frames and specs for the training tests."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from workers.ml.training.spec import ExperimentSpec, Preparation, Search, Split

KINDS = {"income": "numeric", "age": "numeric", "region": "categorical", "joined": "datetime", "member": "boolean"}


def customer_frame(rows: int = 400, seed: int = 7) -> pd.DataFrame:
    """Customers who churn more when young, poor, in the north, and not members; some values missing."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "income": rng.normal(50_000, 15_000, rows).round(2),
            "age": rng.integers(18, 80, rows).astype("float64"),
            "region": rng.choice(["north", "south", "east", "west"], rows),
            "joined": pd.Timestamp("2018-01-01") + pd.to_timedelta(rng.integers(0, 2000, rows), unit="D"),
            "member": rng.random(rows) < 0.4,
            "gender": rng.choice(["f", "m"], rows),
        }
    )
    signal = (
        -(frame["income"] - 50_000) / 15_000
        - (frame["age"] - 50) / 20
        + (frame["region"] == "north") * 1.0
        - frame["member"] * 0.8
        + rng.normal(0, 0.7, rows)
    )
    frame["churned"] = np.where(signal > 0.3, "yes", "no")
    frame["spend"] = (frame["income"] / 1000 + (frame["region"] == "north") * 5 + rng.normal(0, 2, rows)).round(2)
    frame["segment"] = np.select([signal < -0.7, signal < 0.7], ["low", "mid"], "high")
    frame.loc[rng.random(rows) < 0.08, "income"] = np.nan
    frame.loc[rng.random(rows) < 0.05, "region"] = None
    return frame


def make_spec(
    problem_type: str = "binary",
    *,
    algorithm: str = "lightgbm",
    features: tuple[str, ...] = tuple(KINDS),
    preparation: Preparation | None = None,
    split: Split | None = None,
    search: Search | None = None,
    **overrides,
) -> ExperimentSpec:
    target = {"binary": "churned", "multiclass": "segment", "regression": "spend", "clustering": None}[problem_type]
    metric = {"binary": "roc_auc", "multiclass": "f1_macro", "regression": "rmse", "clustering": "silhouette"}
    spec = ExperimentSpec(
        problem_type=problem_type,
        target=target,
        features=features,
        feature_kinds={name: KINDS[name] for name in features},
        algorithms=(algorithm,),
        primary_metric=metric[problem_type],
        preparation=preparation or Preparation(),
        split=split
        or Split(strategy="stratified" if problem_type in ("binary", "multiclass") else "random", cv_folds=0),
        search=search or Search(),
        seed=11,
    )
    return replace(spec, **overrides)


@pytest.fixture
def frame() -> pd.DataFrame:
    return customer_frame()
