"""SHAP explanations of a fitted pipeline, per RAW feature: reusable by evaluation and by the model server.

The pipeline is `Pipeline([("prepare", ColumnTransformer), ("model", estimator)])`. SHAP runs on the prepared matrix
(the estimator's own inputs, where the explainers are exact and fast) and each prepared column's contribution is then
summed into the raw feature it came from (`prepared_feature_sources`), so the one-hot columns of a category add up
to one contribution for that column.

Explainers:
- "tree" (LightGBM, random forests): TreeExplainer with the tree-path-dependent algorithm, which needs no background
  rows; it explains the model's raw output (log-odds for LightGBM classifiers, probabilities for random forests).
- "linear" (any estimator with `coef_` and `intercept_`): LinearExplainer against the background rows, in log-odds
  for classifiers.
- "kernel" (anything else): KernelExplainer on predict_proba / predict against at most KERNEL_BACKGROUND_ROWS
  background rows, in probabilities for classifiers. It costs many model calls per row: callers explain few rows.
  (The permutation explainer would do too, but its first call in a process spends seconds compiling with numba.)
In every case `base_value + sum(contributions) == prediction`, where prediction is the model output in that space
(`Explainer.output`). Binary explains the positive class (the second of `classes_`); multiclass keeps every class so
global importance can average over them, and a row's explanation is for its predicted class.

`shap_values(explainer, rows)` is the one SHAP pass: derive everything else (importance, summary, local
explanations) from its result rather than explaining the same rows twice.
"""

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import shap

from workers.ml.evaluation.jsonsafe import plain
from workers.ml.training.preparation import prepared_feature_sources

# Background rows of the kernel explainer: its cost per explained row grows linearly with them.
KERNEL_BACKGROUND_ROWS = 50
TREE_OUTPUTS = {"log_odds": "log_odds", "probability": "probability", "raw_value": "value"}


class ExplanationUnavailable(ValueError):
    """The model cannot be explained this way (clustering: there is no prediction to attribute)."""


@dataclass(frozen=True)
class Explainer:
    kind: str  # "tree" | "linear" | "kernel"
    output: str  # the space predictions are explained in: "log_odds" | "probability" | "value"
    problem_type: str
    classes: tuple | None  # the estimator's classes_ (classification)
    features: tuple[str, ...]  # the raw features, in the pipeline's input order
    aggregation: np.ndarray  # (prepared columns, raw features): 1 where a prepared column comes from a raw feature
    prepare: Any  # the fitted "prepare" step
    shap_explainer: Any


@dataclass(frozen=True)
class ShapValues:
    """One SHAP pass over some rows, mapped to raw features.

    values: (rows, raw features, outputs); base_values: (rows, outputs). Outputs: the positive class for binary, one
    per class for multiclass, the prediction for regression. `explained` is the output each row's explanation is for.
    """

    explainer: Explainer
    values: np.ndarray
    base_values: np.ndarray
    explained: np.ndarray

    def row_values(self) -> np.ndarray:
        """(rows, raw features): each row's contributions to its explained output."""
        return self.values[np.arange(len(self.values)), :, self.explained]

    def row_base_values(self) -> np.ndarray:
        return self.base_values[np.arange(len(self.base_values)), self.explained]


def build_explainer(pipeline, background: pd.DataFrame, *, tree_based: bool, problem_type: str) -> Explainer:
    """An explainer for `pipeline` (raw columns in). `background`: a few hundred raw training rows at most; the tree
    explainer does not use them."""
    if problem_type == "clustering":
        raise ExplanationUnavailable("Clustering models assign clusters, there is no prediction for SHAP to explain.")
    prepare, model = pipeline[:-1], pipeline[-1]
    sources = prepared_feature_sources(pipeline)
    # The raw features that reach the model, in input order (a column the pipeline was given but drops is left out).
    features = tuple(name for name in prepare.feature_names_in_ if name in set(sources))
    classes = tuple(model.classes_) if problem_type in ("binary", "multiclass") else None
    if tree_based:
        shap_explainer = shap.TreeExplainer(model)
        tree_output = shap_explainer.model.tree_output
        kind, output = "tree", TREE_OUTPUTS.get(tree_output, tree_output)
    elif hasattr(model, "coef_") and hasattr(model, "intercept_"):
        shap_explainer = shap.LinearExplainer(model, _prepared(prepare, background))
        kind, output = "linear", "log_odds" if classes else "value"
    else:
        rows = background.sample(n=min(len(background), KERNEL_BACKGROUND_ROWS), random_state=0)
        function = model.predict_proba if classes else model.predict
        shap_explainer = shap.KernelExplainer(function, _prepared(prepare, rows))
        kind, output = "kernel", "probability" if classes else "value"
    return Explainer(
        kind=kind,
        output=output,
        problem_type=problem_type,
        classes=classes,
        features=features,
        aggregation=_aggregation_matrix(sources, features),
        prepare=prepare,
        shap_explainer=shap_explainer,
    )


