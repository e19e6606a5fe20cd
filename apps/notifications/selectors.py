"""Reads of notifications: one's own inbox only; webhooks and their deliveries for those who manage them."""

from django.db.models import QuerySet

from apps.accounts.permissions import Action, can, require
from apps.notifications.models import Notification, Webhook, WebhookDelivery


def notification_list(*, actor, unread_only: bool = False) -> QuerySet[Notification]:
    """The actor's inbox, newest first (nobody else's: an item of another person is not found)."""
    if not can(actor, Action.NOTIFICATION_READ_OWN):
        return Notification.objects.none()
    items = Notification.objects.filter(recipient=actor).select_related("project").order_by("-created_at", "-pk")
    return items.filter(read_at__isnull=True) if unread_only else items


def notification_get(*, actor, pk) -> Notification:
    """One of the actor's own items; Notification.DoesNotExist otherwise."""
    return notification_list(actor=actor).get(pk=pk)


def notification_unread_count(*, actor) -> int:
    """How many unread items the actor has (one query; the inbox badge)."""
    if not can(actor, Action.NOTIFICATION_READ_OWN):
        return 0
    return Notification.objects.filter(recipient=actor, read_at__isnull=True).count()


def webhook_list(*, actor) -> QuerySet[Webhook]:
    require(actor, Action.WEBHOOK_MANAGE)
    return Webhook.objects.select_related("project", "created_by").order_by("name", "pk")


def webhook_get(*, actor, pk) -> Webhook:
    return webhook_list(actor=actor).get(pk=pk)


def webhook_delivery_list(*, actor, webhook: Webhook | None = None) -> QuerySet[WebhookDelivery]:
    """Deliveries, newest first (of one webhook, or all)."""
    require(actor, Action.WEBHOOK_MANAGE)
    deliveries = WebhookDelivery.objects.select_related("webhook", "project").order_by("-created_at", "-pk")
    return deliveries.filter(webhook=webhook) if webhook is not None else deliveries
