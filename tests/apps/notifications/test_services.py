"""apps/notifications/services.py: notify after commit, the inbox, webhook management (admins, audited)."""

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied
from django.db import transaction

from apps.accounts.choices import Role
from apps.audit.models import AuditEvent
from apps.core.crypto import decrypt_text
from apps.core.exceptions import ApplicationError
from apps.notifications import services
from apps.notifications.choices import DeliveryStatus, Event
from apps.notifications.models import Notification, Webhook, WebhookDelivery
from tests.apps.notifications.conftest import PUBLIC_URL
from tests.factories import UserFactory


def _notify(project, recipients, **overrides):
    fields = {
        "event": "registry.request_opened",
        "project": project,
        "recipients": recipients,
        "title": "Promotion requested: churn v3",
        "body": "alice asks to promote churn v3 to production.",
        "link": "/models/abc/",
        "payload": {"version": 3},
    }
    services.notify(**{**fields, **overrides})


def _webhook(admin, **fields):
    webhook, _secret = services.webhook_create(actor=admin, **{"name": "ops", "url": PUBLIC_URL, **fields})
    return webhook


# --- notify -----------------------------------------------------------------------------------------------------
def test_notify_records_nothing_before_the_commit(project, make_user):
    reviewer = make_user(Role.REVIEWER)

    _notify(project, [reviewer])  # inside the test's transaction, never committed

    assert not Notification.objects.exists()


def test_notify_after_commit_records_an_inbox_item_per_recipient_and_emails_them(
    project, make_user, django_capture_on_commit_callbacks
):
    first, second = make_user(Role.REVIEWER), make_user(Role.REVIEWER)

    with django_capture_on_commit_callbacks(execute=True):
        _notify(project, [first, second, first], payload={"version": 3, "id": project.pk})

    items = Notification.objects.order_by("recipient__username")
    assert [(n.recipient, n.event, n.project, n.read_at) for n in items] == [
        (first, "registry.request_opened", project, None),
        (second, "registry.request_opened", project, None),
    ]
    assert items[0].payload == {"version": 3, "id": str(project.pk)}
    assert items[0].link == "/models/abc/"


def test_email_is_sent_once_to_the_recipients_address(project, make_user, django_capture_on_commit_callbacks, settings):
    settings.PORTAL_BASE_URL = "https://portal.example.com/"
    reviewer = make_user(Role.REVIEWER)
    with django_capture_on_commit_callbacks(execute=True):
        _notify(project, [reviewer])
    notification = Notification.objects.get()

    sent = services.notification_email_send(notification_id=notification.pk)
    again = services.notification_email_send(notification_id=notification.pk)

    assert (sent, again) == (True, False)
    [message] = mail.outbox
    assert message.to == [reviewer.email]
    assert message.subject == "[mlplatform] Promotion requested: churn v3"
    assert "Open it: https://portal.example.com/models/abc/" in message.body
    assert Notification.objects.get().emailed_at is not None


def test_no_email_for_a_recipient_without_an_address(project, django_capture_on_commit_callbacks):
    reviewer = UserFactory(role=Role.REVIEWER, email="")
    with django_capture_on_commit_callbacks(execute=True):
        _notify(project, [reviewer])

    assert services.notification_email_send(notification_id=Notification.objects.get().pk) is False
    assert mail.outbox == []


def test_inactive_recipients_get_nothing(project, django_capture_on_commit_callbacks):
    gone = UserFactory(role=Role.REVIEWER, is_active=False)

    with django_capture_on_commit_callbacks(execute=True):
        _notify(project, [gone])

    assert not Notification.objects.exists()


def test_notify_queues_a_delivery_for_each_matching_active_webhook(
    project, project_factory, admin, make_user, django_capture_on_commit_callbacks
):
    everywhere = _webhook(admin, name="all")
    this_project = _webhook(admin, name="this", project=project, events=["registry.request_opened"])
    _webhook(admin, name="other project", project=project_factory())
    _webhook(admin, name="other event", events=["registry.stage_changed"])
    paused = _webhook(admin, name="paused")
    services.webhook_update(webhook=paused, actor=admin, active=False)

    with django_capture_on_commit_callbacks(execute=True):
        _notify(project, [make_user(Role.REVIEWER)])

    deliveries = WebhookDelivery.objects.order_by("webhook__name")
    assert [d.webhook for d in deliveries] == [everywhere, this_project]
    assert {(d.status, d.attempts, d.event, d.project_id) for d in deliveries} == {
        (DeliveryStatus.PENDING, 0, "registry.request_opened", project.pk)
    }
    assert deliveries[0].payload == {"version": 3}


