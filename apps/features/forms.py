"""HTML forms of the feature store. They parse input; the services decide (their field errors are shown next to the
fields: `transformation.column` next to the column field, and so on)."""

from datetime import timedelta

from django import forms

from apps.core.forms import ErrorsMixin
from apps.features.choices import ValueType

KIND_CHOICES = [
    ("passthrough", "Passthrough: the column as it is"),
    ("expression", "Expression: arithmetic over columns of one row"),
    ("log", "Natural logarithm"),
    ("clip", "Clip to a range"),
    ("bucketize", "Bucketize by boundaries"),
    ("date_part", "Date part"),
    ("window", "Window aggregation per entity"),
]
DATE_PARTS = [(part, part) for part in ("year", "month", "day", "weekday", "hour", "dayofyear")]
WINDOW_FUNCTIONS = [(name, name) for name in ("count", "sum", "mean", "min", "max", "last", "distinct_count")]
# The spec fields of each kind (the engine validates them; the form only collects them).
SPEC_FIELDS = {
    "passthrough": ["column"],
    "expression": ["expression"],
    "log": ["column"],
    "clip": ["column", "lower", "upper"],
    "bucketize": ["column", "boundaries"],
    "date_part": ["column", "part"],
    "window": ["column", "function", "window"],
}


def _comma_list(text: str) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


class FeatureDefineForm(ErrorsMixin, forms.Form):
    view = forms.ModelChoiceField(queryset=None, empty_label="Choose a feature view", label="Feature view")
    name = forms.CharField(max_length=100, help_text="lower_case_with_underscores; unique in the view.")
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    dataset = forms.ModelChoiceField(queryset=None, empty_label="Choose a source dataset")
    timestamp_column = forms.CharField(max_length=200, help_text="The event time of each source row.")
    entity_columns = forms.CharField(max_length=500, help_text="Source columns holding the entity's keys, in order.")
    value_type = forms.ChoiceField(choices=ValueType.choices, initial=ValueType.FLOAT)
    tags = forms.CharField(required=False, max_length=500, help_text="Comma-separated.")
    kind = forms.ChoiceField(choices=KIND_CHOICES, label="Transformation")
    column = forms.CharField(required=False, max_length=200, help_text='A source column ("*" counts rows).')
    expression = forms.CharField(required=False, max_length=2000, help_text="e.g. log1p(amount) / max(items, 1)")
    lower = forms.FloatField(required=False)
    upper = forms.FloatField(required=False)
    boundaries = forms.CharField(required=False, max_length=2000, help_text="Increasing numbers, comma-separated.")
    part = forms.ChoiceField(required=False, choices=[("", "—"), *DATE_PARTS])
    function = forms.ChoiceField(required=False, choices=[("", "—"), *WINDOW_FUNCTIONS])
    window = forms.CharField(required=False, max_length=20, help_text="1h, 1d, 7d, 30d or e.g. 90m, 14d.")

    def __init__(self, *args, views, datasets, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["view"].queryset = views
        self.fields["dataset"].queryset = datasets
        self.fields["dataset"].label_from_instance = lambda dataset: f"{dataset.project.name} / {dataset.name}"

    def transformation(self) -> dict:
        data = self.cleaned_data
        spec: dict = {"kind": data["kind"]}
        for field in SPEC_FIELDS[data["kind"]]:
            value = data.get(field)
            if field == "boundaries":
                value = _numbers(value)
            if value not in (None, ""):
                spec[field] = value
        return spec

    def service_arguments(self) -> dict:
        data = self.cleaned_data
        return {
            "view": data["view"],
            "name": data["name"],
            "dataset": data["dataset"],
            "timestamp_column": data["timestamp_column"].strip(),
            "entity_columns": _comma_list(data["entity_columns"]),
            "transformation": self.transformation(),
            "description": data["description"],
            "value_type": data["value_type"],
            "tags": _comma_list(data["tags"]),
        }

    def error_field(self, key: str, message: str = "") -> str | None:
        if key.startswith("transformation."):
            key = key.removeprefix("transformation.")
            if key == "kind" or key not in self.fields:
                key = "kind"
        elif key == "transformation":
            key = "kind"
        return super().error_field(key, message)


def _numbers(text) -> list | str:
    try:
        return [float(part) for part in _comma_list(text or "")]
    except ValueError:
        return str(text)  # the engine names what is wrong with it


class TrainingSetForm(ErrorsMixin, forms.Form):
    name = forms.CharField(required=False, max_length=200)
    spine_version = forms.ModelChoiceField(queryset=None, empty_label="Choose the spine (a dataset version)")
    spine_key_columns = forms.CharField(max_length=500, help_text="Spine columns matching the entity's keys.")
    spine_timestamp_column = forms.CharField(max_length=200, help_text="The time each row's prediction is made.")
    label_column = forms.CharField(required=False, max_length=200)
    features = forms.ModelMultipleChoiceField(queryset=None, widget=forms.CheckboxSelectMultiple)
    max_age_hours = forms.IntegerField(
        required=False, min_value=1, help_text="Ignore values older than this (empty: any age)."
    )
    output_dataset = forms.CharField(max_length=200, help_text="The project's dataset the result becomes a version of.")

    def __init__(self, *args, spine_versions, feature_versions, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["spine_version"].queryset = spine_versions
        self.fields["features"].queryset = feature_versions
        self.fields["features"].label_from_instance = _feature_version_label

    def service_arguments(self) -> dict:
        data = self.cleaned_data
        max_age = timedelta(hours=data["max_age_hours"]) if data.get("max_age_hours") else None
        return {
            "name": data["name"],
            "spine_version": data["spine_version"],
            "spine_key_columns": _comma_list(data["spine_key_columns"]),
            "spine_timestamp_column": data["spine_timestamp_column"].strip(),
            "label_column": data["label_column"].strip(),
            "features": [
                {"feature_version": version, "output_name": version.feature.name, "max_age": max_age}
                for version in data["features"]
            ],
            "output_dataset_name": data["output_dataset"],
        }

    def error_field(self, key: str, message: str = "") -> str | None:
        return super().error_field("output_dataset" if key == "output_dataset_name" else key, message)


def _feature_version_label(version) -> str:
    marks = " (personal)" if version.personal else ""
    allowed = " — exception granted" if version.personal and getattr(version, "has_exception", False) else ""
    return f"{version.feature.view.name}:{version.feature.name} v{version.number}{marks}{allowed}"


class ExceptionGrantForm(ErrorsMixin, forms.Form):
    project = forms.ModelChoiceField(queryset=None, empty_label="Choose the project")
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args, projects, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["project"].queryset = projects
