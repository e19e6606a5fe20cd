"""The expected return on investment of a problem definition, computed from its ROI targets.

Pure: reads attributes of a definition (a ProblemDefinition or anything shaped like one), touches no database.
All arithmetic is in Decimal; money, months and percentages are rounded to 2 places (half up) in the result.

Classification (binary, multiclass), per decision:
    value = p * value_per_correct_decision - (1 - p) * error_cost
    error_cost = fp_share * cost_false_positive + (1 - fp_share) * cost_false_negative   (binary; fp_share 0.5 default)
    error_cost = cost_per_misclassification                                              (multiclass)
    p = expected_correct_rate (default: the primary threshold when the primary metric is accuracy);
    the baseline uses baseline_correct_rate (default: baseline_metric_value when the metric is accuracy).
Regression, per decision:
    value = value_per_correct_decision (or 0) - mean_abs_error * cost_per_unit_error
    with expected_mean_abs_error for the model and baseline_mean_abs_error for the baseline (defaults: the primary
    threshold / baseline metric value when the primary metric is MAE).
Then: yearly value = expected_yearly_decisions * value; gain = model - baseline (baseline 0 when unknown);
first-year net = gain - implementation_cost; payback months = implementation_cost / (gain / 12) when gain > 0;
ROI % = first-year net / implementation_cost * 100.
Clustering: not computed (no per-decision value or error cost).
"""

from dataclasses import asdict, dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from apps.projects.choices import Metric, ProblemType

TWO_PLACES = Decimal("0.01")
DEFAULT_FALSE_POSITIVE_SHARE = Decimal("0.5")
MONTHS_PER_YEAR = Decimal(12)


@dataclass(frozen=True)
class RoiEstimate:
    currency: str = "EUR"
    yearly_value_model: Decimal | None = None
    yearly_value_baseline: Decimal | None = None
    yearly_gain: Decimal | None = None
    first_year_net: Decimal | None = None
    payback_months: Decimal | None = None
    meets_payback_target: bool | None = None
    roi_percent: Decimal | None = None
    target_payback_months: int | None = None
    assumptions: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    @property
    def computed(self) -> bool:
        return self.yearly_gain is not None

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "computed": self.computed}


def _dec(value) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, Decimal):
        return value
    return Decimal(str(value))


def _round(value: Decimal | None) -> Decimal | None:
    return None if value is None else value.quantize(TWO_PLACES, rounding=ROUND_HALF_UP)


def _fmt(value: Decimal) -> str:
    return f"{value.normalize():f}"


def expected_roi(definition) -> RoiEstimate:
    currency = getattr(definition, "currency", "") or "EUR"
    target = getattr(definition, "target_payback_months", None)
    problem_type = definition.problem_type
    if problem_type == ProblemType.CLUSTERING:
        return RoiEstimate(
            currency=currency,
            target_payback_months=target,
            missing=[
                "Clustering has no correct or wrong decisions to put a value on, so the expected ROI is not "
                "computed: judge it from the business problem instead."
            ],
        )
    if problem_type in (ProblemType.BINARY, ProblemType.MULTICLASS):
        per_decision = _classification_values(definition)
    elif problem_type == ProblemType.REGRESSION:
        per_decision = _regression_values(definition)
    else:
        return RoiEstimate(currency=currency, target_payback_months=target, missing=["A problem type."])

    model_value, baseline_value, assumptions, missing = per_decision
    volume = _dec(definition.expected_yearly_decisions)
    implementation_cost = _dec(definition.implementation_cost)
    if volume is None:
        missing.append("The expected number of decisions a year.")
    if implementation_cost is None:
        missing.append("The implementation cost.")
    if missing:
        return RoiEstimate(currency=currency, target_payback_months=target, assumptions=assumptions, missing=missing)

    yearly_model = volume * model_value
    if baseline_value is None:
        yearly_baseline = Decimal(0)
        assumptions.append(
            "No baseline is known, so the current process counts as worth 0 and the gain is the model's whole value."
        )
    else:
        yearly_baseline = volume * baseline_value
    gain = yearly_model - yearly_baseline
    first_year_net = gain - implementation_cost
    if gain > 0:
        payback = implementation_cost / (gain / MONTHS_PER_YEAR)
    else:
        payback = None
        assumptions.append("The model is not expected to gain over the baseline, so it never pays back.")
    meets = None if target is None else (payback is not None and payback <= Decimal(target))
    roi_percent = first_year_net / implementation_cost * 100 if implementation_cost > 0 else None
    return RoiEstimate(
        currency=currency,
        yearly_value_model=_round(yearly_model),
        yearly_value_baseline=_round(yearly_baseline),
        yearly_gain=_round(gain),
        first_year_net=_round(first_year_net),
        payback_months=_round(payback),
        meets_payback_target=meets,
        roi_percent=_round(roi_percent),
        target_payback_months=target,
        assumptions=assumptions,
        missing=[],
    )


