"""Expected ROI with numbers computed by hand (shown next to each assertion)."""

from decimal import Decimal

from apps.projects.models import ProblemDefinition
from apps.projects.roi import expected_roi


def definition(**fields) -> ProblemDefinition:
    """An unsaved definition: expected_roi is pure and never touches the database."""
    defaults = {"problem_type": "binary", "primary_metric": "f1", "primary_threshold": 0.8, "currency": "EUR"}
    return ProblemDefinition(**{**defaults, **fields})


def test_binary_roi_from_full_targets():
    estimate = expected_roi(
        definition(
            value_per_correct_decision=Decimal("40"),
            cost_false_positive=Decimal("5"),
            cost_false_negative=Decimal("120"),
            false_positive_share=0.5,
            expected_correct_rate=0.9,
            baseline_correct_rate=0.7,
            expected_yearly_decisions=100_000,
            implementation_cost=Decimal("150000"),
            target_payback_months=12,
        )
    )
    # error cost = 0.5*5 + 0.5*120 = 62.5; model: 0.9*40 - 0.1*62.5 = 29.75 per decision; baseline: 28 - 18.75 = 9.25
    assert estimate.yearly_value_model == Decimal("2975000.00")
    assert estimate.yearly_value_baseline == Decimal("925000.00")
    assert estimate.yearly_gain == Decimal("2050000.00")
    assert estimate.first_year_net == Decimal("1900000.00")
    assert estimate.payback_months == Decimal("0.88")  # 150000 / (2050000 / 12) = 0.878
    assert estimate.meets_payback_target is True
    assert estimate.roi_percent == Decimal("1266.67")  # 1900000 / 150000 * 100 = 1266.666…
    assert estimate.assumptions == []
    assert estimate.missing == []
    assert estimate.computed is True


def test_binary_without_share_or_baseline_assumes_half_false_positives_and_zero_baseline():
    estimate = expected_roi(
        definition(
            value_per_correct_decision=Decimal("10"),
            cost_false_positive=Decimal("4"),
            cost_false_negative=Decimal("20"),
            expected_correct_rate=0.85,
            expected_yearly_decisions=50_000,
            implementation_cost=Decimal("100000"),
            target_payback_months=3,
        )
    )
    # error cost = 0.5*4 + 0.5*20 = 12; 0.85*10 - 0.15*12 = 6.7 per decision
    assert estimate.yearly_value_model == Decimal("335000.00")
    assert estimate.yearly_value_baseline == Decimal("0.00")
    assert estimate.yearly_gain == Decimal("335000.00")
    assert estimate.first_year_net == Decimal("235000.00")
    assert estimate.payback_months == Decimal("3.58")  # 100000 / (335000 / 12) = 3.582
    assert estimate.meets_payback_target is False
    assert estimate.roi_percent == Decimal("235.00")
    assert estimate.assumptions == [
        "Half of the errors are assumed to be false positives (no share was given).",
        "No baseline is known, so the current process counts as worth 0 and the gain is the model's whole value.",
    ]


def test_multiclass_with_accuracy_uses_its_threshold_and_baseline_as_correct_rates():
    estimate = expected_roi(
        definition(
            problem_type="multiclass",
            primary_metric="accuracy",
            primary_threshold=0.75,
            baseline_metric_value=0.6,
            value_per_correct_decision=Decimal("12"),
            cost_per_misclassification=Decimal("8"),
            expected_yearly_decisions=10_000,
            implementation_cost=Decimal("20000"),
        )
    )
    # model: 0.75*12 - 0.25*8 = 7 per decision; baseline: 0.6*12 - 0.4*8 = 4 per decision
    assert estimate.yearly_value_model == Decimal("70000.00")
    assert estimate.yearly_value_baseline == Decimal("40000.00")
    assert estimate.yearly_gain == Decimal("30000.00")
    assert estimate.first_year_net == Decimal("10000.00")
    assert estimate.payback_months == Decimal("8.00")  # 20000 / 2500
    assert estimate.meets_payback_target is None  # no target given
    assert estimate.roi_percent == Decimal("50.00")
    assert estimate.assumptions == [
        "The model is assumed to be right as often as the accuracy threshold (0.75).",
        "The current process is assumed to be right as often as its accuracy (0.6).",
    ]


