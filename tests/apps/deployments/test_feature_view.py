"""A deployment that fetches a feature view's features at serving time: the deployment file carries the lookup and
the servers get the online store's address; a view with none of the served versions' inputs is refused; only those
who manage deployments may set it."""

import pytest

from apps.deployments.services import deployments as services
from apps.deployments.services.reconcile import endpoint_for
from apps.features.models import Entity, Feature, FeatureView
from tests.apps.deployments.test_deployment_services import state

pytestmark = pytest.mark.django_db


def view_with(features: list[str], user, name: str = "customers") -> FeatureView:
    entity = Entity.objects.create(name=f"{name}-entity", join_keys=["customer_id"], created_by=user)
    view = FeatureView.objects.create(name=name, entity=entity, owner=user, created_by=user)
    for feature in features:
        Feature.objects.create(view=view, name=feature, owner=user)
    return view


@pytest.fixture
def deployed(production_version, deployer):
    return services.deployment_create(version=production_version, actor=deployer)


def test_the_deployment_file_carries_the_lookup_of_the_inputs_the_view_provides(deployed, deployer, settings):
    view = view_with(["tenure_months", "monthly_fee", "not_an_input"], deployer)

    services.deployment_feature_view_set(deployment=deployed, actor=deployer, view=view)

    deployed.refresh_from_db()
    endpoint = endpoint_for(deployed, list(deployed.routes.select_related("version__run")))
    assert endpoint.config["features"] == {
        "view": "customers",
        "entity_keys": ["customer_id"],
        "columns": ["monthly_fee", "tenure_months"],
    }
    assert endpoint.environment["FEATURES_ONLINE_REDIS_URL"] == settings.FEATURES_ONLINE_REDIS_URL
    services.deployment_feature_view_set(deployment=deployed, actor=deployer, view=None)
    deployed.refresh_from_db()
    assert "features" not in endpoint_for(deployed, list(deployed.routes.all())).config


def test_a_view_without_any_input_of_the_served_versions_is_refused(deployed, deployer):
    from apps.core.exceptions import ApplicationError

    view = view_with(["lifetime_value"], deployer)
    before = state()
    with pytest.raises(ApplicationError) as refused:
        services.deployment_feature_view_set(deployment=deployed, actor=deployer, view=view)
    assert "feature_view" in refused.value.errors and state() == before


@pytest.mark.parametrize("kind,expected", [("stakeholder", 403), ("scientist", 200), ("compliance", 403)])
def test_setting_it_through_the_api(kind, expected, deployed, deployer, caller, api_client_as):
    view_with(["tenure_months"], deployer)
    before = state()
    answer = api_client_as(caller(kind)).post(
        f"/api/v1/deployments/{deployed.pk}/feature-view/", {"view": "customers"}, format="json"
    )
    assert answer.status_code == expected, answer.content
    if expected == 200:
        assert answer.json()["feature_view"] == "customers"
    else:
        assert state() == before
