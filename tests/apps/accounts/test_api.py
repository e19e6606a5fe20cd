"""Auth API: token for a password, me, own tokens, admin users."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.throttling import ScopedRateThrottle

from apps.accounts.choices import Role
from apps.accounts.models import ApiToken, User
from apps.audit.models import AuditEvent
from tests.factories import TEST_PASSWORD, MembershipFactory, ProjectFactory

TOKEN = reverse("api-token-create")
ME = reverse("api-me")
TOKENS = reverse("api-token-list")
USERS = reverse("api-user-list")
NON_ADMIN_ROLES = [Role.STAKEHOLDER, Role.SCIENTIST, Role.REVIEWER, Role.COMPLIANCE]
BAD_CREDENTIALS = {
    "message": "Unable to log in with those credentials.",
    "errors": {"non_field_errors": ["Unable to log in with those credentials."]},
}


def _token_url(token):
    return reverse("api-token-detail", kwargs={"pk": token.pk})


def _user_url(user):
    return reverse("api-user-detail", kwargs={"pk": user.pk})


def _state():
    return (
        list(User.objects.order_by("pk").values_list("username", "role", "is_active")),
        list(ApiToken.objects.order_by("pk").values_list("pk", "revoked_at")),
        AuditEvent.objects.count(),
    )


# --- POST /api/v1/auth/token/ ------------------------------------------------------------------------------------
def test_password_buys_a_token_that_authenticates(api_client, user):
    response = api_client.post(TOKEN, {"username": user.username, "password": TEST_PASSWORD, "name": "laptop"})

    assert response.status_code == 201
    body = response.json()
    token = ApiToken.objects.get(user=user)
    assert body == {
        "token": body["token"],
        "id": str(token.pk),
        "name": "laptop",
        "prefix": body["token"][:12],
        "expires_at": None,
    }
    assert token.prefix == body["token"][:12]
    me = api_client.get(ME, HTTP_AUTHORIZATION=f"Token {body['token']}")
    assert me.json()["username"] == user.username


def test_token_endpoint_defaults_the_name_and_takes_an_expiry(api_client, user):
    before = timezone.now()

    response = api_client.post(TOKEN, {"username": user.username, "password": TEST_PASSWORD, "expires_in_days": 7})

    token = ApiToken.objects.get(user=user)
    assert response.json()["name"] == "Command line"
    assert before + timedelta(days=7) <= token.expires_at <= timezone.now() + timedelta(days=7)


def test_token_endpoint_records_a_login_and_the_token_creation(api_client, user):
    api_client.post(TOKEN, {"username": user.username, "password": TEST_PASSWORD})

    events = list(AuditEvent.objects.order_by("seq").values_list("action", "actor_id", "after"))
    token = ApiToken.objects.get(user=user)
    assert events == [
        ("auth.login", user.pk, {"method": "api-token"}),
        ("token.create", user.pk, {"name": "Command line", "prefix": token.prefix, "expires_at": None}),
    ]
    user.refresh_from_db()
    assert user.last_login is not None


def test_wrong_password_is_400_with_the_error_shape_and_audited(api_client, user):
    response = api_client.post(TOKEN, {"username": user.username, "password": "wrong"})

    assert response.status_code == 400
    assert response.json() == BAD_CREDENTIALS
    assert ApiToken.objects.count() == 0
    assert list(AuditEvent.objects.values_list("action", "after")) == [
        ("auth.login_failed", {"username": user.username})
    ]


def test_unknown_user_is_400_like_a_wrong_password(api_client, db):
    response = api_client.post(TOKEN, {"username": "nobody", "password": "whatever"})

    assert response.status_code == 400
    assert response.json() == BAD_CREDENTIALS


def test_deactivated_user_gets_no_token(api_client, make_user):
    inactive = make_user(is_active=False)

    response = api_client.post(TOKEN, {"username": inactive.username, "password": TEST_PASSWORD})

    assert response.status_code == 400
    assert response.json() == BAD_CREDENTIALS
    assert ApiToken.objects.count() == 0


def test_missing_fields_are_named(api_client, db):
    response = api_client.post(TOKEN, {})

    assert response.status_code == 400
    assert response.json() == {
        "message": "Invalid input.",
        "errors": {"username": ["This field is required."], "password": ["This field is required."]},
    }


def test_expiry_out_of_range_is_named(api_client, user):
    response = api_client.post(TOKEN, {"username": user.username, "password": TEST_PASSWORD, "expires_in_days": 400})

    assert response.status_code == 400
    assert response.json()["errors"] == {"expires_in_days": ["Ensure this value is less than or equal to 365."]}
    assert ApiToken.objects.count() == 0


def test_token_endpoint_is_rate_limited(api_client, user, monkeypatch):
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"token_create": "3/min"})
    credentials = {"username": user.username, "password": TEST_PASSWORD}
    answers = [api_client.post(TOKEN, credentials).status_code for _ in range(4)]

    assert answers == [201, 201, 201, 429]
    assert ApiToken.objects.count() == 3


def test_token_endpoint_throttle_uses_the_configured_scope(settings):
    from apps.accounts.api.views import ApiTokenObtainView

    assert ApiTokenObtainView.throttle_scope == "token_create"
    assert ApiTokenObtainView.throttle_classes == [ScopedRateThrottle]
    assert settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["token_create"] == "10/min"


def test_rate_limited_answer_has_the_error_shape(api_client, user, monkeypatch):
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"token_create": "1/min"})
    api_client.post(TOKEN, {"username": user.username, "password": TEST_PASSWORD})

    response = api_client.post(TOKEN, {"username": user.username, "password": TEST_PASSWORD})

    assert response.status_code == 429
    assert response.json()["message"].startswith("Request was throttled.")
    assert response.json()["errors"] == {}


def test_token_endpoint_ignores_a_session(api_client, user, make_user):
    other = make_user()
    api_client.force_login(other)

    response = api_client.post(TOKEN, {"username": user.username, "password": TEST_PASSWORD})

    assert response.status_code == 201
    assert ApiToken.objects.get().user == user


# --- GET /api/v1/auth/me/ ------------------------------------------------------------------------------------------
def test_me_lists_memberships(api_client_as, make_user):
    user = make_user(Role.SCIENTIST, email="sci@example.com")
    alpha, beta = ProjectFactory(name="Alpha"), ProjectFactory(name="Beta")
    MembershipFactory(user=user, project=beta, role=Role.REVIEWER)
    MembershipFactory(user=user, project=alpha, role=Role.SCIENTIST)

    response = api_client_as(user).get(ME)

    assert response.status_code == 200
    assert response.json() == {
        "id": user.pk,
        "username": user.username,
        "email": "sci@example.com",
        "first_name": "",
        "last_name": "",
        "role": "scientist",
        "memberships": [
            {"project_id": str(alpha.pk), "project_name": "Alpha", "role": "scientist"},
            {"project_id": str(beta.pk), "project_name": "Beta", "role": "reviewer"},
        ],
    }


def test_me_query_count_does_not_grow_with_memberships(api_client, user, make_token, django_assert_num_queries):
    for _ in range(5):
        MembershipFactory(user=user, project=ProjectFactory())
    _, secret = make_token(user)
    api_client.get(ME, HTTP_AUTHORIZATION=f"Token {secret}")  # sets last_used_at once

    # token lookup, user, memberships with projects
    with django_assert_num_queries(3):
        response = api_client.get(ME, HTTP_AUTHORIZATION=f"Token {secret}")
    assert len(response.json()["memberships"]) == 5


def test_me_works_with_a_session(client, user):
    client.force_login(user)

    assert client.get(ME).json()["username"] == user.username


def test_anonymous_me_is_401(api_client, db):
    response = api_client.get(ME)

    assert response.status_code == 401
    assert response.json() == {"message": "Authentication credentials were not provided.", "errors": {}}


# --- /api/v1/auth/tokens/ ------------------------------------------------------------------------------------------
def test_token_list_is_own_tokens_paginated(api_client_as, user, make_user, make_token):
    for number in range(3):
        make_token(user, name=f"t{number}")
    make_token(make_user(), name="not-mine")
    revoked, _ = make_token(user, name="old")
    client = api_client_as(user)
    client.delete(_token_url(revoked))

    body = client.get(TOKENS, {"page_size": 2}).json()

    assert body["count"] == 4
    assert [t["name"] for t in body["results"]] == ["old", "t2"]
    assert body["results"][0]["status"] == "revoked"
    assert body["results"][1]["status"] == "active"
    assert set(body["results"][1]) == {
        "id",
        "name",
        "prefix",
        "created_at",
        "last_used_at",
        "expires_at",
        "revoked_at",
        "status",
    }
    assert body["next"].endswith("page=2&page_size=2")


def test_token_list_query_count_is_fixed(api_client_as, user, make_token, django_assert_num_queries):
    for number in range(10):
        make_token(user, name=f"t{number}")
    client = api_client_as(user)

    # count, page
    with django_assert_num_queries(2):
        response = client.get(TOKENS)
    assert response.json()["count"] == 10


def test_creating_a_token_through_the_api_returns_the_secret_once(api_client_as, user):
    client = api_client_as(user)

    response = client.post(TOKENS, {"name": "ci", "expires_in_days": 30})

    assert response.status_code == 201
    secret = response.json()["token"]
    token = ApiToken.objects.get()
    assert token.user == user
    listed = client.get(TOKENS).json()["results"]
    assert secret not in str(listed)
    assert client.get(_token_url(token)).json()["prefix"] == secret[:12]


def test_revoking_own_token_is_204(api_client_as, user, make_token):
    token, _ = make_token(user)

    response = api_client_as(user).delete(_token_url(token))

    assert response.status_code == 204
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert AuditEvent.objects.order_by("-seq").first().action == "token.revoke"


def test_revoking_twice_is_409(api_client_as, user, make_token):
    token, _ = make_token(user)
    client = api_client_as(user)
    client.delete(_token_url(token))
    before = _state()

    response = client.delete(_token_url(token))

    assert response.status_code == 409
    assert response.json() == {"message": "This token is already revoked.", "errors": {}}
    assert _state() == before


@pytest.mark.parametrize("role", [*NON_ADMIN_ROLES, Role.ADMIN])
def test_nobody_sees_or_revokes_another_users_token_through_the_api(api_client_as, make_user, make_token, role):
    token, _ = make_token(make_user())
    client = api_client_as(make_user(role))
    before = _state()

    assert client.get(_token_url(token)).status_code == 404
    assert client.delete(_token_url(token)).status_code == 404
    assert _state() == before


@pytest.mark.parametrize("method", ["get", "post"])
def test_anonymous_token_list_is_401(api_client, method, db):
    before = _state()

    assert getattr(api_client, method)(TOKENS, {"name": "x"}).status_code == 401
    assert _state() == before


# --- /api/v1/auth/users/ -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("role", [None, *NON_ADMIN_ROLES])
@pytest.mark.parametrize("call", ["list", "retrieve", "create", "patch"])
def test_users_api_refuses_non_admins_and_changes_nothing(api_client_as, make_user, user, role, call):
    client = api_client_as(make_user(role) if role else None)
    before = _state()

    response = {
        "list": lambda: client.get(USERS),
        "retrieve": lambda: client.get(_user_url(user)),
        "create": lambda: client.post(
            USERS, {"username": "x", "role": Role.ADMIN, "password": "a-long-unusual-passphrase-42"}
        ),
        "patch": lambda: client.patch(_user_url(user), {"role": Role.ADMIN}),
    }[call]()

    assert response.status_code == (401 if role is None else 403)
    assert set(response.json()) == {"message", "errors"}
    assert _state() == before


def test_admin_lists_users_with_filters(api_client_as, admin_user, make_user):
    make_user(Role.REVIEWER, username="rita")
    make_user(Role.REVIEWER, username="rob", is_active=False)
    client = api_client_as(admin_user)

    def names(**params):
        return [u["username"] for u in client.get(USERS, params).json()["results"]]

    assert names() == ["admin-user", "rita", "rob"]
    assert names(role="reviewer") == ["rita", "rob"]
    assert names(is_active="false") == ["rob"]
    assert names(is_active="true", role="reviewer") == ["rita"]
    assert names(q="RI") == ["rita"]


def test_users_api_rejects_an_unknown_role_filter(api_client_as, admin_user):
    response = api_client_as(admin_user).get(USERS, {"role": "overlord"})

    assert response.status_code == 400
    assert response.json() == {"message": "Invalid input.", "errors": {"role": ['"overlord" is not a valid choice.']}}


def test_users_list_query_count_is_fixed(api_client_as, admin_user, make_user, django_assert_num_queries):
    for _ in range(10):
        MembershipFactory(user=make_user(), project=ProjectFactory())
    client = api_client_as(admin_user)

    # count, page with membership counts
    with django_assert_num_queries(2):
        response = client.get(USERS)
    assert response.json()["count"] == 21  # admin, 10 members, 10 project creators
    assert {u["membership_count"] for u in response.json()["results"]} == {0, 1}


def test_admin_creates_a_user_through_the_api(api_client_as, admin_user):
    response = api_client_as(admin_user).post(
        USERS,
        {
            "username": "newbie",
            "email": "n@example.com",
            "role": "compliance",
            "password": "a-long-unusual-passphrase-42",
        },
    )

    assert response.status_code == 201
    created = User.objects.get(username="newbie")
    assert response.json() == {
        "id": created.pk,
        "username": "newbie",
        "email": "n@example.com",
        "first_name": "",
        "last_name": "",
        "role": "compliance",
        "is_active": True,
        "last_login": None,
        "date_joined": response.json()["date_joined"],
        "membership_count": 0,
    }
    assert created.check_password("a-long-unusual-passphrase-42")
    assert "password" not in response.json()


def test_weak_password_through_the_api_is_named(api_client_as, admin_user):
    before = _state()

    response = api_client_as(admin_user).post(USERS, {"username": "newbie", "role": "scientist", "password": "short"})

    assert response.status_code == 400
    assert response.json() == {
        "message": "The password is too weak.",
        "errors": {"password": ["This password is too short. It must contain at least 10 characters."]},
    }
    assert _state() == before


def test_admin_patches_role_and_activity_in_one_call(api_client_as, admin_user, user):
    response = api_client_as(admin_user).patch(_user_url(user), {"role": "reviewer", "is_active": False})

    assert response.status_code == 200
    assert (response.json()["role"], response.json()["is_active"]) == ("reviewer", False)
    user.refresh_from_db()
    assert (user.role, user.is_active) == ("reviewer", False)
    assert list(AuditEvent.objects.order_by("seq").values_list("action", flat=True)) == [
        "user.role_change",
        "user.deactivate",
    ]


def test_patch_that_fails_halfway_changes_nothing(api_client_as, make_user):
    # A superuser counts as admin whatever their role, so their own role change to admin is allowed; deactivating
    # themselves is not. The role change must roll back with the refused deactivation.
    superuser = make_user(Role.SCIENTIST, is_superuser=True)
    before = _state()

    response = api_client_as(superuser).patch(_user_url(superuser), {"role": "admin", "is_active": False})

    assert response.status_code == 400
    assert response.json() == {"message": "You cannot deactivate yourself.", "errors": {}}
    assert _state() == before


def test_admin_cannot_demote_themselves_through_the_api(api_client_as, admin_user):
    before = _state()

    response = api_client_as(admin_user).patch(_user_url(admin_user), {"role": "scientist"})

    assert response.status_code == 400
    assert response.json() == {
        "message": "You cannot remove your own admin role.",
        "errors": {"role": ["Ask another admin."]},
    }
    assert _state() == before


def test_put_is_not_allowed_on_users(api_client_as, admin_user, user):
    assert api_client_as(admin_user).put(_user_url(user), {"role": "reviewer"}).status_code == 405
