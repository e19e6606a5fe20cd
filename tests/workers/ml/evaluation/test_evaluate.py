"""The whole evaluation: sections, numbers against scikit-learn on the model's own predictions, plain JSON."""

import json

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm
from sklearn.naive_bayes import GaussianNB
from sklearn.pipeline import Pipeline

from workers.ml.evaluation.evaluate import KERNEL_ROWS, LOCAL_EXPLANATIONS, evaluate_model
from workers.ml.evaluation.targets import ProjectTargets
from workers.ml.training.preparation import build_pipeline, build_preprocessor
from workers.ml.training.spec import ExperimentSpec

ROI = ProjectTargets(
    primary_metric="roc_auc",
    threshold=0.8,
    baseline_value=0.7,
    value_per_correct_decision=2.0,
    cost_false_positive=1.0,
    cost_false_negative=5.0,
    latency_budget_p99_ms=10_000,
)
JSON_TYPES = (dict, list, str, int, float, bool, type(None))


def assert_plain_json(value):
    """Only JSON's own types (no numpy subclasses), string keys, finite numbers."""
    assert type(value) in JSON_TYPES, type(value)
    if isinstance(value, dict):
        assert all(type(key) is str for key in value)
        for item in value.values():
            assert_plain_json(item)
    elif isinstance(value, list):
        for item in value:
            assert_plain_json(item)
    json.dumps(value, allow_nan=False)


@pytest.fixture(scope="module")
def binary_run(fitted):
    model = fitted("binary", "lightgbm")
    progress = []
    result = evaluate_model(
        model.pipeline,
        **model.evaluate_kwargs(),
        sensitive_test=model.sensitive_test,
        targets=ROI,
        shap_rows=50,
        on_progress=lambda fraction, message: progress.append((fraction, message)),
    )
    return model, result, progress


def test_binary_evaluation_is_plain_json(binary_run):
    _, result, _ = binary_run
    assert_plain_json(result)
    assert set(result) == {
        "problem_type",
        "classes",
        "test",
        "validation",
        "confusion_matrix",
        "curves",
        "project",
        "operational",
        "fairness",
        "robustness",
        "explanations",
        "timings",
    }


def test_binary_metrics_are_sklearn_on_the_model_predictions(binary_run):
    model, result, _ = binary_run
    predicted = model.pipeline.predict(model.X_test)
    positive = model.pipeline.predict_proba(model.X_test)[:, 1]
    test = result["test"]
    assert test["accuracy"] == pytest.approx(skm.accuracy_score(model.y_test, predicted))
    assert test["f1"] == pytest.approx(skm.f1_score(model.y_test, predicted, pos_label="yes"))
    assert test["roc_auc"] == pytest.approx(skm.roc_auc_score(model.y_test == "yes", positive))
    assert test["log_loss"] == pytest.approx(skm.log_loss(model.y_test, model.pipeline.predict_proba(model.X_test)))
    valid_predicted = model.pipeline.predict(model.X_valid)
    assert result["validation"]["accuracy"] == pytest.approx(skm.accuracy_score(model.y_valid, valid_predicted))
    assert result["confusion_matrix"] == {
        "labels": ["no", "yes"],
        "matrix": skm.confusion_matrix(model.y_test, predicted, labels=["no", "yes"]).tolist(),
    }


def test_binary_curves_are_thin_and_consistent(binary_run):
    model, result, _ = binary_run
    curves = result["curves"]
    assert 2 <= len(curves["roc"]["fpr"]) == len(curves["roc"]["tpr"]) <= 200
    assert curves["roc"]["fpr"][0] == 0.0 and curves["roc"]["tpr"][-1] == 1.0
    assert curves["roc"]["thresholds"][0] is None  # +inf, not valid JSON
    assert len(curves["pr"]["precision"]) == len(curves["pr"]["recall"]) <= 200
    calibration = curves["calibration"]
    assert 1 <= len(calibration["mean_predicted"]) == len(calibration["fraction_positive"]) <= 10
    positive = model.pipeline.predict_proba(model.X_test)[:, 1]
    assert calibration["brier_score"] == pytest.approx(skm.brier_score_loss(model.y_test == "yes", positive))


def test_binary_project_section(binary_run):
    _, result, _ = binary_run
    project = result["project"]
    assert project["value"] == result["test"]["roc_auc"]
    assert project["passed"] is (result["test"]["roc_auc"] >= 0.8)
    assert project["lift"]["difference"] == pytest.approx(result["test"]["roc_auc"] - 0.7)
    business = project["business"]
    (tn, fp), (fn, tp) = result["confusion_matrix"]["matrix"]
    assert business["total"] == pytest.approx(2.0 * (tp + tn) - 1.0 * fp - 5.0 * fn)
    assert business["threshold"]["value_at_best"] >= business["threshold"]["value_at_default"]


