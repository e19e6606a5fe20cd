"""The retraining policy form. It parses what the browser sends; apps/monitoring/services/retraining.py decides, and
its field errors are shown next to the fields (`apply_errors`)."""

from django import forms

from apps.core.forms import ErrorsMixin


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
