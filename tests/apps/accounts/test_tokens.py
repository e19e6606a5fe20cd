"""Personal API tokens: stored hashed, shown once, authenticate API calls, revocable, expire."""

import hashlib
from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.urls import reverse
from django.utils import timezone

from apps.accounts.choices import ApiTokenStatus, Role
from apps.accounts.models import ApiToken
from apps.accounts.services import api_token_create, api_token_revoke, api_token_revoke_all, user_set_active
from apps.audit.models import AuditEvent
from apps.core.exceptions import ApplicationError

ME = reverse("api-me")


def _db_row_values(token) -> list[str]:
    return [str(value) for value in ApiToken.objects.filter(pk=token.pk).values().get().values()]


def test_token_creation_stores_only_the_sha256_of_the_secret(user, make_token):
    token, secret = make_token(user, name="laptop")

    row = _db_row_values(token)
    assert secret.startswith("mlp_")
    assert len(secret) == 4 + 43
    assert not any(secret in value for value in row)
    assert not any(secret[4:] in value for value in row)
    assert ApiToken.objects.get(pk=token.pk).key_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert token.prefix == secret[:12]


def test_token_creation_is_audited_without_the_secret(user, make_token):
    token, secret = make_token(user, name="laptop")

    event = AuditEvent.objects.get()
    assert event.action == "token.create"
    assert event.actor_id == user.pk
    assert event.object_type == "accounts.apitoken"
    assert event.object_id == str(token.pk)
    assert event.after == {"name": "laptop", "prefix": token.prefix, "expires_at": None}
    assert secret not in str(event.after)
    assert token.key_hash not in str(event.after)


def test_token_authenticates_api_calls_with_the_token_keyword(api_client, user, make_token):
    _, secret = make_token(user)

    response = api_client.get(ME, HTTP_AUTHORIZATION=f"Token {secret}")

    assert response.status_code == 200
    assert response.json()["username"] == user.username


def test_token_authenticates_api_calls_with_the_bearer_keyword(api_client, user, make_token):
    _, secret = make_token(user)

    response = api_client.get(ME, HTTP_AUTHORIZATION=f"Bearer {secret}")

    assert response.status_code == 200
    assert response.json()["username"] == user.username


def _assert_refused(response, message):
    assert response.status_code == 401
    assert response.json() == {"message": message, "errors": {}}
    assert response["WWW-Authenticate"] == "Token"


def test_revoked_token_is_refused_with_401(api_client, user, make_token):
    token, secret = make_token(user)
    api_token_revoke(token=token, actor=user)

    _assert_refused(api_client.get(ME, HTTP_AUTHORIZATION=f"Token {secret}"), "Invalid, expired or revoked token.")


def test_expired_token_is_refused_with_401(api_client, user, make_token):
    token, secret = make_token(user, expires_in_days=1)
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    _assert_refused(api_client.get(ME, HTTP_AUTHORIZATION=f"Token {secret}"), "Invalid, expired or revoked token.")
    assert ApiToken.objects.get(pk=token.pk).status == ApiTokenStatus.EXPIRED


def test_unknown_token_is_refused_with_401(api_client, db):
    _assert_refused(api_client.get(ME, HTTP_AUTHORIZATION="Token mlp_unknown"), "Invalid, expired or revoked token.")


def test_token_header_without_secret_is_refused_with_401(api_client, db):
    _assert_refused(api_client.get(ME, HTTP_AUTHORIZATION="Token"), "Invalid token header: expected 'Token <secret>'.")


def test_token_of_a_deactivated_user_is_refused(api_client, user, admin_user, make_token):
    _, secret = make_token(user)
    user_set_active(actor=admin_user, user=user, active=False)

    _assert_refused(api_client.get(ME, HTTP_AUTHORIZATION=f"Token {secret}"), "Invalid, expired or revoked token.")


def test_using_a_token_sets_last_used_at(api_client, user, make_token):
    token, secret = make_token(user)
    assert token.last_used_at is None
    before = timezone.now()

    api_client.get(ME, HTTP_AUTHORIZATION=f"Token {secret}")

    token.refresh_from_db()
    assert before <= token.last_used_at <= timezone.now()


def test_last_used_at_is_written_at_most_once_a_minute(api_client, user, make_token):
    token, secret = make_token(user)
    recent = timezone.now() - timedelta(seconds=30)
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=recent)

    api_client.get(ME, HTTP_AUTHORIZATION=f"Token {secret}")
    token.refresh_from_db()
    assert token.last_used_at == recent

    stale = timezone.now() - timedelta(minutes=2)
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=stale)
    api_client.get(ME, HTTP_AUTHORIZATION=f"Token {secret}")
    token.refresh_from_db()
    assert token.last_used_at > stale + timedelta(minutes=1)


def test_expiry_in_days_sets_expires_at(user):
    before = timezone.now()

    token, _ = api_token_create(user=user, name="ci", expires_in_days=30)

    assert before + timedelta(days=30) <= token.expires_at <= timezone.now() + timedelta(days=30)
    assert token.status == ApiTokenStatus.ACTIVE


