"""HTML forms of monitoring. They parse; apps/monitoring/services decide and name the field that is wrong."""

from django import forms

from apps.core.forms import ErrorsMixin
from apps.monitoring.choices import Figure, Operator, Severity, WindowKind


class MonitorForm(ErrorsMixin, forms.Form):
    reference_version = forms.ChoiceField(label="Reference", required=False)
    window_kind = forms.ChoiceField(label="Current window", choices=WindowKind.choices)
    window_hours = forms.IntegerField(label="Hours", min_value=1)
    window_predictions = forms.IntegerField(label="Predictions", min_value=1)
    performance_days = forms.IntegerField(label="Ground truth looked back (days)", min_value=1)
    schedule_minutes = forms.IntegerField(label="Check every (minutes)", min_value=1)
    drift_column_threshold = forms.FloatField(
        label="Per-column drift threshold", required=False, help_text="Empty: Evidently's default for each test."
    )
    max_rows = forms.IntegerField(label="Rows sampled per check at most", min_value=1)
    enabled = forms.BooleanField(label="Checks run on schedule", required=False)

    def __init__(self, *args, versions=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["reference_version"].choices = [("", "The live version's training data")] + [
            (str(version.pk), f"v{version.number} training data") for version in versions
        ]


class RuleForm(ErrorsMixin, forms.Form):
    figure = forms.ChoiceField(label="Figure", choices=Figure.choices)
    metric = forms.CharField(label="Metric", required=False, help_text="For a performance metric, e.g. f1, mae.")
    operator = forms.ChoiceField(label="When", choices=Operator.choices)
    threshold = forms.FloatField(label="Threshold")
    severity = forms.ChoiceField(label="Severity", choices=Severity.choices, initial=Severity.WARNING)


class NoteForm(ErrorsMixin, forms.Form):
    note = forms.CharField(label="Note", required=False, widget=forms.Textarea(attrs={"rows": 2}))


class RetrainingPolicyForm(ErrorsMixin, forms.Form):
    on_drift_alert = forms.BooleanField(
        label="Retrain on a drift alert (drift share, prediction drift)", required=False
    )
    on_performance_alert = forms.BooleanField(
        label="Retrain on a performance alert (a metric, the realised value)", required=False
    )
    schedule_days = forms.IntegerField(
        label="Retrain every … days",
        required=False,
        min_value=1,
        help_text="Leave empty for no scheduled retraining.",
    )
    enabled = forms.BooleanField(label="Enabled", required=False, help_text="A disabled policy only retrains by hand.")

    def policy_values(self) -> dict:
        data = self.cleaned_data
        return {
            "on_drift_alert": data.get("on_drift_alert", False),
            "on_performance_alert": data.get("on_performance_alert", False),
            "schedule_days": data.get("schedule_days"),
            "enabled": data.get("enabled", False),
        }
