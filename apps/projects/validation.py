"""The rules a problem definition must satisfy, in one place.

`definition_errors(data)` takes a whole definition payload (the title plus every ProblemDefinition field, already
parsed into Python types by a form or a serializer) and returns {field: [messages]}. The services call it before
every write, so the HTML form, the API and any other caller get the same rules and the same messages.
Messages are plain sentences that say what to do.
"""

import math
from decimal import Decimal
from typing import Any

from apps.projects.choices import METRIC_RANGES, METRICS_BY_PROBLEM_TYPE, Metric, ProblemType

TITLE_MAX_LENGTH = 200

# Every field of a definition payload: the project title, then the ProblemDefinition fields.
DEFINITION_FIELDS: tuple[str, ...] = (
    "business_problem",
    "scope",
    "problem_type",
    "primary_metric",
    "primary_threshold",
    "secondary_metrics",
    "baseline_metric_value",
    "baseline_description",
    "currency",
    "value_per_correct_decision",
    "cost_false_positive",
    "cost_false_negative",
    "cost_per_misclassification",
    "cost_per_unit_error",
    "expected_yearly_decisions",
    "implementation_cost",
    "target_payback_months",
    "expected_correct_rate",
    "baseline_correct_rate",
    "false_positive_share",
    "expected_mean_abs_error",
    "baseline_mean_abs_error",
    "latency_budget_p99_ms",
    "throughput_per_second",
    "data_availability_notes",
    "personal_data",
    "gdpr",
    "hipaa",
    "high_risk",
    "ethical_considerations",
    "fairness_max_difference",
    "required_approvals",
    "stakeholders",
)
PAYLOAD_FIELDS: tuple[str, ...] = ("title", *DEFINITION_FIELDS)

TEXT_FIELDS = frozenset(
    {
        "title",
        "business_problem",
        "scope",
        "baseline_description",
        "currency",
        "data_availability_notes",
        "ethical_considerations",
        "stakeholders",
    }
)
BOOLEAN_FIELDS = frozenset({"personal_data", "gdpr", "hipaa", "high_risk"})
MONEY_FIELDS = (
    "value_per_correct_decision",
    "cost_false_positive",
    "cost_false_negative",
    "cost_per_misclassification",
    "cost_per_unit_error",
    "implementation_cost",
)
# Money columns hold 14 digits, 2 after the point (4 for the cost per unit of error).
MONEY_DECIMAL_PLACES = {"cost_per_unit_error": 4}
MONEY_LIMIT = Decimal(10) ** 12
RATE_FIELDS = ("expected_correct_rate", "baseline_correct_rate", "false_positive_share")
ERROR_SIZE_FIELDS = ("expected_mean_abs_error", "baseline_mean_abs_error")
# Whole numbers that must be at least 1 when given, with the largest value their column holds.
COUNT_FIELDS: dict[str, int] = {
    "expected_yearly_decisions": 9_223_372_036_854_775_807,
    "target_payback_months": 2_147_483_647,
    "latency_budget_p99_ms": 2_147_483_647,
    "throughput_per_second": 2_147_483_647,
}

# The ROI targets each problem type needs before the expected ROI can be computed.
ROI_FIELDS_BY_PROBLEM_TYPE: dict[str, tuple[str, ...]] = {
    ProblemType.BINARY: (
        "value_per_correct_decision",
        "cost_false_positive",
        "cost_false_negative",
        "expected_yearly_decisions",
        "implementation_cost",
    ),
    ProblemType.MULTICLASS: (
        "value_per_correct_decision",
        "cost_per_misclassification",
        "expected_yearly_decisions",
        "implementation_cost",
    ),
    ProblemType.REGRESSION: ("cost_per_unit_error", "expected_yearly_decisions", "implementation_cost"),
    ProblemType.CLUSTERING: (),
}

# What each field is, in words, for messages.
FIELD_DESCRIPTIONS: dict[str, str] = {
    "value_per_correct_decision": "the value of each correct decision",
    "cost_false_positive": "the cost of each false positive",
    "cost_false_negative": "the cost of each false negative",
    "cost_per_misclassification": "the cost of each misclassification",
    "cost_per_unit_error": "the cost per unit of prediction error",
    "implementation_cost": "the implementation cost",
    "expected_yearly_decisions": "the expected number of decisions a year",
    "target_payback_months": "the target payback in months",
    "latency_budget_p99_ms": "the p99 latency budget in milliseconds",
    "throughput_per_second": "the throughput in decisions per second",
    "expected_correct_rate": "the expected correct rate",
    "baseline_correct_rate": "the baseline correct rate",
    "false_positive_share": "the share of errors that are false positives",
    "expected_mean_abs_error": "the expected mean absolute error",
    "baseline_mean_abs_error": "the baseline mean absolute error",
}

