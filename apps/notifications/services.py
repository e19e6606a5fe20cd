"""Notifications: the inbox, e-mail and signed webhooks.

Other areas call `notify(...)` inside their own transaction. Nothing happens until that transaction commits: then the
inbox items and webhook deliveries are recorded (in a transaction of their own), and the e-mails and first delivery
attempts are dispatched to the worker by task name. A failure there is logged and never reaches the caller, whose
change is already committed; a delivery whose dispatch was lost is sent by the periodic sweep.

A webhook delivery is a row with attempts and a due time (`next_attempt_at`). The worker claims it by moving the due
time past the attempt's time limit, POSTs the signed event and records the outcome: a 2xx succeeds, anything else is
tried again after 1 min, 5 min, 30 min, 2 h and 12 h, then the delivery fails. See docs/adr/0009-notifications.md.
"""

import json
import logging
import re
import secrets
import unicodedata
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from celery import current_app
from django.conf import settings
from django.core.mail import send_mail
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from apps.accounts.permissions import Action, require
from apps.audit.services import audit_record
from apps.core.crypto import DecryptionError, decrypt_text, encrypt_text
from apps.core.exceptions import ApplicationError
from apps.notifications import webhooks
from apps.notifications.choices import DeliveryStatus, Event
from apps.notifications.models import Notification, Webhook, WebhookDelivery

logger = logging.getLogger(__name__)

SEND_EMAIL_TASK = "notifications.send_email"
DELIVER_WEBHOOK_TASK = "notifications.deliver_webhook"
TASK_QUEUE = "default"

# Waits before the 2nd, 3rd, ... attempt of a delivery; after the last attempt fails, the delivery fails.
RETRY_DELAYS = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=12),
)
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
# A claimed attempt owns its delivery this long (longer than the task's hard time limit): a worker that dies
# mid-attempt leaves a delivery the sweep sends again after that.
CLAIM_DURATION = timedelta(minutes=5)
# A due delivery dispatched this long ago and still not claimed is dispatched again (its message was lost).
REDISPATCH_AFTER = timedelta(minutes=5)
SWEEP_BATCH = 500

_EVENT_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
TITLE_MAX_CHARS = 200
LINK_MAX_CHARS = 500
WEBHOOK_NAME_MAX_CHARS = 100
WEBHOOK_URL_MAX_CHARS = 500


def _send_task(name: str, object_id) -> None:
    """Hand one row to the worker; a broker that is down is logged, not raised (the caller's change is committed)."""
    try:
        current_app.send_task(name, args=[str(object_id)], queue=TASK_QUEUE)
    except Exception:
        logger.warning("could not dispatch %s for %s; the sweep or the inbox covers it", name, object_id, exc_info=True)


# --- notify -----------------------------------------------------------------------------------------------------
def _json_document(payload: dict) -> dict:
    """The payload as plain JSON (UUIDs, dates and decimals as strings), so a delivery sends what was recorded."""
    if not isinstance(payload, dict):
        raise TypeError("payload must be a dict")
    return json.loads(json.dumps(payload, cls=DjangoJSONEncoder))


def _check_link(link: str) -> str:
    link = link or ""
    if link and (
        not link.startswith("/")
        or link.startswith("//")
        or len(link) > LINK_MAX_CHARS
        or any(ch == "\\" or ch.isspace() or unicodedata.category(ch)[0] == "C" for ch in link)
    ):
        raise ValueError(f"link must be a path in the portal (starting with one '/'), not {link!r}")
    return link


def notify(*, event: str, project, recipients: list, title: str, body: str, link: str, payload: dict) -> None:
    """Tell `recipients` (users) about `event`: an inbox item each, an e-mail to those with an address, and one
    delivery per active webhook subscribed to the event (platform-wide ones, and the project's). All of it happens
    after the caller's transaction commits (nothing when it rolls back) and no failure of it reaches the caller.

    `link` is a path in the portal ("/registry/models/<id>/"), `payload` what webhooks receive under "payload".
    A malformed event name, link or payload is a programming error and raises ValueError/TypeError at once.
    """
    if not _EVENT_NAME.match(event or ""):
        raise ValueError(f"event must be a dotted lower-case name like 'registry.stage_changed', not {event!r}")
    document = _json_document(payload)
    link = _check_link(link)
    title = (title or "").strip()[:TITLE_MAX_CHARS] or event
    recipient_ids = list(dict.fromkeys(user.pk for user in recipients if user is not None))
    project_id = project.pk if project is not None else None
    transaction.on_commit(
        lambda: _record_notifications(
            event=event,
            project_id=project_id,
            recipient_ids=recipient_ids,
            title=title,
            body=body or "",
            link=link,
            payload=document,
        ),
        robust=True,  # a failure is logged by Django; the caller's committed change stands
    )


