from django import forms

from apps.core.forms import ErrorsMixin
from apps.notifications.choices import Event


class WebhookForm(ErrorsMixin, forms.Form):
    name = forms.CharField(label="Name", max_length=100, help_text="How the webhook is listed, e.g. “chat-ops”.")
    url = forms.CharField(
        label="URL",
        max_length=500,
        help_text="An https:// address on the public internet; the platform POSTs signed JSON to it.",
    )
    project = forms.ModelChoiceField(
        label="Project",
        queryset=None,
        required=False,
        empty_label="Every project",
        help_text="Only this project's events, or every project's.",
    )
    events = forms.MultipleChoiceField(
        label="Events",
        choices=Event.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked = every event.",
    )

    def __init__(self, *args, projects, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["project"].queryset = projects
