"""The model against the project: threshold, baseline lift, and business value by hand."""

import numpy as np
import pytest

from workers.ml.evaluation.project import best_threshold, business_value, project_verdict
from workers.ml.evaluation.targets import ProjectTargets

CLASSES = ("no", "yes")
Y_TRUE = np.array(["yes", "yes", "yes", "no", "no", "no", "no", "no"])
P_YES = np.array([0.9, 0.6, 0.3, 0.7, 0.4, 0.2, 0.1, 0.55])
Y_PRED = np.where(P_YES > 0.5, "yes", "no")  # TP 2, FN 1, FP 2, TN 3
ROI = ProjectTargets(
    primary_metric="roc_auc", value_per_correct_decision=10.0, cost_false_positive=4.0, cost_false_negative=20.0
)


def test_binary_value_from_the_confusion_matrix():
    value = business_value(ROI, problem_type="binary", y_true=Y_TRUE, y_pred=Y_PRED, classes=CLASSES)
    assert value["counts"] == {"true_positive": 2, "false_positive": 2, "true_negative": 3, "false_negative": 1}
    # 10 x (2 + 3) right - 4 x 2 false positives - 20 x 1 false negative
    assert value["total"] == pytest.approx(22.0)
    assert value["per_decision"] == pytest.approx(22.0 / 8)
    assert value["computed"] is True and value["currency"] == "EUR" and value["decisions"] == 8
    assert "threshold" not in value  # no probabilities, no sweep


def test_binary_best_threshold_by_hand():
    value = business_value(
        ROI, problem_type="binary", y_true=Y_TRUE, y_pred=Y_PRED, positive_proba=P_YES, classes=CLASSES
    )
    threshold = value["threshold"]
    # p >= 0.3 catches every positive: 10 x (3 + 2) - 4 x 3 = 38, the best of every cut (0.6 gives 36, 0.9 gives 20).
    assert threshold["best"] == pytest.approx(0.3)
    assert threshold["value_at_best"] == pytest.approx(38.0)
    assert threshold["value_per_decision_at_best"] == pytest.approx(38.0 / 8)
    assert threshold["value_at_default"] == pytest.approx(22.0)
    assert threshold["gain_over_default"] == pytest.approx(16.0)
    curve = dict(zip(threshold["curve"]["thresholds"], threshold["curve"]["values"], strict=True))
    assert curve[0.6] == pytest.approx(36.0)
    assert curve[0.1] == pytest.approx(10.0)  # everything positive: 10 x 3 - 4 x 5
    assert min(curve.values()) == pytest.approx(-10.0)  # nothing positive: 10 x 5 - 20 x 3


def test_tied_probabilities_are_decided_together():
    targets = ProjectTargets(
        primary_metric="accuracy", value_per_correct_decision=1.0, cost_false_positive=1.0, cost_false_negative=1.0
    )
    # Splitting the two rows at 0.8 would score 1.0 at threshold 0.8; no threshold can split them.
    result = best_threshold(targets, np.array([True, False, True]), np.array([0.8, 0.8, 0.2]))
    assert result["best"] == pytest.approx(0.2)
    assert result["value_at_best"] == pytest.approx(1.0)
    assert dict(zip(result["curve"]["thresholds"], result["curve"]["values"], strict=True))[0.8] == pytest.approx(-1.0)


def test_nothing_positive_can_be_the_best_decision():
    targets = ProjectTargets(
        primary_metric="accuracy", value_per_correct_decision=0.0, cost_false_positive=100.0, cost_false_negative=1.0
    )
    result = best_threshold(targets, np.array([True, False]), np.array([0.6, 0.9]))
    assert result["best"] > 0.9
    assert result["value_at_best"] == pytest.approx(-1.0)


