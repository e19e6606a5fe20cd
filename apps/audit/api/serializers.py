from rest_framework import serializers

from apps.audit.models import AuditEvent


class AuditEventSerializer(serializers.ModelSerializer):
    """Output only: audit events are never written through the API."""

    project_name = serializers.CharField(source="project.name", default=None, read_only=True, allow_null=True)

    class Meta:
        model = AuditEvent
        fields = [
            "seq",
            "occurred_at",
            "actor",
            "actor_username",
            "action",
            "object_type",
            "object_id",
            "project",
            "project_name",
            "before",
            "after",
            "request_id",
            "client_ip",
            "prev_hash",
            "hash",
        ]
        read_only_fields = fields