def test_notify_records_nothing_when_the_callers_transaction_rolls_back(
    project, make_user, django_capture_on_commit_callbacks
):
    reviewer = make_user(Role.REVIEWER)

    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        _notify(project, [reviewer])
        raise RuntimeError("the approval failed")

    assert callbacks == []
    assert not Notification.objects.exists()


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"event": "RegistryChanged"}, ValueError),
        ({"event": ""}, ValueError),
        ({"link": "https://evil.example.com/"}, ValueError),
        ({"link": "//evil.example.com/"}, ValueError),
        ({"link": "/\\evil.example.com/"}, ValueError),
        ({"payload": {"when": object()}}, TypeError),
        ({"payload": ["not", "a", "dict"]}, TypeError),
    ],
)
def test_notify_refuses_a_malformed_call_at_once(
    project, make_user, overrides, error, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks, pytest.raises(error):
        _notify(project, [make_user(Role.REVIEWER)], **overrides)

    assert callbacks == []


# --- Inbox ------------------------------------------------------------------------------------------------------
def _item(user, **fields):
    return Notification.objects.create(recipient=user, event="registry.stage_changed", title="t", **fields)


def test_mark_read_marks_ones_own_item(user):
    item = _item(user)

    services.notification_mark_read(notification=item, actor=user)

    assert Notification.objects.get(pk=item.pk).read_at is not None


def test_nobody_marks_anothers_item_read(user, make_user):
    item = _item(user)

    with pytest.raises(ApplicationError) as refused:
        services.notification_mark_read(notification=item, actor=make_user(Role.ADMIN))

    assert refused.value.status == 404
    assert Notification.objects.get(pk=item.pk).read_at is None


def test_mark_all_read_touches_only_the_actors_unread_items(user, make_user):
    other = make_user()
    mine = [_item(user), _item(user)]
    theirs = _item(other)

    assert services.notifications_mark_all_read(actor=user) == 2
    assert services.notifications_mark_all_read(actor=user) == 0
    assert all(Notification.objects.get(pk=n.pk).read_at for n in mine)
    assert Notification.objects.get(pk=theirs.pk).read_at is None


# --- Webhooks ---------------------------------------------------------------------------------------------------
def test_admin_creates_a_webhook_whose_secret_is_stored_encrypted_and_never_audited(admin, project):
    webhook, secret = services.webhook_create(
        actor=admin,
        name=" ops ",
        url=PUBLIC_URL,
        project=project,
        events=["registry.stage_changed", "registry.request_opened"],
    )

    assert (webhook.name, webhook.project, webhook.active) == ("ops", project, True)
    assert webhook.events == ["registry.request_opened", "registry.stage_changed"]
    assert len(secret) == 64 and secret not in webhook.encrypted_secret
    assert decrypt_text(webhook.encrypted_secret) == secret
    event = AuditEvent.objects.get(action="webhook.create")
    assert event.after == {
        "name": "ops",
        "url_origin": "https://93.184.215.14",  # a path or query may carry a token: kept out of the trail
        "project": str(project.pk),
        "events": ["registry.request_opened", "registry.stage_changed"],
        "active": True,
    }
    assert secret not in str(event.after)


@pytest.mark.parametrize("role", [Role.STAKEHOLDER, Role.SCIENTIST, Role.REVIEWER, Role.COMPLIANCE])
def test_only_admins_manage_webhooks(db, role, admin):
    user = UserFactory(role=role)
    existing = _webhook(admin)

    with pytest.raises(PermissionDenied):
        services.webhook_create(actor=user, name="x", url=PUBLIC_URL)
    with pytest.raises(PermissionDenied):
        services.webhook_update(webhook=existing, actor=user, active=False)
    with pytest.raises(PermissionDenied):
        services.webhook_delete(webhook=existing, actor=user)

    assert list(Webhook.objects.values_list("name", "active")) == [("ops", True)]
    assert not AuditEvent.objects.filter(actor_id=user.pk).exists()


def test_a_webhook_into_the_private_network_is_refused_with_the_field_named(admin):
    with pytest.raises(ApplicationError) as refused:
        services.webhook_create(actor=admin, name="metadata", url="http://169.254.169.254/latest/")

    assert list(refused.value.errors) == ["url"]
    assert "link-local" in refused.value.errors["url"][0]
    assert not Webhook.objects.exists()


def test_every_wrong_field_is_named(admin):
    with pytest.raises(ApplicationError) as refused:
        services.webhook_create(actor=admin, name="", url="ftp://x", events=["registry.nope"], active="yes")

    assert refused.value.errors == {
        "name": ["This field is required."],
        "url": ["Use an http:// or https:// URL."],
        "events": [f"Unknown event: registry.nope. Known: {', '.join(Event.values)}."],
        "active": ["true or false."],
    }


def test_update_checks_the_new_url_and_keeps_the_secret(admin):
    webhook, secret = services.webhook_create(actor=admin, name="ops", url=PUBLIC_URL)

    with pytest.raises(ApplicationError) as refused:
        services.webhook_update(webhook=webhook, actor=admin, url="http://[::ffff:127.0.0.1]:8000/")
    updated = services.webhook_update(webhook=webhook, actor=admin, name="ops2", events=["registry.stage_changed"])

    assert "loopback" in refused.value.errors["url"][0]
    assert (updated.name, updated.url, updated.events) == ("ops2", PUBLIC_URL, ["registry.stage_changed"])
    assert decrypt_text(Webhook.objects.get().encrypted_secret) == secret
    assert AuditEvent.objects.get(action="webhook.update").before["name"] == "ops"


def test_delete_removes_the_webhook_and_its_deliveries_and_is_audited(admin):
    webhook = _webhook(admin)
    WebhookDelivery.objects.create(webhook=webhook, event="registry.stage_changed")

    services.webhook_delete(webhook=webhook, actor=admin)

    assert not Webhook.objects.exists() and not WebhookDelivery.objects.exists()
    event = AuditEvent.objects.get(action="webhook.delete")
    assert (event.object_id, event.before["name"]) == (str(webhook.pk), "ops")
