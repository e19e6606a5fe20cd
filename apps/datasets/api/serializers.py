"""Input serializers parse types only (the rules live in the services); output serializers shape the answers.

A connection's password is write-only: no output serializer has a field for it.
"""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.datasets.choices import JobStatus, SourceKind, ValidationStatus
from apps.datasets.models import DataConnection, Dataset, DatasetVersion, IngestionJob


# --- Datasets ---------------------------------------------------------------------------------------------------
class DatasetSerializer(serializers.ModelSerializer):
    project = serializers.UUIDField(source="project_id", read_only=True)
    created_by = serializers.CharField(source="created_by.username", read_only=True)
    latest_version_number = serializers.IntegerField(
        read_only=True, allow_null=True, help_text="None until the first version is made."
    )
    version_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = Dataset
        fields = [
            "id",
            "project",
            "name",
            "description",
            "created_by",
            "created_at",
            "updated_at",
            "latest_version_number",
            "version_count",
            "validation_rules",
            "column_marks",
        ]
        read_only_fields = fields


class DatasetCreateInputSerializer(serializers.Serializer):
    name = serializers.CharField(allow_blank=True, max_length=500)
    description = serializers.CharField(required=False, allow_blank=True, default="")


class DatasetUpdateInputSerializer(serializers.Serializer):
    description = serializers.CharField(allow_blank=True)


class DatasetFilterSerializer(serializers.Serializer):
    search = serializers.CharField(required=False, help_text="Part of the dataset name.")


class ValidationRangeSerializer(serializers.Serializer):
    min = serializers.FloatField(allow_null=True, required=False)
    max = serializers.FloatField(allow_null=True, required=False)


class ValidationRulesSerializer(serializers.Serializer):
    """The checks every new version must pass (all optional). Empty expected_columns = the previous version's
    schema, so schema drift is caught by default."""

    expected_columns = serializers.DictField(
        child=serializers.CharField(), allow_null=True, required=False, help_text="Column name -> dtype."
    )
    max_missing_share = serializers.FloatField(allow_null=True, required=False, min_value=0, max_value=1)
    max_missing_share_by_column = serializers.DictField(child=serializers.FloatField(), required=False)
    ranges = serializers.DictField(child=ValidationRangeSerializer(), required=False)
    allowed_categories = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()), required=False
    )
    unique_columns = serializers.ListField(child=serializers.CharField(), required=False)
    min_rows = serializers.IntegerField(allow_null=True, required=False, min_value=0)


class ColumnMarkSerializer(serializers.Serializer):
    personal = serializers.BooleanField(required=False, default=False)
    sensitive = serializers.BooleanField(required=False, default=False, help_text="A protected attribute.")
    excluded = serializers.BooleanField(required=False, default=False, help_text="Kept out of training.")


class ColumnMarksSerializer(serializers.Serializer):
    marks = serializers.DictField(
        child=ColumnMarkSerializer(), help_text="Column name -> marks. Columns not named keep their marks."
    )


# --- Versions ---------------------------------------------------------------------------------------------------
class DatasetVersionSerializer(serializers.ModelSerializer):
    dataset = serializers.UUIDField(source="dataset_id", read_only=True)
    created_by = serializers.CharField(source="created_by.username", read_only=True)
    validation_status = serializers.ChoiceField(choices=ValidationStatus.choices, read_only=True)
    usable_for_training = serializers.BooleanField(read_only=True)
    overridden = serializers.SerializerMethodField()

    class Meta:
        model = DatasetVersion
        fields = [
            "id",
            "dataset",
            "number",
            "sha256",
            "source_kind",
            "source_display",
            "file_format",
            "original_size",
            "parquet_size",
            "row_count",
            "column_count",
            "validation_status",
            "usable_for_training",
            "overridden",
            "created_by",
            "created_at",
        ]
        read_only_fields = fields

    def get_overridden(self, version) -> bool:
        return bool(version.override_reason)


class EffectiveColumnSerializer(serializers.Serializer):
    name = serializers.CharField()
    dtype = serializers.CharField()
    nullable = serializers.BooleanField(allow_null=True)
    semantic_type = serializers.CharField(allow_null=True)
    personal = serializers.BooleanField()
    sensitive = serializers.BooleanField()
    excluded = serializers.BooleanField()
    pii = serializers.ListField(child=serializers.DictField(), help_text="PII findings: {column, kind, share, reason}.")


class DatasetVersionDetailSerializer(DatasetVersionSerializer):
    overridden_by = serializers.CharField(source="overridden_by.username", read_only=True, allow_null=True)
    columns = serializers.SerializerMethodField(
        help_text="Schema + current column marks + PII flags: what experiments and model cards use."
    )

    class Meta(DatasetVersionSerializer.Meta):
        fields = [
            *DatasetVersionSerializer.Meta.fields,
            "parquet_sha256",
            "schema",
            "profile",
            "pii_findings",
            "validation_rules",
            "validation_report",
            "column_marks",
            "columns",
            "override_reason",
            "overridden_by",
            "overridden_at",
        ]
        read_only_fields = fields

    @extend_schema_field(EffectiveColumnSerializer(many=True))
    def get_columns(self, version):
        from apps.datasets.selectors import version_effective_columns

        return version_effective_columns(version=version)


