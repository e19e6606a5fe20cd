"""The inbox and webhook pages: one's own items only, mark read, the badge, webhooks for admins with the secret once."""

import pytest
from django.urls import reverse

from apps.accounts.choices import Role
from apps.notifications.models import Notification, Webhook, WebhookDelivery
from apps.notifications.services import webhook_create
from tests.apps.notifications.conftest import PUBLIC_URL
from tests.factories import UserFactory


def _item(user, title="Version 3 is in production", **fields):
    return Notification.objects.create(
        recipient=user, event="registry.stage_changed", title=title, link="/models/m1/", **fields
    )


@pytest.fixture
def signed_in(client, user):
    client.force_login(user)
    return client


def test_inbox_lists_only_ones_own_items_newest_first(signed_in, user, make_user):
    _item(user, title="older")
    _item(user, title="newer")
    _item(make_user(), title="someone else's")

    page = signed_in.get(reverse("notifications:inbox"))

    titles = [item.title for item in page.context["page_obj"]]
    assert titles == ["newer", "older"]
    assert "someone else&#x27;s" not in page.content.decode()
    assert page.context["unread_count"] == 2


def test_inbox_unread_filter(signed_in, user):
    _item(user, title="read", read_at="2025-01-01T00:00:00Z")
    _item(user, title="unread")

    page = signed_in.get(reverse("notifications:inbox"), {"unread": "1"})

    assert [item.title for item in page.context["page_obj"]] == ["unread"]


def test_inbox_is_paginated(signed_in, user):
    for number in range(27):
        _item(user, title=f"item {number:02}")

    first = signed_in.get(reverse("notifications:inbox")).content.decode()
    second = signed_in.get(reverse("notifications:inbox"), {"page": 2})

    assert "Page 1 of 2 (27 in all)" in first
    assert [item.title for item in second.context["page_obj"]] == ["item 01", "item 00"]


def test_opening_an_item_marks_it_read_and_follows_its_link(signed_in, user):
    item = _item(user)

    response = signed_in.get(reverse("notifications:open", args=[item.pk]))

    assert response.status_code == 302 and response["Location"] == "/models/m1/"
    assert Notification.objects.get(pk=item.pk).read_at is not None


def test_an_item_with_an_unsafe_stored_link_opens_the_inbox_instead(signed_in, user):
    item = _item(user)
    Notification.objects.filter(pk=item.pk).update(link="https://evil.example.com/")

    response = signed_in.get(reverse("notifications:open", args=[item.pk]))

    assert response["Location"] == reverse("notifications:inbox")


def test_mark_read_and_mark_all_read(signed_in, user):
    one, two, three = _item(user), _item(user), _item(user)

    signed_in.post(reverse("notifications:read", args=[one.pk]))
    assert Notification.objects.filter(read_at__isnull=True).count() == 2
    signed_in.post(reverse("notifications:read_all"))

    assert not Notification.objects.filter(pk__in=[one.pk, two.pk, three.pk], read_at__isnull=True).exists()


def test_anothers_item_is_a_404_and_stays_unread(signed_in, make_user):
    theirs = _item(make_user())

    opened = signed_in.get(reverse("notifications:open", args=[theirs.pk]))
    marked = signed_in.post(reverse("notifications:read", args=[theirs.pk]))

    assert (opened.status_code, marked.status_code) == (404, 404)
    assert Notification.objects.get(pk=theirs.pk).read_at is None


def test_the_badge_counts_unread_items_in_one_query(signed_in, user, django_assert_num_queries):
    _item(user)
    _item(user)
    _item(user, read_at="2025-01-01T00:00:00Z")

    with django_assert_num_queries(3):  # session, user, count
        badge = signed_in.get(reverse("notifications:badge"))

    assert ">2<" in badge.content.decode()


def test_every_page_links_the_inbox_and_loads_its_badge(signed_in):
    html = signed_in.get(reverse("notifications:inbox")).content.decode()

    assert f'hx-get="{reverse("notifications:badge")}"' in html


# --- Webhooks ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("role", [Role.STAKEHOLDER, Role.SCIENTIST, Role.REVIEWER, Role.COMPLIANCE])
def test_webhook_pages_are_for_admins_only(client, db, role, admin):
    webhook, _ = webhook_create(actor=admin, name="ops", url=PUBLIC_URL)
    client.force_login(UserFactory(role=role))

    answers = [
        client.get(reverse("notifications:webhooks")).status_code,
        client.post(reverse("notifications:webhooks"), {"name": "x", "url": PUBLIC_URL}).status_code,
        client.get(reverse("notifications:webhook", args=[webhook.pk])).status_code,
        client.post(reverse("notifications:webhook_active", args=[webhook.pk]), {"active": "0"}).status_code,
        client.post(reverse("notifications:webhook_delete", args=[webhook.pk])).status_code,
    ]

    assert answers == [403] * 5
    assert list(Webhook.objects.values_list("name", "active")) == [("ops", True)]


def test_admin_registers_a_webhook_and_sees_its_secret_once(client, admin, project):
    client.force_login(admin)

    created = client.post(
        reverse("notifications:webhooks"),
        {"name": "ops", "url": PUBLIC_URL, "project": str(project.pk), "events": ["registry.stage_changed"]},
    )
    listed = client.get(reverse("notifications:webhooks"))

    secret = created.context["created_secret"]
    webhook = Webhook.objects.get()
    assert (webhook.name, webhook.project, webhook.events) == ("ops", project, ["registry.stage_changed"])
    assert secret in created.content.decode()
    assert "no-store" in created["Cache-Control"]
    assert secret not in listed.content.decode()
    assert "ops" in listed.content.decode()


def test_a_private_url_is_refused_next_to_the_field(client, admin):
    client.force_login(admin)

    response = client.post(reverse("notifications:webhooks"), {"name": "meta", "url": "http://169.254.169.254/"})

    assert response.status_code == 400
    assert "is not public: link-local" in str(response.context["form"].errors["url"])
    assert not Webhook.objects.exists()


def test_admin_pauses_and_removes_a_webhook_and_sees_its_deliveries(client, admin):
    webhook, _ = webhook_create(actor=admin, name="ops", url=PUBLIC_URL)
    WebhookDelivery.objects.create(webhook=webhook, event="registry.stage_changed", last_error="HTTP 500: boom")
    client.force_login(admin)

    detail = client.get(reverse("notifications:webhook", args=[webhook.pk])).content.decode()
    client.post(reverse("notifications:webhook_active", args=[webhook.pk]), {"active": "0"})
    paused = Webhook.objects.get().active
    client.post(reverse("notifications:webhook_delete", args=[webhook.pk]))

    assert "HTTP 500: boom" in detail and "registry.stage_changed" in detail
    assert paused is False
    assert not Webhook.objects.exists()
