"""Input serializers parse types only (the spec's rules live in workers.ml.training.spec, applied by the services);
output serializers shape the answers."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.experiments.choices import ExperimentStatus, LogLevel, RunStatus
from apps.experiments.models import Experiment, Run, RunLogLine
from apps.projects.choices import ProblemType
from workers.ml.training.spec import (  # stdlib only
    ALGORITHMS,
    DATETIME_PARTS,
    ENCODINGS,
    FEATURE_KINDS,
    MISSING_STRATEGIES,
    OUTLIER_STRATEGIES,
    SCALINGS,
    SEARCH_METHODS,
    SPLIT_STRATEGIES,
)


# --- Launching --------------------------------------------------------------------------------------------------
class LaunchEnvelopeSerializer(serializers.Serializer):
    """What the launch takes besides the spec; every other field of the body is the spec (see below)."""

    dataset_version = serializers.UUIDField(help_text="A version usable for training (passed or overridden).")
    name = serializers.CharField(required=False, allow_blank=True, default="", max_length=1000)
    description = serializers.CharField(required=False, allow_blank=True, default="")


class PreparationInputSerializer(serializers.Serializer):
    missing = serializers.ChoiceField(choices=MISSING_STRATEGIES, required=False, help_text="Numeric columns.")
    missing_constant = serializers.FloatField(required=False, help_text="With missing=constant.")
    outliers = serializers.ChoiceField(choices=OUTLIER_STRATEGIES, required=False)
    outlier_quantiles = serializers.ListField(
        child=serializers.FloatField(), min_length=2, max_length=2, required=False, help_text="With clip_quantiles."
    )
    scaling = serializers.ChoiceField(choices=SCALINGS, required=False)
    encoding = serializers.ChoiceField(choices=ENCODINGS, required=False)
    datetime_parts = serializers.ListField(child=serializers.ChoiceField(choices=DATETIME_PARTS), required=False)


class SplitInputSerializer(serializers.Serializer):
    strategy = serializers.ChoiceField(choices=SPLIT_STRATEGIES, required=False)
    train = serializers.FloatField(required=False, help_text="Share of rows; the three shares add up to 1.")
    validation = serializers.FloatField(required=False)
    test = serializers.FloatField(required=False)
    time_column = serializers.CharField(required=False, allow_null=True, help_text="With strategy=time.")
    cv_folds = serializers.IntegerField(required=False, help_text="0 = no cross-validation, else 2..20.")


class SearchInputSerializer(serializers.Serializer):
    method = serializers.ChoiceField(choices=SEARCH_METHODS, required=False)
    max_trials = serializers.IntegerField(required=False, help_text="Trial budget (at least 1 with a search).")
    timeout_seconds = serializers.IntegerField(required=False, help_text="Time budget of the search.")


class ExperimentLaunchInputSerializer(LaunchEnvelopeSerializer):
    """The launch body as documented. Every spec field is optional: the defaults come from the dataset version's
    columns and the project's definition ("just launch" needs only dataset_version and, for supervised problems,
    target). Errors name the field, dotted for nested ones ("split.train")."""

    problem_type = serializers.ChoiceField(choices=ProblemType.choices, required=False)
    target = serializers.CharField(required=False, allow_null=True, help_text="Empty for clustering.")
    features = serializers.ListField(
        child=serializers.CharField(), required=False, help_text="Default: all but target, excluded, personal, ids."
    )
    feature_kinds = serializers.DictField(
        child=serializers.ChoiceField(choices=FEATURE_KINDS), required=False, help_text="Column -> how to treat it."
    )
    algorithms = serializers.ListField(
        child=serializers.ChoiceField(choices=list(ALGORITHMS)), required=False, help_text="One run per algorithm."
    )
    primary_metric = serializers.CharField(required=False, help_text="Default: the project's success metric.")
    preparation = PreparationInputSerializer(required=False)
    split = SplitInputSerializer(required=False)
    search = SearchInputSerializer(required=False)
    sensitive_columns = serializers.ListField(
        child=serializers.CharField(), required=False, help_text="Default: the columns marked sensitive."
    )
    seed = serializers.IntegerField(required=False, min_value=0)


# --- Runs -------------------------------------------------------------------------------------------------------
class RunSerializer(serializers.ModelSerializer):
    experiment = serializers.UUIDField(source="experiment_id", read_only=True)
    status = serializers.ChoiceField(choices=RunStatus.choices, read_only=True)

    class Meta:
        model = Run
        fields = [
            "id",
            "experiment",
            "number",
            "algorithm",
            "status",
            "progress",
            "progress_message",
            "trials_done",
            "trials_total",
            "best_score",
            "primary_score",
            "test_score",
            "error_code",
            "error",
            "attempts",
            "queued_at",
            "started_at",
            "heartbeat_at",
            "finished_at",
        ]
        read_only_fields = fields


class RunDetailSerializer(RunSerializer):
    """Everything a run records: its spec, seed and data hash (to reproduce it), results and the signed artifact."""

    class Meta(RunSerializer.Meta):
        fields = [
            *RunSerializer.Meta.fields,
            "spec",
            "seed",
            "dataset_sha256",
            "params",
            "trials",
            "metrics",
            "cv",
            "input_signature",
            "environment",
            "timings",
            "artifact_key",
            "artifact_sha256",
            "artifact_signature",
            "artifact_size",
        ]
        read_only_fields = fields


class LeaderboardEntrySerializer(RunSerializer):
    rank = serializers.IntegerField(read_only=True, allow_null=True, help_text="1 = best; None when not scored.")

    class Meta(RunSerializer.Meta):
        fields = ["rank", *RunSerializer.Meta.fields]
        read_only_fields = fields


class RunFilterSerializer(serializers.Serializer):
    experiment = serializers.UUIDField(required=False, help_text="Only the runs of this experiment.")
    status = serializers.ChoiceField(choices=RunStatus.choices, required=False)


class RunLogLineSerializer(serializers.ModelSerializer):
    level = serializers.ChoiceField(choices=LogLevel.choices, read_only=True)

    class Meta:
        model = RunLogLine
        fields = ["id", "at", "level", "message"]
        read_only_fields = fields


class RunLogQuerySerializer(serializers.Serializer):
    after = serializers.IntegerField(
        required=False, min_value=0, help_text="The last line id you have (0 = from the start); omit for the tail."
    )
    limit = serializers.IntegerField(required=False, min_value=1, max_value=1000, default=200)


class RunLogSerializer(serializers.Serializer):
    run_status = serializers.ChoiceField(choices=RunStatus.choices, help_text="Stop polling once it is finished.")
    lines = RunLogLineSerializer(many=True)
    last_id = serializers.IntegerField(allow_null=True, help_text="Ask again with ?after=<last_id>.")


class CompareQuerySerializer(serializers.Serializer):
    ids = serializers.CharField(help_text="2 to 6 run ids, comma-separated.")


class CompareRowSerializer(serializers.Serializer):
    section = serializers.CharField(help_text="Which evaluation: validation, test or train.")
    metric = serializers.CharField()
    values = serializers.ListField(child=serializers.FloatField(allow_null=True), help_text="One per run, in order.")
    best = serializers.IntegerField(allow_null=True, help_text="Index of the best run, when two or more have one.")


class ComparePrimarySerializer(serializers.Serializer):
    row = serializers.ChoiceField(choices=["primary_score", "test_score"])
    values = serializers.ListField(child=serializers.FloatField(allow_null=True))
    best = serializers.IntegerField(allow_null=True)


class RunCompareSerializer(serializers.Serializer):
    runs = RunSerializer(many=True)
    primary_metrics = serializers.ListField(
        child=serializers.CharField(), help_text="The runs' primary metrics (one when they are comparable)."
    )
    primary = ComparePrimarySerializer(many=True)
    metrics = CompareRowSerializer(many=True)


# --- Experiments ------------------------------------------------------------------------------------------------
class ExperimentSerializer(serializers.ModelSerializer):
    project = serializers.UUIDField(source="project_id", read_only=True)
    dataset = serializers.UUIDField(source="dataset_version.dataset_id", read_only=True)
    dataset_name = serializers.CharField(source="dataset_version.dataset.name", read_only=True)
    dataset_version = serializers.UUIDField(source="dataset_version_id", read_only=True)
    dataset_version_number = serializers.IntegerField(source="dataset_version.number", read_only=True)
    status = serializers.ChoiceField(choices=ExperimentStatus.choices, read_only=True)
    created_by = serializers.CharField(source="created_by.username", read_only=True)
    run_count = serializers.IntegerField(read_only=True)
    succeeded_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = Experiment
        fields = [
            "id",
            "project",
            "number",
            "name",
            "description",
            "dataset",
            "dataset_name",
            "dataset_version",
            "dataset_version_number",
            "status",
            "created_by",
            "created_at",
            "finished_at",
            "run_count",
            "succeeded_count",
        ]
        read_only_fields = fields


class ExperimentDetailSerializer(ExperimentSerializer):
    spec = serializers.JSONField(read_only=True, help_text="The validated spec, with every default filled in.")
    runs = serializers.SerializerMethodField()

    class Meta(ExperimentSerializer.Meta):
        fields = [
            *[name for name in ExperimentSerializer.Meta.fields if name not in ("run_count", "succeeded_count")],
            "spec",
            "runs",
        ]
        read_only_fields = fields

    @extend_schema_field(RunSerializer(many=True))
    def get_runs(self, experiment):
        return RunSerializer(experiment.runs.all(), many=True).data
