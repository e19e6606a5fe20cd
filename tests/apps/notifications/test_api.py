"""/api/v1/notifications/ (one's own inbox) and /api/v1/webhooks/ (admins): permission matrix, shapes, query counts."""

import pytest

from apps.accounts.choices import Role
from apps.audit.models import AuditEvent
from apps.notifications.models import Notification, Webhook, WebhookDelivery
from apps.notifications.services import webhook_create
from tests.apps.notifications.conftest import PUBLIC_URL
from tests.factories import UserFactory

NON_ADMIN_ROLES = [Role.STAKEHOLDER, Role.SCIENTIST, Role.REVIEWER, Role.COMPLIANCE]


def _item(user, title="t", **fields):
    return Notification.objects.create(recipient=user, event="registry.stage_changed", title=title, **fields)


# --- Inbox ------------------------------------------------------------------------------------------------------
def test_anonymous_gets_401(api_client, db):
    assert api_client.get("/api/v1/notifications/").status_code == 401
    assert api_client.post("/api/v1/notifications/read-all/").status_code == 401


def test_list_shows_only_ones_own_items_and_filters_unread(api_client_as, user, make_user):
    _item(user, title="read", read_at="2025-01-01T00:00:00Z")
    _item(user, title="unread")
    _item(make_user(), title="theirs")
    client = api_client_as(user)

    everything = client.get("/api/v1/notifications/").json()
    unread = client.get("/api/v1/notifications/", {"unread": "true"}).json()

    assert [row["title"] for row in everything["results"]] == ["unread", "read"]
    assert [row["title"] for row in unread["results"]] == ["unread"]
    assert set(everything["results"][0]) == {
        "id",
        "event",
        "project",
        "title",
        "body",
        "link",
        "payload",
        "read",
        "read_at",
        "created_at",
    }


def test_a_bad_filter_is_a_400_naming_it(api_client_as, user):
    response = api_client_as(user).get("/api/v1/notifications/", {"unread": "maybe"})

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["unread"]


def test_list_query_count_is_pinned(api_client_as, user, django_assert_num_queries):
    for number in range(30):
        _item(user, title=f"n{number}")

    with django_assert_num_queries(2):  # count, page (project joined)
        response = api_client_as(user).get("/api/v1/notifications/")

    assert len(response.json()["results"]) == 25


def test_mark_read_and_read_all(api_client_as, user):
    one, _two, _three = _item(user), _item(user), _item(user)
    client = api_client_as(user)

    read = client.post(f"/api/v1/notifications/{one.pk}/read/")
    rest = client.post("/api/v1/notifications/read-all/")

    assert read.status_code == 200 and read.json()["read"] is True
    assert rest.json() == {"marked_read": 2}
    assert not Notification.objects.filter(read_at__isnull=True).exists()


def test_anothers_item_is_a_404_and_stays_unread(api_client_as, user, make_user):
    theirs = _item(make_user())
    client = api_client_as(user)

    assert client.get(f"/api/v1/notifications/{theirs.pk}/").status_code == 404
    assert client.post(f"/api/v1/notifications/{theirs.pk}/read/").status_code == 404
    assert Notification.objects.get(pk=theirs.pk).read_at is None


# --- Webhooks ---------------------------------------------------------------------------------------------------
@pytest.fixture
def webhook(admin):
    created, _secret = webhook_create(actor=admin, name="ops", url=PUBLIC_URL)
    return created


@pytest.mark.parametrize("role", [None, *NON_ADMIN_ROLES])
def test_webhooks_are_refused_to_everyone_but_admins_and_nothing_changes(api_client_as, db, role, webhook):
    user = UserFactory(role=role) if role else None
    client = api_client_as(user)
    expected = 401 if user is None else 403
    base = f"/api/v1/webhooks/{webhook.pk}/"

    answers = [
        client.get("/api/v1/webhooks/").status_code,
        client.post("/api/v1/webhooks/", {"name": "x", "url": PUBLIC_URL}).status_code,
        client.get(base).status_code,
        client.patch(base, {"active": False}).status_code,
        client.delete(base).status_code,
        client.get(base + "deliveries/").status_code,
    ]

    assert answers == [expected] * 6
    assert list(Webhook.objects.values_list("name", "active")) == [("ops", True)]
    assert AuditEvent.objects.filter(action__startswith="webhook.").count() == 1  # the fixture's create


def test_admin_creates_a_webhook_and_gets_the_secret_once(api_client_as, admin, project):
    client = api_client_as(admin)

    created = client.post(
        "/api/v1/webhooks/",
        {"name": "ops", "url": PUBLIC_URL, "project": str(project.pk), "events": ["registry.request_decided"]},
    )
    fetched = client.get(f"/api/v1/webhooks/{created.json()['id']}/")

    assert created.status_code == 201
    body = created.json()
    assert len(body["secret"]) == 64
    assert (body["project"], body["events"], body["active"]) == (str(project.pk), ["registry.request_decided"], True)
    assert "secret" not in fetched.json()
    assert body["secret"] not in str(fetched.json())


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"name": "x", "url": "http://10.0.0.1/"}, "url"),
        ({"name": "x", "url": "http://[::ffff:127.0.0.1]/"}, "url"),
        ({"name": "x", "url": "http://u:p@93.184.215.14/"}, "url"),
        ({"name": "", "url": PUBLIC_URL}, "name"),
        ({"name": "x", "url": PUBLIC_URL, "events": ["nope"]}, "events"),
        ({"name": "x", "url": PUBLIC_URL, "project": "00000000-0000-0000-0000-000000000001"}, "project"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(api_client_as, admin, data, field):
    response = api_client_as(admin).post("/api/v1/webhooks/", data)

    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert not Webhook.objects.exists()


def test_admin_changes_and_removes_a_webhook(api_client_as, admin, webhook):
    client = api_client_as(admin)

    changed = client.patch(f"/api/v1/webhooks/{webhook.pk}/", {"active": False, "events": ["registry.stage_changed"]})
    removed = client.delete(f"/api/v1/webhooks/{webhook.pk}/")

    assert changed.status_code == 200
    assert (changed.json()["active"], changed.json()["events"]) == (False, ["registry.stage_changed"])
    assert removed.status_code == 204
    assert not Webhook.objects.exists()


def test_deliveries_are_listed_newest_first(api_client_as, admin, webhook):
    WebhookDelivery.objects.create(webhook=webhook, event="registry.stage_changed", status="failed", attempts=6)
    WebhookDelivery.objects.create(webhook=webhook, event="registry.request_opened")

    rows = api_client_as(admin).get(f"/api/v1/webhooks/{webhook.pk}/deliveries/").json()["results"]

    assert [(row["event"], row["status"]) for row in rows] == [
        ("registry.request_opened", "pending"),
        ("registry.stage_changed", "failed"),
    ]
