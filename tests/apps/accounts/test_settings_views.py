"""The settings page: profile, personal API tokens (secret shown once), revocation."""

import re

import pytest
from django.urls import reverse

from apps.accounts.choices import Role
from apps.accounts.models import ApiToken
from apps.audit.models import AuditEvent

SETTINGS = reverse("accounts:settings")


def _revoke_url(token):
    return reverse("accounts:token_revoke", kwargs={"pk": token.pk})


def test_anonymous_user_is_sent_to_login(client, db):
    response = client.get(SETTINGS)

    assert response.status_code == 302
    assert response["Location"] == f"{reverse('accounts:login')}?next={SETTINGS}"


@pytest.mark.parametrize("role", [Role.STAKEHOLDER, Role.SCIENTIST, Role.REVIEWER, Role.COMPLIANCE, Role.ADMIN])
def test_every_role_sees_its_profile(client_as, make_user, role):
    user = make_user(role, email="ada@example.com")

    response = client_as(user).get(SETTINGS)

    assert response.status_code == 200
    page = response.content.decode()
    assert f"<dt>Username</dt><dd>{user.username}</dd>" in page
    assert f"<dt>Role</dt><dd>{Role(role).label}</dd>" in page
    assert "<dt>Email</dt><dd>ada@example.com</dd>" in page


def test_creating_a_token_shows_the_secret_once(client_as, user):
    client = client_as(user)

    response = client.post(SETTINGS, {"name": "laptop", "expires_in_days": "30"})

    assert response.status_code == 200
    token = ApiToken.objects.get(user=user)
    secret = response.context["created_secret"]
    page = response.content.decode()
    assert f'<code class="secret" id="token-secret">{secret}</code>' in page
    assert "it will not be shown again" in page
    assert 'data-copy-target="token-secret"' in page
    assert "no-store" in response["Cache-Control"]
    assert token.name == "laptop"
    assert token.prefix == secret[:12]
    # Not in the session either: the secret lived for this one response only.
    assert not any(secret in str(value) for value in client.session.values())

    later = client.get(SETTINGS)
    assert secret not in later.content.decode()
    assert f"{token.prefix}…" in later.content.decode()


def test_created_secret_authenticates_the_api(client_as, api_client, user):
    response = client_as(user).post(SETTINGS, {"name": "laptop"})
    secret = response.context["created_secret"]

    me = api_client.get(reverse("api-me"), HTTP_AUTHORIZATION=f"Token {secret}")

    assert me.status_code == 200
    assert me.json()["username"] == user.username


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"name": ""}, "name", "This field is required."),
        ({"name": "ci", "expires_in_days": "0"}, "expires_in_days", "Ensure this value is greater than or equal to 1."),
        (
            {"name": "ci", "expires_in_days": "366"},
            "expires_in_days",
            "Ensure this value is less than or equal to 365.",
        ),
        ({"name": "x" * 101}, "name", "Ensure this value has at most 100 characters (it has 101)."),
    ],
)
def test_bad_token_input_shows_the_message_next_to_the_field_and_creates_nothing(client_as, user, data, field, message):
    response = client_as(user).post(SETTINGS, data)

    assert response.status_code == 200
    assert response.context["form"].errors == {field: [message]}
    assert f'<p class="error" id="id_{field}_error" role="alert">{message}</p>' in response.content.decode()
    assert "created_secret" not in response.context
    assert ApiToken.objects.count() == 0
    assert AuditEvent.objects.count() == 0


def test_token_list_shows_status_and_paginates_25_per_page(client_as, user, make_token):
    for number in range(26):
        make_token(user, name=f"token-{number:02d}")
    client = client_as(user)

    first = client.get(SETTINGS)
    second = client.get(SETTINGS, {"page": 2})

    assert len(first.context["page_obj"]) == 25
    assert [t.name for t in second.context["page_obj"]] == ["token-00"]
    assert "Page 1 of 2 (26 in all)" in first.content.decode()
    assert first.content.decode().count('<span class="badge badge-token-active">Active</span>') == 25


def test_token_list_only_shows_ones_own_tokens(client_as, user, make_user, make_token):
    make_token(make_user(), name="someone-elses")
    make_token(user, name="mine")

    response = client_as(user).get(SETTINGS)

    assert [t.name for t in response.context["page_obj"]] == ["mine"]
    assert "someone-elses" not in response.content.decode()


def test_settings_page_query_count_does_not_grow_with_tokens(client_as, user, make_token, django_assert_num_queries):
    for number in range(10):
        make_token(user, name=f"token-{number}")
    client = client_as(user)

    # session, user, token count, token page, and the navigation's "compliance in some project?" check
    with django_assert_num_queries(5):
        client.get(SETTINGS)


def test_revoking_own_token_from_the_settings_page(client_as, user, make_token):
    token, _ = make_token(user)

    response = client_as(user).post(_revoke_url(token))

    assert response.status_code == 302
    assert response["Location"] == SETTINGS
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert AuditEvent.objects.order_by("-seq").first().action == "token.revoke"


def test_revoked_token_shows_no_revoke_button(client_as, user, make_token):
    token, _ = make_token(user)
    client = client_as(user)
    client.post(_revoke_url(token))

    page = client.get(SETTINGS).content.decode()

    assert '<span class="badge badge-token-revoked">Revoked</span>' in page
    assert _revoke_url(token) not in page


@pytest.mark.parametrize("role", [Role.STAKEHOLDER, Role.SCIENTIST, Role.REVIEWER, Role.COMPLIANCE])
def test_non_admin_cannot_revoke_another_users_token(client_as, make_user, make_token, role):
    token, _ = make_token(make_user())
    events = AuditEvent.objects.count()

    response = client_as(make_user(role)).post(_revoke_url(token))

    assert response.status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None
    assert AuditEvent.objects.count() == events


def test_admin_revoking_someone_elses_token_returns_to_their_page(client_as, user, admin_user, make_token):
    token, _ = make_token(user)

    response = client_as(admin_user).post(_revoke_url(token))

    assert response.status_code == 302
    assert response["Location"] == reverse("accounts:user_detail", kwargs={"pk": user.pk})
    token.refresh_from_db()
    assert token.revoked_at is not None


def test_revoking_twice_says_so_and_changes_nothing(client_as, user, make_token):
    token, _ = make_token(user)
    client = client_as(user)
    client.post(_revoke_url(token))
    token.refresh_from_db()
    revoked_at, events = token.revoked_at, AuditEvent.objects.count()

    response = client.post(_revoke_url(token), follow=True)

    assert "This token is already revoked." in response.content.decode()
    token.refresh_from_db()
    assert token.revoked_at == revoked_at
    assert AuditEvent.objects.count() == events


def test_revoke_is_post_only(client_as, user, make_token):
    token, _ = make_token(user)

    response = client_as(user).get(_revoke_url(token))

    assert response.status_code == 405
    token.refresh_from_db()
    assert token.revoked_at is None


def test_anonymous_revoke_is_sent_to_login_and_changes_nothing(client, user, make_token):
    token, _ = make_token(user)

    response = client.post(_revoke_url(token))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))
    token.refresh_from_db()
    assert token.revoked_at is None


def test_copy_script_is_inline_and_nothing_comes_from_a_cdn(client_as, user):
    page = client_as(user).post(SETTINGS, {"name": "laptop"}).content.decode()

    assert "navigator.clipboard" in page
    assert not re.search(r'(src|href)="https?://', page)
