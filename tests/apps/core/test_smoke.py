from django.urls import reverse


def test_health_answers_without_login(client, db):
    response = client.get(reverse("core:health"))
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_home_sends_anonymous_users_to_login(client, db):
    response = client.get(reverse("core:home"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


def test_every_response_carries_a_request_id(client, db):
    response = client.get(reverse("core:health"), HTTP_X_REQUEST_ID="trace-123")
    assert response["X-Request-ID"] == "trace-123"


def test_navigation_shows_audit_to_a_project_compliance_member(db):
    from apps.accounts.choices import Role
    from apps.core.navigation import areas_for
    from tests.factories import MembershipFactory, UserFactory

    user = UserFactory(role=Role.SCIENTIST)
    assert "audit" not in [area["key"] for area in areas_for(user)]

    MembershipFactory(user=user, role=Role.COMPLIANCE)

    assert "audit" in [area["key"] for area in areas_for(user)]


def test_navigation_shows_users_only_to_admins(db):
    from apps.accounts.choices import Role
    from apps.core.navigation import areas_for
    from tests.factories import UserFactory

    assert [a["key"] for a in areas_for(UserFactory(role=Role.ADMIN))] == [
        "projects",
        "datasets",
        "features",
        "experiments",
        "models",
        "deployments",
        "monitoring",
        "audit",
        "users",
    ]
    assert [a["key"] for a in areas_for(UserFactory(role=Role.STAKEHOLDER))] == [
        "projects",
        "datasets",
        "models",
        "deployments",
        "monitoring",
    ]
