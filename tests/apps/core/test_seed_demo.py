"""`manage.py seed_demo`: demo users per role, one demo project, a password that is shown once or chosen, idempotent."""

import re
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from apps.accounts.models import Membership, User
from apps.audit.models import AuditEvent
from apps.projects.models import Project

DEMO_USERS = {
    "stakeholder": "stakeholder",
    "scientist": "scientist",
    "reviewer": "reviewer",
    "compliance": "compliance",
    "admin": "admin",
}
DEMO_USERS_AS_MEMBERS = {name: role for name, role in DEMO_USERS.items() if name != "admin"}
CHOSEN_PASSWORD = "demo-password-for-tests-7f3k"


def seed() -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def printed_password(output: str) -> str:
    match = re.search(r"^\| Password: (\S+) +\|$", output, flags=re.MULTILINE)
    assert match, output
    return match.group(1)


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # The command hashes five passwords per run; the production hasher would make each test take seconds.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _artifacts_in_a_temporary_folder(settings, tmp_path):
    # The demo dataset is uploaded to the artifact store: keep it out of the repository's var/.
    settings.ARTIFACT_STORE = f"file://{tmp_path / 'artifacts'}"


@pytest.fixture
def random_password(settings):
    settings.DEMO_PASSWORD = None


@pytest.fixture
def chosen_password(settings):
    settings.DEMO_PASSWORD = CHOSEN_PASSWORD


@pytest.mark.django_db
def test_seed_demo_creates_one_user_per_role(random_password):
    seed()

    assert dict(User.objects.values_list("username", "role")) == DEMO_USERS
    assert all(user.is_active for user in User.objects.all())


@pytest.mark.django_db
def test_seed_demo_prints_the_random_password_once_in_a_box(random_password):
    output = seed()

    password = printed_password(output)
    assert len(password) == 16  # secrets.token_urlsafe(12)
    assert output.count(password) == 1
    assert "Usernames: stakeholder, scientist, reviewer, compliance, admin" in output
    box_lines = [line for line in output.splitlines() if line.startswith(("+", "|"))]
    assert box_lines[0] == box_lines[-1] == "+" + "-" * (len(box_lines[1]) - 2) + "+"
    assert all(user.check_password(password) for user in User.objects.all())


@pytest.mark.django_db
def test_seed_demo_twice_keeps_passwords_and_prints_no_password(random_password):
    password = printed_password(seed())

    second = seed()

    assert password not in second
    assert "+-" not in second
    assert "Demo users stakeholder, scientist, reviewer, compliance, admin already exist" in second
    assert all(user.check_password(password) for user in User.objects.all())


@pytest.mark.django_db
def test_seed_demo_twice_changes_nothing(random_password):
    seed()
    counts = (User.objects.count(), Project.objects.count(), Membership.objects.count(), AuditEvent.objects.count())

    seed()

    assert (User.objects.count(), Project.objects.count(), Membership.objects.count(), AuditEvent.objects.count()) == (
        counts
    )
    assert counts[:3] == (5, 1, 4)


@pytest.mark.django_db
def test_seed_demo_uses_demo_password_and_does_not_print_it(chosen_password):
    output = seed()

    assert CHOSEN_PASSWORD not in output
    assert "+-" not in output
    assert "with the password from DEMO_PASSWORD" in output
    assert all(user.check_password(CHOSEN_PASSWORD) for user in User.objects.all())


@pytest.mark.django_db
def test_seed_demo_with_demo_password_resets_existing_demo_users(settings):
    settings.DEMO_PASSWORD = None
    seed()
    settings.DEMO_PASSWORD = CHOSEN_PASSWORD

    output = seed()

    assert "Set the password of stakeholder, scientist, reviewer, compliance, admin to DEMO_PASSWORD." in output
    assert all(user.check_password(CHOSEN_PASSWORD) for user in User.objects.all())
    events = AuditEvent.objects.filter(action="user.password_set")
    assert sorted(events.values_list("object_id", flat=True)) == sorted(str(u.pk) for u in User.objects.all())
    assert all(event.after == {"password_changed": True} and event.actor_id is None for event in events)