MSG_TITLE_REQUIRED = "Give the project a title."
MSG_BUSINESS_PROBLEM_REQUIRED = "Describe the business problem the model should help solve."
MSG_PROBLEM_TYPE_REQUIRED = "Choose the problem type."
MSG_PRIMARY_METRIC_REQUIRED = "Choose the primary success metric."
MSG_PRIMARY_THRESHOLD_REQUIRED = "Enter the threshold the primary metric must reach, for example 0.8."
MSG_PERSONAL_DATA = "GDPR and HIPAA only apply to personal data: tick “Personal data” as well."
FAIRNESS_LIMIT_DEFAULT = 0.1
REQUIRED_APPROVALS_DEFAULT = 1
MAX_REQUIRED_APPROVALS = 10
MSG_FAIRNESS_LIMIT = "Enter the fairness limit as a difference between 0 and 1, for example 0.1."
MSG_REQUIRED_APPROVALS = f"Enter the number of approvals as a whole number from 1 to {MAX_REQUIRED_APPROVALS}."
MSG_CURRENCY = "Enter the currency as a three-letter code in capitals, for example EUR."


def metric_label(metric: str) -> str:
    try:
        return Metric(metric).label
    except ValueError:
        return str(metric)


def range_message(metric: str) -> str:
    """What range a threshold on `metric` must lie in, as an instruction."""
    low, high = METRIC_RANGES[metric]
    label = metric_label(metric)
    if (low, high) == (0, 1):
        return f"{label} is a share: enter a value between 0 and 1."
    if low is not None and high is None:
        return f"{label} cannot be negative: enter 0 or more."
    if low is None and high is not None:
        return f"{label} is at most {high:g}: enter a value of {high:g} or less."
    return f"{label} lies between {low:g} and {high:g}: enter a value in that range."


def in_metric_range(metric: str, value: float) -> bool:
    low, high = METRIC_RANGES[metric]
    return (low is None or value >= low) and (high is None or value <= high)