def test_multiclass_value_counts_right_and_wrong():
    targets = ProjectTargets(primary_metric="accuracy", value_per_correct_decision=3.0, cost_per_misclassification=5.0)
    value = business_value(
        targets, problem_type="multiclass", y_true=np.array(["a", "b", "c", "a"]), y_pred=np.array(["a", "c", "c", "a"])
    )
    assert value["counts"] == {"right": 3, "wrong": 1}
    assert value["total"] == pytest.approx(3 * 3 - 5 * 1)


def test_regression_value_charges_each_unit_of_error():
    targets = ProjectTargets(primary_metric="mae", value_per_correct_decision=5.0, cost_per_unit_error=2.0)
    value = business_value(
        targets, problem_type="regression", y_true=np.array([1.0, 2.0, 3.0]), y_pred=np.array([1.5, 2.0, 2.0])
    )
    assert value["total"] == pytest.approx(5 * 3 - 2 * 1.5)
    assert value["per_decision"] == pytest.approx(4.0)
    assert value["assumptions"] == []


def test_regression_without_a_value_per_decision_counts_only_errors():
    targets = ProjectTargets(primary_metric="mae", cost_per_unit_error=2.0)
    value = business_value(targets, problem_type="regression", y_true=np.array([1.0, 3.0]), y_pred=np.array([2.0, 3.0]))
    assert value["total"] == pytest.approx(-2.0)
    assert value["assumptions"] == ["No value per decision was given: only the cost of the errors counts."]


def test_missing_roi_figures_are_named_not_guessed():
    targets = ProjectTargets(primary_metric="roc_auc", value_per_correct_decision=1.0, cost_false_positive=2.0)
    value = business_value(targets, problem_type="binary", y_true=Y_TRUE, y_pred=Y_PRED, classes=CLASSES)
    assert value["computed"] is False
    assert value["missing"] == ["cost_false_negative"]
    assert "total" not in value


def test_clustering_has_no_business_value():
    value = business_value(ROI, problem_type="clustering", y_true=None, y_pred=np.array([0, 1]))
    assert value["computed"] is False and value["missing"] == []


def test_verdict_passes_a_higher_is_better_threshold_and_measures_lift():
    targets = ProjectTargets(primary_metric="roc_auc", threshold=0.8, baseline_value=0.75)
    verdict = project_verdict(targets, {"roc_auc": 0.84})
    assert verdict["passed"] is True
    assert verdict["direction"] == "higher_is_better"
    assert verdict["lift"]["difference"] == pytest.approx(0.09)
    assert verdict["lift"]["relative"] == pytest.approx(0.12)
    assert verdict["lift"]["better_than_baseline"] is True
    assert project_verdict(targets, {"roc_auc": 0.79})["passed"] is False


def test_verdict_on_a_lower_is_better_metric():
    targets = ProjectTargets(primary_metric="rmse", threshold=2.0, baseline_value=2.5)
    verdict = project_verdict(targets, {"rmse": 1.5})
    assert verdict["passed"] is True
    assert verdict["direction"] == "lower_is_better"
    assert verdict["lift"]["difference"] == pytest.approx(-1.0)
    assert verdict["lift"]["better_than_baseline"] is True
    assert project_verdict(targets, {"rmse": 2.1})["passed"] is False


def test_verdict_without_threshold_baseline_or_value():
    assert project_verdict(ProjectTargets(primary_metric="r2"), {"r2": 0.5})["passed"] is None
    zero_baseline = project_verdict(ProjectTargets(primary_metric="r2", baseline_value=0.0), {"r2": 0.5})
    assert zero_baseline["lift"]["difference"] == pytest.approx(0.5)
    assert zero_baseline["lift"]["relative"] is None
    unknown = project_verdict(ProjectTargets(primary_metric="roc_auc", threshold=0.7), {"roc_auc": None})
    assert unknown["passed"] is None
    assert "cannot be judged" in unknown["note"]


def test_verdict_for_a_project_without_a_success_criterion():
    verdict = project_verdict(ProjectTargets(primary_metric=""), {"roc_auc": 0.9})
    assert verdict["passed"] is None and verdict["lift"] is None
    assert verdict["note"] == "The project has no success criterion yet."