def test_operational_profile(binary_run, fitted):
    _, result, _ = binary_run
    operational = result["operational"]
    assert operational["model_size_bytes"] > 1000
    single = operational["latency_single_row_ms"]
    assert 0 < single["p50"] <= single["p99"]
    assert 20 <= single["calls"] <= 200
    batch = operational["latency_batch_ms"]
    assert batch["rows"] == 1000 and batch["per_row_p50"] == pytest.approx(batch["p50"] / 1000)
    assert operational["meets_latency_budget"] is True
    model = fitted("binary", "lightgbm")
    strict = ProjectTargets(primary_metric="roc_auc", latency_budget_p99_ms=0.0001)
    quick = evaluate_model(model.pipeline, **model.evaluate_kwargs(), targets=strict, shap_rows=0)
    assert quick["operational"]["meets_latency_budget"] is False
    assert quick["explanations"] == {"computed": False, "reason": "SHAP was turned off for this run (0 rows)."}


def test_binary_fairness_robustness_and_explanations(binary_run):
    model, result, _ = binary_run
    assert [column["column"] for column in result["fairness"]["columns"]] == ["sex", "birth_year"]
    assert result["fairness"]["columns"][1]["grouping"]["binned"] == "5 quantile bins"
    assert [entry["level"] for entry in result["robustness"]["noise"]] == [0.01, 0.05]
    explanations = result["explanations"]
    assert explanations["computed"] is True and explanations["explainer"] == "tree"
    assert explanations["rows"] == 50
    assert [entry["feature"] for entry in explanations["global_importance"]][:1] != ["grade"]
    assert len(explanations["local"]) == LOCAL_EXPLANATIONS
    local = explanations["local"][0]
    assert local["base_value"] + sum(local["contributions"].values()) == pytest.approx(local["prediction"])
    assert local["values"]["age"] == pytest.approx(model.X_test.loc[local["row"], "age"])
    summary = {entry["feature"]: entry for entry in explanations["summary"]}
    assert set(summary) == {"age", "income", "colour", "grade"}
    assert len(summary["colour"]["values"]) == len(summary["colour"]["shap"]) == 50
    assert set(summary["colour"]["values"]) <= {"red", "green", "blue"}
    assert set(summary["grade"]["values"]) <= {"1", "2", "3"}  # categories as text, even integer-coded ones


def test_progress_is_reported_up_to_done(binary_run):
    _, _, progress = binary_run
    fractions = [fraction for fraction, _ in progress]
    assert fractions == sorted(fractions) and fractions[0] == 0.0 and fractions[-1] == 1.0
    assert progress[-1][1] == "Evaluation finished"


def test_multiclass_evaluation(fitted):
    model = fitted("multiclass", "logistic_regression")
    targets = ProjectTargets(primary_metric="f1_macro", value_per_correct_decision=1.0, cost_per_misclassification=3.0)
    result = evaluate_model(model.pipeline, **model.evaluate_kwargs(), targets=targets, shap_rows=30)
    assert_plain_json(result)
    proba = model.pipeline.predict_proba(model.X_test)
    classes = list(model.pipeline.classes_)
    assert result["test"]["roc_auc_ovr"] == pytest.approx(
        skm.roc_auc_score(model.y_test, proba, multi_class="ovr", labels=classes)
    )
    assert result["test"]["f1_weighted"] == pytest.approx(
        skm.f1_score(model.y_test, model.pipeline.predict(model.X_test), average="weighted")
    )
    assert len(result["confusion_matrix"]["matrix"]) == 3 and result["curves"] == {}
    right = int((model.pipeline.predict(model.X_test) == model.y_test.to_numpy()).sum())
    assert result["project"]["business"]["counts"] == {"right": right, "wrong": len(model.y_test) - right}
    local = result["explanations"]["local"]
    assert [row["class"] for row in local] == [
        model.pipeline.predict(model.X_test.loc[[row["row"]]])[0] for row in local
    ]


