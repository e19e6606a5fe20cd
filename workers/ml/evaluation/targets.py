"""What a project expects of a model: the success criterion and the ROI figures an evaluation judges it against.

The portal fills it from the project's ProblemDefinition (money as floats in `currency`); every figure is optional,
and an evaluation says which ones it missed instead of guessing them.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class ProjectTargets:
    primary_metric: str
    threshold: float | None = None
    baseline_value: float | None = None
    currency: str = "EUR"
    value_per_correct_decision: float | None = None
    cost_false_positive: float | None = None
    cost_false_negative: float | None = None
    cost_per_misclassification: float | None = None
    cost_per_unit_error: float | None = None
    latency_budget_p99_ms: float | None = None