def shap_values(explainer: Explainer, rows: pd.DataFrame) -> ShapValues:
    """Explain `rows` (raw columns, as the pipeline takes them) in one SHAP pass."""
    prepared = _prepared(explainer.prepare, rows)
    if explainer.kind == "tree":
        with warnings.catch_warnings():
            # shap announces, on every call, a change of output type for LightGBM binary models; the shapes are
            # normalised below whatever the version.
            warnings.filterwarnings("ignore", message="LightGBM binary classifier", category=UserWarning)
            # Additivity is checked by the tests; checking it here would predict every row once more.
            explanation = explainer.shap_explainer(prepared, check_additivity=False)
    elif explainer.kind == "kernel":
        explanation = explainer.shap_explainer(prepared, silent=True)
    else:
        explanation = explainer.shap_explainer(prepared)
    values, base_values = _with_output_axis(np.asarray(explanation.values), np.asarray(explanation.base_values))
    if explainer.problem_type == "binary" and values.shape[2] == 2:
        # Random forests and the kernel explainer explain both class probabilities, which mirror each other: keep
        # the positive one.
        values, base_values = values[:, :, 1:], base_values[:, 1:]
    raw_values = np.einsum("npk,pr->nrk", values, explainer.aggregation)
    totals = base_values + raw_values.sum(axis=1)
    # Multiclass: the predicted class has the largest output (logits, log-odds and probabilities alike).
    explained = totals.argmax(axis=1) if explainer.problem_type == "multiclass" else np.zeros(len(rows), dtype=int)
    return ShapValues(explainer=explainer, values=raw_values, base_values=base_values, explained=explained)


def explain_rows(explainer: Explainer, rows: pd.DataFrame) -> list[dict]:
    """Per row: base_value, prediction (in `explainer.output` space), the class explained (classification) and the
    contribution of each raw feature, largest first."""
    return row_explanations(shap_values(explainer, rows))


def row_explanations(values: ShapValues, positions: list[int] | None = None) -> list[dict]:
    """The explanations of some rows (by position) of an already computed SHAP pass."""
    explainer = values.explainer
    contributions = values.row_values()
    base_values = values.row_base_values()
    explanations = []
    for position in range(len(contributions)) if positions is None else positions:
        row = contributions[position]
        order = np.argsort(-np.abs(row), kind="stable")
        explanations.append(
            {
                "base_value": float(base_values[position]),
                "prediction": float(base_values[position] + row.sum()),
                "output": explainer.output,
                "class": _explained_class(values, position),
                "contributions": {explainer.features[index]: float(row[index]) for index in order},
            }
        )
    return explanations


def global_importance(values: ShapValues) -> dict[str, float]:
    """Mean |SHAP| per raw feature (averaged over classes for multiclass), largest first."""
    importance = np.abs(values.values).mean(axis=(0, 2))
    order = np.argsort(-importance, kind="stable")
    return {values.explainer.features[index]: float(importance[index]) for index in order}


def _explained_class(values: ShapValues, position: int):
    classes = values.explainer.classes
    if classes is None:
        return None
    if values.explainer.problem_type == "binary":
        return plain(classes[1])
    return plain(classes[values.explained[position]])


def _prepared(prepare, rows: pd.DataFrame) -> np.ndarray:
    return np.asarray(prepare.transform(rows), dtype=float)


def _aggregation_matrix(sources: list[str], features: tuple[str, ...]) -> np.ndarray:
    index = {feature: position for position, feature in enumerate(features)}
    matrix = np.zeros((len(sources), len(features)))
    for column, source in enumerate(sources):
        matrix[column, index[source]] = 1.0
    return matrix


def _with_output_axis(values: np.ndarray, base_values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows, columns, outputs) and (rows, outputs), whether the explainer had one output or several."""
    if values.ndim == 2:
        values = values[:, :, np.newaxis]
    if base_values.ndim == 1:
        base_values = base_values[:, np.newaxis]
    return values, base_values