def test_regression_evaluation_without_validation_rows(fitted):
    model = fitted("regression", "random_forest")
    kwargs = {**model.evaluate_kwargs(), "X_valid": model.X_valid.iloc[:0], "y_valid": model.y_valid.iloc[:0]}
    targets = ProjectTargets(primary_metric="mae", threshold=1.0, cost_per_unit_error=2.0)
    result = evaluate_model(
        model.pipeline, **kwargs, sensitive_test=model.sensitive_test, targets=targets, shap_rows=30
    )
    assert_plain_json(result)
    assert result["validation"] is None
    predicted = model.pipeline.predict(model.X_test)
    assert result["test"]["rmse"] == pytest.approx(skm.root_mean_squared_error(model.y_test, predicted))
    assert result["test"]["r2"] == pytest.approx(skm.r2_score(model.y_test, predicted))
    residuals = result["curves"]["residuals"]
    assert len(residuals["predicted"]) == len(model.y_test) <= 500
    assert residuals["residual"][0] == pytest.approx(model.y_test.iloc[0] - predicted[0])
    assert result["project"]["passed"] is (result["test"]["mae"] <= 1.0)
    assert result["project"]["business"]["total"] == pytest.approx(-2.0 * np.abs(model.y_test - predicted).sum())
    assert "mean_absolute_error" in result["fairness"]["columns"][0]["groups"][0]
    assert result["explanations"]["output"] == "value"


def test_clustering_evaluation(fitted):
    model = fitted("clustering", "kmeans")
    result = evaluate_model(model.pipeline, **model.evaluate_kwargs(), sensitive_test=model.sensitive_test)
    assert_plain_json(result)
    prepared = model.pipeline[:-1].transform(model.X_test)
    labels = model.pipeline.predict(model.X_test)
    assert result["test"]["davies_bouldin"] == pytest.approx(skm.davies_bouldin_score(prepared, labels))
    assert sum(entry["size"] for entry in result["test"]["cluster_sizes"]) == len(model.X_test)
    assert result["confusion_matrix"] is None and result["project"] is None
    assert result["explanations"]["computed"] is False
    assert result["fairness"]["computed"] is False


def test_a_single_class_test_set_gives_none_not_nan(fitted):
    model = fitted("binary", "logistic_regression")
    only_yes = (model.y_test == "yes").to_numpy()
    kwargs = {**model.evaluate_kwargs(), "X_test": model.X_test[only_yes], "y_test": model.y_test[only_yes]}
    result = evaluate_model(model.pipeline, **kwargs, targets=ROI, shap_rows=10)
    assert_plain_json(result)
    assert result["test"]["roc_auc"] is None
    assert result["curves"] == {"roc": None, "pr": None, "calibration": None}
    assert result["project"]["passed"] is None


def test_kernel_explanations_are_capped(fitted):
    model = fitted("binary", "logistic_regression")
    pipeline = Pipeline([("prepare", build_preprocessor(model.spec)), ("model", GaussianNB())])
    pipeline.fit(model.X_train, model.y_train)
    big_test = pd.concat([model.X_test] * 2)
    kwargs = {**model.evaluate_kwargs(), "X_test": big_test, "y_test": pd.concat([model.y_test] * 2)}
    result = evaluate_model(pipeline, **kwargs, shap_rows=1000)
    assert result["explanations"]["explainer"] == "kernel"
    assert result["explanations"]["rows"] == KERNEL_ROWS


def test_an_empty_test_set_is_refused(fitted):
    model = fitted("binary", "lightgbm")
    kwargs = {**model.evaluate_kwargs(), "X_test": model.X_test.iloc[:0], "y_test": model.y_test.iloc[:0]}
    with pytest.raises(ValueError, match="The test set is empty"):
        evaluate_model(model.pipeline, **kwargs)


def test_datetime_features_are_explained_as_one_raw_feature():
    rows = 300
    rng = np.random.default_rng(3)
    X = pd.DataFrame(
        {
            "signup": pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 1500, rows), unit="D"),
            "income": rng.normal(0, 1, rows),
        }
    )
    y = pd.Series(X["signup"].dt.month + X["income"] * 2 + rng.normal(0, 0.1, rows), name="target")
    spec = ExperimentSpec(
        problem_type="regression",
        target="target",
        features=("signup", "income"),
        feature_kinds={"signup": "datetime", "income": "numeric"},
        algorithms=("lightgbm",),
        primary_metric="rmse",
    )
    pipeline = build_pipeline(spec, {"n_estimators": 20}).fit(X.iloc[:200], y.iloc[:200])
    result = evaluate_model(
        pipeline,
        spec=spec,
        X_train=X.iloc[:200],
        y_train=y.iloc[:200],
        X_valid=X.iloc[:0],
        y_valid=y.iloc[:0],
        X_test=X.iloc[200:],
        y_test=y.iloc[200:],
        shap_rows=20,
    )
    assert_plain_json(result)
    local = result["explanations"]["local"][0]
    assert set(local["contributions"]) == {"signup", "income"}  # year, month, day, weekday summed into "signup"
    assert local["values"]["signup"] == X.loc[local["row"], "signup"].isoformat()
    assert local["base_value"] + sum(local["contributions"].values()) == pytest.approx(
        pipeline.predict(X.loc[[local["row"]]])[0]
    )
