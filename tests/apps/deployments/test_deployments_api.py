"""The deployments API: who may read and change what (the permission matrix, with denied calls changing nothing),
field-level errors, and the pinned number of queries of the list."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.accounts.choices import Role
from apps.deployments.services import deployments as services
from tests.apps.deployments.test_deployment_services import state

pytestmark = pytest.mark.django_db

ROLES = ["anonymous", "non_member", Role.STAKEHOLDER, Role.SCIENTIST, Role.REVIEWER, Role.COMPLIANCE, "admin"]


def client_for(kind, caller, api_client_as):
    return api_client_as(caller(kind))


@pytest.fixture
def deployed(production_version, deployer):
    return services.deployment_create(version=production_version, actor=deployer)


@pytest.mark.parametrize("kind,expected", zip(ROLES, [401, 404, 200, 200, 200, 200, 200], strict=True))
def test_reading_a_deployment(kind, expected, deployed, caller, api_client_as):
    client = client_for(kind, caller, api_client_as)
    for suffix in ("", "metrics/", "history/"):
        assert client.get(f"/api/v1/deployments/{deployed.pk}/{suffix}").status_code == expected, suffix
    listed = client.get("/api/v1/deployments/")
    if expected == 200:
        assert [row["name"] for row in listed.json()["results"]] == ["churn"]
    elif kind == "non_member":
        assert listed.json()["results"] == []


# A version the caller may not see is an unknown value of the body's `version` field (400), not a missing URL.
@pytest.mark.parametrize("kind,expected", zip(ROLES, [401, 400, 403, 201, 201, 403, 201], strict=True))
def test_deploying(kind, expected, production_version, caller, api_client_as):
    before = state()
    answer = client_for(kind, caller, api_client_as).post(
        "/api/v1/deployments/", {"version": str(production_version.pk), "name": "churn-api"}, format="json"
    )
    assert answer.status_code == expected, answer.content
    if expected == 201:
        body = answer.json()
        assert body["name"] == "churn-api" and body["routes"][0]["weight"] == 100
        assert body["status"] == "pending"
    else:
        assert state() == before


@pytest.mark.parametrize("kind,expected", zip(ROLES, [401, 404, 403, 200, 200, 403, 200], strict=True))
def test_changing_traffic(kind, expected, deployed, production_of, caller, api_client_as):
    new = production_of(seed=5)
    before = state()
    answer = client_for(kind, caller, api_client_as).post(
        f"/api/v1/deployments/{deployed.pk}/rollout/", {"version": str(new.pk), "strategy": "canary"}, format="json"
    )
    assert answer.status_code == expected, answer.content
    if expected == 200:
        assert answer.json()["rollout_state"] == "canary"
    else:
        assert state() == before


def test_errors_name_the_field(deployed, deployer, api_client_as, staged_of):
    client = api_client_as(deployer)

    missing = client.post("/api/v1/deployments/", {}, format="json")
    staged = client.post(
        f"/api/v1/deployments/{deployed.pk}/rollout/",
        {"version": str(staged_of().pk), "strategy": "direct"},
        format="json",
    )
    no_reason = client.post(f"/api/v1/deployments/{deployed.pk}/stop/", {"reason": ""}, format="json")
    bad_split = client.post(
        f"/api/v1/deployments/{deployed.pk}/ab/",
        {"version": str(deployed.routes.get().version_id), "share_percent": 70, "sticky_key": "id"},
        format="json",
    )

    assert missing.status_code == 400 and "version" in missing.json()["errors"]
    assert staged.status_code == 409 and "version" in staged.json()["errors"]
    assert no_reason.status_code == 400 and "reason" in no_reason.json()["errors"]
    assert bad_split.status_code == 400 and "share_percent" in bad_split.json()["errors"]


def test_the_list_costs_the_same_queries_for_one_or_many_deployments(production_version, deployer, api_client_as):
    client = api_client_as(deployer)
    services.deployment_create(version=production_version, actor=deployer, name="one")
    with CaptureQueriesContext(connection) as one:
        client.get("/api/v1/deployments/")
    for index in range(4):
        services.deployment_create(version=production_version, actor=deployer, name=f"more-{index}")
    with CaptureQueriesContext(connection) as five:
        answer = client.get("/api/v1/deployments/")
    assert answer.json()["count"] == 5
    assert len(five) == len(one)
