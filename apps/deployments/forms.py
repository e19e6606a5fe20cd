"""HTML forms of deployments. They parse what the browser sends; the rules (which versions may serve, one rollout at
a time, limits) live in apps/deployments/services, whose field errors `apply_errors` puts next to the fields."""

from django import forms

from apps.core.forms import ErrorsMixin
from apps.deployments.choices import Environment, Strategy


class DeployForm(ErrorsMixin, forms.Form):
    """One click from a version page: the defaults (the model's name, production, one replica) are enough."""

    version = forms.UUIDField(widget=forms.HiddenInput)
    name = forms.CharField(
        label="Endpoint name", required=False, max_length=63, help_text="Empty: the model's name. Letters, digits, -."
    )
    environment = forms.ChoiceField(label="Environment", choices=Environment.choices, initial=Environment.PRODUCTION)
    replicas = forms.IntegerField(label="Replicas", min_value=1, max_value=20, initial=1)
    description = forms.CharField(label="Note", required=False, widget=forms.Textarea(attrs={"rows": 2}))


class VersionChoiceForm(ErrorsMixin, forms.Form):
    version = forms.ChoiceField(label="Version")
    reason = forms.CharField(label="Reason", required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args, versions=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["version"].choices = [(str(v.pk), f"v{v.number} ({v.get_stage_display()})") for v in versions]


class RolloutForm(VersionChoiceForm):
    strategy = forms.ChoiceField(
        label="How",
        choices=[(s.value, s.label) for s in (Strategy.BLUE_GREEN, Strategy.CANARY, Strategy.DIRECT)],
        initial=Strategy.BLUE_GREEN,
    )


class ABForm(VersionChoiceForm):
    share_percent = forms.IntegerField(label="Share of variant B (%)", min_value=1, max_value=50, initial=10)
    sticky_key = forms.CharField(
        label="Sticky key", max_length=100, help_text="Header or input column, e.g. customer_id."
    )


class ShadowForm(VersionChoiceForm):
    pass


class KeepForm(ErrorsMixin, forms.Form):
    keep = forms.ChoiceField(label="Keep serving")
    reason = forms.CharField(label="Reason", required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args, versions=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["keep"].choices = [(str(v.pk), f"v{v.number}") for v in versions]


class ScaleForm(ErrorsMixin, forms.Form):
    replicas = forms.IntegerField(label="Replicas", min_value=1, max_value=20)


class ReasonForm(ErrorsMixin, forms.Form):
    reason = forms.CharField(label="Reason", required=False, widget=forms.Textarea(attrs={"rows": 2}))


class CanaryForm(ErrorsMixin, forms.Form):
    step_percent = forms.IntegerField(label="Step (%)", min_value=1, max_value=50)
    step_seconds = forms.IntegerField(label="Step every (seconds)", min_value=10, max_value=86400)
    max_error_rate = forms.FloatField(label="Max extra error rate", min_value=0, max_value=0.99)
    max_p99_ms = forms.FloatField(label="Max p99 (ms)", required=False, help_text="Empty: the project's budget.")
    min_requests = forms.IntegerField(label="Min requests per judgement", min_value=1)


class FeatureViewForm(ErrorsMixin, forms.Form):
    view = forms.ChoiceField(label="Feature view", required=False, help_text="Empty: clients send every input.")

    def __init__(self, *args, views=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["view"].choices = [("", "None")] + [(view.name, view.name) for view in views]