def _subscribed_webhooks(event: str, project_id) -> list[Webhook]:
    candidates = Webhook.objects.filter(active=True).filter(Q(project__isnull=True) | Q(project_id=project_id))
    return [webhook for webhook in candidates if webhook.wants(event)]


def _record_notifications(*, event, project_id, recipient_ids, title, body, link, payload) -> None:
    from django.contrib.auth import get_user_model

    now = timezone.now()
    recipients = list(get_user_model().objects.filter(pk__in=recipient_ids, is_active=True).only("pk", "email"))
    with transaction.atomic():
        notifications = Notification.objects.bulk_create(
            Notification(
                recipient_id=user.pk,
                project_id=project_id,
                event=event,
                title=title,
                body=body,
                link=link,
                payload=payload,
            )
            for user in recipients
        )
        deliveries = WebhookDelivery.objects.bulk_create(
            WebhookDelivery(
                webhook=webhook,
                project_id=project_id,
                event=event,
                payload=payload,
                link=link,
                next_attempt_at=now,
                dispatched_at=now,
            )
            for webhook in _subscribed_webhooks(event, project_id)
        )
        emailed = [n.pk for n, user in zip(notifications, recipients, strict=True) if user.email]
        delivery_ids = [delivery.pk for delivery in deliveries]
        transaction.on_commit(lambda: _dispatch_all(emailed, delivery_ids))


def _dispatch_all(notification_ids: list, delivery_ids: list) -> None:
    for notification_id in notification_ids:
        _send_task(SEND_EMAIL_TASK, notification_id)
    for delivery_id in delivery_ids:
        _send_task(DELIVER_WEBHOOK_TASK, delivery_id)


# --- E-mail -----------------------------------------------------------------------------------------------------
def portal_url(path: str) -> str:
    """An absolute URL of a portal path for e-mails and webhooks (settings.PORTAL_BASE_URL)."""
    return settings.PORTAL_BASE_URL.rstrip("/") + path if path else settings.PORTAL_BASE_URL


def _email_text(notification: Notification) -> str:
    lines = [notification.body.strip()] if notification.body.strip() else []
    if notification.link:
        lines.append(f"Open it: {portal_url(notification.link)}")
    lines.append(f"Your inbox: {portal_url('/notifications/')}")
    return "\n\n".join(lines) + "\n"


def notification_email_send(*, notification_id) -> bool:
    """E-mail one inbox item to its recipient, once (the worker's task). Returns whether a mail was sent; a mail
    server error propagates so the task can retry it."""
    notification = (
        Notification.objects.select_related("recipient").filter(pk=notification_id, emailed_at__isnull=True).first()
    )
    if notification is None or not notification.recipient.email or not notification.recipient.is_active:
        return False
    send_mail(
        subject=f"[mlplatform] {notification.title}",
        message=_email_text(notification),
        from_email=None,  # DEFAULT_FROM_EMAIL
        recipient_list=[notification.recipient.email],
    )
    Notification.objects.filter(pk=notification.pk, emailed_at__isnull=True).update(emailed_at=timezone.now())
    return True


# --- Inbox ------------------------------------------------------------------------------------------------------
def notification_mark_read(*, notification: Notification, actor) -> Notification:
    """Mark one of the actor's own inbox items read (reading is personal: not audited)."""
    require(actor, Action.NOTIFICATION_READ_OWN)
    if notification.recipient_id != actor.pk:
        raise ApplicationError("This notification is not yours.", status=404)
    if notification.read_at is None:
        now = timezone.now()
        Notification.objects.filter(pk=notification.pk, read_at__isnull=True).update(read_at=now, updated_at=now)
        notification.read_at = now
    return notification


def notifications_mark_all_read(*, actor) -> int:
    """Mark every unread item of the actor's inbox read; returns how many."""
    require(actor, Action.NOTIFICATION_READ_OWN)
    now = timezone.now()
    return Notification.objects.filter(recipient=actor, read_at__isnull=True).update(read_at=now, updated_at=now)


