"""Input serializers parse types only (the rules live in apps/registry/services.py); output serializers shape the
answers. Input serializers refuse fields they do not take, so a PATCH cannot set a stage, an approver or a hash:
the error names the field."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.registry import cards
from apps.registry.choices import Decision, RequestStatus, Stage, VersionStatus
from apps.registry.models import Approval, ModelVersion, PromotionRequest, RegisteredModel, StageTransition

READ_ONLY_MESSAGE = "This field cannot be set here."
# The stages a version can be moved to directly (production only through a promotion request).
STAGE_CHANGES = [(Stage.STAGING.value, Stage.STAGING.label), (Stage.ARCHIVED.value, Stage.ARCHIVED.label)]


class StrictInputSerializer(serializers.Serializer):
    """Refuses any field it does not declare (read-only fields included), naming it."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: [READ_ONLY_MESSAGE] for name in unknown})
        return super().to_internal_value(data)


def _tags():
    return serializers.ListField(
        child=serializers.CharField(allow_blank=True, max_length=1000), required=False, help_text="Short labels."
    )


# --- Inputs ---------------------------------------------------------------------------------------------------------
class RegisteredModelCreateInputSerializer(StrictInputSerializer):
    name = serializers.CharField(allow_blank=True, help_text="Unique in the project.")
    description = serializers.CharField(required=False, allow_blank=True, default="")


class RegisteredModelUpdateInputSerializer(StrictInputSerializer):
    description = serializers.CharField(allow_blank=True)


class VersionRegisterInputSerializer(StrictInputSerializer):
    run = serializers.UUIDField(help_text="A succeeded run of this project.")
    description = serializers.CharField(required=False, allow_blank=True, default="")
    tags = _tags()


class VersionUpdateInputSerializer(StrictInputSerializer):
    description = serializers.CharField(required=False, allow_blank=True)
    tags = _tags()


class StageInputSerializer(StrictInputSerializer):
    stage = serializers.ChoiceField(
        choices=STAGE_CHANGES, help_text="Production is reached only through a promotion request."
    )
    reason = serializers.CharField(required=False, allow_blank=True, default="")


class PromotionOpenInputSerializer(StrictInputSerializer):
    version = serializers.UUIDField(help_text="A ready version in staging, of a model of this project.")
    justification = serializers.CharField(allow_blank=True)


class ApproveInputSerializer(StrictInputSerializer):
    comment = serializers.CharField(allow_blank=True)
    gate_override_reason = serializers.CharField(
        required=False, allow_blank=True, default="", help_text="Admins only, when a gate fails: why approve anyway."
    )


class RejectInputSerializer(StrictInputSerializer):
    reason = serializers.CharField(allow_blank=True)


class RollbackInputSerializer(StrictInputSerializer):
    reason = serializers.CharField(allow_blank=True)


class CardUpdateInputSerializer(serializers.Serializer):
    """{section: text} for the sections people write (others are generated and refused by name)."""

    written = serializers.DictField(
        child=serializers.CharField(allow_blank=True),
        help_text="Sections: " + ", ".join(cards.WRITTEN_KEYS),
    )


# --- Outputs --------------------------------------------------------------------------------------------------------
class GateSerializer(serializers.Serializer):
    name = serializers.CharField()
    label = serializers.CharField()
    passed = serializers.BooleanField()
    value = serializers.JSONField(allow_null=True)
    threshold = serializers.JSONField(allow_null=True)
    detail = serializers.CharField()


class RegisteredModelSerializer(serializers.ModelSerializer):
    project = serializers.UUIDField(source="project_id", read_only=True)
    created_by = serializers.CharField(source="created_by.username", read_only=True)
    version_count = serializers.IntegerField(read_only=True)
    production_number = serializers.IntegerField(read_only=True, allow_null=True, help_text="None: none in production.")

    class Meta:
        model = RegisteredModel
        fields = [
            "id",
            "project",
            "name",
            "description",
            "created_by",
            "created_at",
            "updated_at",
            "version_count",
            "production_number",
        ]
        read_only_fields = fields