def _is_number(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return False
    if isinstance(value, Decimal):
        return value.is_finite()
    return math.isfinite(value)


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _metrics_for(problem_type: str) -> str:
    return ", ".join(metric_label(m) for m in METRICS_BY_PROBLEM_TYPE[problem_type])


def definition_errors(data: dict[str, Any]) -> dict[str, list[str]]:
    """Every rule broken by the definition `data`, as {field: [messages]}; empty when the definition is valid."""
    errors: dict[str, list[str]] = {}

    def add(field: str, message: str) -> None:
        errors.setdefault(field, []).append(message)

    # The problem
    title = data.get("title")
    if _blank(title):
        add("title", MSG_TITLE_REQUIRED)
    elif len(title.strip()) > TITLE_MAX_LENGTH:
        add("title", f"Keep the title to {TITLE_MAX_LENGTH} characters or fewer (it has {len(title.strip())}).")
    if _blank(data.get("business_problem")):
        add("business_problem", MSG_BUSINESS_PROBLEM_REQUIRED)

    problem_type = data.get("problem_type")
    if _blank(problem_type):
        add("problem_type", MSG_PROBLEM_TYPE_REQUIRED)
        problem_type = None
    elif problem_type not in ProblemType.values:
        add("problem_type", f"Choose one of: {', '.join(ProblemType.labels)}.")
        problem_type = None

    # Success
    primary = data.get("primary_metric")
    if _blank(primary):
        add("primary_metric", MSG_PRIMARY_METRIC_REQUIRED)
        primary = None
    elif primary not in Metric.values:
        add("primary_metric", "Choose a metric from the list.")
        primary = None
    elif problem_type and primary not in METRICS_BY_PROBLEM_TYPE[problem_type]:
        add(
            "primary_metric",
            f"{metric_label(primary)} does not measure {ProblemType(problem_type).label.lower()}: "
            f"choose one of {_metrics_for(problem_type)}.",
        )

    threshold = data.get("primary_threshold")
    if threshold is None:
        add("primary_threshold", MSG_PRIMARY_THRESHOLD_REQUIRED)
    elif not _is_number(threshold):
        add("primary_threshold", "Enter the threshold as a number, for example 0.8.")
    elif primary and not in_metric_range(primary, threshold):
        add("primary_threshold", range_message(primary))

    baseline = data.get("baseline_metric_value")
    if baseline is not None:
        if not _is_number(baseline):
            add("baseline_metric_value", "Enter the baseline as a number measured with the primary metric.")
        elif primary and not in_metric_range(primary, baseline):
            add("baseline_metric_value", f"The baseline is measured with the primary metric. {range_message(primary)}")

    for message in _secondary_metric_errors(data.get("secondary_metrics"), problem_type, primary):
        add("secondary_metrics", message)

    # ROI targets
    currency = data.get("currency")
    if _blank(currency) or not (
        len(currency) == 3 and currency.isascii() and currency.isalpha() and currency.isupper()
    ):
        add("currency", MSG_CURRENCY)

    for field in MONEY_FIELDS:
        value = data.get(field)
        places = MONEY_DECIMAL_PLACES.get(field, 2)
        if value is None:
            continue
        if not _is_number(value) or value < 0:
            add(field, f"Enter {FIELD_DESCRIPTIONS[field]} as an amount of 0 or more.")
        elif value >= MONEY_LIMIT:
            add(field, f"Enter {FIELD_DESCRIPTIONS[field]} below 1,000,000,000,000.")
        elif isinstance(value, Decimal) and value != value.quantize(Decimal(1).scaleb(-places)):
            add(field, f"Enter {FIELD_DESCRIPTIONS[field]} with at most {places} decimals.")
    for field, largest in COUNT_FIELDS.items():
        value = data.get(field)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= largest):
            add(field, f"Enter {FIELD_DESCRIPTIONS[field]} as a whole number of at least 1.")
    for field in RATE_FIELDS:
        value = data.get(field)
        if value is not None and (not _is_number(value) or not 0 <= value <= 1):
            add(field, f"Enter {FIELD_DESCRIPTIONS[field]} as a share between 0 and 1 (0.9 means 90 %).")
    for field in ERROR_SIZE_FIELDS:
        value = data.get(field)
        if value is not None and (not _is_number(value) or value < 0):
            add(field, f"Enter {FIELD_DESCRIPTIONS[field]} as a number of 0 or more, in the unit of the target.")

    if problem_type:
        type_label = ProblemType(problem_type).label
        for field in ROI_FIELDS_BY_PROBLEM_TYPE[problem_type]:
            if data.get(field) is None and field not in errors:
                add(field, f"{type_label} needs {FIELD_DESCRIPTIONS[field]} to estimate the ROI: enter it.")

    # Regulation and ethics
    if (data.get("gdpr") or data.get("hipaa")) and not data.get("personal_data"):
        add("personal_data", MSG_PERSONAL_DATA)
    # The registry's limits (absent: the model defaults apply).
    fairness_limit = data.get("fairness_max_difference")
    if fairness_limit is not None and (not _is_number(fairness_limit) or not 0 <= fairness_limit <= 1):
        add("fairness_max_difference", MSG_FAIRNESS_LIMIT)
    approvals = data.get("required_approvals")
    if approvals is not None and (
        not isinstance(approvals, int) or isinstance(approvals, bool) or not 1 <= approvals <= MAX_REQUIRED_APPROVALS
    ):
        add("required_approvals", MSG_REQUIRED_APPROVALS)

    return errors


def _secondary_metric_errors(items: Any, problem_type: str | None, primary: str | None) -> list[str]:
    if items is None or items == []:
        return []
    if not isinstance(items, list):
        return ['Give the secondary metrics as a list of {"metric": ..., "threshold": ...}.']
    messages = []
    seen: set[str] = set()
    for position, item in enumerate(items, start=1):
        if not isinstance(item, dict) or set(item) != {"metric", "threshold"}:
            messages.append(f'Secondary metric {position}: give exactly a "metric" and a "threshold".')
            continue
        metric, threshold = item["metric"], item["threshold"]
        if metric not in Metric.values:
            messages.append(f"Secondary metric {position}: {metric} is not a metric; choose one from the list.")
            continue
        label = metric_label(metric)
        if problem_type and metric not in METRICS_BY_PROBLEM_TYPE[problem_type]:
            messages.append(
                f"{label} does not measure {ProblemType(problem_type).label.lower()}: "
                f"choose secondary metrics among {_metrics_for(problem_type)}."
            )
        elif metric == primary:
            messages.append(f"{label} is already the primary metric: remove it from the secondary metrics.")
        elif metric in seen:
            messages.append(f"{label} is listed twice: keep one threshold for it.")
        if not _is_number(threshold):
            messages.append(f"{label}: enter the threshold as a number.")
        elif not in_metric_range(metric, threshold):
            messages.append(range_message(metric))
        seen.add(metric)
    return messages