def _classification_values(definition):
    """(model value per decision, baseline value per decision or None, assumptions, missing)."""
    assumptions: list[str] = []
    missing: list[str] = []
    is_accuracy = definition.primary_metric == Metric.ACCURACY

    value_correct = _dec(definition.value_per_correct_decision)
    if value_correct is None:
        missing.append("The value of each correct decision.")

    if definition.problem_type == ProblemType.BINARY:
        cost_fp = _dec(definition.cost_false_positive)
        cost_fn = _dec(definition.cost_false_negative)
        if cost_fp is None:
            missing.append("The cost of each false positive.")
        if cost_fn is None:
            missing.append("The cost of each false negative.")
        fp_share = _dec(definition.false_positive_share)
        if fp_share is None:
            fp_share = DEFAULT_FALSE_POSITIVE_SHARE
            assumptions.append("Half of the errors are assumed to be false positives (no share was given).")
        error_cost = None if cost_fp is None or cost_fn is None else fp_share * cost_fp + (1 - fp_share) * cost_fn
    else:
        error_cost = _dec(definition.cost_per_misclassification)
        if error_cost is None:
            missing.append("The cost of each misclassification.")

    p = _dec(definition.expected_correct_rate)
    if p is None and is_accuracy and definition.primary_threshold is not None:
        p = _dec(definition.primary_threshold)
        assumptions.append(f"The model is assumed to be right as often as the accuracy threshold ({_fmt(p)}).")
    if p is None:
        missing.append(
            "The expected correct rate (the share of decisions the model gets right), or accuracy as the primary "
            "metric."
        )

    baseline_p = _dec(definition.baseline_correct_rate)
    if baseline_p is None and is_accuracy and definition.baseline_metric_value is not None:
        baseline_p = _dec(definition.baseline_metric_value)
        assumptions.append(f"The current process is assumed to be right as often as its accuracy ({_fmt(baseline_p)}).")

    if missing:
        return None, None, assumptions, missing

    def per_decision(rate: Decimal) -> Decimal:
        return rate * value_correct - (1 - rate) * error_cost

    return per_decision(p), None if baseline_p is None else per_decision(baseline_p), assumptions, missing


def _regression_values(definition):
    assumptions: list[str] = []
    missing: list[str] = []
    is_mae = definition.primary_metric == Metric.MAE

    cost_unit = _dec(definition.cost_per_unit_error)
    if cost_unit is None:
        missing.append("The cost per unit of prediction error.")
    value_correct = _dec(definition.value_per_correct_decision)
    if value_correct is None:
        value_correct = Decimal(0)
        assumptions.append("No value per decision was given: only the cost of the errors counts.")

    mae = _dec(definition.expected_mean_abs_error)
    if mae is None and is_mae and definition.primary_threshold is not None:
        mae = _dec(definition.primary_threshold)
        assumptions.append(f"The model's mean absolute error is assumed to equal the MAE threshold ({_fmt(mae)}).")
    if mae is None:
        missing.append("The expected mean absolute error of the model, or MAE as the primary metric.")

    baseline_mae = _dec(definition.baseline_mean_abs_error)
    if baseline_mae is None and is_mae and definition.baseline_metric_value is not None:
        baseline_mae = _dec(definition.baseline_metric_value)
        assumptions.append(f"The current process's mean absolute error is its MAE baseline ({_fmt(baseline_mae)}).")

    if missing:
        return None, None, assumptions, missing

    def per_decision(error: Decimal) -> Decimal:
        return value_correct - error * cost_unit

    return per_decision(mae), None if baseline_mae is None else per_decision(baseline_mae), assumptions, missing
