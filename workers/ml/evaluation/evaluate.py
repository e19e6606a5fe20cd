"""Evaluate a fitted pipeline: metrics, pictures, the project's criteria, latency, fairness, robustness and SHAP.

`evaluate_model(...)` is what a training run calls once its final model is fitted. The result is plain JSON (no
numpy types, no NaN: a value that cannot be computed is None) with these sections:

    problem_type, classes
    validation, test     {metric: value} for workers.ml.evaluation.metrics.REPORTED_METRICS (clustering adds
                         cluster_sizes); validation is None when the validation share is empty
    confusion_matrix     {labels, matrix} (classification, test set)
    curves               binary: roc, pr, calibration; regression: residuals (test set)
    project              threshold pass/fail, lift over baseline, business value (None without targets)
    operational          model size and latency (workers.ml.evaluation.operational)
    fairness             per sensitive column (workers.ml.evaluation.fairness)
    robustness           noise and unseen categories (workers.ml.evaluation.robustness)
    explanations         SHAP importance, summary points, local explanations (workers.ml.evaluation.explain)
    timings              seconds per section

Every prediction on the test set is made once: class decisions are the argmax of predict_proba, exactly what
predict returns for the registry's classifiers, so the model is not run twice over the same rows.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from workers.ml.evaluation import curves
from workers.ml.evaluation.explain import build_explainer, global_importance, row_explanations, shap_values
from workers.ml.evaluation.fairness import fairness_report
from workers.ml.evaluation.jsonsafe import json_safe, plain
from workers.ml.evaluation.metrics import PROBABILITY_METRICS, REPORTED_METRICS, score
from workers.ml.evaluation.operational import operational_profile
from workers.ml.evaluation.project import business_value, project_verdict
from workers.ml.evaluation.robustness import robustness_report
from workers.ml.evaluation.targets import ProjectTargets
from workers.ml.training.algorithms import ALGORITHMS
from workers.ml.training.spec import ExperimentSpec

BACKGROUND_ROWS = 100
SUMMARY_FEATURES = 12
SUMMARY_POINTS = 200
LOCAL_EXPLANATIONS = 5
# The model-agnostic kernel explainer calls the model thousands of times per row: it explains fewer rows.
KERNEL_ROWS = 100


@dataclass(frozen=True)
class Predictions:
    labels: np.ndarray  # classes, values or cluster labels
    proba: np.ndarray | None  # classification with predict_proba: (rows, classes)
    prepared: np.ndarray | None  # clustering: the prepared matrix the clustering metrics are computed on


def evaluate_model(
    pipeline,
    *,
    spec: ExperimentSpec,
    X_train: pd.DataFrame,
    y_train: pd.Series | None,
    X_valid: pd.DataFrame,
    y_valid: pd.Series | None,
    X_test: pd.DataFrame,
    y_test: pd.Series | None,
    sensitive_test: pd.DataFrame | None = None,
    targets: ProjectTargets | None = None,
    shap_rows: int = 1000,
    on_progress: Callable[[float, str], None] | None = None,
) -> dict:
    """Evaluate `pipeline` (fitted, raw columns in) on the validation and test sets; see the module docstring.

    y_train is accepted for symmetry with the other sets; the evaluation only reads X_train (noise scales, SHAP
    background)."""
    if len(X_test) == 0:
        raise ValueError("The test set is empty: evaluation needs held-out rows.")
    progress = on_progress or _ignore_progress
    problem_type = spec.problem_type
    classes = tuple(pipeline.classes_) if problem_type in ("binary", "multiclass") else None
    timings: dict[str, float] = {}
    clock = _Clock(timings)

    progress(0.0, "Scoring the validation and test sets")
    test = _predict(pipeline, problem_type, X_test)
    result = {"problem_type": problem_type, "classes": list(classes) if classes else None}
    result["test"] = metric_table(problem_type, y_test, test, classes)
    has_validation = len(X_valid) > 0
    result["validation"] = (
        metric_table(problem_type, y_valid, _predict(pipeline, problem_type, X_valid), classes)
        if has_validation
        else None
    )
    result["confusion_matrix"] = curves.confusion(y_test, test.labels, classes) if classes else None
    result["curves"] = _curves(problem_type, y_test, test, classes, seed=spec.seed)
    result["project"] = _project(targets, problem_type, y_test, test, result["test"], classes)
    clock.lap("metrics")

    progress(0.2, "Measuring model size and latency")
    budget = targets.latency_budget_p99_ms if targets else None
    result["operational"] = operational_profile(pipeline, X_test, seed=spec.seed, latency_budget_p99_ms=budget)
    clock.lap("operational")

    progress(0.4, "Checking fairness and robustness")
    result["fairness"] = fairness_report(
        problem_type=problem_type, y_true=y_test, y_pred=test.labels, sensitive=sensitive_test, classes=classes
    )
    clock.lap("fairness")
    result["robustness"] = robustness_report(pipeline, spec=spec, X_train=X_train, X_test=X_test)
    clock.lap("robustness")

    progress(0.6, "Explaining predictions with SHAP")
    result["explanations"] = explanations_report(pipeline, spec=spec, X_train=X_train, X_test=X_test, rows=shap_rows)
    clock.lap("explanations")
    result["timings"] = timings
    progress(1.0, "Evaluation finished")
    return json_safe(result)


def metric_table(problem_type: str, y_true, predictions: Predictions, classes) -> dict:
    """Every reported metric of the problem type; None where the data cannot give one (a single class in the set,
    no probabilities)."""
    table = {}
    for name in REPORTED_METRICS[problem_type]:
        if name in PROBABILITY_METRICS and predictions.proba is None:
            table[name] = None
            continue
        try:
            value = score(
                name,
                None if y_true is None else np.asarray(y_true),
                y_pred=predictions.labels,
                y_proba=predictions.proba,
                classes=classes,
                X=predictions.prepared,
                cluster_labels=predictions.labels,
            )
        except ValueError:  # sklearn's word for "undefined on this data", e.g. ROC AUC with one class present
            value = None
        table[name] = plain(value)
    if problem_type == "clustering":
        labels, sizes = np.unique(predictions.labels, return_counts=True)
        table["cluster_sizes"] = [
            {"cluster": plain(label), "size": int(size)} for label, size in zip(labels, sizes, strict=True)
        ]
    return table


def explanations_report(pipeline, *, spec: ExperimentSpec, X_train: pd.DataFrame, X_test: pd.DataFrame, rows: int):
    """SHAP on up to `rows` seeded test rows, in one pass: global importance, beeswarm points for the top features,
    and local explanations for a few rows."""
    if spec.problem_type == "clustering":
        return {"computed": False, "reason": "Clustering assigns clusters; there is no prediction to explain."}
    if rows <= 0:
        return {"computed": False, "reason": "SHAP was turned off for this run (0 rows)."}
    algorithm = ALGORITHMS.get(spec.algorithms[0])
    background = X_train.sample(n=min(BACKGROUND_ROWS, len(X_train)), random_state=spec.seed)
    explainer = build_explainer(
        pipeline,
        background,
        tree_based=bool(algorithm and algorithm.tree_based),
        problem_type=spec.problem_type,
    )
    if explainer.kind == "kernel":
        rows = min(rows, KERNEL_ROWS)
    explained = X_test.sample(n=min(rows, len(X_test)), random_state=spec.seed)
    values = shap_values(explainer, explained)
    importance = global_importance(values)
    local = row_explanations(values, positions=list(range(min(LOCAL_EXPLANATIONS, len(explained)))))
    for position, explanation in enumerate(local):
        explanation["row"] = plain(explained.index[position])
        explanation["values"] = {
            name: _raw_value(spec, name, explained[name].iloc[position]) for name in explainer.features
        }
    return {
        "computed": True,
        "explainer": explainer.kind,
        "output": explainer.output,
        "rows": len(explained),
        "global_importance": [{"feature": name, "mean_abs_shap": value} for name, value in importance.items()],
        "summary": _summary(spec, explainer.features, values.row_values(), explained, importance),
        "local": local,
    }


def _summary(spec, features, row_values: np.ndarray, explained: pd.DataFrame, importance: dict) -> list[dict]:
    """Beeswarm data: for each top feature, up to SUMMARY_POINTS (raw value, SHAP value) pairs."""
    points = min(SUMMARY_POINTS, len(explained))
    summary = []
    for name in list(importance)[:SUMMARY_FEATURES]:
        column = features.index(name)
        summary.append(
            {
                "feature": name,
                "kind": spec.feature_kinds.get(name),
                "values": [_raw_value(spec, name, value) for value in explained[name].iloc[:points]],
                "shap": row_values[:points, column],
            }
        )
    return summary


def _raw_value(spec, name: str, value):
    """A raw feature value for display: categories as text, everything else as a JSON number, boolean or date."""
    if spec.feature_kinds.get(name) == "categorical" and not pd.isna(value):
        return str(value)
    return plain(value)


def _predict(pipeline, problem_type: str, X: pd.DataFrame) -> Predictions:
    if problem_type == "clustering":
        return Predictions(labels=pipeline.predict(X), proba=None, prepared=np.asarray(pipeline[:-1].transform(X)))
    if problem_type in ("binary", "multiclass") and hasattr(pipeline, "predict_proba"):
        proba = pipeline.predict_proba(X)
        return Predictions(labels=np.asarray(pipeline.classes_)[proba.argmax(axis=1)], proba=proba, prepared=None)
    return Predictions(labels=pipeline.predict(X), proba=None, prepared=None)


def _curves(problem_type: str, y_test, test: Predictions, classes, *, seed: int) -> dict:
    if problem_type == "binary" and test.proba is not None:
        return curves.binary_curves(np.asarray(y_test) == classes[1], test.proba[:, 1])
    if problem_type == "regression":
        y_true = np.asarray(y_test, dtype=float)
        return {"residuals": curves.residuals(y_true, np.asarray(test.labels, dtype=float), seed=seed)}
    return {}


def _project(targets, problem_type, y_test, test: Predictions, test_metrics: dict, classes) -> dict | None:
    if targets is None:
        return None
    return {
        **project_verdict(targets, test_metrics),
        "business": business_value(
            targets,
            problem_type=problem_type,
            y_true=y_test,
            y_pred=test.labels,
            positive_proba=test.proba[:, 1] if problem_type == "binary" and test.proba is not None else None,
            classes=classes,
        ),
    }


class _Clock:
    """Seconds spent per section, for the run page and the benchmark."""

    def __init__(self, timings: dict[str, float]):
        self.timings = timings
        self.last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.timings[name] = round(now - self.last, 4)
        self.last = now


def _ignore_progress(fraction: float, message: str) -> None:
    """The default progress callback: nobody is listening."""
