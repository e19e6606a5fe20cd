"""The experiment launch form. It turns what the browser sends into the spec dict that
workers.ml.training.spec.build_spec validates (through services.experiment_launch, exactly as the API does), and puts
that validation's dotted field errors ("split.train") next to the matching inputs."""

from django import forms

from apps.core.forms import ErrorsMixin
from workers.ml.training.algorithms import ALGORITHMS  # stdlib only, like spec
from workers.ml.training.spec import (
    DATETIME_PARTS,
    ENCODINGS,
    FEATURE_KINDS,
    METRICS,
    MISSING_STRATEGIES,
    OUTLIER_STRATEGIES,
    PROBLEM_TYPES,
    SCALINGS,
    SEARCH_METHODS,
    SPLIT_STRATEGIES,
    Preparation,
    Search,
    Split,
    default_features,
    default_kind,
    default_sensitive,
)

LABELS = {
    "binary": "Binary classification",
    "multiclass": "Multiclass classification",
    "regression": "Regression",
    "clustering": "Clustering",
    "drop": "Drop rows with missing values",
    "mean": "Mean",
    "median": "Median",
    "mode": "Most frequent value",
    "constant": "A constant",
    "indicator": "Median plus a missing-value indicator",
    "none": "None",
    "clip_quantiles": "Clip to quantiles",
    "iqr": "Clip to 1.5 × IQR",
    "standard": "Standard (z-score)",
    "robust": "Robust (median and IQR)",
    "minmax": "Min-max",
    "onehot": "One-hot",
    "ordinal": "Ordinal",
    "target": "Target encoding",
    "random": "Random",
    "stratified": "Stratified by the target",
    "time": "Time-ordered by a column",
    "grid": "Grid search",
    "bayesian": "Bayesian (Optuna TPE)",
}
# Where a spec error lands in this form (the spec's dotted names -> input names).
SPEC_FIELD_TO_INPUT = {
    "preparation.missing": "missing",
    "preparation.missing_constant": "missing_constant",
    "preparation.outliers": "outliers",
    "preparation.outlier_quantiles": "outliers",
    "preparation.scaling": "scaling",
    "preparation.encoding": "encoding",
    "preparation.datetime_parts": "datetime_parts",
    "split.strategy": "split_strategy",
    "split.train": "split_train",
    "split.validation": "split_validation",
    "split.test": "split_test",
    "split.time_column": "time_column",
    "split.cv_folds": "cv_folds",
    "search.method": "search_method",
    "search.max_trials": "max_trials",
    "search.timeout_seconds": "timeout_seconds",
    "feature_kinds": "features",
}


def _choices(values) -> list[tuple[str, str]]:
    return [(value, LABELS.get(value, value.replace("_", " "))) for value in values]


