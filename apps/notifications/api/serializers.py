from rest_framework import serializers

from apps.notifications.choices import Event
from apps.notifications.models import Notification, Webhook, WebhookDelivery


class NotificationSerializer(serializers.ModelSerializer):
    project = serializers.UUIDField(source="project_id", read_only=True, allow_null=True)
    read = serializers.BooleanField(source="is_read", read_only=True)

    class Meta:
        model = Notification
        fields = ["id", "event", "project", "title", "body", "link", "payload", "read", "read_at", "created_at"]
        read_only_fields = fields


class NotificationFilterSerializer(serializers.Serializer):
    unread = serializers.BooleanField(required=False, default=False, help_text="Only unread items.")


class MarkedReadSerializer(serializers.Serializer):
    marked_read = serializers.IntegerField(help_text="How many items were unread and are now read.")


class WebhookSerializer(serializers.ModelSerializer):
    project = serializers.UUIDField(source="project_id", read_only=True, allow_null=True)
    created_by = serializers.CharField(source="created_by.username", read_only=True)
    events = serializers.ListField(child=serializers.CharField(), read_only=True)

    class Meta:
        model = Webhook
        fields = ["id", "name", "url", "project", "events", "active", "created_by", "created_at", "updated_at"]
        read_only_fields = fields


class WebhookCreatedSerializer(WebhookSerializer):
    """A webhook just registered, with its signing secret: the only answer that ever carries it."""

    secret = serializers.SerializerMethodField(
        help_text="The HMAC-SHA256 signing secret. Shown once; stored encrypted."
    )

    class Meta(WebhookSerializer.Meta):
        fields = [*WebhookSerializer.Meta.fields, "secret"]
        read_only_fields = fields

    def get_secret(self, obj) -> str:
        return self.context["secret"]


class WebhookInputSerializer(serializers.Serializer):
    name = serializers.CharField(allow_blank=True, max_length=500)
    url = serializers.CharField(allow_blank=True, max_length=2000)
    project = serializers.UUIDField(
        required=False, allow_null=True, help_text="Only this project's events; none = all."
    )
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=Event.choices),
        required=False,
        help_text="Event names; empty or absent = every event.",
    )
    active = serializers.BooleanField(required=False, default=True)


class WebhookUpdateInputSerializer(serializers.Serializer):
    """Project and secret cannot be changed: register another webhook instead."""

    name = serializers.CharField(required=False, allow_blank=True, max_length=500)
    url = serializers.CharField(required=False, allow_blank=True, max_length=2000)
    events = serializers.ListField(child=serializers.ChoiceField(choices=Event.choices), required=False)
    active = serializers.BooleanField(required=False)


class WebhookDeliverySerializer(serializers.ModelSerializer):
    webhook = serializers.UUIDField(source="webhook_id", read_only=True)
    project = serializers.UUIDField(source="project_id", read_only=True, allow_null=True)

    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "webhook",
            "project",
            "event",
            "payload",
            "status",
            "attempts",
            "next_attempt_at",
            "last_attempt_at",
            "last_status_code",
            "last_error",
            "delivered_at",
            "created_at",
        ]
        read_only_fields = fields
