"""HTML forms of the datasets area. They parse what the browser sends into the shapes the services take; the rules
(what a valid rule set, column mark, connection or override is) live in apps/datasets/services.py, whose field errors
are put next to the fields with `apply_errors`."""

import re

from django import forms

from apps.core.forms import ErrorsMixin
from apps.datasets.choices import SemanticType

# Numeric profiles get min/max inputs, categorical ones an allowed-values list.
RANGE_TYPES = {SemanticType.NUMERIC.value}
CATEGORY_TYPES = {SemanticType.CATEGORICAL.value, SemanticType.BOOLEAN.value}
MARKS = ("personal", "sensitive", "excluded")
MARK_LABELS = {
    "personal": "Personal data",
    "sensitive": "Sensitive (protected attribute)",
    "excluded": "Excluded from training",
}
ACCEPTED_EXTENSIONS = ".csv,.tsv,.parquet,.jsonl,.ndjson,.gz"


class DatasetFilterForm(forms.Form):
    project = forms.ModelChoiceField(label="Project", queryset=None, required=False, empty_label="Any project")
    search = forms.CharField(label="Name contains", required=False, max_length=200)

    def __init__(self, *args, projects, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["project"].queryset = projects


class DatasetForm(ErrorsMixin, forms.Form):
    project = forms.ChoiceField(label="Project", help_text="Projects where you may ingest data.")
    name = forms.CharField(label="Name", max_length=200, help_text="Unique within the project, e.g. “churn”.")
    description = forms.CharField(
        label="Description",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Where the data comes from and what one row is.",
    )

    def __init__(self, *args, projects, **kwargs):
        """`projects`: the projects the user may create datasets in (selectors.project_list_for_dataset_ingest)."""
        super().__init__(*args, **kwargs)
        self.projects = {str(project.pk): project for project in projects}
        self.fields["project"].choices = [("", "Choose…")] + [(pk, p.name) for pk, p in self.projects.items()]
        if len(self.projects) == 1 and not self.is_bound and not self.initial.get("project"):
            self.initial["project"] = next(iter(self.projects))  # the usual case: one project, nothing to choose

    def clean_project(self):
        return self.projects[self.cleaned_data["project"]]


class UploadForm(ErrorsMixin, forms.Form):
    file = forms.FileField(label="Data file")

    def __init__(self, *args, max_bytes: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["file"].help_text = "CSV, TSV, Parquet or JSON Lines, optionally gzip-compressed (.gz)."
        self.fields["file"].widget.attrs.update({"accept": ACCEPTED_EXTENSIONS, "data-max-bytes": str(max_bytes)})


class S3ImportForm(ErrorsMixin, forms.Form):
    uri = forms.CharField(
        label="Object URI",
        max_length=1024,
        help_text="An object already in the S3 store, e.g. s3://landing/churn/2024-06.csv.gz.",
        widget=forms.TextInput(attrs={"placeholder": "s3://bucket/key", "spellcheck": "false"}),
    )


class SqlImportForm(ErrorsMixin, forms.Form):
    connection = forms.ModelChoiceField(label="Connection", queryset=None, empty_label="Choose…")
    query = forms.CharField(
        label="Query",
        widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "false", "class": "mono"}),
        help_text="One SELECT statement; it runs in a read-only transaction.",
    )

    def __init__(self, *args, connections, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["connection"].queryset = connections


class OverrideForm(ErrorsMixin, forms.Form):
    reason = forms.CharField(
        label="Reason for using this version anyway",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Written to the audit trail, and shown with the version.",
    )


class CompareForm(forms.Form):
    old = forms.TypedChoiceField(label="Old version", coerce=int)
    new = forms.TypedChoiceField(label="New version", coerce=int)

    def __init__(self, *args, numbers: list[int], **kwargs):
        super().__init__(*args, **kwargs)
        choices = [(n, f"Version {n}") for n in numbers]
        self.fields["old"].choices = choices
        self.fields["new"].choices = choices


class ConnectionForm(ErrorsMixin, forms.Form):
    name = forms.CharField(label="Name", max_length=100, help_text="How the connection is listed, e.g. “warehouse”.")
    host = forms.CharField(label="Host", max_length=255)
    port = forms.IntegerField(label="Port", initial=5432)
    database = forms.CharField(label="Database", max_length=100)
    username = forms.CharField(label="User name", max_length=100, help_text="Use an account with read-only grants.")
    # Never rendered back with a value (render_value=False is the default, spelled out on purpose).
    password = forms.CharField(
        label="Password", required=False, strip=False, widget=forms.PasswordInput(render_value=False)
    )


def _lines(text: str) -> list[str]:
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


# rule_errors() keys its messages by rule ("ranges") and names the column in the text: "Column 'age': ...".
_COLUMN_IN_MESSAGE = re.compile(r"^Column '(?P<name>.*?)'(?::| )")
_RULE_FIELD_SUFFIX = {
    "expected_columns": "dtype",
    "ranges": "min",
    "allowed_categories": "categories",
    "unique_columns": "unique",
}


class RulesForm(ErrorsMixin, forms.Form):
    """The dataset's validation rules. Per-column rows come from the newest version's schema (and from columns the
    current rules already mention); their field names use the row index, never the column name."""

    min_rows = forms.IntegerField(label="Minimum rows", required=False, help_text="Fewer rows fail the version.")
    max_missing_share = forms.FloatField(
        label="Maximum missing share (all columns)",
        required=False,
        widget=forms.NumberInput(attrs={"step": "any"}),
        help_text="From 0 to 1, e.g. 0.05 for at most 5 % empty cells in any column.",
    )

    def __init__(self, *args, columns: list[dict], rules: dict, dtypes: tuple[str, ...], **kwargs):
        """`columns`: [{"name", "dtype", "semantic_type"}]; `rules`: the dataset's current rules (as_dict form);
        `dtypes`: the column types a rule may expect (workers.ml.data.specs.DTYPES)."""
        self.base_rules = dict(rules or {})
        self.columns = columns
        expected = self.base_rules.get("expected_columns")
        ranges = self.base_rules.get("ranges") or {}
        categories = self.base_rules.get("allowed_categories") or {}
        unique = set(self.base_rules.get("unique_columns") or [])
        initial = {
            "min_rows": self.base_rules.get("min_rows"),
            "max_missing_share": self.base_rules.get("max_missing_share"),
        }
        for index, column in enumerate(columns):
            name = column["name"]
            initial[f"col{index}_expected"] = expected is None or name in expected
            initial[f"col{index}_dtype"] = (expected or {}).get(name) or column.get("dtype", "")
            initial[f"col{index}_min"] = (ranges.get(name) or {}).get("min")
            initial[f"col{index}_max"] = (ranges.get(name) or {}).get("max")
            initial[f"col{index}_categories"] = "\n".join(str(value) for value in categories.get(name, []))
            initial[f"col{index}_unique"] = name in unique
        kwargs.setdefault("initial", initial)
        super().__init__(*args, **kwargs)
        for index, column in enumerate(columns):
            name = column["name"]
            types = list(dtypes)
            current = initial[f"col{index}_dtype"]
            if current and current not in types:
                types.append(current)
            self.fields[f"col{index}_expected"] = forms.BooleanField(label=f"Require {name}", required=False)
            self.fields[f"col{index}_dtype"] = forms.ChoiceField(
                label=f"Type of {name}", required=False, choices=[(dtype, dtype) for dtype in types]
            )
            if self.has_range(column):
                for bound in ("min", "max"):
                    self.fields[f"col{index}_{bound}"] = forms.FloatField(
                        label=f"{'Minimum' if bound == 'min' else 'Maximum'} of {name}",
                        required=False,
                        widget=forms.NumberInput(attrs={"step": "any", "class": "narrow", "placeholder": bound}),
                    )
            if self.has_categories(column):
                self.fields[f"col{index}_categories"] = forms.CharField(
                    label=f"Allowed values of {name}",
                    required=False,
                    widget=forms.Textarea(attrs={"rows": 2, "cols": 18}),
                )
            self.fields[f"col{index}_unique"] = forms.BooleanField(label=f"{name} is a unique key", required=False)

    def has_range(self, column: dict) -> bool:
        return column.get("semantic_type") in RANGE_TYPES or column["name"] in (self.base_rules.get("ranges") or {})

    def has_categories(self, column: dict) -> bool:
        return column.get("semantic_type") in CATEGORY_TYPES or column["name"] in (
            self.base_rules.get("allowed_categories") or {}
        )

    def column_rows(self) -> list[dict]:
        """One row per column for the template: its name, type and bound fields (None where not applicable)."""
        rows = []
        for index, column in enumerate(self.columns):
            fields = {}
            for suffix in ("expected", "dtype", "min", "max", "categories", "unique"):
                name = f"col{index}_{suffix}"
                fields[suffix] = self[name] if name in self.fields else None
            rows.append({"name": column["name"], "semantic_type": column.get("semantic_type", ""), **fields})
        return rows

    def rules(self) -> dict:
        """The rules as the service takes them: the current rules with the parts this form edits replaced."""
        data = self.cleaned_data
        rules = dict(self.base_rules)
        rules["min_rows"] = data.get("min_rows")
        rules["max_missing_share"] = data.get("max_missing_share")
        expected, ranges, categories, unique = {}, {}, {}, []
        for index, column in enumerate(self.columns):
            name = column["name"]
            if data.get(f"col{index}_expected"):
                expected[name] = data.get(f"col{index}_dtype") or column.get("dtype", "")
            low, high = data.get(f"col{index}_min"), data.get(f"col{index}_max")
            if low is not None or high is not None:
                ranges[name] = {"min": low, "max": high}
            values = _lines(data.get(f"col{index}_categories", ""))
            if values:
                categories[name] = values
            if data.get(f"col{index}_unique"):
                unique.append(name)
        rules["expected_columns"] = expected or None
        rules["ranges"] = ranges
        rules["allowed_categories"] = categories
        rules["unique_columns"] = unique
        return rules

    def error_field(self, key: str, message: str = "") -> str | None:
        """Put a rule's error next to the column it names (the minimum input for a range, and so on)."""
        if key in self.fields:
            return key
        match = _COLUMN_IN_MESSAGE.match(message)
        if key not in _RULE_FIELD_SUFFIX or match is None:
            return None
        for index, column in enumerate(self.columns):
            if column["name"] == match["name"]:
                field = f"col{index}_{_RULE_FIELD_SUFFIX[key]}"
                return field if field in self.fields else None
        return None


class ColumnMarksForm(ErrorsMixin, forms.Form):
    """Personal / sensitive / excluded checkboxes per column, for dataset_column_marks_set."""

    def __init__(self, *args, columns: list[dict], marks: dict, **kwargs):
        """`columns`: [{"name", ...}] (the newest version's schema); `marks`: {column: {"personal": bool, ...}}."""
        self.columns = columns
        initial = {}
        for index, column in enumerate(columns):
            current = (marks or {}).get(column["name"]) or {}
            for mark in MARKS:
                initial[f"col{index}_{mark}"] = bool(current.get(mark))
        kwargs.setdefault("initial", initial)
        super().__init__(*args, **kwargs)
        for index, column in enumerate(columns):
            for mark in MARKS:
                self.fields[f"col{index}_{mark}"] = forms.BooleanField(
                    label=f"{MARK_LABELS[mark]}: {column['name']}", required=False
                )

    def column_rows(self) -> list[dict]:
        return [
            {"column": column, **{mark: self[f"col{index}_{mark}"] for mark in MARKS}}
            for index, column in enumerate(self.columns)
        ]

    def marks(self) -> dict[str, dict[str, bool]]:
        return {
            column["name"]: {mark: bool(self.cleaned_data.get(f"col{index}_{mark}")) for mark in MARKS}
            for index, column in enumerate(self.columns)
        }

    def error_field(self, key: str, message: str = "") -> str | None:
        """dataset_column_marks_set keys its errors by column name."""
        for index, column in enumerate(self.columns):
            if key == column["name"]:
                return f"col{index}_personal"
        return None