class OverrideInputSerializer(serializers.Serializer):
    reason = serializers.CharField(allow_blank=True, help_text="Why this version may be used despite failing.")


class TypeChangeSerializer(serializers.Serializer):
    name = serializers.CharField()
    old = serializers.CharField()
    new = serializers.CharField()


class CountChangeSerializer(serializers.Serializer):
    old = serializers.IntegerField()
    new = serializers.IntegerField()
    delta = serializers.IntegerField()


class VersionCompareSerializer(serializers.Serializer):
    old = serializers.IntegerField(help_text="The version number compared from.")
    new = serializers.IntegerField(help_text="The version number compared to.")
    added = serializers.ListField(child=serializers.CharField())
    removed = serializers.ListField(child=serializers.CharField())
    type_changed = TypeChangeSerializer(many=True)
    unchanged = serializers.IntegerField()
    row_count = CountChangeSerializer()
    column_count = CountChangeSerializer()


# --- Ingestion jobs ---------------------------------------------------------------------------------------------
class IngestionJobSerializer(serializers.ModelSerializer):
    project = serializers.UUIDField(source="project_id", read_only=True)
    dataset = serializers.UUIDField(source="dataset_id", read_only=True)
    dataset_name = serializers.CharField(source="dataset.name", read_only=True)
    connection = serializers.UUIDField(source="connection_id", read_only=True, allow_null=True)
    status = serializers.ChoiceField(choices=JobStatus.choices, read_only=True)
    source_kind = serializers.ChoiceField(choices=SourceKind.choices, read_only=True)
    version_number = serializers.SerializerMethodField()
    created_by = serializers.CharField(source="created_by.username", read_only=True)

    class Meta:
        model = IngestionJob
        fields = [
            "id",
            "project",
            "dataset",
            "dataset_name",
            "source_kind",
            "source_display",
            "s3_uri",
            "connection",
            "query",
            "status",
            "progress",
            "progress_message",
            "error_code",
            "error",
            "queued_at",
            "started_at",
            "finished_at",
            "attempts",
            "version_number",
            "deduplicated",
            "created_by",
        ]
        read_only_fields = fields

    def get_version_number(self, job) -> int | None:
        return job.version.number if job.version_id else None


class IngestionJobFilterSerializer(serializers.Serializer):
    dataset = serializers.UUIDField(required=False, help_text="Only the jobs of this dataset.")
    status = serializers.ChoiceField(choices=JobStatus.choices, required=False)


class UploadInputSerializer(serializers.Serializer):
    file = serializers.FileField(
        allow_empty_file=True,
        use_url=False,
        help_text="CSV, TSV, Parquet or JSON Lines; the text formats may be gzip-compressed (.gz).",
    )


class IngestionInputSerializer(serializers.Serializer):
    source = serializers.ChoiceField(choices=[(SourceKind.S3.value, "S3 object"), (SourceKind.SQL.value, "SQL query")])
    uri = serializers.CharField(required=False, allow_blank=True, help_text="source=s3: s3://bucket/path/file.csv")
    connection = serializers.UUIDField(required=False, allow_null=True, help_text="source=sql: a connection id.")
    query = serializers.CharField(required=False, allow_blank=True, help_text="source=sql: one SELECT query.")


# --- Connections ------------------------------------------------------------------------------------------------
class DataConnectionSerializer(serializers.ModelSerializer):
    project = serializers.UUIDField(source="project_id", read_only=True)
    created_by = serializers.CharField(source="created_by.username", read_only=True)
    password_set = serializers.SerializerMethodField()

    class Meta:
        model = DataConnection
        fields = [
            "id",
            "project",
            "name",
            "engine",
            "host",
            "port",
            "database",
            "username",
            "password_set",
            "created_by",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_password_set(self, connection) -> bool:
        return bool(connection.encrypted_password)


class DataConnectionInputSerializer(serializers.Serializer):
    name = serializers.CharField(allow_blank=True, max_length=500)
    host = serializers.CharField(allow_blank=True, max_length=500)
    port = serializers.IntegerField(required=False, default=5432)
    database = serializers.CharField(allow_blank=True, max_length=500)
    username = serializers.CharField(allow_blank=True, max_length=500)
    password = serializers.CharField(
        write_only=True,
        allow_blank=True,
        trim_whitespace=False,
        style={"input_type": "password"},
        help_text="Stored encrypted; never returned. On PATCH, omit it to keep the stored one.",
    )
