"""Login is throttled against brute force: django-axes locks a username+address pair after 5 failures."""

from django.urls import reverse

from apps.accounts.models import ApiToken
from apps.audit.models import AuditEvent
from tests.factories import TEST_PASSWORD

LOGIN = reverse("accounts:login")
TOKEN_API = reverse("api-token-create")
WRONG = "not-the-password"
BAD_LOGIN_TEXT = "Please enter a correct username and password"


def _login(client, username, password, address="10.0.0.1"):
    return client.post(LOGIN, {"username": username, "password": password}, REMOTE_ADDR=address)


def _signed_in(client) -> bool:
    return "_auth_user_id" in client.session


def test_four_wrong_passwords_answer_the_form_with_an_error(client, user):
    for _ in range(4):
        response = _login(client, user.username, WRONG)
        assert response.status_code == 200
        assert BAD_LOGIN_TEXT in response.content.decode()


def test_fifth_wrong_password_locks_out_and_the_sixth_is_refused_even_with_the_right_password(client, user):
    for _ in range(4):
        assert _login(client, user.username, WRONG).status_code == 200

    fifth = _login(client, user.username, WRONG)
    sixth = _login(client, user.username, TEST_PASSWORD)

    assert fifth.status_code == 429
    assert sixth.status_code == 429
    assert "Too many failed logins" in sixth.content.decode()
    assert "accounts/lockout.html" in [t.name for t in sixth.templates]
    assert 'name="password"' not in sixth.content.decode()
    assert not _signed_in(client)


def test_lockout_of_one_username_does_not_lock_another_username(client, user, make_user):
    other = make_user()
    for _ in range(5):
        _login(client, user.username, WRONG)

    response = _login(client, other.username, TEST_PASSWORD)

    assert response.status_code == 302
    assert response["Location"] == reverse("core:home")
    assert _signed_in(client)


def test_lockout_is_per_address(client, user):
    for _ in range(5):
        _login(client, user.username, WRONG, address="10.0.0.1")

    response = _login(client, user.username, TEST_PASSWORD, address="10.0.0.2")

    assert response.status_code == 302
    assert _signed_in(client)


def test_lockout_follows_the_client_behind_a_trusted_proxy(client, user, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    for _ in range(5):
        client.post(
            LOGIN,
            {"username": user.username, "password": WRONG},
            REMOTE_ADDR="10.9.9.9",
            HTTP_X_FORWARDED_FOR="203.0.113.7",
        )

    locked = client.post(
        LOGIN,
        {"username": user.username, "password": TEST_PASSWORD},
        REMOTE_ADDR="10.9.9.9",
        HTTP_X_FORWARDED_FOR="203.0.113.7",
    )
    other_client = client.post(
        LOGIN,
        {"username": user.username, "password": TEST_PASSWORD},
        REMOTE_ADDR="10.9.9.9",
        HTTP_X_FORWARDED_FOR="198.51.100.4",
    )

    assert locked.status_code == 429
    assert other_client.status_code == 302


def test_a_successful_login_before_the_limit_resets_the_failure_count(client, user):
    for _ in range(4):
        _login(client, user.username, WRONG)
    assert _login(client, user.username, TEST_PASSWORD).status_code == 302
    client.logout()

    for _ in range(4):
        assert _login(client, user.username, WRONG).status_code == 200
    response = _login(client, user.username, TEST_PASSWORD)

    assert response.status_code == 302
    assert _signed_in(client)


def test_failed_login_is_audited_as_login_failed(client, user):
    _login(client, user.username, WRONG, address="10.0.0.9")

    event = AuditEvent.objects.get()
    assert event.action == "auth.login_failed"
    assert event.actor_id is None
    assert event.after == {"username": user.username}
    assert event.client_ip == "10.0.0.9"
    assert WRONG not in str(event.after)


def test_successful_login_is_audited_as_login_by_password(client, user):
    _login(client, user.username, TEST_PASSWORD)

    event = AuditEvent.objects.get()
    assert event.action == "auth.login"
    assert event.actor_id == user.pk
    assert event.object_id == str(user.pk)
    assert event.after == {"method": "password"}


def test_token_endpoint_counts_failures_and_locks_out_with_the_error_shape(api_client, user):
    for _ in range(4):
        response = api_client.post(TOKEN_API, {"username": user.username, "password": WRONG}, format="json")
        assert response.status_code == 400

    fifth = api_client.post(TOKEN_API, {"username": user.username, "password": WRONG}, format="json")
    sixth = api_client.post(TOKEN_API, {"username": user.username, "password": TEST_PASSWORD}, format="json")

    for response in (fifth, sixth):
        assert response.status_code == 429
        assert response["Content-Type"] == "application/json"
        body = response.json()
        assert body["message"].startswith("Too many failed logins for this username from this address.")
        assert body["errors"] == {}
        assert response["Retry-After"] == "900"
    assert ApiToken.objects.count() == 0


def test_form_and_token_endpoint_share_one_failure_count(client, api_client, user):
    for _ in range(3):
        _login(client, user.username, WRONG, address="127.0.0.1")
    for _ in range(2):
        api_client.post(TOKEN_API, {"username": user.username, "password": WRONG}, format="json")

    response = _login(client, user.username, TEST_PASSWORD, address="127.0.0.1")

    assert response.status_code == 429
    assert not _signed_in(client)


def test_token_endpoint_success_resets_the_failure_count(api_client, user):
    credentials = {"username": user.username, "password": TEST_PASSWORD}
    for _ in range(4):
        api_client.post(TOKEN_API, {"username": user.username, "password": WRONG}, format="json")
    assert api_client.post(TOKEN_API, credentials, format="json").status_code == 201

    for _ in range(4):
        assert api_client.post(TOKEN_API, {**credentials, "password": WRONG}, format="json").status_code == 400
    assert api_client.post(TOKEN_API, credentials, format="json").status_code == 201
    assert ApiToken.objects.filter(user=user).count() == 2
