"""Accuracy against a plain script: LightGBM through train_run and through plain scikit-learn/LightGBM with the same
data, split, seed and parameters give the same test metrics (within 1e-6)."""

import numpy as np
import pytest
from lightgbm import LGBMClassifier, LGBMRegressor
from sklearn import metrics
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from tests.workers.ml.training.conftest import customer_frame, make_spec
from workers.ml.training.run import train_run
from workers.ml.training.spec import Preparation, Search, Split

SEED = 11
NUMERIC, BOOLEAN, CATEGORICAL = ["income", "age"], ["member"], ["region"]
FEATURES = NUMERIC + BOOLEAN + CATEGORICAL
TOLERANCE = 1e-6


def plain_script(frame, target: str, *, stratify: bool, params: dict, classifier: bool):
    """What a data scientist would write: split twice, impute the median, one-hot the categories, fit LightGBM."""
    rest, test = train_test_split(
        frame, test_size=0.15, random_state=SEED, stratify=frame[target] if stratify else None
    )
    train, _ = train_test_split(
        rest, test_size=0.15 / 0.85, random_state=SEED, stratify=rest[target] if stratify else None
    )
    prepare = ColumnTransformer(
        [
            ("numeric", SimpleImputer(strategy="median"), NUMERIC),
            ("boolean", "passthrough", BOOLEAN),
            ("categorical", OneHotEncoder(handle_unknown="ignore", sparse_output=False), CATEGORICAL),
        ]
    )
    estimator = (LGBMClassifier if classifier else LGBMRegressor)(
        n_jobs=1, verbose=-1, deterministic=True, force_row_wise=True, random_state=SEED, **params
    )
    model = Pipeline([("prepare", prepare), ("model", estimator)]).fit(train[FEATURES], train[target])
    return model, test


@pytest.fixture
def data():
    frame = customer_frame(rows=1500, seed=3)
    frame["region"] = frame["region"].fillna("central")  # categories complete; numeric gaps stay (median)
    return frame


def lightgbm_spec(problem_type: str, search: Search):
    spec = make_spec(
        problem_type,
        features=tuple(FEATURES),
        preparation=Preparation(missing="median", scaling="none", encoding="onehot"),
        search=search,
    )
    assert spec.split == Split(strategy=spec.split.strategy, train=0.7, validation=0.15, test=0.15, cv_folds=0)
    return spec


def test_binary_lightgbm_matches_a_plain_script(data):
    outcome = train_run(data, lightgbm_spec("binary", Search("random", 3)), shap_rows=0)
    model, test = plain_script(data, "churned", stratify=True, params=outcome.params, classifier=True)
    proba = model.predict_proba(test[FEATURES])[:, 1]
    predicted = model.predict(test[FEATURES])
    truth = test["churned"]
    expected = {
        "roc_auc": metrics.roc_auc_score(truth == "yes", proba),
        "pr_auc": metrics.average_precision_score(truth == "yes", proba),
        "log_loss": metrics.log_loss(truth, model.predict_proba(test[FEATURES]), labels=["no", "yes"]),
        "accuracy": metrics.accuracy_score(truth, predicted),
        "f1": metrics.f1_score(truth, predicted, pos_label="yes"),
    }
    reported = outcome.evaluation["test"]
    for name, value in expected.items():
        assert reported[name] == pytest.approx(value, abs=TOLERANCE), name
    assert outcome.test_score == pytest.approx(expected["roc_auc"], abs=TOLERANCE)
    served = outcome.pipeline.predict_proba(test[FEATURES])[:, 1]
    assert np.max(np.abs(served - proba)) < TOLERANCE


def test_regression_lightgbm_matches_a_plain_script(data):
    outcome = train_run(data, lightgbm_spec("regression", Search("none")), shap_rows=0)
    model, test = plain_script(data, "spend", stratify=False, params={}, classifier=False)
    predicted = model.predict(test[FEATURES])
    expected = {
        "rmse": metrics.root_mean_squared_error(test["spend"], predicted),
        "mae": metrics.mean_absolute_error(test["spend"], predicted),
        "r2": metrics.r2_score(test["spend"], predicted),
    }
    for name, value in expected.items():
        assert outcome.evaluation["test"][name] == pytest.approx(value, abs=TOLERANCE), name
    assert outcome.test_score == pytest.approx(expected["rmse"], abs=TOLERANCE)
