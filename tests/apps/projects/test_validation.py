from decimal import Decimal

import pytest

from apps.projects.validation import definition_errors
from tests.apps.projects.conftest import binary_payload


def test_complete_binary_definition_has_no_errors():
    assert definition_errors(binary_payload()) == {}


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"title": "  "}, "title", "Give the project a title."),
        ({"title": "x" * 201}, "title", "Keep the title to 200 characters or fewer (it has 201)."),
        ({"business_problem": ""}, "business_problem", "Describe the business problem the model should help solve."),
        ({"problem_type": None}, "problem_type", "Choose the problem type."),
        (
            {"problem_type": "ranking"},
            "problem_type",
            "Choose one of: Binary classification, Multiclass classification, Regression, Clustering.",
        ),
        ({"primary_metric": ""}, "primary_metric", "Choose the primary success metric."),
        ({"primary_metric": "bleu"}, "primary_metric", "Choose a metric from the list."),
        (
            {"primary_metric": "rmse", "primary_threshold": 3.0},
            "primary_metric",
            "RMSE does not measure binary classification: choose one of Accuracy, Precision, Recall, F1, ROC AUC, "
            "PR AUC (average precision), Log loss.",
        ),
        (
            {"primary_threshold": None},
            "primary_threshold",
            "Enter the threshold the primary metric must reach, for example 0.8.",
        ),
        ({"primary_threshold": 1.2}, "primary_threshold", "F1 is a share: enter a value between 0 and 1."),
        ({"primary_threshold": float("nan")}, "primary_threshold", "Enter the threshold as a number, for example 0.8."),
        (
            {"primary_metric": "log_loss", "primary_threshold": -0.1, "baseline_metric_value": None},
            "primary_threshold",
            "Log loss cannot be negative: enter 0 or more.",
        ),
        (
            {"baseline_metric_value": 1.5},
            "baseline_metric_value",
            "The baseline is measured with the primary metric. F1 is a share: enter a value between 0 and 1.",
        ),
        ({"currency": "eur"}, "currency", "Enter the currency as a three-letter code in capitals, for example EUR."),
        ({"currency": "EURO"}, "currency", "Enter the currency as a three-letter code in capitals, for example EUR."),
        (
            {"cost_false_positive": Decimal("-1")},
            "cost_false_positive",
            "Enter the cost of each false positive as an amount of 0 or more.",
        ),
        (
            {"implementation_cost": Decimal("1000000000000")},
            "implementation_cost",
            "Enter the implementation cost below 1,000,000,000,000.",
        ),
        (
            {"cost_false_negative": Decimal("1.005")},
            "cost_false_negative",
            "Enter the cost of each false negative with at most 2 decimals.",
        ),
        (
            {"value_per_correct_decision": None},
            "value_per_correct_decision",
            "Binary classification needs the value of each correct decision to estimate the ROI: enter it.",
        ),
        (
            {"cost_false_negative": None},
            "cost_false_negative",
            "Binary classification needs the cost of each false negative to estimate the ROI: enter it.",
        ),
        (
            {"expected_yearly_decisions": None},
            "expected_yearly_decisions",
            "Binary classification needs the expected number of decisions a year to estimate the ROI: enter it.",
        ),
        (
            {"expected_yearly_decisions": 0},
            "expected_yearly_decisions",
            "Enter the expected number of decisions a year as a whole number of at least 1.",
        ),
        (
            {"implementation_cost": None},
            "implementation_cost",
            "Binary classification needs the implementation cost to estimate the ROI: enter it.",
        ),
        (
            {"expected_correct_rate": 1.1},
            "expected_correct_rate",
            "Enter the expected correct rate as a share between 0 and 1 (0.9 means 90 %).",
        ),
        (
            {"baseline_correct_rate": -0.1},
            "baseline_correct_rate",
            "Enter the baseline correct rate as a share between 0 and 1 (0.9 means 90 %).",
        ),
        (
            {"false_positive_share": 2},
            "false_positive_share",
            "Enter the share of errors that are false positives as a share between 0 and 1 (0.9 means 90 %).",
        ),
        (
            {"latency_budget_p99_ms": 0},
            "latency_budget_p99_ms",
            "Enter the p99 latency budget in milliseconds as a whole number of at least 1.",
        ),
        (
            {"personal_data": False, "gdpr": True},
            "personal_data",
            "GDPR and HIPAA only apply to personal data: tick “Personal data” as well.",
        ),
        (
            {"personal_data": False, "gdpr": False, "hipaa": True},
            "personal_data",
            "GDPR and HIPAA only apply to personal data: tick “Personal data” as well.",
        ),
    ],
)
def test_each_rule_puts_its_message_on_its_field(overrides, field, message):
    assert definition_errors(binary_payload(**overrides)) == {field: [message]}


