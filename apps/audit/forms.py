from django import forms

from apps.audit.export import ExportFormat
from apps.audit.selectors import audit_filter_projects


class AuditFilterForm(forms.Form):
    """The audit filters, for the HTML list (GET form) and the API query string alike."""

    project = forms.ModelChoiceField(
        queryset=None, required=False, empty_label="All projects you may see", help_text="Events about this project."
    )
    actor = forms.CharField(required=False, max_length=150, label="Actor", help_text="Exact username.")
    action = forms.CharField(
        required=False, max_length=100, help_text='Exact, e.g. "project.approve", or a prefix ending in ".": "project."'
    )
    object_type = forms.CharField(
        required=False, max_length=100, label="Object type", help_text='e.g. "projects.project"'
    )
    object_id = forms.CharField(required=False, max_length=64, label="Object id")
    date_from = forms.DateField(
        required=False,
        label="From",
        help_text="YYYY-MM-DD, inclusive, UTC.",
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    date_to = forms.DateField(
        required=False,
        label="To",
        help_text="YYYY-MM-DD, inclusive, UTC.",
        widget=forms.DateInput(attrs={"type": "date"}),
    )

    def __init__(self, *args, actor, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["project"].queryset = audit_filter_projects(actor=actor)
        self.fields["project"].error_messages["invalid_choice"] = "Choose one of the projects whose audit you may see."

    def clean(self):
        cleaned = super().clean()
        date_from, date_to = cleaned.get("date_from"), cleaned.get("date_to")
        if date_from and date_to and date_to < date_from:
            self.add_error("date_to", "The end date must not be before the start date.")
        return cleaned


class AuditExportForm(forms.Form):
    """What to export: the format, and for the sidecar the seq the export was pinned to."""

    format = forms.ChoiceField(choices=[(f.value, f.label) for f in ExportFormat])
    sidecar = forms.BooleanField(required=False)
    upto = forms.IntegerField(
        required=False, min_value=0, help_text="Export events up to this seq (default: the newest event)."
    )

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("sidecar") and cleaned.get("upto") is None and "upto" not in self.errors:
            self.add_error("upto", "The digest sidecar needs the seq its export was pinned to (upto=…).")
        return cleaned


def form_errors(*forms_) -> dict[str, list[str]]:
    """Field errors of one or more bound forms, as the API's {"field": ["message", ...]} shape."""
    errors: dict[str, list[str]] = {}
    for form in forms_:
        for field, messages in form.errors.items():
            errors.setdefault(field, []).extend(str(message) for message in messages)
    return errors
