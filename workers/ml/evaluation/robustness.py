"""How much predictions move under small perturbations of the inputs, on a seeded sample of test rows.

- Noise: Gaussian noise of NOISE_LEVELS x each numeric feature's training standard deviation, on every numeric
  feature at once.
- Unseen categories: each categorical feature in turn replaced by a value never seen in training.
Change is the share of predictions that differ (classification, clustering), or for regression the mean absolute
change relative to the mean absolute prediction (a per-row ratio explodes near zero predictions), with the mean
absolute change itself.
"""

import numpy as np
import pandas as pd

NOISE_LEVELS = (0.01, 0.05)
MAX_ROWS = 1000
UNSEEN_TOKEN = "__unseen__"


def robustness_report(pipeline, *, spec, X_train: pd.DataFrame, X_test: pd.DataFrame) -> dict:
    rows = X_test.sample(n=min(MAX_ROWS, len(X_test)), random_state=spec.seed)
    baseline = pipeline.predict(rows)
    regression = spec.problem_type == "regression"
    rng = np.random.default_rng(spec.seed)
    numeric = [name for name in spec.features if spec.feature_kinds.get(name) == "numeric"]
    categorical = [name for name in spec.features if spec.feature_kinds.get(name) == "categorical"]
    noise = [
        {
            "level": level,
            **_change(baseline, pipeline.predict(_with_noise(rows, X_train, numeric, level, rng)), regression),
        }
        for level in NOISE_LEVELS
    ]
    unseen = [
        {"feature": name, **_change(baseline, pipeline.predict(_with_unseen(rows, X_train, name)), regression)}
        for name in categorical
        if not pd.api.types.is_bool_dtype(X_train[name])  # a boolean has no value left to be unseen
    ]
    return {"rows": len(rows), "numeric_features": numeric, "noise": noise, "unseen_categories": unseen}


def _with_noise(rows, X_train, numeric, level, rng) -> pd.DataFrame:
    noisy = rows.copy()
    for name in numeric:
        std = float(pd.to_numeric(X_train[name], errors="coerce").std())
        scale = level * std if np.isfinite(std) else 0.0
        noisy[name] = rows[name].astype(float) + rng.normal(0.0, scale, len(rows))
    return noisy


def _with_unseen(rows, X_train, name) -> pd.DataFrame:
    changed = rows.copy()
    # An integer-coded category gets one below the smallest seen value, so the column keeps its type.
    numeric = pd.api.types.is_numeric_dtype(X_train[name])
    changed[name] = X_train[name].min() - 1 if numeric else UNSEEN_TOKEN
    return changed


def _change(baseline: np.ndarray, perturbed: np.ndarray, regression: bool) -> dict:
    if not regression:
        return {"changed_share": float(np.mean(np.asarray(baseline) != np.asarray(perturbed)))}
    absolute_change = float(np.mean(np.abs(perturbed.astype(float) - baseline.astype(float))))
    scale = float(np.mean(np.abs(baseline.astype(float))))
    return {"mean_absolute_change": absolute_change, "mean_relative_change": absolute_change / scale if scale else None}
