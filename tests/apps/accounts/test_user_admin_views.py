"""Admin user management pages: list, create, detail (role, activation, memberships, tokens)."""

import pytest
from django.urls import reverse

from apps.accounts.choices import Role
from apps.accounts.models import ApiToken, User
from apps.audit.models import AuditEvent
from apps.core.pagination import HTML_PAGE_SIZE
from tests.factories import MembershipFactory, ProjectFactory

LIST = reverse("accounts:user_list")
CREATE = reverse("accounts:user_create")
NON_ADMIN_ROLES = [Role.STAKEHOLDER, Role.SCIENTIST, Role.REVIEWER, Role.COMPLIANCE]
GOOD_PASSWORD = "a-long-unusual-passphrase-42"


def _detail(user):
    return reverse("accounts:user_detail", kwargs={"pk": user.pk})


def _url(name, user):
    return reverse(f"accounts:{name}", kwargs={"pk": user.pk})


def _new_user_data(**overrides):
    data = {
        "username": "newbie",
        "email": "newbie@example.com",
        "first_name": "New",
        "last_name": "Bie",
        "role": Role.REVIEWER,
        "password": GOOD_PASSWORD,
        "password_confirm": GOOD_PASSWORD,
    }
    return {**data, **overrides}


def _state():
    """What a refused request must leave alone."""
    return (
        list(User.objects.order_by("pk").values_list("username", "role", "is_active")),
        list(ApiToken.objects.order_by("pk").values_list("pk", "revoked_at")),
        AuditEvent.objects.count(),
    )


# --- Permission matrix ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("page", ["list", "create", "detail"])
def test_anonymous_is_sent_to_login_from_every_user_page(client, user, page):
    url = {"list": LIST, "create": CREATE, "detail": _detail(user)}[page]

    response = client.get(url)

    assert response.status_code == 302
    assert response["Location"] == f"{reverse('accounts:login')}?next={url}"


@pytest.mark.parametrize("role", NON_ADMIN_ROLES)
@pytest.mark.parametrize("page", ["list", "create", "detail"])
def test_non_admin_roles_get_403_on_user_pages(client_as, make_user, user, role, page):
    url = {"list": LIST, "create": CREATE, "detail": _detail(user)}[page]

    assert client_as(make_user(role)).get(url).status_code == 403


@pytest.mark.parametrize("page", ["list", "create", "detail"])
def test_admin_sees_every_user_page(client_as, admin_user, user, page):
    url = {"list": LIST, "create": CREATE, "detail": _detail(user)}[page]

    assert client_as(admin_user).get(url).status_code == 200


def test_superuser_with_another_role_counts_as_admin(client_as, make_user):
    superuser = make_user(Role.SCIENTIST, is_superuser=True)

    assert client_as(superuser).get(LIST).status_code == 200


def test_deactivated_admin_is_signed_out(client_as, make_user):
    admin = make_user(Role.ADMIN)
    client = client_as(admin)
    User.objects.filter(pk=admin.pk).update(is_active=False)

    response = client.get(LIST)

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


@pytest.mark.parametrize("role", [None, *NON_ADMIN_ROLES])
@pytest.mark.parametrize("action", ["create", "role", "deactivate", "revoke_all"])
def test_refused_user_management_changes_nothing(client_as, make_user, make_token, role, action):
    target = make_user(Role.SCIENTIST)
    make_token(target)
    actor = make_user(role) if role else None
    client = client_as(actor)
    before = _state()
    url, data = {
        "create": (CREATE, _new_user_data()),
        "role": (_url("user_role_change", target), {"role": Role.ADMIN}),
        "deactivate": (_url("user_set_active", target), {"active": "0"}),
        "revoke_all": (_url("user_tokens_revoke", target), {}),
    }[action]

    response = client.post(url, data)

    assert response.status_code == (302 if actor is None else 403)
    if actor is None:
        assert response["Location"].startswith(reverse("accounts:login"))
    assert _state() == before


# --- List ----------------------------------------------------------------------------------------------------------
def test_user_list_searches_username_name_and_email(client_as, admin_user, make_user):
    make_user(username="grace", email="g.hopper@navy.example")
    make_user(username="alan", first_name="Alan", last_name="Turing")
    make_user(username="ada")
    client = client_as(admin_user)

    def names(**params):
        return [u.username for u in client.get(LIST, params).context["page_obj"]]

    assert names(q="hopper") == ["grace"]
    assert names(q="TURING") == ["alan"]
    assert names(q="a") == ["ada", "admin-user", "alan", "grace"]


def test_user_list_filters_by_role_and_status(client_as, admin_user, make_user):
    make_user(Role.REVIEWER, username="rita")
    make_user(Role.REVIEWER, username="rob", is_active=False)
    make_user(Role.STAKEHOLDER, username="sam")
    client = client_as(admin_user)

    def names(**params):
        return [u.username for u in client.get(LIST, params).context["page_obj"]]

    assert names(role=Role.REVIEWER) == ["rita", "rob"]
    assert names(role=Role.REVIEWER, active="1") == ["rita"]
    assert names(active="0") == ["rob"]
    assert names(role="not-a-role") == ["admin-user", "rita", "rob", "sam"]


