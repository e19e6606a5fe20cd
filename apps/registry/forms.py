"""HTML forms of the registry. They parse what the browser sends; the rules (who may decide, which gates block, what
a card must say) live in apps/registry/services.py, whose field errors `apply_errors` puts next to the fields."""

from django import forms

from apps.core.forms import ErrorsMixin


class RegisterForm(ErrorsMixin, forms.Form):
    """Register a finished run as a new version of an existing or a new registered model."""

    run = forms.UUIDField(widget=forms.HiddenInput)
    registered_model = forms.ChoiceField(label="Registered model", required=False)
    model_name = forms.CharField(
        label="…or a new model named", required=False, max_length=200, help_text="Leave empty to use the model above."
    )
    description = forms.CharField(label="Description", required=False, widget=forms.Textarea(attrs={"rows": 2}))
    tags = forms.CharField(label="Tags", required=False, help_text="Comma-separated, e.g. churn, lightgbm.")

    def __init__(self, *args, models=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["registered_model"].choices = [("", "A new model")] + [(str(m.pk), m.name) for m in models]

    def cleaned_tags(self) -> list[str]:
        return [tag.strip() for tag in self.cleaned_data.get("tags", "").split(",") if tag.strip()]


class VersionEditForm(ErrorsMixin, forms.Form):
    description = forms.CharField(label="Description", required=False, widget=forms.Textarea(attrs={"rows": 3}))
    tags = forms.CharField(label="Tags", required=False, help_text="Comma-separated.")

    def cleaned_tags(self) -> list[str]:
        return [tag.strip() for tag in self.cleaned_data.get("tags", "").split(",") if tag.strip()]


class ReasonForm(ErrorsMixin, forms.Form):
    """A stage change or a rollback: the reason is recorded with it (required where the service says so)."""

    reason = forms.CharField(label="Reason", required=False, widget=forms.Textarea(attrs={"rows": 2}))


class PromotionRequestForm(ErrorsMixin, forms.Form):
    justification = forms.CharField(
        label="Justification",
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Why this version should serve production: what changed, what was checked.",
    )


class ApproveForm(ErrorsMixin, forms.Form):
    comment = forms.CharField(label="Comment", widget=forms.Textarea(attrs={"rows": 2}))
    gate_override_reason = forms.CharField(
        label="Reason to override the failing gates (admins only)",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Shown everywhere this approval is shown.",
    )


class RejectForm(ErrorsMixin, forms.Form):
    reason = forms.CharField(label="Reason for the rejection", widget=forms.Textarea(attrs={"rows": 2}))


class ModelCardForm(ErrorsMixin, forms.Form):
    """One textarea per section people write (the generator cannot know them); built from the card's section list."""

    def __init__(self, *args, sections: list[tuple[str, str, bool]], written: dict, **kwargs):
        super().__init__(*args, **kwargs)
        for key, label, required in sections:
            self.fields[key] = forms.CharField(
                label=label,
                required=False,
                initial=written.get(key, ""),
                widget=forms.Textarea(attrs={"rows": 4}),
                help_text="Required before a promotion to production." if required else "",
            )

    def written(self) -> dict[str, str]:
        return {key: value.strip() for key, value in self.cleaned_data.items()}
