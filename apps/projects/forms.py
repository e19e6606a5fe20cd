"""HTML forms. They parse what the browser sends; the rules of a definition are applied by the services (through
apps/projects/validation.py) and their messages are put next to the fields with `apply_errors`."""

import re

from django import forms

from apps.accounts.choices import ProjectRole
from apps.projects.choices import LOWER_IS_BETTER, METRICS_BY_PROBLEM_TYPE, Metric, ProblemType, ProjectStatus
from apps.projects.validation import (
    FAIRNESS_LIMIT_DEFAULT,
    MSG_BUSINESS_PROBLEM_REQUIRED,
    MSG_PRIMARY_METRIC_REQUIRED,
    MSG_PRIMARY_THRESHOLD_REQUIRED,
    MSG_PROBLEM_TYPE_REQUIRED,
    MSG_TITLE_REQUIRED,
    REQUIRED_APPROVALS_DEFAULT,
    metric_label,
)

FIELDSETS: list[tuple[str, list[str]]] = [
    ("The problem", ["title", "business_problem", "scope", "problem_type"]),
    (
        "Success",
        ["primary_metric", "primary_threshold", "secondary_metrics", "baseline_metric_value", "baseline_description"],
    ),
    (
        "ROI targets",
        [
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
        ],
    ),
    ("Constraints", ["latency_budget_p99_ms", "throughput_per_second", "data_availability_notes"]),
    (
        "Regulation and ethics",
        [
            "personal_data",
            "gdpr",
            "hipaa",
            "high_risk",
            "ethical_considerations",
            "fairness_max_difference",
            "required_approvals",
        ],
    ),
    ("Stakeholders", ["stakeholders"]),
]

_METRIC_HELP = "; ".join(
    f"{ProblemType(problem_type).label}: {', '.join(metric_label(m) for m in metrics)}"
    for problem_type, metrics in METRICS_BY_PROBLEM_TYPE.items()
)
# "recall >= 0.7", "ROC AUC >= 0.85", "log_loss <= 0.3", "f1 0.8"
_SECONDARY_LINE = re.compile(r"^(?P<metric>.+?)\s*(?P<op>>=|<=|≥|≤)?\s*(?P<threshold>[-+]?(?:\d+(?:\.\d*)?|\.\d+))$")
_METRIC_NAMES = {
    **{metric.label.lower(): metric.value for metric in Metric},
    **{metric.value: metric.value for metric in Metric},
    **{metric.value.replace("_", " "): metric.value for metric in Metric},
    "r2": Metric.R2.value,
}


def _text(label: str, *, rows: int = 3, help_text: str = "") -> forms.CharField:
    return forms.CharField(
        label=label, required=False, help_text=help_text, widget=forms.Textarea(attrs={"rows": rows})
    )


def _money(label: str, help_text: str = "", decimal_places: int = 2) -> forms.DecimalField:
    return forms.DecimalField(
        label=label, required=False, max_digits=14, decimal_places=decimal_places, help_text=help_text
    )


def _share(label: str, help_text: str) -> forms.FloatField:
    return forms.FloatField(label=label, required=False, help_text=help_text, widget=forms.NumberInput({"step": "any"}))


def secondary_metrics_as_text(items: list[dict]) -> str:
    lines = []
    for item in items or []:
        operator = "<=" if item.get("metric") in LOWER_IS_BETTER else ">="
        lines.append(f"{item.get('metric')} {operator} {item.get('threshold')}")
    return "\n".join(lines)