def test_regression_roi_from_cost_per_unit_of_error():
    estimate = expected_roi(
        definition(
            problem_type="regression",
            primary_metric="mae",
            primary_threshold=4.0,
            cost_per_unit_error=Decimal("2.5"),
            baseline_mean_abs_error=6.0,
            expected_yearly_decisions=20_000,
            implementation_cost=Decimal("50000"),
            target_payback_months=6,
        )
    )
    # model: 0 - 4*2.5 = -10 per decision; baseline: 0 - 6*2.5 = -15 per decision
    assert estimate.yearly_value_model == Decimal("-200000.00")
    assert estimate.yearly_value_baseline == Decimal("-300000.00")
    assert estimate.yearly_gain == Decimal("100000.00")
    assert estimate.first_year_net == Decimal("50000.00")
    assert estimate.payback_months == Decimal("6.00")  # 50000 / (100000 / 12)
    assert estimate.meets_payback_target is True  # 6 <= 6
    assert estimate.roi_percent == Decimal("100.00")
    assert estimate.assumptions == [
        "No value per decision was given: only the cost of the errors counts.",
        "The model's mean absolute error is assumed to equal the MAE threshold (4).",
    ]


def test_regression_with_value_per_decision_and_explicit_errors():
    estimate = expected_roi(
        definition(
            problem_type="regression",
            primary_metric="rmse",
            primary_threshold=5.0,
            value_per_correct_decision=Decimal("3"),
            cost_per_unit_error=Decimal("0.5"),
            expected_mean_abs_error=2.0,
            baseline_mean_abs_error=4.0,
            expected_yearly_decisions=1_000,
            implementation_cost=Decimal("1200"),
        )
    )
    # model: 3 - 2*0.5 = 2; baseline: 3 - 4*0.5 = 1 per decision
    assert (estimate.yearly_value_model, estimate.yearly_value_baseline) == (Decimal("2000.00"), Decimal("1000.00"))
    assert estimate.yearly_gain == Decimal("1000.00")
    assert estimate.payback_months == Decimal("14.40")  # 1200 / (1000 / 12)
    assert estimate.roi_percent == Decimal("-16.67")  # (1000 - 1200) / 1200 * 100


def test_a_model_worse_than_the_baseline_never_pays_back():
    estimate = expected_roi(
        definition(
            value_per_correct_decision=Decimal("10"),
            cost_false_positive=Decimal("10"),
            cost_false_negative=Decimal("10"),
            false_positive_share=0.25,
            expected_correct_rate=0.6,
            baseline_correct_rate=0.8,
            expected_yearly_decisions=1_000,
            implementation_cost=Decimal("500"),
            target_payback_months=12,
        )
    )
    # model: 0.6*10 - 0.4*10 = 2; baseline: 0.8*10 - 0.2*10 = 6 per decision
    assert estimate.yearly_gain == Decimal("-4000.00")
    assert estimate.first_year_net == Decimal("-4500.00")
    assert estimate.payback_months is None
    assert estimate.meets_payback_target is False
    assert estimate.roi_percent == Decimal("-900.00")
    assert estimate.assumptions == ["The model is not expected to gain over the baseline, so it never pays back."]


def test_missing_correct_rate_is_named_and_nothing_is_computed():
    estimate = expected_roi(
        definition(
            value_per_correct_decision=Decimal("40"),
            cost_false_positive=Decimal("5"),
            cost_false_negative=Decimal("120"),
            false_positive_share=0.5,
            expected_yearly_decisions=100_000,
            implementation_cost=Decimal("150000"),
        )
    )
    assert estimate.computed is False
    assert estimate.yearly_gain is None and estimate.payback_months is None and estimate.roi_percent is None
    assert estimate.missing == [
        "The expected correct rate (the share of decisions the model gets right), or accuracy as the primary metric."
    ]


def test_clustering_roi_is_not_computed_and_says_why():
    estimate = expected_roi(definition(problem_type="clustering", primary_metric="silhouette", primary_threshold=0.3))
    assert estimate.computed is False
    assert estimate.missing == [
        "Clustering has no correct or wrong decisions to put a value on, so the expected ROI is not computed: judge "
        "it from the business problem instead."
    ]


def test_estimate_as_dict_carries_every_field():
    estimate = expected_roi(definition(problem_type="clustering", primary_metric="silhouette", primary_threshold=0.3))
    assert sorted(estimate.as_dict()) == [
        "assumptions",
        "computed",
        "currency",
        "first_year_net",
        "meets_payback_target",
        "missing",
        "payback_months",
        "roi_percent",
        "target_payback_months",
        "yearly_gain",
        "yearly_value_baseline",
        "yearly_value_model",
    ]