# --- Webhooks ---------------------------------------------------------------------------------------------------
def _url_origin(url: str) -> str:
    """Scheme, host and port only: a webhook's path or query often carries a token, kept out of the audit trail."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}"


def _webhook_snapshot(webhook: Webhook) -> dict[str, Any]:
    return {
        "name": webhook.name,
        "url_origin": _url_origin(webhook.url),
        "project": str(webhook.project_id) if webhook.project_id else None,
        "events": list(webhook.events),
        "active": webhook.active,
    }


def _name_errors(name: Any) -> list[str]:
    if not isinstance(name, str) or not name.strip():
        return ["This field is required."]
    if len(name.strip()) > WEBHOOK_NAME_MAX_CHARS:
        return [f"Use at most {WEBHOOK_NAME_MAX_CHARS} characters."]
    if any(unicodedata.category(ch)[0] == "C" for ch in name):
        return ["Control characters are not allowed."]
    return []


def _url_errors(url: Any) -> list[str]:
    if not isinstance(url, str) or not url.strip():
        return ["This field is required."]
    url = url.strip()
    if len(url) > WEBHOOK_URL_MAX_CHARS:
        return [f"Use at most {WEBHOOK_URL_MAX_CHARS} characters."]
    if any(ch.isspace() or unicodedata.category(ch)[0] == "C" for ch in url):
        return ["Spaces and control characters are not allowed."]
    try:
        webhooks.check_url(url)
    except webhooks.UnsafeWebhookUrl as exc:
        return [str(exc)]
    return []


def _clean_events(events: Any) -> tuple[list[str], list[str]]:
    """(sorted event names, errors). Empty means every event."""
    if events is None:
        return [], []
    if not isinstance(events, list | tuple) or not all(isinstance(name, str) for name in events):
        return [], ["A list of event names."]
    unknown = sorted(set(events) - set(Event.values))
    if unknown:
        return [], [f"Unknown event: {', '.join(unknown)}. Known: {', '.join(Event.values)}."]
    return sorted(set(events)), []


def _webhook_fields(given: dict[str, Any]) -> dict[str, Any]:
    """Check the fields given; return them cleaned, or raise ApplicationError naming each wrong field."""
    errors: dict[str, list[str]] = {}
    cleaned: dict[str, Any] = {}
    if "name" in given:
        errors["name"] = _name_errors(given["name"])
        cleaned["name"] = given["name"].strip() if isinstance(given["name"], str) else given["name"]
    if "url" in given:
        errors["url"] = _url_errors(given["url"])
        cleaned["url"] = given["url"].strip() if isinstance(given["url"], str) else given["url"]
    if "events" in given:
        cleaned["events"], errors["events"] = _clean_events(given["events"])
    if "active" in given:
        errors["active"] = [] if isinstance(given["active"], bool) else ["true or false."]
        cleaned["active"] = given["active"]
    errors = {field: messages for field, messages in errors.items() if messages}
    if errors:
        raise ApplicationError("The webhook is not valid: correct the fields marked.", errors=errors)
    return cleaned


def webhook_create(
    *, actor, name: str, url: str, project=None, events: list[str] | None = None, active: bool = True
) -> tuple[Webhook, str]:
    """Register a webhook (admins). Returns it with its signing secret: the only time the secret is shown."""
    require(actor, Action.WEBHOOK_MANAGE)
    fields = _webhook_fields({"name": name, "url": url, "events": events or [], "active": active})
    secret = secrets.token_hex(32)
    with transaction.atomic():
        webhook = Webhook.objects.create(
            project=project, created_by=actor, encrypted_secret=encrypt_text(secret), **fields
        )
        audit_record(
            actor=actor, action="webhook.create", obj=webhook, project=project, after=_webhook_snapshot(webhook)
        )
    return webhook, secret


def webhook_update(
    *,
    webhook: Webhook,
    actor,
    name: str | None = None,
    url: str | None = None,
    events: list[str] | None = None,
    active: bool | None = None,
) -> Webhook:
    """Change the fields given (None = keep). The secret is never changed or shown here."""
    require(actor, Action.WEBHOOK_MANAGE)
    given = {"name": name, "url": url, "events": events, "active": active}
    fields = _webhook_fields({key: value for key, value in given.items() if value is not None})
    with transaction.atomic():
        locked = Webhook.objects.select_for_update(of=("self",)).select_related("project").get(pk=webhook.pk)
        before = _webhook_snapshot(locked)
        for key, value in fields.items():
            setattr(locked, key, value)
        locked.save()
        audit_record(
            actor=actor,
            action="webhook.update",
            obj=locked,
            project=locked.project,
            before=before,
            after=_webhook_snapshot(locked),
        )
    return locked


def webhook_delete(*, webhook: Webhook, actor) -> None:
    """Remove a webhook and its delivery history (the audit trail keeps that it existed and who removed it)."""
    require(actor, Action.WEBHOOK_MANAGE)
    with transaction.atomic():
        locked = Webhook.objects.select_for_update(of=("self",)).select_related("project").get(pk=webhook.pk)
        before = _webhook_snapshot(locked)
        pk, project = locked.pk, locked.project
        locked.delete()
        audit_record(
            actor=actor,
            action="webhook.delete",
            object_type=Webhook._meta.label_lower,
            object_id=str(pk),
            project=project,
            before=before,
        )


# --- Deliveries (the worker's side) -----------------------------------------------------------------------------
def _delivery_body(delivery: WebhookDelivery, now) -> bytes:
    project = delivery.project
    document = {
        "event": delivery.event,
        "delivered_at": now.isoformat(),
        "project": {"id": str(project.pk), "name": project.name} if project is not None else None,
        "link": portal_url(delivery.link) if delivery.link else None,
        "payload": delivery.payload,
    }
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


def _claim_delivery(delivery_id, now) -> WebhookDelivery | None:
    claimed = WebhookDelivery.objects.filter(
        pk=delivery_id, status=DeliveryStatus.PENDING, next_attempt_at__lte=now
    ).update(
        attempts=F("attempts") + 1,
        next_attempt_at=now + CLAIM_DURATION,
        last_attempt_at=now,
        updated_at=now,
    )
    if claimed != 1:
        return None
    return WebhookDelivery.objects.select_related("webhook", "project").get(pk=delivery_id)


def _record_outcome(delivery: WebhookDelivery, response: webhooks.Response, now) -> str:
    fields: dict[str, Any] = {"last_status_code": response.status_code, "last_error": response.error, "updated_at": now}
    if response.ok:
        fields.update(status=DeliveryStatus.SUCCEEDED, delivered_at=now, next_attempt_at=None)
    elif delivery.attempts >= MAX_ATTEMPTS:
        fields.update(status=DeliveryStatus.FAILED, next_attempt_at=None)
    else:
        fields.update(next_attempt_at=now + RETRY_DELAYS[delivery.attempts - 1], dispatched_at=None)
    WebhookDelivery.objects.filter(pk=delivery.pk, status=DeliveryStatus.PENDING).update(**fields)
    return fields.get("status", "retrying")


def webhook_delivery_attempt(*, delivery_id) -> str:
    """One attempt of one delivery (the worker's task): "succeeded", "retrying", "failed", or "skipped" when the
    delivery is not due or another worker holds it."""
    now = timezone.now()
    delivery = _claim_delivery(delivery_id, now)
    if delivery is None:
        return "skipped"
    webhook = delivery.webhook
    if not webhook.active:
        return _record_outcome(delivery, webhooks.Response(None, "The webhook is deactivated."), now)
    try:
        secret = decrypt_text(webhook.encrypted_secret)
    except DecryptionError:
        return _record_outcome(delivery, webhooks.Response(None, "The signing secret cannot be decrypted."), now)
    response = webhooks.post_signed(
        webhook.url,
        secret=secret,
        body=_delivery_body(delivery, now),
        headers={"X-MLPlatform-Event": delivery.event, "X-MLPlatform-Delivery": str(delivery.pk)},
    )
    return _record_outcome(delivery, response, timezone.now())


def webhook_deliveries_dispatch_due() -> int:
    """Send every due delivery to the worker (the periodic task): retries whose wait is over, and first attempts
    whose dispatch was lost or whose worker died. A second message for one delivery is harmless (one claim wins)."""
    now = timezone.now()
    due = WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=now).filter(
        Q(dispatched_at__isnull=True) | Q(dispatched_at__lt=now - REDISPATCH_AFTER)
    )
    delivery_ids = list(due.order_by("next_attempt_at").values_list("pk", flat=True)[:SWEEP_BATCH])
    WebhookDelivery.objects.filter(pk__in=delivery_ids).update(dispatched_at=now)
    for delivery_id in delivery_ids:
        _send_task(DELIVER_WEBHOOK_TASK, delivery_id)
    return len(delivery_ids)
