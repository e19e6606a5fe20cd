"""Input serializers parse types only (the rules live in apps/features/services.py); output serializers shape the
answers."""

from rest_framework import serializers

from apps.features.choices import ValueType
from apps.features.models import (
    Entity,
    Feature,
    FeatureVersion,
    FeatureView,
    MaterialisationJob,
    OnlineSync,
    PersonalFeatureException,
    TrainingSet,
    TrainingSetFeature,
)


# --- Inputs -----------------------------------------------------------------------------------------------------
class EntityCreateInputSerializer(serializers.Serializer):
    name = serializers.CharField(allow_blank=True)
    join_keys = serializers.ListField(child=serializers.CharField(), help_text="Key column names, e.g. customer_id.")
    description = serializers.CharField(required=False, allow_blank=True, default="")


class FeatureViewCreateInputSerializer(serializers.Serializer):
    name = serializers.CharField(allow_blank=True)
    entity = serializers.SlugRelatedField(slug_field="name", queryset=Entity.objects.all())
    description = serializers.CharField(required=False, allow_blank=True, default="")
    tags = serializers.ListField(child=serializers.CharField(), required=False, default=list)


class FeatureDefineInputSerializer(serializers.Serializer):
    view = serializers.SlugRelatedField(slug_field="name", queryset=FeatureView.objects.select_related("entity"))
    name = serializers.CharField(allow_blank=True)
    dataset = serializers.UUIDField(help_text="The source dataset (of a project where you may define features).")
    timestamp_column = serializers.CharField()
    entity_columns = serializers.ListField(child=serializers.CharField(), help_text="One per join key, in order.")
    transformation = serializers.DictField(help_text='e.g. {"kind": "window", "column": "amount", ...}')
    description = serializers.CharField(required=False, allow_blank=True, default="")
    value_type = serializers.ChoiceField(choices=ValueType.choices, required=False, default=ValueType.FLOAT)
    tags = serializers.ListField(child=serializers.CharField(), required=False, default=list)


class MaterialiseInputSerializer(serializers.Serializer):
    end = serializers.DateTimeField(required=False, allow_null=True, default=None, help_text="Default: now.")


class TrainingSetFeatureInputSerializer(serializers.Serializer):
    feature_version = serializers.UUIDField()
    output_name = serializers.CharField(required=False, allow_blank=True, default="")
    max_age_seconds = serializers.IntegerField(required=False, allow_null=True, default=None, min_value=1)


class TrainingSetBuildInputSerializer(serializers.Serializer):
    name = serializers.CharField(required=False, allow_blank=True, default="")
    spine_version = serializers.UUIDField()
    spine_key_columns = serializers.ListField(child=serializers.CharField())
    spine_timestamp_column = serializers.CharField()
    label_column = serializers.CharField(required=False, allow_blank=True, default="")
    features = TrainingSetFeatureInputSerializer(many=True)
    output_dataset = serializers.CharField(help_text="Name of the project's dataset the result becomes a version of.")


class ExceptionGrantInputSerializer(serializers.Serializer):
    feature_version = serializers.UUIDField()
    reason = serializers.CharField(allow_blank=True)


class OnlineReadInputSerializer(serializers.Serializer):
    view = serializers.CharField()
    entities = serializers.ListField(child=serializers.DictField(), help_text='[{"customer_id": 42}, ...]')
    features = serializers.ListField(child=serializers.CharField(), required=False, default=list)


# --- Outputs ----------------------------------------------------------------------------------------------------
class EntitySerializer(serializers.ModelSerializer):
    class Meta:
        model = Entity
        fields = ["id", "name", "join_keys", "description", "created_at"]


class FeatureViewSerializer(serializers.ModelSerializer):
    entity = serializers.CharField(source="entity.name")
    owner = serializers.CharField(source="owner.username")

    class Meta:
        model = FeatureView
        fields = ["id", "name", "entity", "description", "owner", "tags", "created_at"]


class FeatureVersionSerializer(serializers.ModelSerializer):
    dataset = serializers.UUIDField(source="dataset_id")
    project = serializers.UUIDField(source="dataset.project_id")

    class Meta:
        model = FeatureVersion
        fields = [
            "id",
            "number",
            "dataset",
            "project",
            "source_columns",
            "timestamp_column",
            "entity_columns",
            "transformation",
            "expression_tree",
            "personal",
            "sensitive",
            "created_at",
        ]


class FeatureSerializer(serializers.ModelSerializer):
    view = serializers.CharField(source="view.name")
    entity = serializers.CharField(source="view.entity.name")
    owner = serializers.CharField(source="owner.username")
    versions = FeatureVersionSerializer(many=True, read_only=True)

    class Meta:
        model = Feature
        fields = ["id", "name", "view", "entity", "description", "owner", "tags", "value_type", "versions"]


class MaterialisationJobSerializer(serializers.ModelSerializer):
    class Meta:
        model = MaterialisationJob
        fields = [
            "id",
            "feature_version",
            "dataset_version",
            "range_start",
            "range_end",
            "status",
            "rows",
            "artifact_keys",
            "statistics",
            "max_event_timestamp",
            "error",
            "queued_at",
            "started_at",
            "finished_at",
        ]


class TrainingSetFeatureSerializer(serializers.ModelSerializer):
    class Meta:
        model = TrainingSetFeature
        fields = ["feature_version", "output_name", "max_age_seconds"]


class TrainingSetSerializer(serializers.ModelSerializer):
    features = TrainingSetFeatureSerializer(source="items", many=True, read_only=True)

    class Meta:
        model = TrainingSet
        fields = [
            "id",
            "project",
            "name",
            "spine_version",
            "spine_key_columns",
            "spine_timestamp_column",
            "label_column",
            "output_dataset",
            "features",
            "status",
            "result_version",
            "lineage",
            "error",
            "queued_at",
            "finished_at",
        ]


class PersonalFeatureExceptionSerializer(serializers.ModelSerializer):
    granted_by = serializers.CharField(source="granted_by.username")

    class Meta:
        model = PersonalFeatureException
        fields = ["id", "project", "feature_version", "reason", "granted_by", "created_at"]


class OnlineSyncSerializer(serializers.ModelSerializer):
    view = serializers.CharField(source="view.name")

    class Meta:
        model = OnlineSync
        fields = ["id", "view", "status", "rows", "features", "error", "queued_at", "finished_at"]


class OnlineResultSerializer(serializers.Serializer):
    entity = serializers.DictField()
    features = serializers.DictField()
    event_timestamp = serializers.DateTimeField(allow_null=True)
    age_seconds = serializers.FloatField(allow_null=True)


class OnlineResponseSerializer(serializers.Serializer):
    view = serializers.CharField()
    results = OnlineResultSerializer(many=True)