class ModelVersionSerializer(serializers.ModelSerializer):
    registered_model = serializers.UUIDField(source="registered_model_id", read_only=True)
    model_name = serializers.CharField(source="registered_model.name", read_only=True)
    run = serializers.UUIDField(source="run_id", read_only=True)
    status = serializers.ChoiceField(choices=VersionStatus.choices, read_only=True)
    stage = serializers.ChoiceField(choices=Stage.choices, read_only=True)
    created_by = serializers.CharField(source="created_by.username", read_only=True)
    trained_by = serializers.CharField(source="run.experiment.created_by.username", read_only=True)
    primary_metric = serializers.SerializerMethodField()
    test_score = serializers.SerializerMethodField()

    class Meta:
        model = ModelVersion
        fields = [
            "id",
            "registered_model",
            "model_name",
            "number",
            "run",
            "status",
            "status_reason",
            "stage",
            "artifact_sha256",
            "artifact_signature",
            "artifact_size",
            "metrics_sha256",
            "primary_metric",
            "test_score",
            "tags",
            "description",
            "created_by",
            "trained_by",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_primary_metric(self, version) -> str:
        return (version.metrics or {}).get("primary_metric", "")

    def get_test_score(self, version) -> float | None:
        return (version.metrics or {}).get("test_score")


class ModelVersionDetailSerializer(ModelVersionSerializer):
    class Meta(ModelVersionSerializer.Meta):
        fields = [*ModelVersionSerializer.Meta.fields, "artifact_key", "input_signature", "metrics", "lineage"]
        read_only_fields = fields


class StageTransitionSerializer(serializers.ModelSerializer):
    version = serializers.UUIDField(source="version_id", read_only=True)
    version_number = serializers.IntegerField(source="version.number", read_only=True)
    actor = serializers.CharField(source="actor.username", read_only=True)
    promotion_request = serializers.UUIDField(source="promotion_request_id", read_only=True, allow_null=True)

    class Meta:
        model = StageTransition
        fields = [
            "id",
            "version",
            "version_number",
            "from_stage",
            "to_stage",
            "actor",
            "reason",
            "promotion_request",
            "is_rollback",
            "created_at",
        ]
        read_only_fields = fields


class CardSectionSerializer(serializers.Serializer):
    key = serializers.CharField()
    title = serializers.CharField()
    text = serializers.CharField()
    items = serializers.ListField(child=serializers.CharField())
    required = serializers.BooleanField()
    missing = serializers.BooleanField()
    written = serializers.BooleanField(help_text="True: people write it (PATCH); False: generated, read-only.")


class ModelCardSerializer(serializers.Serializer):
    version = serializers.UUIDField(source="pk")
    sections = serializers.SerializerMethodField()
    written = serializers.SerializerMethodField()
    writable_sections = serializers.SerializerMethodField()

    @extend_schema_field(CardSectionSerializer(many=True))
    def get_sections(self, version):
        return CardSectionSerializer(cards.card_sections(version), many=True).data

    def get_written(self, version) -> dict[str, str]:
        card = getattr(version, "card", None)
        return card.written if card else {}

    def get_writable_sections(self, version) -> list[dict]:
        return [{"key": key, "label": label, "required": required} for key, label, required in cards.WRITTEN_SECTIONS]


class ApprovalSerializer(serializers.ModelSerializer):
    reviewer = serializers.CharField(source="reviewer.username", read_only=True)
    decision = serializers.ChoiceField(choices=Decision.choices, read_only=True)
    gates = GateSerializer(many=True, read_only=True)

    class Meta:
        model = Approval
        fields = [
            "id",
            "reviewer",
            "decision",
            "comment",
            "gates",
            "gate_override_reason",
            "artifact_sha256",
            "metrics_sha256",
            "created_at",
        ]
        read_only_fields = fields


class PromotionRequestSerializer(serializers.ModelSerializer):
    version = serializers.UUIDField(source="version_id", read_only=True)
    version_number = serializers.IntegerField(source="version.number", read_only=True)
    registered_model = serializers.UUIDField(source="version.registered_model_id", read_only=True)
    model_name = serializers.CharField(source="version.registered_model.name", read_only=True)
    requester = serializers.CharField(source="requester.username", read_only=True)
    status = serializers.ChoiceField(choices=RequestStatus.choices, read_only=True)
    approval_count = serializers.IntegerField(read_only=True, allow_null=True)
    gates = GateSerializer(many=True, read_only=True, help_text="As evaluated when the request was opened.")
    champion = serializers.UUIDField(source="champion_id", read_only=True, allow_null=True)

    class Meta:
        model = PromotionRequest
        fields = [
            "id",
            "version",
            "version_number",
            "registered_model",
            "model_name",
            "requester",
            "justification",
            "status",
            "required_approvals",
            "approval_count",
            "artifact_sha256",
            "metrics_sha256",
            "gates",
            "champion",
            "decided_at",
            "decision_reason",
            "created_at",
        ]
        read_only_fields = fields


class PromotionRequestDetailSerializer(PromotionRequestSerializer):
    approvals = ApprovalSerializer(many=True, read_only=True, help_text="Every decision, in order.")

    class Meta(PromotionRequestSerializer.Meta):
        fields = [*PromotionRequestSerializer.Meta.fields, "approvals"]
        read_only_fields = fields