class ProblemDefinitionForm(forms.Form):
    """The whole problem definition, in the fieldsets of FIELDSETS."""

    title = forms.CharField(label="Title", error_messages={"required": MSG_TITLE_REQUIRED})
    business_problem = forms.CharField(
        label="Business problem",
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="What goes wrong today, for whom, and what a better decision would change.",
        error_messages={"required": MSG_BUSINESS_PROBLEM_REQUIRED},
    )
    scope = _text("Scope", help_text="What is in and out: regions, products, channels, time frame.")
    problem_type = forms.ChoiceField(
        label="Problem type",
        choices=[("", "Choose…"), *ProblemType.choices],
        error_messages={"required": MSG_PROBLEM_TYPE_REQUIRED},
    )
    primary_metric = forms.ChoiceField(
        label="Primary success metric",
        choices=[("", "Choose…"), *Metric.choices],
        help_text=f"Metrics that apply per problem type — {_METRIC_HELP}.",
        error_messages={"required": MSG_PRIMARY_METRIC_REQUIRED},
    )
    primary_threshold = forms.FloatField(
        label="Threshold",
        help_text="The value the primary metric must reach, e.g. 0.80 for F1 ≥ 0.80 (≤ for errors and log loss).",
        widget=forms.NumberInput({"step": "any"}),
        error_messages={"required": MSG_PRIMARY_THRESHOLD_REQUIRED},
    )
    secondary_metrics = _text(
        "Secondary metrics",
        help_text="Optional. One per line, like “recall >= 0.7” or “log_loss <= 0.3”.",
    )
    baseline_metric_value = forms.FloatField(
        label="Baseline",
        required=False,
        help_text="The current process measured with the primary metric.",
        widget=forms.NumberInput({"step": "any"}),
    )
    baseline_description = _text("How the baseline works today", rows=2)
    currency = forms.CharField(
        label="Currency",
        required=False,
        initial="EUR",
        help_text="Three-letter code in capitals, e.g. EUR, USD, GBP.",
        widget=forms.TextInput(attrs={"size": 4, "autocapitalize": "characters"}),
    )
    value_per_correct_decision = _money(
        "Value of each correct decision", "Binary and multiclass: required. Regression: optional."
    )
    cost_false_positive = _money("Cost of each false positive", "Binary classification.")
    cost_false_negative = _money("Cost of each false negative", "Binary classification.")
    cost_per_misclassification = _money("Cost of each misclassification", "Multiclass classification.")
    cost_per_unit_error = _money(
        "Cost per unit of error", "Regression: the cost of being off by one unit of the target.", decimal_places=4
    )
    expected_yearly_decisions = forms.IntegerField(
        label="Expected decisions a year", required=False, help_text="Required except for clustering."
    )
    implementation_cost = _money("Implementation cost", "Required except for clustering.")
    target_payback_months = forms.IntegerField(label="Target payback (months)", required=False)
    expected_correct_rate = _share(
        "Expected correct rate", "Share of decisions the model should get right, 0–1. Defaults to an accuracy target."
    )
    baseline_correct_rate = _share("Baseline correct rate", "Share of decisions the current process gets right, 0–1.")
    false_positive_share = _share(
        "Share of errors that are false positives", "Binary classification, 0–1. Assumed 0.5 if empty."
    )
    expected_mean_abs_error = forms.FloatField(
        label="Expected mean absolute error",
        required=False,
        help_text="Regression, in the unit of the target. Defaults to an MAE target.",
        widget=forms.NumberInput({"step": "any"}),
    )
    baseline_mean_abs_error = forms.FloatField(
        label="Baseline mean absolute error",
        required=False,
        help_text="Regression: the current process's mean absolute error.",
        widget=forms.NumberInput({"step": "any"}),
    )
    latency_budget_p99_ms = forms.IntegerField(label="p99 latency budget (ms)", required=False)
    throughput_per_second = forms.IntegerField(label="Throughput (decisions per second)", required=False)
    data_availability_notes = _text("Data availability", help_text="Which data exists, where, since when, who owns it.")
    personal_data = forms.BooleanField(label="Personal data", required=False)
    gdpr = forms.BooleanField(label="GDPR applies", required=False)
    hipaa = forms.BooleanField(label="HIPAA applies", required=False)
    high_risk = forms.BooleanField(label="High-risk use (e.g. under the EU AI Act)", required=False)
    ethical_considerations = _text("Ethical considerations", help_text="Who could be harmed, and how it is avoided.")
    fairness_max_difference = forms.FloatField(
        label="Fairness limit",
        required=False,
        initial=FAIRNESS_LIMIT_DEFAULT,
        help_text="The largest demographic parity or equalized odds difference between groups a production model "
        f"may show, 0–1. Empty means {FAIRNESS_LIMIT_DEFAULT}.",
        widget=forms.NumberInput({"step": "any"}),
    )
    required_approvals = forms.IntegerField(
        label="Approvals needed for production",
        required=False,
        initial=REQUIRED_APPROVALS_DEFAULT,
        help_text="Reviewers who must approve a model before it goes to production (empty means 1). GDPR, HIPAA or "
        "high-risk use raise it to at least 2.",
    )
    stakeholders = _text("Stakeholders", help_text="Who is affected or accountable, one per line.")

    def clean_secondary_metrics(self) -> list[dict]:
        items = []
        for number, raw in enumerate(self.cleaned_data.get("secondary_metrics", "").splitlines(), start=1):
            line = raw.strip()
            if not line:
                continue
            match = _SECONDARY_LINE.match(line)
            example = "“recall >= 0.7”"
            if not match:
                raise forms.ValidationError(f"Line {number} (“{line}”) is not understood: write it like {example}.")
            name = re.sub(r"[\s\-]+", " ", match["metric"].strip().lower())
            metric = _METRIC_NAMES.get(name) or _METRIC_NAMES.get(name.replace(" ", "_"))
            if metric is None:
                raise forms.ValidationError(
                    f"Line {number} (“{line}”): “{match['metric'].strip()}” is not a metric we know; "
                    f"write it like {example}."
                )
            operator = {"≥": ">=", "≤": "<="}.get(match["op"], match["op"])
            expected = "<=" if metric in LOWER_IS_BETTER else ">="
            if operator and operator != expected:
                raise forms.ValidationError(
                    f"Line {number} (“{line}”): for {metric_label(metric)} "
                    f"{'lower' if expected == '<=' else 'higher'} is better, so write “{metric} {expected} …”."
                )
            items.append({"metric": metric, "threshold": float(match["threshold"])})
        return items

    def clean_fairness_max_difference(self) -> float:
        value = self.cleaned_data.get("fairness_max_difference")
        return FAIRNESS_LIMIT_DEFAULT if value is None else value

    def clean_required_approvals(self) -> int:
        value = self.cleaned_data.get("required_approvals")
        return REQUIRED_APPROVALS_DEFAULT if value is None else value

    def fieldsets(self):
        return [(legend, [self[name] for name in names]) for legend, names in FIELDSETS]

    def apply_errors(self, errors: dict[str, list[str]]) -> None:
        """Put the service's field errors next to their fields (a field with a parsing error keeps only that)."""
        for field, messages in errors.items():
            target = field if field in self.fields else None
            if target is not None and target in self._errors:
                continue
            for message in messages:
                self.add_error(target, message)


class ProjectFilterForm(forms.Form):
    search = forms.CharField(label="Title contains", required=False)
    status = forms.ChoiceField(label="Status", required=False, choices=[("", "Any status"), *ProjectStatus.choices])
    problem_type = forms.ChoiceField(
        label="Problem type", required=False, choices=[("", "Any type"), *ProblemType.choices]
    )


class ReasonForm(forms.Form):
    """The reason given with a transition. Whether it is required is the service's rule."""

    reason = forms.CharField(label="Reason", required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def apply_errors(self, errors: dict[str, list[str]]) -> None:
        for field, messages in errors.items():
            for message in messages:
                self.add_error(field if field in self.fields else None, message)


class ProjectMemberForm(forms.Form):
    username = forms.CharField(label="Username")
    role = forms.ChoiceField(label="Role in this project", choices=ProjectRole.choices, initial=ProjectRole.SCIENTIST)

    def apply_errors(self, errors: dict[str, list[str]]) -> None:
        for field, messages in errors.items():
            for message in messages:
                self.add_error(field if field in self.fields else None, message)
