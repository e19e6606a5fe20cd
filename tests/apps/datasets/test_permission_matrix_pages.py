"""Who may open each dataset page and use each form: anonymous visitors, a non-member, a platform-wide compliance
officer who is no member, each project role, and an administrator. A refused change leaves everything as it was."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from apps.accounts.choices import Role
from apps.audit.models import AuditEvent
from apps.datasets.models import DataConnection, Dataset, DatasetVersion, IngestionJob
from tests.apps.datasets.test_views_helpers import make_dataset, make_job, make_version

LOGIN = "login"
IDENTITIES = [
    "anonymous",
    "outsider",
    "compliance_global",
    "stakeholder",
    "scientist",
    "reviewer",
    "compliance",
    "admin",
]


def row(anonymous=LOGIN, outsider=404, compliance_global=403, stakeholder=403, scientist=403, reviewer=403,
        compliance=403, admin=403) -> dict:  # fmt: skip
    return {
        "anonymous": anonymous,
        "outsider": outsider,
        "compliance_global": compliance_global,
        "stakeholder": stakeholder,
        "scientist": scientist,
        "reviewer": reviewer,
        "compliance": compliance,
        "admin": admin,
    }


VIEW = row(outsider=404, compliance_global=200, stakeholder=200, scientist=200, reviewer=200, compliance=200, admin=200)
EDIT = row(scientist=200, admin=200)
MARK = row(scientist=200, compliance=200, admin=200)
CREATE = row(outsider=403, scientist=200, admin=200)
LIST = row(outsider=200, compliance_global=200, stakeholder=200, scientist=200, reviewer=200, compliance=200, admin=200)

PAGES = {
    "list": (lambda w: reverse("datasets:list"), LIST),
    "create": (lambda w: reverse("datasets:create"), CREATE),
    "detail": (lambda w: reverse("datasets:detail", args=[w["dataset"].pk]), VIEW),
    "version": (lambda w: reverse("datasets:version", args=[w["dataset"].pk, 1]), VIEW),
    "compare": (lambda w: reverse("datasets:compare", args=[w["dataset"].pk]), VIEW),
    "job": (lambda w: reverse("datasets:job", args=[w["job"].pk]), VIEW),
    "job_status": (lambda w: reverse("datasets:job_status", args=[w["job"].pk]), VIEW),
    "rules": (lambda w: reverse("datasets:rules", args=[w["dataset"].pk]), EDIT),
    "columns": (lambda w: reverse("datasets:columns", args=[w["dataset"].pk]), MARK),
    "connections": (lambda w: f"{reverse('datasets:connections')}?project={w['project'].pk}", EDIT),
}


@pytest.fixture(autouse=True)
def _settings(settings, tmp_path):
    settings.ARTIFACT_STORE = f"file://{tmp_path / 'artifacts'}"
    settings.DATASET_IMPORT_S3_PREFIXES = ["s3://landing/"]


@pytest.fixture
def world(project):
    dataset = make_dataset(project)
    make_version(dataset, number=1)
    make_version(dataset, number=2)
    return {"project": project, "dataset": dataset, "job": make_job(dataset)}


@pytest.fixture
def client_as(member, outsider, make_user, admin_user):
    def make(identity: str) -> Client:
        client = Client()
        users = {
            "anonymous": lambda: None,
            "outsider": lambda: outsider,
            "compliance_global": lambda: make_user(Role.COMPLIANCE),
            "admin": lambda: admin_user,
        }
        user = users[identity]() if identity in users else member(identity)
        if user is not None:
            client.force_login(user)
        return client

    return make


def outcome(response) -> int | str:
    if response.status_code == 302 and response["Location"].startswith(reverse("accounts:login")):
        return LOGIN
    return response.status_code


@pytest.mark.parametrize("identity", IDENTITIES)
@pytest.mark.parametrize("page", PAGES)
def test_page_access(client_as, world, page, identity):
    url, expected = PAGES[page]
    assert outcome(client_as(identity).get(url(world))) == expected[identity]


def snapshot(world) -> dict:
    """Everything a dataset form could change, and the length of the audit trail."""
    dataset = Dataset.objects.get(pk=world["dataset"].pk)
    return {
        "datasets": sorted(Dataset.objects.values_list("name", flat=True)),
        "rules": dataset.validation_rules,
        "marks": dataset.column_marks,
        "jobs": sorted(IngestionJob.objects.values_list("status", flat=True)),
        "overrides": sorted(DatasetVersion.objects.values_list("override_reason", flat=True)),
        "connections": DataConnection.objects.count(),
        "audit": AuditEvent.objects.count(),
    }


def _upload(world):
    return {"file": SimpleUploadedFile("customers.csv", b"id,email\n1,ada@example.com\n", content_type="text/csv")}


DONE = 302
ACTIONS = {
    "create": (
        lambda w: reverse("datasets:create"),
        lambda w: {"project": str(w["project"].pk), "name": "new-set"},
        row(outsider=403, scientist=DONE, admin=DONE),
    ),
    "upload": (lambda w: reverse("datasets:upload", args=[w["dataset"].pk]), _upload, row(scientist=DONE, admin=DONE)),
    "import_s3": (
        lambda w: reverse("datasets:import_s3", args=[w["dataset"].pk]),
        lambda w: {"uri": "s3://landing/churn.csv"},
        row(scientist=DONE, admin=DONE),
    ),
    "job_cancel": (
        lambda w: reverse("datasets:job_cancel", args=[w["job"].pk]),
        lambda w: {},
        row(scientist=DONE, admin=DONE),
    ),
    "override": (
        lambda w: reverse("datasets:version_override", args=[w["dataset"].pk, 2]),
        lambda w: {"reason": "A pilot sample that we accept knowingly."},
        row(scientist=DONE),  # not even an administrator: the policy names data scientists only
    ),
    "rules": (
        lambda w: reverse("datasets:rules", args=[w["dataset"].pk]),
        lambda w: {"min_rows": "1000"},
        row(scientist=DONE, admin=DONE),
    ),
    "columns": (
        lambda w: reverse("datasets:columns", args=[w["dataset"].pk]),
        lambda w: {"col1_personal": "on"},
        row(scientist=DONE, compliance=DONE, admin=DONE),
    ),
    "connection_create": (
        lambda w: f"{reverse('datasets:connections')}?project={w['project'].pk}",
        lambda w: {"name": "dwh", "host": "db.internal", "port": "5432", "database": "x", "username": "r"},
        row(scientist=DONE, admin=DONE),
    ),
}


@pytest.mark.parametrize("identity", IDENTITIES)
@pytest.mark.parametrize("action", ACTIONS)
def test_form_access_and_denied_posts_change_nothing(client_as, world, action, identity):
    url, data, expected = ACTIONS[action]
    client = client_as(identity)
    before = snapshot(world)
    result = outcome(client.post(url(world), data(world)))
    assert result == expected[identity]
    if result == DONE:
        assert snapshot(world) != before
    else:
        assert snapshot(world) == before