def test_user_list_paginates_25_per_page(client_as, admin_user, make_user):
    for number in range(25):
        make_user(username=f"u{number:02d}")
    client = client_as(admin_user)

    first = client.get(LIST)
    second = client.get(LIST, {"page": 2})

    assert len(first.context["page_obj"]) == 25
    assert [u.username for u in second.context["page_obj"]] == ["u24"]


def test_user_list_shows_membership_counts(client_as, admin_user, make_user):
    member = make_user(username="member")
    for _ in range(3):
        MembershipFactory(user=member, project=ProjectFactory())

    response = client_as(admin_user).get(LIST, {"q": "member"})

    assert [(u.username, u.membership_count) for u in response.context["page_obj"]] == [("member", 3)]


def test_user_list_query_count_does_not_grow_with_users(client_as, admin_user, make_user, django_assert_num_queries):
    for _ in range(10):
        MembershipFactory(user=make_user(), project=ProjectFactory())
    client = client_as(admin_user)

    # session, user, count, page of users with their membership counts
    with django_assert_num_queries(4):
        client.get(LIST)


# --- Create --------------------------------------------------------------------------------------------------------
def test_admin_creates_a_user_who_can_then_log_in(client_as, admin_user, client):
    response = client_as(admin_user).post(CREATE, _new_user_data())

    created = User.objects.get(username="newbie")
    assert response.status_code == 302
    assert response["Location"] == _detail(created)
    assert (created.email, created.first_name, created.last_name, created.role) == (
        "newbie@example.com",
        "New",
        "Bie",
        Role.REVIEWER,
    )
    assert created.check_password(GOOD_PASSWORD)
    event = AuditEvent.objects.order_by("-seq").first()
    assert (event.action, event.actor_id, event.object_id) == ("user.create", admin_user.pk, str(created.pk))
    assert event.after == {"username": "newbie", "role": "reviewer", "email": "newbie@example.com"}
    assert GOOD_PASSWORD not in str(event.after)


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"password": "short", "password_confirm": "short"}, "password", "This password is too short."),
        ({"password": "password123", "password_confirm": "password123"}, "password", "This password is too common."),
        (
            {"password": "12345678901", "password_confirm": "12345678901"},
            "password",
            "This password is entirely numeric.",
        ),
        ({"password_confirm": "something-else-entirely"}, "password_confirm", "The two passwords differ."),
        ({"username": "no spaces"}, "username", "Enter a valid username."),
        ({"username": ""}, "username", "This field is required."),
        ({"role": "overlord"}, "role", "Select a valid choice."),
        ({"email": "not-an-email"}, "email", "Enter a valid email address."),
    ],
)
def test_bad_user_input_shows_the_message_next_to_the_field(client_as, admin_user, overrides, field, message):
    client = client_as(admin_user)
    before = _state()

    response = client.post(CREATE, _new_user_data(**overrides))

    assert response.status_code == 200
    errors = response.context["form"].errors[field]
    assert any(error.startswith(message) for error in errors), errors
    assert f'id="id_{field}_error"' in response.content.decode()
    assert _state() == before


def test_taken_username_is_refused_next_to_the_field(client_as, admin_user, make_user):
    make_user(username="taken")
    client = client_as(admin_user)
    before = _state()

    response = client.post(CREATE, _new_user_data(username="TAKEN"))

    assert response.context["form"].errors == {"username": ["A user with that username exists."]}
    assert _state() == before


# --- Detail and changes --------------------------------------------------------------------------------------------
def test_user_detail_lists_memberships_and_tokens(client_as, admin_user, make_user, make_token):
    managed = make_user(Role.SCIENTIST)
    MembershipFactory(user=managed, project=ProjectFactory(name="Churn"), role=Role.REVIEWER)
    make_token(managed, name="their-cli")

    response = client_as(admin_user).get(_detail(managed))

    page = response.content.decode()
    assert [(m.project.name, m.role) for m in response.context["page_obj"]] == [("Churn", "reviewer")]
    assert [t.name for t in response.context["tokens_page"]] == ["their-cli"]
    assert "<td>Churn</td><td>Reviewer</td>" in page
    assert "their-cli" in page


def test_user_detail_query_count_does_not_grow_with_memberships(
    client_as, admin_user, make_user, make_token, django_assert_num_queries
):
    managed = make_user()
    for _ in range(5):
        MembershipFactory(user=managed, project=ProjectFactory())
        make_token(managed)
    client = client_as(admin_user)

    # session, user, managed user, membership count + page, token count + page
    with django_assert_num_queries(7):
        client.get(_detail(managed))


def test_unknown_user_is_404(client_as, admin_user):
    assert client_as(admin_user).get(reverse("accounts:user_detail", kwargs={"pk": 999999})).status_code == 404


