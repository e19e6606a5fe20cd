"""Small seeded data and pipelines fitted the way the platform fits them (workers.ml.training.preparation)."""

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from workers.ml.training.preparation import build_pipeline
from workers.ml.training.spec import DEFAULT_METRIC, ExperimentSpec

FEATURE_KINDS = {"age": "numeric", "income": "numeric", "colour": "categorical", "grade": "categorical"}
# Few trees keep the tests fast; the numbers are not what is being tested.
SMALL_PARAMS = {"lightgbm": {"n_estimators": 20}, "random_forest": {"n_estimators": 15}, "kmeans": {"n_clusters": 3}}


def make_frame(rows: int = 600, seed: int = 0) -> tuple[pd.DataFrame, dict[str, pd.Series], pd.DataFrame]:
    """Features, a target per problem type, and sensitive columns for the same rows."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "age": rng.normal(40, 10, rows),
            "income": rng.normal(0, 1, rows),
            "colour": rng.choice(["red", "green", "blue"], rows),
            "grade": rng.choice([1, 2, 3], rows),  # an integer-coded category
        }
    )
    signal = (X["age"] - 40) / 10 + X["income"] + (X["colour"] == "red") * 1.5
    targets = {
        "binary": pd.Series(np.where(signal + rng.normal(0, 0.7, rows) > 0.5, "yes", "no"), name="target"),
        "multiclass": pd.Series(np.where(signal > 1, "high", np.where(signal < -0.5, "low", "mid")), name="target"),
        "regression": pd.Series(3 * signal + rng.normal(0, 0.5, rows), name="target"),
        "clustering": None,
    }
    sensitive = pd.DataFrame({"sex": rng.choice(["f", "m"], rows), "birth_year": rng.integers(1940, 2005, rows)})
    return X, targets, sensitive


@dataclass
class Fitted:
    pipeline: object
    spec: ExperimentSpec
    X_train: pd.DataFrame
    y_train: pd.Series | None
    X_valid: pd.DataFrame
    y_valid: pd.Series | None
    X_test: pd.DataFrame
    y_test: pd.Series | None
    sensitive_test: pd.DataFrame

    def evaluate_kwargs(self) -> dict:
        return {
            "spec": self.spec,
            "X_train": self.X_train,
            "y_train": self.y_train,
            "X_valid": self.X_valid,
            "y_valid": self.y_valid,
            "X_test": self.X_test,
            "y_test": self.y_test,
        }


def fit_model(problem_type: str, algorithm: str, *, rows: int = 600, seed: int = 0) -> Fitted:
    """A pipeline fitted on the first 60% of the rows; 20% validation, 20% test."""
    X, targets, sensitive = make_frame(rows, seed)
    y = targets[problem_type]
    spec = ExperimentSpec(
        problem_type=problem_type,
        target=None if y is None else "target",
        features=tuple(FEATURE_KINDS),
        feature_kinds=dict(FEATURE_KINDS),
        algorithms=(algorithm,),
        primary_metric=DEFAULT_METRIC[problem_type],
        seed=seed,
    )
    train, valid = int(rows * 0.6), int(rows * 0.8)
    pipeline = build_pipeline(spec, SMALL_PARAMS.get(algorithm, {}))
    pipeline.fit(X.iloc[:train], None if y is None else y.iloc[:train])
    return Fitted(
        pipeline=pipeline,
        spec=spec,
        X_train=X.iloc[:train],
        y_train=_rows(y, 0, train),
        X_valid=X.iloc[train:valid],
        y_valid=_rows(y, train, valid),
        X_test=X.iloc[valid:],
        y_test=_rows(y, valid, rows),
        sensitive_test=sensitive.iloc[valid:],
    )


def _rows(y: pd.Series | None, start: int, stop: int) -> pd.Series | None:
    return None if y is None else y.iloc[start:stop]


@pytest.fixture(scope="session")
def fitted():
    """fit_model, cached for the session: fitting is the slow part, and the tests only read the models."""
    cache: dict[tuple, Fitted] = {}

    def get(problem_type: str, algorithm: str) -> Fitted:
        key = (problem_type, algorithm)
        if key not in cache:
            cache[key] = fit_model(problem_type, algorithm)
        return cache[key]

    return get
