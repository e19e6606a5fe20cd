"""The deployment pages: the one-click deploy on a version page, the deployment page for every role, an action with
its error next to the field, and the Kubernetes manifests download."""

import pytest
import yaml

from apps.accounts.choices import Role
from apps.deployments.models import Deployment
from apps.deployments.services import deployments as services

pytestmark = pytest.mark.django_db

ROLES = ["non_member", Role.STAKEHOLDER, Role.SCIENTIST, Role.REVIEWER, Role.COMPLIANCE, "admin"]


@pytest.fixture
def deployed(production_version, deployer):
    return services.deployment_create(version=production_version, actor=deployer)


def test_a_reviewer_deploys_a_production_version_in_one_click(production_version, deployer, client):
    client.force_login(deployer)
    page = client.get(f"/models/versions/{production_version.pk}/")
    assert b'id="deploy-button"' in page.content

    answer = client.post(
        "/deployments/new/", {"version": production_version.pk, "environment": "production", "replicas": 1}
    )

    deployment = Deployment.objects.get()
    assert answer.status_code == 302 and answer["Location"] == f"/deployments/{deployment.pk}/"
    assert b"churn" in client.get(answer["Location"]).content


def test_the_version_page_offers_no_deploy_to_those_who_may_not(production_version, member, client):
    client.force_login(member(Role.STAKEHOLDER))
    assert b'id="deploy-button"' not in client.get(f"/models/versions/{production_version.pk}/").content


@pytest.mark.parametrize("kind,expected", zip(ROLES, [404, 200, 200, 200, 200, 200], strict=True))
def test_the_deployment_page_by_role(kind, expected, deployed, caller, client):
    client.force_login(caller(kind))
    page = client.get(f"/deployments/{deployed.pk}/")
    assert page.status_code == expected
    if expected == 200:
        may_manage = kind in (Role.SCIENTIST, Role.REVIEWER, "admin")
        assert (b'id="deployment-actions"' in page.content) == may_manage
        assert (b'id="prediction-log"' in page.content) == (kind != Role.STAKEHOLDER)
        assert client.get(f"/deployments/{deployed.pk}/live/").status_code == 200


def test_a_refused_action_shows_its_error_next_to_the_field(deployed, deployer, client):
    client.force_login(deployer)
    answer = client.post(f"/deployments/{deployed.pk}/stop/", {"stop-reason": ""})
    assert answer.status_code == 400
    assert b"Say why the endpoint stops" in answer.content
    assert Deployment.objects.get().stopped_at is None


def test_an_unknown_action_is_not_found(deployed, deployer, client):
    client.force_login(deployer)
    assert client.post(f"/deployments/{deployed.pk}/explode/").status_code == 404


def test_kubernetes_manifests_download(deployed, deployer, member, client):
    client.force_login(deployer)
    answer = client.get(f"/deployments/{deployed.pk}/manifests.yaml")
    objects = list(yaml.safe_load_all(answer.content))
    assert answer.status_code == 200
    assert {item["kind"] for item in objects} == {"ConfigMap", "Deployment", "Service", "HorizontalPodAutoscaler"}
    assert b"MODEL_SIGNING_KEY" in answer.content and deployed.project.name.encode() not in answer.content
    from django.conf import settings

    assert settings.MODEL_SIGNING_KEY.encode() not in answer.content  # a reference to the Secret, never the key
    client.force_login(member(Role.COMPLIANCE))
    assert client.get(f"/deployments/{deployed.pk}/manifests.yaml").status_code == 403
