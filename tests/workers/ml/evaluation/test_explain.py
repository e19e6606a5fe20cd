"""SHAP per raw feature: contributions plus base value give the model's output; one-hot columns sum per feature."""

import numpy as np
import pytest
import shap
from sklearn.naive_bayes import GaussianNB
from sklearn.pipeline import Pipeline

from tests.workers.ml.evaluation.conftest import FEATURE_KINDS
from workers.ml.evaluation.explain import (
    ExplanationUnavailable,
    build_explainer,
    explain_rows,
    global_importance,
    shap_values,
)
from workers.ml.training.preparation import build_preprocessor, prepared_feature_sources

TREE_BASED = {"lightgbm": True, "random_forest": True, "logistic_regression": False, "linear_regression": False}


def explain(model, rows=40):
    explainer = build_explainer(
        model.pipeline,
        model.X_train.iloc[:50],
        tree_based=TREE_BASED[model.spec.algorithms[0]],
        problem_type=model.spec.problem_type,
    )
    return explainer, explain_rows(explainer, model.X_test.iloc[:rows])


def prepared(model, rows=40):
    return model.pipeline[:-1].transform(model.X_test.iloc[:rows])


def assert_additive(explanations, expected_outputs):
    totals = [row["base_value"] + sum(row["contributions"].values()) for row in explanations]
    np.testing.assert_allclose(totals, expected_outputs, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose([row["prediction"] for row in explanations], expected_outputs, rtol=1e-6, atol=1e-6)


def test_lightgbm_binary_adds_up_to_the_log_odds_of_the_positive_class(fitted):
    model = fitted("binary", "lightgbm")
    explainer, explanations = explain(model)
    assert (explainer.kind, explainer.output) == ("tree", "log_odds")
    assert_additive(explanations, model.pipeline[-1].predict(prepared(model), raw_score=True))
    assert {row["class"] for row in explanations} == {"yes"}
    assert set(explanations[0]["contributions"]) == set(FEATURE_KINDS)


def test_lightgbm_multiclass_explains_the_predicted_class(fitted):
    model = fitted("multiclass", "lightgbm")
    _, explanations = explain(model)
    raw = model.pipeline[-1].predict(prepared(model), raw_score=True)
    predicted = raw.argmax(axis=1)
    assert_additive(explanations, raw[np.arange(len(raw)), predicted])
    assert [row["class"] for row in explanations] == list(model.pipeline.predict(model.X_test.iloc[:40]))


def test_random_forest_adds_up_to_the_positive_probability(fitted):
    model = fitted("binary", "random_forest")
    explainer, explanations = explain(model)
    assert explainer.output == "probability"
    assert_additive(explanations, model.pipeline.predict_proba(model.X_test.iloc[:40])[:, 1])


def test_logistic_regression_uses_the_linear_explainer_in_log_odds(fitted):
    model = fitted("binary", "logistic_regression")
    explainer, explanations = explain(model)
    assert (explainer.kind, explainer.output) == ("linear", "log_odds")
    assert_additive(explanations, model.pipeline.decision_function(model.X_test.iloc[:40]))


def test_multiclass_logistic_regression_explains_the_predicted_class_logit(fitted):
    model = fitted("multiclass", "logistic_regression")
    _, explanations = explain(model)
    logits = model.pipeline.decision_function(model.X_test.iloc[:40])
    assert_additive(explanations, logits.max(axis=1))


def test_ridge_adds_up_to_the_prediction(fitted):
    model = fitted("regression", "linear_regression")
    explainer, explanations = explain(model)
    assert (explainer.kind, explainer.output) == ("linear", "value")
    assert_additive(explanations, model.pipeline.predict(model.X_test.iloc[:40]))
    assert {row["class"] for row in explanations} == {None}


def test_other_models_use_the_kernel_explainer_on_probabilities(fitted):
    model = fitted("binary", "logistic_regression")
    pipeline = Pipeline([("prepare", build_preprocessor(model.spec)), ("model", GaussianNB())])
    pipeline.fit(model.X_train, model.y_train)
    explainer = build_explainer(pipeline, model.X_train.iloc[:30], tree_based=False, problem_type="binary")
    explanations = explain_rows(explainer, model.X_test.iloc[:5])
    assert (explainer.kind, explainer.output) == ("kernel", "probability")
    assert_additive(explanations, pipeline.predict_proba(model.X_test.iloc[:5])[:, 1])


@pytest.mark.filterwarnings("ignore:LightGBM binary classifier:UserWarning")
def test_one_hot_columns_sum_into_their_raw_feature(fitted):
    model = fitted("binary", "lightgbm")
    sources = np.array(prepared_feature_sources(model.pipeline))
    assert (sources == "colour").sum() == 3  # red, green, blue
    direct = shap.TreeExplainer(model.pipeline[-1]).shap_values(prepared(model, 10))
    _, explanations = explain(model, rows=10)
    for row, values in zip(explanations, direct, strict=True):
        assert row["contributions"]["colour"] == pytest.approx(values[sources == "colour"].sum(), abs=1e-9)
        assert row["contributions"]["age"] == pytest.approx(values[sources == "age"].sum(), abs=1e-9)


def test_contributions_come_largest_first(fitted):
    _, explanations = explain(fitted("regression", "linear_regression"), rows=5)
    for row in explanations:
        sizes = [abs(value) for value in row["contributions"].values()]
        assert sizes == sorted(sizes, reverse=True)


def test_global_importance_is_the_mean_absolute_contribution(fitted):
    model = fitted("binary", "lightgbm")
    explainer = build_explainer(model.pipeline, model.X_train.iloc[:50], tree_based=True, problem_type="binary")
    values = shap_values(explainer, model.X_test.iloc[:40])
    rows = explain_rows(explainer, model.X_test.iloc[:40])
    importance = global_importance(values)
    for feature in FEATURE_KINDS:
        expected = np.mean([abs(row["contributions"][feature]) for row in rows])
        assert importance[feature] == pytest.approx(expected)
    assert list(importance.values()) == sorted(importance.values(), reverse=True)
    assert importance["grade"] < importance["income"]  # grade is noise, income drives the target


def test_multiclass_importance_averages_over_classes(fitted):
    model = fitted("multiclass", "lightgbm")
    explainer = build_explainer(model.pipeline, model.X_train.iloc[:50], tree_based=True, problem_type="multiclass")
    values = shap_values(explainer, model.X_test.iloc[:40])
    assert values.values.shape == (40, len(FEATURE_KINDS), 3)
    per_class = np.abs(values.values).mean(axis=0)  # (features, classes)
    assert global_importance(values)["income"] == pytest.approx(per_class[explainer.features.index("income")].mean())


def test_clustering_cannot_be_explained(fitted):
    model = fitted("clustering", "kmeans")
    with pytest.raises(ExplanationUnavailable, match="no prediction for SHAP to explain"):
        build_explainer(model.pipeline, model.X_train.iloc[:50], tree_based=False, problem_type="clustering")