@pytest.mark.parametrize(
    ("kwargs", "field", "message"),
    [
        ({"name": "  "}, "name", "This field is required."),
        ({"name": "x" * 101}, "name", "Use at most 100 characters."),
        ({"name": "ci", "expires_in_days": 0}, "expires_in_days", "Choose between 1 and 365 days."),
        ({"name": "ci", "expires_in_days": 366}, "expires_in_days", "Choose between 1 and 365 days."),
        ({"name": "ci", "expires_at": timezone.now() - timedelta(minutes=1)}, "expires_at", "Must be in the future."),
        (
            {"name": "ci", "expires_at": timezone.now() + timedelta(days=400)},
            "expires_at",
            "A token lives at most 365 days.",
        ),
    ],
)
def test_token_creation_rejects_bad_input_and_creates_nothing(user, kwargs, field, message):
    with pytest.raises(ApplicationError) as caught:
        api_token_create(user=user, **kwargs)

    assert caught.value.errors == {field: [message]}
    assert ApiToken.objects.count() == 0
    assert AuditEvent.objects.count() == 0


def test_deactivated_user_cannot_create_a_token(user, admin_user):
    user_set_active(actor=admin_user, user=user, active=False)
    events = AuditEvent.objects.count()

    with pytest.raises(PermissionDenied):
        api_token_create(user=user, name="ci")

    assert ApiToken.objects.count() == 0
    assert AuditEvent.objects.count() == events


def test_revoking_a_token_is_audited(user, make_token):
    token, _ = make_token(user)

    api_token_revoke(token=token, actor=user)

    token.refresh_from_db()
    assert token.status == ApiTokenStatus.REVOKED
    event = AuditEvent.objects.order_by("-seq").first()
    assert event.action == "token.revoke"
    assert event.actor_id == user.pk
    assert event.object_id == str(token.pk)


def test_revoking_a_revoked_token_is_a_conflict_that_changes_nothing(user, make_token):
    token, _ = make_token(user)
    api_token_revoke(token=token, actor=user)
    token.refresh_from_db()
    revoked_at, events = token.revoked_at, AuditEvent.objects.count()

    with pytest.raises(ApplicationError) as caught:
        api_token_revoke(token=token, actor=user)

    assert caught.value.status == 409
    token.refresh_from_db()
    assert token.revoked_at == revoked_at
    assert AuditEvent.objects.count() == events


@pytest.mark.parametrize("role", [Role.STAKEHOLDER, Role.SCIENTIST, Role.REVIEWER, Role.COMPLIANCE])
def test_user_cannot_revoke_another_users_token(make_user, make_token, role):
    owner, other = make_user(), make_user(role)
    token, _ = make_token(owner)
    events = AuditEvent.objects.count()

    with pytest.raises(PermissionDenied):
        api_token_revoke(token=token, actor=other)

    token.refresh_from_db()
    assert token.revoked_at is None
    assert AuditEvent.objects.count() == events


def test_admin_can_revoke_another_users_token(user, admin_user, make_token):
    token, _ = make_token(user)

    api_token_revoke(token=token, actor=admin_user)

    token.refresh_from_db()
    assert token.revoked_at is not None
    assert AuditEvent.objects.order_by("-seq").first().actor_id == admin_user.pk


def test_revoke_all_revokes_only_active_tokens_one_event_each(user, admin_user, make_token):
    active_one, _ = make_token(user, name="a")
    active_two, _ = make_token(user, name="b")
    already, _ = make_token(user, name="c")
    api_token_revoke(token=already, actor=user)
    expired, _ = make_token(user, name="d", expires_in_days=1)
    ApiToken.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(days=1))
    make_token(admin_user, name="admin's")
    events = AuditEvent.objects.count()

    count = api_token_revoke_all(user=user, actor=admin_user)

    assert count == 2
    statuses = {t.name: t.status for t in ApiToken.objects.all()}
    assert statuses == {
        "a": ApiTokenStatus.REVOKED,
        "b": ApiTokenStatus.REVOKED,
        "c": ApiTokenStatus.REVOKED,
        "d": ApiTokenStatus.EXPIRED,
        "admin's": ApiTokenStatus.ACTIVE,
    }
    new_events = AuditEvent.objects.filter(seq__gt=events)
    assert sorted(e.object_id for e in new_events) == sorted([str(active_one.pk), str(active_two.pk)])
    assert {e.action for e in new_events} == {"token.revoke"}


def test_non_admin_cannot_revoke_all_of_another_users_tokens(make_user, make_token):
    owner, other = make_user(), make_user(Role.REVIEWER)
    token, _ = make_token(owner)
    events = AuditEvent.objects.count()

    with pytest.raises(PermissionDenied):
        api_token_revoke_all(user=owner, actor=other)

    token.refresh_from_db()
    assert token.revoked_at is None
    assert AuditEvent.objects.count() == events