@pytest.mark.django_db
def test_seed_demo_does_not_reset_a_password_that_already_matches(chosen_password):
    seed()
    events_before = AuditEvent.objects.count()

    seed()

    assert AuditEvent.objects.count() == events_before
    assert not AuditEvent.objects.filter(action="user.password_set").exists()


@pytest.mark.django_db
def test_seed_demo_refuses_a_weak_demo_password_and_creates_nothing(settings):
    settings.DEMO_PASSWORD = "short"

    with pytest.raises(CommandError, match="The password is too weak"):
        seed()

    assert User.objects.count() == 0
    assert Project.objects.count() == 0
    assert AuditEvent.objects.count() == 0


@pytest.mark.django_db
def test_seed_demo_project_is_a_binary_churn_problem_filed_by_the_stakeholder(random_password):
    seed()

    project = Project.objects.select_related("definition", "created_by").get()
    definition = project.definition
    assert project.name == "Customer churn (demo)"
    assert project.status == "draft"
    assert project.created_by.username == "stakeholder"
    assert (definition.problem_type, definition.primary_metric, definition.primary_threshold) == ("binary", "f1", 0.8)
    assert definition.value_per_correct_decision == Decimal("40.00")
    assert definition.cost_false_positive == Decimal("5.00")
    assert definition.cost_false_negative == Decimal("120.00")
    assert definition.expected_yearly_decisions == 100_000
    assert definition.implementation_cost == Decimal("150000.00")
    assert definition.target_payback_months == 12
    assert AuditEvent.objects.filter(action="project.create", object_id=str(project.pk)).count() == 1


@pytest.mark.django_db
def test_seed_demo_project_members_have_their_roles_and_admin_is_not_a_member(random_password):
    seed()

    members = dict(Membership.objects.values_list("user__username", "role"))
    assert members == {
        "stakeholder": "stakeholder",
        "scientist": "scientist",
        "reviewer": "reviewer",
        "compliance": "compliance",
    }
    assert members == DEMO_USERS_AS_MEMBERS


@pytest.mark.django_db
def test_seed_demo_audits_every_user_and_membership_it_creates(random_password):
    seed()

    assert AuditEvent.objects.filter(action="user.create").count() == 5
    assert AuditEvent.objects.filter(action="membership.set").count() == 4
    assert AuditEvent.objects.filter(action="project.create").count() == 1


@pytest.mark.django_db
def test_seed_demo_restores_a_missing_demo_membership(random_password):
    seed()
    Membership.objects.filter(user__username="reviewer").delete()

    seed()

    assert Membership.objects.get(user__username="reviewer").role == "reviewer"
    assert Project.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("username", list(DEMO_USERS))
def test_demo_users_can_log_in_through_the_login_form(client, random_password, username):
    password = printed_password(seed())

    response = client.post(reverse("accounts:login"), {"username": username, "password": password})

    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(User.objects.get(username=username).pk)


@pytest.mark.django_db
def test_demo_user_cannot_log_in_with_a_wrong_password(client, random_password):
    seed()

    response = client.post(reverse("accounts:login"), {"username": "admin", "password": "not-the-password"})

    assert response.status_code == 200
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_seed_demo_uploads_the_demo_dataset_once_and_queues_its_ingestion(random_password):
    from apps.datasets.models import Dataset, IngestionJob

    output = seed()
    assert "Uploaded the demo dataset 'customers'" in output
    dataset = Dataset.objects.get(name="customers", project__name="Customer churn (demo)")
    job = IngestionJob.objects.get(dataset=dataset)
    assert (job.status, job.source_display, job.created_by.username) == ("queued", "customers.csv", "scientist")
    assert "Uploaded the demo dataset" not in seed()
    assert IngestionJob.objects.filter(dataset=dataset).count() == 1
