"""Realised value and live performance from outcomes, checked by hand."""

import pytest

from workers.ml.evaluation.targets import ProjectTargets
from workers.ml.monitoring.outcomes import ValueTally, concept_drift, live_performance

TARGETS = ProjectTargets(
    primary_metric="f1",
    currency="EUR",
    value_per_correct_decision=10.0,
    cost_false_positive=4.0,
    cost_false_negative=25.0,
    cost_per_misclassification=3.0,
    cost_per_unit_error=2.0,
)


def test_binary_realised_value_by_hand_per_variant_and_overall():
    tally = ValueTally(problem_type="binary", positive="yes")
    # variant v1: 2 TP, 1 FP, 3 TN, 1 FN; variant v2: 1 TP, 2 FN (ground truth given as JSON: "yes"/"no")
    outcomes = [("yes", "yes")] * 2 + [("no", "yes")] + [("no", "no")] * 3 + [("yes", "no")]
    for actual, predicted in outcomes:
        tally.add("v1", actual, predicted)
    for actual, predicted in [("yes", "yes"), ("yes", "no"), ("yes", "no")]:
        tally.add("v2", actual, predicted)

    value = tally.realised(TARGETS)

    # v1: 10 * (2 + 3) - 4 * 1 - 25 * 1 = 21 over 7 decisions; v2: 10 * 1 - 25 * 2 = -40 over 3
    assert value["variants"]["v1"]["total"] == 21.0
    assert value["variants"]["v1"]["per_decision"] == pytest.approx(3.0)
    assert value["variants"]["v2"]["total"] == -40.0
    assert value["overall"]["total"] == -19.0 and value["overall"]["decisions"] == 10
    assert value["overall"]["counts"] == {
        "true_positive": 3,
        "false_positive": 1,
        "true_negative": 3,
        "false_negative": 3,
    }


def test_multiclass_and_regression_realised_value_by_hand():
    classes = ValueTally(problem_type="multiclass")
    for actual, predicted in [("a", "a"), ("b", "a"), ("c", "c"), ("c", "c")]:
        classes.add("", actual, predicted)
    values = ValueTally(problem_type="regression")
    for actual, predicted in [(10.0, 12.0), (5.0, 4.5)]:
        values.add("", actual, predicted)

    # 10 * 3 - 3 * 1 = 27; regression: 10 * 2 - 2 * (2 + 0.5) = 15
    assert classes.realised(TARGETS)["overall"]["total"] == 27.0
    assert values.realised(TARGETS)["overall"]["total"] == 15.0


def test_no_labelled_decisions_or_missing_roi_figures_say_why():
    tally = ValueTally(problem_type="binary", positive="yes")
    assert tally.realised(TARGETS)["overall"] == {
        "computed": False,
        "reason": "No predictions with ground truth in the window yet.",
        "decisions": 0,
    }
    tally.add("", "yes", "yes")
    missing = tally.realised(ProjectTargets(primary_metric="f1"))["overall"]
    assert missing["computed"] is False and "value_per_correct_decision" in missing["missing"]


def test_live_performance_matches_labels_spelled_differently():
    performance = live_performance(
        problem_type="binary",
        actual=[True, False, True, True],
        predicted=["True", "False", "False", "True"],
        probabilities=[[0.1, 0.9], [0.8, 0.2], [0.6, 0.4], [0.3, 0.7]],
        classes=["False", "True"],
    )
    assert performance["rows"] == 4
    assert performance["metrics"]["accuracy"] == 0.75
    assert performance["metrics"]["roc_auc"] == 1.0


def test_concept_drift_is_a_fall_in_performance_without_input_drift():
    assert concept_drift(primary_metric="f1", live=0.6, expected=0.8, higher_is_better=True, data_drift=False)[
        "detected"
    ]
    assert not concept_drift(primary_metric="f1", live=0.6, expected=0.8, higher_is_better=True, data_drift=True)[
        "detected"
    ]
    assert not concept_drift(primary_metric="f1", live=0.79, expected=0.8, higher_is_better=True, data_drift=False)[
        "detected"
    ]
    assert concept_drift(primary_metric="mae", live=3.0, expected=2.0, higher_is_better=False, data_drift=False)[
        "detected"
    ]
