from django.conf import settings
from django.db import models

from apps.core.models import BaseModel
from apps.notifications.choices import DeliveryStatus


class Notification(BaseModel):
    """One item in one person's inbox. It is also e-mailed when the person has an address (`emailed_at`)."""

    recipient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    project = models.ForeignKey(
        "projects.Project", null=True, blank=True, on_delete=models.CASCADE, related_name="notifications"
    )
    event = models.CharField(max_length=100)
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    link = models.CharField(max_length=500, blank=True, help_text="A path in the portal, e.g. /registry/…")
    payload = models.JSONField(default=dict, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)
    emailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["recipient", "read_at"], name="notification_inbox_unread")]

    def __str__(self) -> str:
        return self.title

    @property
    def is_read(self) -> bool:
        return self.read_at is not None


class Webhook(BaseModel):
    """A URL the platform POSTs signed events to. No project = every project's events."""

    project = models.ForeignKey(
        "projects.Project", null=True, blank=True, on_delete=models.CASCADE, related_name="webhooks"
    )
    name = models.CharField(max_length=100)
    url = models.URLField(max_length=500)
    # Fernet ciphertext (apps.core.crypto) of the HMAC secret; the secret is shown once, when the webhook is created.
    encrypted_secret = models.TextField()
    events = models.JSONField(default=list, blank=True, help_text="Event names; empty = every event.")
    active = models.BooleanField(default=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def wants(self, event: str) -> bool:
        return not self.events or event in self.events


class WebhookDelivery(BaseModel):
    """One event to deliver to one webhook, with its attempts. A delivery is claimed by pushing `next_attempt_at`
    past the attempt's time limit, so two workers never send it at once; the periodic sweep sends what is due."""

    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    project = models.ForeignKey("projects.Project", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    event = models.CharField(max_length=100)
    payload = models.JSONField(default=dict, blank=True)
    link = models.CharField(max_length=500, blank=True)
    status = models.CharField(
        max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING, db_index=True
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True, help_text="When the next attempt is due.")
    dispatched_at = models.DateTimeField(null=True, blank=True, help_text="When a task was last sent for it.")
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="webhook_delivery_due")]

    def __str__(self) -> str:
        return f"{self.event} -> {self.webhook_id} ({self.status})"