def test_multiclass_needs_value_and_cost_of_a_misclassification():
    data = binary_payload(
        problem_type="multiclass",
        primary_metric="f1_macro",
        value_per_correct_decision=None,
        cost_per_misclassification=None,
        secondary_metrics=[],
    )
    assert definition_errors(data) == {
        "value_per_correct_decision": [
            "Multiclass classification needs the value of each correct decision to estimate the ROI: enter it."
        ],
        "cost_per_misclassification": [
            "Multiclass classification needs the cost of each misclassification to estimate the ROI: enter it."
        ],
    }


def test_regression_needs_cost_per_unit_error_but_not_value_per_decision():
    data = binary_payload(
        problem_type="regression",
        primary_metric="mae",
        primary_threshold=4.0,
        baseline_metric_value=6.0,
        secondary_metrics=[{"metric": "rmse", "threshold": 6.0}],
        value_per_correct_decision=None,
        cost_false_positive=None,
        cost_false_negative=None,
    )
    assert definition_errors(data) == {
        "cost_per_unit_error": ["Regression needs the cost per unit of prediction error to estimate the ROI: enter it."]
    }
    assert definition_errors({**data, "cost_per_unit_error": Decimal("2.5")}) == {}
    assert definition_errors({**data, "cost_per_unit_error": Decimal("0.0025")}) == {}


def test_clustering_needs_no_roi_targets():
    data = binary_payload(
        problem_type="clustering",
        primary_metric="silhouette",
        primary_threshold=-0.2,
        baseline_metric_value=None,
        secondary_metrics=[],
        value_per_correct_decision=None,
        cost_false_positive=None,
        cost_false_negative=None,
        expected_yearly_decisions=None,
        implementation_cost=None,
    )
    assert definition_errors(data) == {}


def test_r2_threshold_may_be_negative_but_not_above_one():
    data = binary_payload(
        problem_type="regression", primary_metric="r2", secondary_metrics=[], cost_per_unit_error=Decimal(1)
    )
    assert definition_errors({**data, "primary_threshold": -0.5, "baseline_metric_value": None}) == {}
    assert definition_errors({**data, "primary_threshold": 1.5, "baseline_metric_value": None}) == {
        "primary_threshold": ["R² is at most 1: enter a value of 1 or less."]
    }


@pytest.mark.parametrize(
    ("secondary", "messages"),
    [
        ([{"metric": "recall", "threshold": 1.7}], ["Recall is a share: enter a value between 0 and 1."]),
        (
            [{"metric": "rmse", "threshold": 3}],
            [
                "RMSE does not measure binary classification: choose secondary metrics among Accuracy, Precision, "
                "Recall, F1, ROC AUC, PR AUC (average precision), Log loss."
            ],
        ),
        (
            [{"metric": "f1", "threshold": 0.9}],
            ["F1 is already the primary metric: remove it from the secondary metrics."],
        ),
        (
            [{"metric": "recall", "threshold": 0.7}, {"metric": "recall", "threshold": 0.8}],
            ["Recall is listed twice: keep one threshold for it."],
        ),
        (
            [{"metric": "bleu", "threshold": 0.3}],
            ["Secondary metric 1: bleu is not a metric; choose one from the list."],
        ),
        ([{"metric": "recall"}], ['Secondary metric 1: give exactly a "metric" and a "threshold".']),
        ("recall >= 0.7", ['Give the secondary metrics as a list of {"metric": ..., "threshold": ...}.']),
    ],
)
def test_secondary_metrics_follow_the_primary_metric_rules(secondary, messages):
    assert definition_errors(binary_payload(secondary_metrics=secondary)) == {"secondary_metrics": messages}


def test_all_broken_rules_are_reported_at_once():
    errors = definition_errors(
        binary_payload(title="", currency="", primary_threshold=3.0, gdpr=True, personal_data=False)
    )
    assert sorted(errors) == ["currency", "personal_data", "primary_threshold", "title"]
