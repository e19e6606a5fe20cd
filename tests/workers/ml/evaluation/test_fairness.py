"""Fairness numbers against a hand computation on small frames."""

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import demographic_parity_difference, equalized_odds_difference

from workers.ml.evaluation.fairness import MAX_GROUPS, fairness_report, sensitive_groups

CLASSES = ("no", "yes")
#                   ---------- f ----------   ---------- m ----------
Y_TRUE = np.array(["yes", "yes", "no", "no", "yes", "no", "no", "no"])
Y_PRED = np.array(["yes", "no", "yes", "no", "yes", "yes", "yes", "no"])
SEX = pd.DataFrame({"sex": ["f"] * 4 + ["m"] * 4})


def binary_report(y_true, y_pred, sensitive):
    return fairness_report(problem_type="binary", y_true=y_true, y_pred=y_pred, sensitive=sensitive, classes=CLASSES)


def test_binary_groups_by_hand():
    report = binary_report(Y_TRUE, Y_PRED, SEX)
    column = report["columns"][0]
    groups = {group["group"]: group for group in column["groups"]}
    # f: 2 of 4 predicted positive, 1 of 2 positives found, 1 of 2 negatives flagged.
    assert groups["f"] == {
        "group": "f",
        "count": 4,
        "positives": 2,
        "selection_rate": 0.5,
        "true_positive_rate": 0.5,
        "false_positive_rate": 0.5,
    }
    # m: 3 of 4 predicted positive, its one positive found, 2 of 3 negatives flagged.
    assert groups["m"]["selection_rate"] == pytest.approx(0.75)
    assert groups["m"]["true_positive_rate"] == pytest.approx(1.0)
    assert groups["m"]["false_positive_rate"] == pytest.approx(2 / 3)
    assert column["demographic_parity_difference"] == pytest.approx(0.25)
    assert column["equalized_odds_difference"] == pytest.approx(max(1.0 - 0.5, 2 / 3 - 0.5))
    assert column["grouping"] == {"binned": None, "bins": None, "pooled_groups": 0}


def test_binary_differences_agree_with_fairlearn_when_every_rate_is_defined():
    column = binary_report(Y_TRUE, Y_PRED, SEX)["columns"][0]
    y_true, y_pred = (Y_TRUE == "yes").astype(int), (Y_PRED == "yes").astype(int)
    assert column["demographic_parity_difference"] == pytest.approx(
        demographic_parity_difference(y_true, y_pred, sensitive_features=SEX["sex"])
    )
    assert column["equalized_odds_difference"] == pytest.approx(
        equalized_odds_difference(y_true, y_pred, sensitive_features=SEX["sex"])
    )


def test_a_group_without_positives_has_no_tpr_and_invents_no_gap():
    y_true = np.append(Y_TRUE, ["no", "no"])
    y_pred = np.append(Y_PRED, ["yes", "no"])
    sensitive = pd.DataFrame({"sex": ["f"] * 4 + ["m"] * 4 + ["x"] * 2})
    column = binary_report(y_true, y_pred, sensitive)["columns"][0]
    x = next(group for group in column["groups"] if group["group"] == "x")
    assert x["true_positive_rate"] is None
    assert x["false_positive_rate"] == pytest.approx(0.5)
    # TPR gap over f and m only (0.5); fairlearn would count x's TPR as 0 and report 1.0.
    assert column["equalized_odds_difference"] == pytest.approx(0.5)


def test_multiclass_reports_accuracy_per_group():
    y_true = np.array(["a", "b", "c", "a", "b", "c"])
    y_pred = np.array(["a", "b", "a", "a", "c", "a"])
    sensitive = pd.DataFrame({"region": ["n", "n", "n", "s", "s", "s"]})
    report = fairness_report(problem_type="multiclass", y_true=y_true, y_pred=y_pred, sensitive=sensitive)
    column = report["columns"][0]
    accuracy = {group["group"]: group["accuracy"] for group in column["groups"]}
    assert accuracy == {"n": pytest.approx(2 / 3), "s": pytest.approx(1 / 3)}
    assert column["accuracy_difference"] == pytest.approx(1 / 3)


def test_regression_reports_error_per_group():
    y_true = np.array([1.0, 2.0, 3.0, 4.0])
    y_pred = np.array([1.5, 2.5, 3.0, 2.0])
    sensitive = pd.DataFrame({"region": ["n", "n", "s", "s"]})
    column = fairness_report(problem_type="regression", y_true=y_true, y_pred=y_pred, sensitive=sensitive)["columns"][0]
    groups = {group["group"]: group for group in column["groups"]}
    assert groups["n"]["mean_absolute_error"] == pytest.approx(0.5)
    assert groups["s"]["mean_absolute_error"] == pytest.approx(1.0)
    assert groups["s"]["mean_prediction"] == pytest.approx(2.5)
    assert groups["n"]["count"] == 2
    assert column["mean_absolute_error_difference"] == pytest.approx(0.5)


def test_numeric_columns_are_binned_into_ordered_quantiles():
    ages = pd.Series(np.arange(100, dtype=float))
    groups, grouping = sensitive_groups(ages)
    assert grouping["binned"] == "5 quantile bins"
    assert groups.nunique() == 5
    assert groups.value_counts().tolist() == [20] * 5
    y = np.array(["yes", "no"] * 50)
    column = binary_report(y, y, pd.DataFrame({"age": ages}))["columns"][0]
    assert [group["group"] for group in column["groups"]] == grouping["bins"]
    assert grouping["bins"][0].startswith("(-0.001")


def test_many_groups_are_capped_and_missing_values_form_a_group():
    values = [f"city{index}" for index in range(25) for _ in range(index + 1)] + [None] * 3
    groups, grouping = sensitive_groups(pd.Series(values, dtype=object))
    assert groups.nunique() == MAX_GROUPS
    assert grouping["pooled_groups"] == 26 - (MAX_GROUPS - 1)  # 25 cities and "(missing)", the largest 19 kept
    assert (groups == "(other)").sum() == 3 + sum(range(1, 7))  # the missing rows and the six smallest cities
    small = sensitive_groups(pd.Series(["a", None, "b"], dtype=object))[0]
    assert small.tolist() == ["a", "(missing)", "b"]


def test_no_sensitive_columns_or_clustering_is_not_computed():
    assert binary_report(Y_TRUE, Y_PRED, None) == {
        "computed": False,
        "reason": "No sensitive columns were chosen.",
        "columns": [],
    }
    clustering = fairness_report(problem_type="clustering", y_true=None, y_pred=np.array([0, 1]), sensitive=SEX)
    assert clustering["computed"] is False


def test_sensitive_rows_must_match_the_test_rows():
    with pytest.raises(ValueError, match="sensitive_test has 3 rows but the test set has 8"):
        binary_report(Y_TRUE, Y_PRED, SEX.iloc[:3])
