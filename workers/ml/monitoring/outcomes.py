"""What live outcomes say about a deployed model: its performance on the predictions whose ground truth arrived, and
the business value its decisions realised, overall and per traffic variant (A/B, canary).

Realised value uses the project's ROI targets with the same formulas as the expected value at evaluation
(workers.ml.evaluation.project.value_from_counts): binary = value_per_correct_decision * (TP + TN) -
cost_false_positive * FP - cost_false_negative * FN over the labelled decisions; multiclass = value * right -
cost_per_misclassification * wrong; regression = value * n - cost_per_unit_error * sum(|error|). Counts are
accumulated exactly while the window's predictions stream past (`ValueTally`), so a window of millions of decisions
needs no memory beyond the counts; performance metrics need the rows themselves and use a bounded sample of the
labelled ones.
"""

import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from workers.ml.evaluation.metrics import score
from workers.ml.evaluation.project import value_from_counts
from workers.ml.evaluation.targets import ProjectTargets

CLASSIFICATION = ("binary", "multiclass")
# Metrics reported per problem type (those of the project's definition are added).
DEFAULT_METRICS = {
    "binary": ("accuracy", "f1", "precision", "recall", "roc_auc"),
    "multiclass": ("accuracy", "f1_macro"),
    "regression": ("mae", "rmse", "r2"),
}


def same_label(actual: Any, predicted: Any) -> bool:
    """Ground truth is posted as JSON: 1 and "1", True and "true" name the same class."""
    return str(actual).strip().lower() == str(predicted).strip().lower()


@dataclass
class ValueTally:
    """Exact decision counts per variant, fed one labelled prediction at a time."""

    problem_type: str
    positive: Any = None  # binary: the positive class
    counts: dict[str, dict[str, float]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(float)))

    def add(self, variant: str, actual: Any, predicted: Any) -> None:
        tally = self.counts[variant or "—"]
        tally["decisions"] += 1
        if self.problem_type == "binary":
            is_positive, said_positive = same_label(actual, self.positive), same_label(predicted, self.positive)
            key = {(True, True): "true_positive", (False, True): "false_positive"}.get((is_positive, said_positive))
            tally[key or ("false_negative" if is_positive else "true_negative")] += 1
        elif self.problem_type == "multiclass":
            tally["right" if same_label(actual, predicted) else "wrong"] += 1
        else:
            tally["sum_absolute_error"] += abs(float(actual) - float(predicted))

    def realised(self, targets: ProjectTargets) -> dict[str, Any]:
        """{"overall": ..., "variants": {variant: ...}} each with total, per_decision, decisions and counts, or
        computed False with the reason (missing ROI figures, no labelled decisions)."""
        variants = {
            variant: _value(self.problem_type, targets, tally) for variant, tally in sorted(self.counts.items())
        }
        overall: dict[str, float] = defaultdict(float)
        for tally in self.counts.values():
            for key, count in tally.items():
                overall[key] += count
        return {"overall": _value(self.problem_type, targets, overall), "variants": variants}


def _value(problem_type: str, targets: ProjectTargets, tally: dict[str, float]) -> dict[str, Any]:
    if not tally.get("decisions"):
        return {"computed": False, "reason": "No predictions with ground truth in the window yet.", "decisions": 0}
    return value_from_counts(targets, problem_type=problem_type, counts=dict(tally))


def live_performance(
    *,
    problem_type: str,
    actual: list,
    predicted: list,
    probabilities: list | None,
    classes: list | None,
    metrics: tuple[str, ...] = (),
) -> dict[str, Any]:
    """The metrics over labelled predictions ({"rows": n, "metrics": {name: value}}); a metric that cannot be
    computed on these rows (one class only for roc_auc) is left out with the reason."""
    rows = len(actual)
    if not rows:
        return {"rows": 0, "metrics": {}, "skipped": {}}
    names = list(dict.fromkeys([*DEFAULT_METRICS.get(problem_type, ()), *metrics]))
    if problem_type in CLASSIFICATION:
        labels = [str(label) for label in (classes or sorted({str(a) for a in actual}))]
        y_true = np.array([_class_name(value, labels) for value in actual], dtype=object)
        y_pred = np.array([_class_name(value, labels) for value in predicted], dtype=object)
        y_proba = np.asarray(probabilities, dtype=float) if probabilities is not None else None
    else:
        y_true, y_pred, y_proba, labels = np.asarray(actual, float), np.asarray(predicted, float), None, None
    values, skipped = {}, {}
    for name in names:
        try:
            value = score(name, y_true, y_pred=y_pred, y_proba=y_proba, classes=labels)
        except (ValueError, TypeError, IndexError, KeyError) as exc:
            skipped[name] = str(exc).splitlines()[0][:200]
            continue
        if math.isfinite(value):
            values[name] = value
    return {"rows": rows, "metrics": values, "skipped": skipped}


def _class_name(value: Any, labels: list[str]) -> str:
    """The label as the model's classes spell it (ground truth may come as 1 for "1", true for "True")."""
    for label in labels:
        if same_label(value, label):
            return label
    return str(value)


def concept_drift(
    *, primary_metric: str, live: float | None, expected: float | None, higher_is_better: bool, data_drift: bool
) -> dict[str, Any]:
    """Concept drift: the primary metric on live outcomes fell clearly below what the version scored on its test
    set (by more than 5% of it, or 0.02 absolute, whichever is larger) while the inputs did not drift — the
    relationship between inputs and outcomes changed, not the inputs."""
    if live is None or expected is None:
        return {"detected": False, "reason": "Not enough ground truth yet."}
    margin = max(0.05 * abs(expected), 0.02)
    worse = live < expected - margin if higher_is_better else live > expected + margin
    detected = bool(worse and not data_drift)
    if detected:
        reason = f"{primary_metric} {live:.3f} on live outcomes vs {expected:.3f} at test, while inputs did not drift."
    elif worse:
        reason = f"{primary_metric} fell ({live:.3f} vs {expected:.3f}) but the inputs drifted too: data drift."
    else:
        reason = f"{primary_metric} {live:.3f} on live outcomes vs {expected:.3f} at test: within the margin."
    return {"detected": detected, "live": live, "expected": expected, "margin": margin, "reason": reason}