class LaunchForm(ErrorsMixin, forms.Form):
    """Built for one project and (once chosen) one dataset version, whose columns fill the column choices."""

    name = forms.CharField(label="Name", required=False, max_length=200, help_text="Optional; a number is given.")
    description = forms.CharField(label="Description", required=False, widget=forms.Textarea(attrs={"rows": 2}))
    dataset_version = forms.ChoiceField(
        label="Dataset version", help_text="Only versions that passed validation (or carry an override) are listed."
    )
    problem_type = forms.ChoiceField(label="Problem type", choices=_choices(PROBLEM_TYPES))
    target = forms.ChoiceField(label="Target column", required=False, help_text="Empty for clustering.")
    features = forms.MultipleChoiceField(
        label="Feature columns",
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="By default every column except the target, excluded and personal columns, identifiers and text.",
    )
    missing = forms.ChoiceField(label="Missing numeric values", choices=_choices(MISSING_STRATEGIES))
    missing_constant = forms.FloatField(label="Constant for missing values", required=False)
    outliers = forms.ChoiceField(label="Outliers", choices=_choices(OUTLIER_STRATEGIES))
    scaling = forms.ChoiceField(label="Scaling", choices=_choices(SCALINGS))
    encoding = forms.ChoiceField(label="Categorical encoding", choices=_choices(ENCODINGS))
    datetime_parts = forms.MultipleChoiceField(
        label="Date parts", required=False, choices=_choices(DATETIME_PARTS), widget=forms.CheckboxSelectMultiple
    )
    split_strategy = forms.ChoiceField(label="Split", choices=_choices(SPLIT_STRATEGIES))
    split_train = forms.FloatField(label="Train share", min_value=0, max_value=1)
    split_validation = forms.FloatField(label="Validation share", min_value=0, max_value=1)
    split_test = forms.FloatField(label="Test share", min_value=0, max_value=1)
    time_column = forms.ChoiceField(label="Time column", required=False, help_text="For a time-ordered split.")
    cv_folds = forms.IntegerField(label="Cross-validation folds", min_value=0, help_text="0 for none.")
    algorithms = forms.MultipleChoiceField(
        label="Candidate algorithms",
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="One run per algorithm. None chosen: every algorithm that fits the problem type.",
    )
    search_method = forms.ChoiceField(label="Hyperparameter search", choices=_choices(SEARCH_METHODS))
    max_trials = forms.IntegerField(label="Trial budget", min_value=0)
    timeout_seconds = forms.IntegerField(label="Time budget (seconds)", min_value=0)
    primary_metric = forms.ChoiceField(label="Primary metric", required=False)
    sensitive_columns = forms.MultipleChoiceField(
        label="Sensitive columns (fairness)", required=False, widget=forms.CheckboxSelectMultiple
    )
    seed = forms.IntegerField(label="Random seed", min_value=0)

    def __init__(self, *args, versions, columns: list[dict] | None, definition=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.columns = columns or []
        self.fields["dataset_version"].choices = [("", "Choose a version")] + [
            (str(version.pk), f"{version.dataset.name} v{version.number} ({version.row_count:,} rows)")
            for version in versions
        ]
        names = [(column["name"], column["name"]) for column in self.columns]
        self.fields["target"].choices = [("", "No target (clustering)"), *names]
        self.fields["features"].choices = names
        self.fields["sensitive_columns"].choices = names
        self.fields["time_column"].choices = [("", "—"), *names]
        self.fields["algorithms"].choices = [(a.name, a.label) for a in ALGORITHMS.values()]
        self.fields["primary_metric"].choices = [("", "The project's success metric")] + [
            (LABELS[kind], [(metric, metric.replace("_", " ")) for metric in metrics])
            for kind, metrics in METRICS.items()
        ]
        # One "how to treat it" select per column, named by position: column names are data, not input names.
        for index, column in enumerate(self.columns):
            self.fields[f"kind_{index}"] = forms.ChoiceField(
                label=f"Treat {column['name']} as",
                required=False,
                choices=_choices(FEATURE_KINDS),
                initial=default_kind(column),
            )
        if not self.is_bound:
            self._set_initial(definition)

    def _set_initial(self, definition) -> None:
        problem_type = getattr(definition, "problem_type", "binary")
        # Supervised problems usually keep their label last: a starting point the user changes in one click.
        if problem_type != "clustering" and self.columns:
            self.initial.setdefault("target", self.columns[-1]["name"])
        target = self.initial.get("target")
        sensitive = default_sensitive(self.columns, target=target)
        preparation, split, search = Preparation(), Split(), Search()
        self.initial.setdefault("problem_type", problem_type)
        self.initial.setdefault("features", default_features(self.columns, target=target, sensitive=sensitive))
        self.initial.setdefault("sensitive_columns", sensitive)
        self.initial.update(
            missing=preparation.missing,
            outliers=preparation.outliers,
            scaling=preparation.scaling,
            encoding=preparation.encoding,
            datetime_parts=list(preparation.datetime_parts),
            split_strategy="stratified" if problem_type in ("binary", "multiclass") else "random",
            split_train=split.train,
            split_validation=split.validation,
            split_test=split.test,
            cv_folds=split.cv_folds,
            search_method=search.method,
            max_trials=search.max_trials,
            timeout_seconds=search.timeout_seconds,
            seed=42,
        )

    def feature_rows(self) -> list[dict]:
        """Per column, for the features table: the column, its checkbox and its kind select."""
        checkboxes = {box.data["value"]: box for box in self["features"]}
        return [
            {"column": column, "checkbox": checkboxes.get(column["name"]), "kind": self[f"kind_{index}"]}
            for index, column in enumerate(self.columns)
        ]

    def spec_data(self) -> dict:
        """The spec dict for build_spec; leaves out what the user left to the defaults."""
        data = self.cleaned_data
        target = data.get("target") or None
        # The column list is drawn before the target is picked: a checked target is the target, not a feature.
        features = [name for name in data.get("features") or [] if name != target]
        kinds = {}
        for index, column in enumerate(self.columns):
            chosen = data.get(f"kind_{index}")
            if column["name"] in features and chosen and chosen != default_kind(column):
                kinds[column["name"]] = chosen
        spec = {
            "problem_type": data.get("problem_type"),
            "target": target,
            "features": features,
            "feature_kinds": kinds,
            "preparation": {
                "missing": data.get("missing"),
                "outliers": data.get("outliers"),
                "scaling": data.get("scaling"),
                "encoding": data.get("encoding"),
                "datetime_parts": data.get("datetime_parts") or [],
            },
            "split": {
                "strategy": data.get("split_strategy"),
                "train": data.get("split_train"),
                "validation": data.get("split_validation"),
                "test": data.get("split_test"),
                "time_column": data.get("time_column") or None,
                "cv_folds": data.get("cv_folds"),
            },
            "search": {
                "method": data.get("search_method"),
                "max_trials": data.get("max_trials"),
                "timeout_seconds": data.get("timeout_seconds"),
            },
            "sensitive_columns": data.get("sensitive_columns") or [],
            "seed": data.get("seed"),
        }
        if data.get("missing_constant") is not None:
            spec["preparation"]["missing_constant"] = data["missing_constant"]
        if data.get("algorithms"):
            spec["algorithms"] = data["algorithms"]
        if data.get("primary_metric"):
            spec["primary_metric"] = data["primary_metric"]
        return spec

    def error_field(self, key: str, message: str = "") -> str | None:
        key = SPEC_FIELD_TO_INPUT.get(key, key)
        return key if key in self.fields else None
