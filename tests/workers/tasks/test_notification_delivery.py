"""workers/tasks/notifications.py: signed webhook deliveries to a real local receiver, retries with backoff, giving
up, the sweep that sends due retries, e-mail; and the whole path through a real worker process."""

import hashlib
import hmac
import json
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from apps.accounts.choices import Role
from apps.core.crypto import decrypt_text
from apps.notifications import services
from apps.notifications.choices import DeliveryStatus
from apps.notifications.models import Notification, WebhookDelivery
from tests.apps.notifications.receiver import running_receiver
from tests.factories import UserFactory
from workers.tasks.notifications import deliver_webhook_task, send_notification_email_task
from workers.tasks.periodic import dispatch_due_webhook_deliveries


@pytest.fixture
def receiver():
    with running_receiver() as state:
        yield state


@pytest.fixture
def allow_private(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True


@pytest.fixture
def admin(db):
    return UserFactory(role=Role.ADMIN)


@pytest.fixture
def hook(admin, receiver, allow_private):
    webhook, _secret = services.webhook_create(actor=admin, name="receiver", url=receiver.url)
    return webhook


def _delivery(hook, project=None, **fields) -> WebhookDelivery:
    return WebhookDelivery.objects.create(
        webhook=hook,
        project=project,
        event="registry.stage_changed",
        payload={"version": 7, "stage": "production"},
        link="/models/m1/",
        next_attempt_at=timezone.now(),
        **fields,
    )


def _make_due(delivery: WebhookDelivery) -> None:
    """Time passes: the next attempt is due now."""
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now() - timedelta(seconds=1))


def test_a_delivery_posts_the_signed_event_and_succeeds(hook, receiver, project, settings):
    settings.PORTAL_BASE_URL = "https://portal.example.com"
    delivery = _delivery(hook, project)

    outcome = deliver_webhook_task(str(delivery.pk))

    assert outcome == "succeeded"
    [request] = receiver.requests
    secret = decrypt_text(hook.encrypted_secret)
    expected = "sha256=" + hmac.new(secret.encode(), request.body, hashlib.sha256).hexdigest()
    assert request.headers["X-MLPlatform-Signature"] == expected
    assert request.headers["X-MLPlatform-Event"] == "registry.stage_changed"
    assert request.headers["X-MLPlatform-Delivery"] == str(delivery.pk)
    document = json.loads(request.body)
    assert set(document) == {"event", "delivered_at", "project", "link", "payload"}
    assert document["event"] == "registry.stage_changed"
    assert document["project"] == {"id": str(project.pk), "name": project.name}
    assert document["link"] == "https://portal.example.com/models/m1/"
    assert document["payload"] == {"version": 7, "stage": "production"}
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status_code, delivery.last_error) == (
        DeliveryStatus.SUCCEEDED,
        1,
        204,
        "",
    )
    assert delivery.delivered_at is not None and delivery.next_attempt_at is None


def test_a_failed_attempt_is_retried_with_growing_waits_until_it_succeeds(hook, receiver):
    receiver.statuses = [500, 503, 200]
    delivery = _delivery(hook)

    first = deliver_webhook_task(str(delivery.pk))
    delivery.refresh_from_db()
    first_wait = delivery.next_attempt_at - delivery.last_attempt_at
    too_early = deliver_webhook_task(str(delivery.pk))
    _make_due(delivery)
    second = deliver_webhook_task(str(delivery.pk))
    delivery.refresh_from_db()
    second_wait = delivery.next_attempt_at - delivery.last_attempt_at
    _make_due(delivery)
    third = deliver_webhook_task(str(delivery.pk))

    assert (first, too_early, second, third) == ("retrying", "skipped", "retrying", "succeeded")
    assert timedelta(seconds=59) < first_wait <= timedelta(seconds=61)
    assert timedelta(seconds=299) < second_wait <= timedelta(seconds=301)
    assert len(receiver.requests) == 3
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == (DeliveryStatus.SUCCEEDED, 3, 200)


def test_a_delivery_gives_up_after_the_last_attempt(hook, receiver):
    receiver.statuses = [500]
    delivery = _delivery(hook)

    outcomes = []
    for attempt in range(services.MAX_ATTEMPTS):
        if attempt:
            _make_due(delivery)
        outcomes.append(deliver_webhook_task(str(delivery.pk)))
    delivery.refresh_from_db()
    _make_due(delivery)
    after = deliver_webhook_task(str(delivery.pk))

    assert outcomes == ["retrying"] * (services.MAX_ATTEMPTS - 1) + ["failed"]
    assert after == "skipped"
    assert len(receiver.requests) == services.MAX_ATTEMPTS == 6
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == (DeliveryStatus.FAILED, 6, 500)
    assert delivery.last_error == "HTTP 500: no"
    assert delivery.next_attempt_at is None