def test_admin_changes_a_role(client_as, admin_user, user):
    response = client_as(admin_user).post(_url("user_role_change", user), {"role": Role.COMPLIANCE})

    assert response.status_code == 302
    assert response["Location"] == _detail(user)
    user.refresh_from_db()
    assert user.role == Role.COMPLIANCE
    event = AuditEvent.objects.order_by("-seq").first()
    assert (event.action, event.before, event.after) == (
        "user.role_change",
        {"role": "scientist"},
        {"role": "compliance"},
    )


def test_admin_cannot_remove_their_own_admin_role(client_as, admin_user):
    before = _state()

    response = client_as(admin_user).post(_url("user_role_change", admin_user), {"role": Role.SCIENTIST})

    assert response.status_code == 200
    assert response.context["role_form"].errors == {"role": ["Ask another admin."]}
    assert '<p class="error" id="id_role_error" role="alert">Ask another admin.</p>' in response.content.decode()
    assert _state() == before


def test_invalid_role_is_shown_next_to_the_field(client_as, admin_user, user):
    before = _state()

    response = client_as(admin_user).post(_url("user_role_change", user), {"role": "overlord"})

    assert response.context["role_form"].errors == {
        "role": ["Select a valid choice. overlord is not one of the available choices."]
    }
    assert _state() == before


def test_admin_deactivates_and_reactivates_a_user(client_as, admin_user, user):
    client = client_as(admin_user)

    client.post(_url("user_set_active", user), {"active": "0"})
    user.refresh_from_db()
    assert user.is_active is False
    assert AuditEvent.objects.order_by("-seq").first().action == "user.deactivate"

    client.post(_url("user_set_active", user), {"active": "1"})
    user.refresh_from_db()
    assert user.is_active is True
    assert AuditEvent.objects.order_by("-seq").first().action == "user.activate"


def test_admin_cannot_deactivate_themselves(client_as, admin_user):
    before = _state()

    response = client_as(admin_user).post(_url("user_set_active", admin_user), {"active": "0"}, follow=True)

    assert "You cannot deactivate yourself." in response.content.decode()
    assert _state() == before


def test_activation_needs_an_explicit_value(client_as, admin_user, user):
    before = _state()

    response = client_as(admin_user).post(_url("user_set_active", user), {}, follow=True)

    assert "Say whether to activate (1) or deactivate (0) the user." in response.content.decode()
    assert _state() == before


def test_admin_revokes_all_tokens_of_a_user(client_as, admin_user, user, make_token):
    for name in ("a", "b"):
        make_token(user, name=name)
    mine, _ = make_token(admin_user, name="admin's own")

    response = client_as(admin_user).post(_url("user_tokens_revoke", user), follow=True)

    assert "Revoked 2 active tokens of" in response.content.decode()
    assert ApiToken.objects.filter(user=user, revoked_at__isnull=True).count() == 0
    mine.refresh_from_db()
    assert mine.revoked_at is None


def test_navigation_shows_users_to_admins_only(client_as, admin_user, make_user):
    assert f'href="{LIST}"' in client_as(admin_user).get(reverse("accounts:settings")).content.decode()


def test_navigation_hides_users_from_non_admins(client_as, make_user):
    assert (
        f'href="{LIST}"' not in client_as(make_user(Role.COMPLIANCE)).get(reverse("accounts:settings")).content.decode()
    )


def test_weak_password_is_reported_together_with_other_field_errors(client_as, admin_user):
    before = _state()

    response = client_as(admin_user).post(
        CREATE, _new_user_data(username="no spaces", password="short", password_confirm="short")
    )

    errors = response.context["form"].errors
    assert errors["username"] == [
        "Enter a valid username. This value may contain only letters, numbers, and @/./+/-/_ characters."
    ]
    assert errors["password"] == ["This password is too short. It must contain at least 10 characters."]
    assert _state() == before


def test_password_like_the_username_is_refused(client_as, admin_user):
    response = client_as(admin_user).post(
        CREATE,
        _new_user_data(
            username="margaret.hamilton", password="margaret.hamilton", password_confirm="margaret.hamilton"
        ),
    )

    assert response.context["form"].errors == {"password": ["The password is too similar to the username."]}
    assert not User.objects.filter(username="margaret.hamilton").exists()


def test_user_detail_pages_tokens_with_their_own_parameter_keeping_the_others(
    client_as, admin_user, make_user, make_token
):
    managed = make_user(Role.SCIENTIST)
    for number in range(HTML_PAGE_SIZE + 1):
        make_token(managed, name=f"token-{number:02d}")

    response = client_as(admin_user).get(_detail(managed), {"page": "1", "tokens_page": "2"})

    page = response.content.decode()
    assert response.context["tokens_page"].number == 2
    assert 'aria-label="Pages of tokens_page"' in page
    assert 'href="?page=1&amp;tokens_page=1" rel="prev"' in page
