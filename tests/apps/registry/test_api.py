"""The registry API: registering, read-only fields, self-approval refused, the permission matrix of the new
endpoints (a denied call changes nothing), pinned query counts, and the MLflow-compatible read API's shapes."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.accounts.choices import Role
from apps.registry import services
from tests.apps.registry.registry_helpers import WRITTEN, staged_version, state
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def models_url(project):
    return f"/api/v1/projects/{project.pk}/models/"


def versions_url(version):
    return f"/api/v1/projects/{version.registered_model.project_id}/models/{version.registered_model_id}/versions/"


def promotions_url(project):
    return f"/api/v1/projects/{project.pk}/promotions/"


@pytest.fixture
def open_request(run_of, scientist):
    staged = staged_version(run_of(), scientist)
    return services.promotion_request_open(version=staged, actor=scientist, justification="better")


# --- Registering and reading ----------------------------------------------------------------------------------------
def test_a_scientist_registers_a_run_and_reads_it_back(api_client_as, run_of, scientist, project):
    run = run_of()
    client = api_client_as(scientist)
    model = client.post(models_url(project), {"name": "churn", "description": "d"}, format="json").json()

    answer = client.post(
        f"{models_url(project)}{model['id']}/versions/", {"run": str(run.pk), "tags": ["a"]}, format="json"
    )

    assert answer.status_code == 201, answer.json()
    body = answer.json()
    assert (body["number"], body["status"], body["stage"], body["tags"]) == (1, "ready", "none", ["a"])
    assert body["lineage"]["trained_by"] == scientist.username and body["metrics"]["test"]["f1"] == 0.9
    listed = client.get(models_url(project)).json()["results"]
    assert [(m["name"], m["version_count"], m["production_number"]) for m in listed] == [("churn", 1, None)]


def test_read_only_fields_cannot_be_set(api_client_as, run_of, scientist):
    version = services.model_version_register(run=run_of(), actor=scientist, model_name="churn")
    client = api_client_as(scientist)
    before = state()

    answer = client.patch(
        f"{versions_url(version)}{version.pk}/", {"stage": "production", "description": "x"}, format="json"
    )
    assert answer.status_code == 400 and list(answer.json()["errors"]) == ["stage"]
    answer = client.patch(f"{versions_url(version)}{version.pk}/", {"artifact_sha256": "0" * 64}, format="json")
    assert list(answer.json()["errors"]) == ["artifact_sha256"]
    model_url = f"{models_url(version.registered_model.project)}{version.registered_model_id}/"
    assert list(client.patch(model_url, {"name": "other"}, format="json").json()["errors"]) == ["name"]
    assert state() == before

    answer = client.patch(f"{versions_url(version)}{version.pk}/", {"description": "new", "tags": ["x"]}, format="json")
    assert (answer.status_code, answer.json()["description"], answer.json()["tags"]) == (200, "new", ["x"])


def test_an_approver_cannot_be_set_on_a_request(api_client_as, open_request, reviewer):
    url = f"{promotions_url(open_request.version.registered_model.project)}{open_request.pk}/approve/"

    answer = api_client_as(reviewer).post(url, {"comment": "ok", "reviewer": "someone"}, format="json")

    assert answer.status_code == 400 and list(answer.json()["errors"]) == ["reviewer"]


def test_the_card_endpoint_reads_and_writes_the_written_sections(api_client_as, run_of, scientist):
    version = services.model_version_register(run=run_of(), actor=scientist, model_name="churn")
    url = f"{versions_url(version)}{version.pk}/card/"
    client = api_client_as(scientist)

    assert client.patch(url, {"written": {"data": "x"}}, format="json").json()["errors"] == {
        "data": ["This section is generated from the version's record and cannot be written."]
    }
    body = client.patch(url, {"written": WRITTEN}, format="json").json()

    assert body["written"] == WRITTEN
    assert [s["key"] for s in body["sections"] if s["missing"] and s["required"]] == []


# --- Separation of duties through the API ---------------------------------------------------------------------------
def test_self_approval_is_refused_through_the_api(api_client_as, run_of, scientist, admin_user, project):
    staged = staged_version(run_of(), scientist)
    client = api_client_as(admin_user)
    opened = client.post(promotions_url(project), {"version": str(staged.pk), "justification": "mine"}, format="json")
    assert opened.status_code == 201, opened.json()
    before = state()

    answer = client.post(f"{promotions_url(project)}{opened.json()['id']}/approve/", {"comment": "ok"}, format="json")

    assert answer.status_code == 403
    assert answer.json()["errors"] == {"reviewer": ["You opened this request: another reviewer must decide it."]}
    assert state() == before


def test_a_reviewer_approves_and_rolls_back_through_the_api(api_client_as, run_of, scientist, reviewer, project):
    v1 = staged_version(run_of(), scientist)
    client = api_client_as(reviewer)
    for version in (v1, staged_version(run_of(), scientist)):
        request = services.promotion_request_open(version=version, actor=scientist, justification="go")
        answer = client.post(f"{promotions_url(project)}{request.pk}/approve/", {"comment": "ok"}, format="json")
        assert (answer.status_code, answer.json()["status"]) == (200, "approved")
        assert answer.json()["approvals"][0]["reviewer"] == reviewer.username

    answer = client.post(
        f"{models_url(project)}{v1.registered_model_id}/rollback/", {"reason": "v2 drifts"}, format="json"
    )

    assert (answer.status_code, answer.json()["number"], answer.json()["stage"]) == (200, 1, "production")
    history = client.get(f"{models_url(project)}{v1.registered_model_id}/history/").json()["results"]
    assert [(h["version_number"], h["to_stage"], h["is_rollback"]) for h in history[:2]] == [
        (1, "production", True),
        (2, "archived", True),
    ]


# --- Permission matrix ----------------------------------------------------------------------------------------------
ROLES = ["anonymous", "outsider", Role.STAKEHOLDER, Role.SCIENTIST, Role.REVIEWER, Role.COMPLIANCE, Role.ADMIN]


def caller(role, member, api_client_as):
    if role == "anonymous":
        return api_client_as(None)
    if role == "outsider":
        return api_client_as(UserFactory(role=Role.SCIENTIST))
    if role in (Role.ADMIN,):
        return api_client_as(UserFactory(role=Role.ADMIN))
    if role == Role.COMPLIANCE:
        return api_client_as(UserFactory(role=Role.COMPLIANCE))  # platform-wide, not a member
    return api_client_as(member(role))


DENIED_ANONYMOUS = 401


@pytest.mark.parametrize(
    "role,expected",
    list(zip(ROLES, [DENIED_ANONYMOUS, 404, 200, 200, 200, 200, 200], strict=True)),
)
def test_reading_models_versions_and_requests(role, expected, member, api_client_as, open_request):
    version = open_request.version
    project = version.registered_model.project
    client = caller(role, member, api_client_as)
    for url in (
        models_url(project),
        f"{versions_url(version)}{version.pk}/",
        f"{versions_url(version)}{version.pk}/card/",
        f"{promotions_url(project)}{open_request.pk}/",
    ):
        assert client.get(url).status_code == expected, url


@pytest.mark.parametrize(
    "role,expected",
    list(zip(ROLES, [DENIED_ANONYMOUS, 404, 403, 201, 403, 403, 201], strict=True)),
)
def test_registering_a_version(role, expected, member, api_client_as, run_of, scientist, project):
    model = services.registered_model_create(project=project, actor=scientist, name="churn")
    run = run_of()
    before = state()

    answer = caller(role, member, api_client_as).post(
        f"{models_url(project)}{model.pk}/versions/", {"run": str(run.pk)}, format="json"
    )

    assert answer.status_code == expected
    if expected != 201:
        assert state() == before


@pytest.mark.parametrize(
    "role,expected",
    list(zip(ROLES, [DENIED_ANONYMOUS, 404, 403, 403, 200, 403, 200], strict=True)),
)
def test_approving(role, expected, member, api_client_as, open_request):
    project = open_request.version.registered_model.project
    before = state()

    answer = caller(role, member, api_client_as).post(
        f"{promotions_url(project)}{open_request.pk}/approve/", {"comment": "ok"}, format="json"
    )

    assert answer.status_code == expected
    if expected != 200:
        assert state() == before


@pytest.mark.parametrize(
    "role,expected",
    list(zip(ROLES, [DENIED_ANONYMOUS, 404, 403, 200, 403, 403, 200], strict=True)),
)
def test_staging_a_version(role, expected, member, api_client_as, run_of, scientist):
    version = services.model_version_register(run=run_of(), actor=scientist, model_name="churn")
    before = state()

    answer = caller(role, member, api_client_as).post(
        f"{versions_url(version)}{version.pk}/stage/", {"stage": "staging"}, format="json"
    )

    assert answer.status_code == expected
    if expected != 200:
        assert state() == before


@pytest.mark.parametrize(
    "role,expected",
    list(zip(ROLES, [DENIED_ANONYMOUS, 404, 403, 403, 409, 403, 409], strict=True)),
)
def test_rolling_back(role, expected, member, api_client_as, run_of, scientist):
    version = staged_version(run_of(), scientist)  # nothing in production: an allowed caller gets 409
    before = state()

    answer = caller(role, member, api_client_as).post(
        f"{models_url(version.registered_model.project)}{version.registered_model_id}/rollback/",
        {"reason": "x"},
        format="json",
    )

    assert answer.status_code == expected
    assert state() == before


# --- Query counts ---------------------------------------------------------------------------------------------------
def test_list_endpoints_do_not_grow_queries_with_rows(api_client_as, run_of, scientist, project):
    client = api_client_as(scientist)

    def count(url):
        with CaptureQueriesContext(connection) as queries:
            assert client.get(url).status_code == 200
        return len(queries)

    v1 = staged_version(run_of(), scientist)
    services.promotion_request_open(version=v1, actor=scientist, justification="a")
    urls = [models_url(project), versions_url(v1), promotions_url(project)]
    one = [count(url) for url in urls]
    for _ in range(2):
        version = staged_version(run_of(), scientist, model_name="churn")
        services.promotion_request_open(version=version, actor=scientist, justification="b")
        staged_version(run_of(), scientist, model_name=f"other-{version.number}")

    assert [count(url) for url in urls] == one


# --- MLflow ---------------------------------------------------------------------------------------------------------
def test_mlflow_shapes(api_client_as, run_of, scientist, reviewer, project):
    v1 = staged_version(run_of(), scientist)
    services.promotion_approve(
        request=services.promotion_request_open(version=v1, actor=scientist, justification="go"),
        actor=reviewer,
        comment="ok",
    )
    v2 = staged_version(run_of(), scientist)
    client = api_client_as(reviewer)

    model = client.get("/api/2.0/mlflow/registered-models/get", {"name": "churn"}).json()["registered_model"]
    assert model["name"] == "churn" and model["user_id"] == scientist.username
    assert isinstance(model["creation_timestamp"], int)
    assert sorted(model["aliases"], key=lambda a: a["alias"]) == [
        {"alias": "production", "version": "1"},
        {"alias": "staging", "version": "2"},
    ]
    assert sorted((v["version"], v["current_stage"]) for v in model["latest_versions"]) == [
        ("1", "Production"),
        ("2", "Staging"),
    ]

    version = client.get("/api/2.0/mlflow/model-versions/get", {"name": "churn", "version": "2"}).json()[
        "model_version"
    ]
    assert {key: version[key] for key in ("name", "version", "current_stage", "status", "run_id", "aliases")} == {
        "name": "churn",
        "version": "2",
        "current_stage": "Staging",
        "status": "READY",
        "run_id": str(v2.run_id),
        "aliases": ["staging"],
    }
    assert version["source"].endswith(v2.artifact_key)

    alias = client.get("/api/2.0/mlflow/registered-models/alias", {"name": "churn", "alias": "production"}).json()
    assert alias["model_version"]["version"] == "1"

    search = client.get("/api/2.0/mlflow/registered-models/search", {"filter": "name LIKE 'ch%'"}).json()
    assert [m["name"] for m in search["registered_models"]] == ["churn"]
    versions = client.get("/api/2.0/mlflow/model-versions/search", {"filter": "name='churn'", "max_results": 1}).json()
    assert [v["version"] for v in versions["model_versions"]] == ["2"] and versions["next_page_token"] == "1"


def test_mlflow_errors_and_visibility(api_client_as, run_of, scientist, project, project_factory, member):
    staged_version(run_of(), scientist)
    outsider = api_client_as(UserFactory(role=Role.SCIENTIST))

    answer = outsider.get("/api/2.0/mlflow/registered-models/get", {"name": "churn"})
    assert (answer.status_code, answer.json()["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")
    assert outsider.get("/api/2.0/mlflow/registered-models/search").json() == {"registered_models": []}
    anonymous = api_client_as(None).get("/api/2.0/mlflow/registered-models/search")
    assert (anonymous.status_code, anonymous.json()["error_code"]) == (401, "UNAUTHENTICATED")
    bad = api_client_as(scientist).get("/api/2.0/mlflow/model-versions/search", {"filter": "tags.x = 'y'"})
    assert (bad.status_code, bad.json()["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
    alias = api_client_as(scientist).get(
        "/api/2.0/mlflow/registered-models/alias", {"name": "churn", "alias": "production"}
    )
    assert (alias.status_code, alias.json()["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")


def test_mlflow_names_shared_by_two_visible_projects_are_qualified(
    api_client_as, run_of, scientist, project, admin_user, project_factory
):
    staged_version(run_of(), scientist)
    other = project_factory()
    services.registered_model_create(project=other, actor=admin_user, name="churn")
    client = api_client_as(admin_user)

    ambiguous = client.get("/api/2.0/mlflow/registered-models/get", {"name": "churn"})
    assert (ambiguous.status_code, ambiguous.json()["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
    qualified = client.get("/api/2.0/mlflow/registered-models/get", {"name": f"{project.pk}/churn"}).json()
    assert qualified["registered_model"]["name"] == f"{project.pk}/churn"
    assert [v["version"] for v in qualified["registered_model"]["latest_versions"]] == ["1"]