def test_without_the_switch_a_local_receiver_is_refused_at_delivery_time(hook, receiver, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False  # the webhook was saved with it on; DNS may change too
    delivery = _delivery(hook)

    outcome = deliver_webhook_task(str(delivery.pk))

    assert outcome == "retrying"
    assert receiver.requests == []
    delivery.refresh_from_db()
    assert delivery.last_status_code is None
    assert "is not public: loopback" in delivery.last_error


def test_a_paused_webhooks_delivery_is_not_sent(hook, receiver, admin):
    delivery = _delivery(hook)
    services.webhook_update(webhook=hook, actor=admin, active=False)

    assert deliver_webhook_task(str(delivery.pk)) == "retrying"
    assert receiver.requests == []
    assert WebhookDelivery.objects.get(pk=delivery.pk).last_error == "The webhook is deactivated."


def test_the_sweep_dispatches_due_deliveries_once_per_redispatch_window(hook):
    now = timezone.now()
    retry_due = _delivery(hook, dispatched_at=None)
    lost = _delivery(hook, dispatched_at=now - timedelta(minutes=10))
    just_sent = _delivery(hook, dispatched_at=now)
    later = _delivery(hook, dispatched_at=None)
    WebhookDelivery.objects.filter(pk=later.pk).update(next_attempt_at=now + timedelta(minutes=30))
    done = _delivery(hook, status=DeliveryStatus.SUCCEEDED, dispatched_at=None)

    dispatched = dispatch_due_webhook_deliveries()
    again = dispatch_due_webhook_deliveries()

    assert (dispatched, again) == (2, 0)
    stamped = set(
        WebhookDelivery.objects.filter(dispatched_at__gte=now + timedelta(microseconds=1)).values_list("pk", flat=True)
    )
    assert stamped == {retry_due.pk, lost.pk}
    assert just_sent.pk not in stamped and done.pk not in stamped


def test_an_email_that_the_mail_server_refuses_propagates_for_a_retry_and_stays_unsent(project, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 1, 2
    reviewer = UserFactory(role=Role.REVIEWER)
    item = Notification.objects.create(recipient=reviewer, event="registry.request_opened", title="Review me")

    with pytest.raises(ConnectionRefusedError):
        send_notification_email_task(str(item.pk))

    assert Notification.objects.get(pk=item.pk).emailed_at is None
    assert OSError in send_notification_email_task.autoretry_for


# --- Through a real worker ----------------------------------------------------------------------------------------
@pytest.fixture
def celery_worker_env():
    return {"WEBHOOK_ALLOW_PRIVATE_ADDRESSES": "1", "EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend"}


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_notify_reaches_the_inbox_the_mail_and_the_webhook_through_a_real_worker(
    celery_worker_process, receiver, allow_private, project
):
    from tests.support.celery_worker import wait_for

    admin = UserFactory(role=Role.ADMIN)
    reviewer = UserFactory(role=Role.REVIEWER, email="rita@example.com")
    services.webhook_create(actor=admin, name="receiver", url=receiver.url, events=["registry.request_opened"])

    with transaction.atomic():
        services.notify(
            event="registry.request_opened",
            project=project,
            recipients=[reviewer],
            title="Promotion requested: churn v3",
            body="Please review.",
            link="/models/x/",
            payload={"request": "r1"},
        )

    assert wait_for(lambda: receiver.requests, timeout=30), celery_worker_process.log()
    delivery = WebhookDelivery.objects.get()
    assert wait_for(lambda: WebhookDelivery.objects.get().status == DeliveryStatus.SUCCEEDED, timeout=10), (
        celery_worker_process.log()
    )
    assert json.loads(receiver.requests[0].body)["payload"] == {"request": "r1"}
    assert receiver.requests[0].headers["X-MLPlatform-Delivery"] == str(delivery.pk)
    assert wait_for(lambda: Notification.objects.get().emailed_at, timeout=30), celery_worker_process.log()
    assert "Subject: [mlplatform] Promotion requested: churn v3" in celery_worker_process.log(10**6)
    assert Notification.objects.get().recipient == reviewer
