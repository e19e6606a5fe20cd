"""Deployment use cases without running servers: what each one allows and refuses, the routes it leaves, the traffic
history and audit events it writes, and that a refused call changes nothing."""

import pytest

from apps.audit.models import AuditEvent
from apps.core.exceptions import ApplicationError
from apps.deployments.choices import DeploymentStatus, Environment, RolloutState, RouteRole, Strategy
from apps.deployments.models import Deployment, DeploymentRoute, TrafficChange
from apps.deployments.services import deployments as services

pytestmark = pytest.mark.django_db


def routes(deployment) -> list[tuple[int, str, int]]:
    return sorted(
        (route.version.number, route.role, route.weight)
        for route in DeploymentRoute.objects.filter(deployment=deployment).select_related("version")
    )


def state() -> tuple:
    return (
        sorted(
            Deployment.objects.values_list("name", "strategy", "rollout_state", "replicas", "revision", "stopped_at")
        ),
        sorted(DeploymentRoute.objects.values_list("version__number", "role", "weight")),
        TrafficChange.objects.count(),
        AuditEvent.objects.count(),
    )


def refused(call, **kwargs) -> ApplicationError:
    before = state()
    with pytest.raises(ApplicationError) as caught:
        call(**kwargs)
    assert state() == before
    return caught.value


@pytest.fixture
def deployed(production_version, deployer):
    return services.deployment_create(version=production_version, actor=deployer)


def test_one_click_deploy_serves_the_production_version_directly(deployed, production_version, deployer):
    assert (deployed.name, deployed.environment, deployed.strategy) == ("churn", Environment.PRODUCTION, "direct")
    assert deployed.status == DeploymentStatus.PENDING and deployed.revision == 2
    assert routes(deployed) == [(production_version.number, RouteRole.LIVE, 100)]
    change = deployed.traffic_changes.get()
    assert change.actor == deployer and change.routes_after[0]["weight"] == 100
    event = AuditEvent.objects.get(action="deployment.deploy")
    assert event.after["routes"] == change.routes_after


def test_a_staging_version_cannot_serve_production_but_serves_a_staging_endpoint(staged_of, deployer):
    staged = staged_of()

    error = refused(services.deployment_create, version=staged, actor=deployer)
    deployment = services.deployment_create(version=staged, actor=deployer, environment=Environment.STAGING)

    assert error.status == 409 and "version" in error.errors
    assert deployment.name == "churn-staging"


@pytest.mark.parametrize(
    "kwargs,field",
    [
        ({"replicas": 0}, "replicas"),
        ({"replicas": 21}, "replicas"),
        ({"name": "!!!"}, "name"),
        ({"environment": "moon"}, "environment"),
    ],
)
def test_bad_deploy_input_is_refused_by_field(production_version, deployer, kwargs, field):
    error = refused(services.deployment_create, version=production_version, actor=deployer, **kwargs)
    assert field in error.errors


def test_an_endpoint_name_is_taken_once(deployed, production_version, deployer):
    error = refused(services.deployment_create, version=production_version, actor=deployer, name="churn")
    assert error.status == 409 and "already exists" in error.errors["name"][0]


def test_blue_green_loads_then_switches_only_when_ready_and_switches_back(deployed, production_of, deployer):
    old = deployed.routes.get().version
    new = production_of(seed=5)
    services.deployment_rollout(deployment=deployed, version=new, actor=deployer, strategy=Strategy.BLUE_GREEN)
    deployed.refresh_from_db()
    assert routes(deployed) == [(old.number, "live", 100), (new.number, "live", 0)]
    assert deployed.rollout_state == RolloutState.WARMING

    refused(services.blue_green_switch, deployment=deployed, actor=deployer, ready_versions={old.number})
    services.blue_green_switch(deployment=deployed, actor=deployer, ready_versions={old.number, new.number})
    assert routes(deployed) == [(old.number, "live", 0), (new.number, "live", 100)]

    refused(services.blue_green_switch_back, deployment=deployed, actor=deployer, reason="")
    services.blue_green_switch_back(deployment=deployed, actor=deployer, reason="Complaints.")
    assert routes(deployed) == [(old.number, "live", 100), (new.number, "live", 0)]

    services.rollout_finish(deployment=deployed, actor=deployer)
    deployed.refresh_from_db()
    assert routes(deployed) == [(old.number, "live", 100)] and deployed.strategy == Strategy.DIRECT


def test_one_rollout_at_a_time(deployed, production_of, deployer):
    first, second = production_of(seed=5), production_of(seed=6)
    services.deployment_rollout(deployment=deployed, version=first, actor=deployer, strategy=Strategy.CANARY)
    error = refused(
        services.deployment_rollout, deployment=deployed, version=second, actor=deployer, strategy=Strategy.DIRECT
    )
    assert error.status == 409


def test_a_canary_climbs_in_steps_to_full_traffic(deployed, production_of, deployer):
    old = deployed.routes.get().version
    new = production_of(seed=5)
    services.canary_configure(
        deployment=deployed,
        actor=deployer,
        step_percent=40,
        step_seconds=60,
        max_error_rate=0.01,
        max_p99_ms=None,
        min_requests=10,
    )
    services.deployment_rollout(deployment=deployed, version=new, actor=deployer, strategy=Strategy.CANARY)
    assert routes(deployed) == [(old.number, "live", 60), (new.number, "live", 40)]
    services.canary_advance(deployment=deployed)
    assert routes(deployed) == [(old.number, "live", 20), (new.number, "live", 80)]
    services.canary_advance(deployment=deployed)
    deployed.refresh_from_db()
    assert routes(deployed) == [(new.number, "live", 100)]
    assert (deployed.strategy, deployed.rollout_state) == (Strategy.DIRECT, RolloutState.COMPLETED)
    steps = deployed.traffic_changes.filter(actor__isnull=True).values_list("kind", flat=True)
    assert sorted(steps) == ["canary_complete", "canary_step"]


def test_ab_test_and_shadow_run_one_at_a_time_and_end_keeping_one_version(deployed, production_of, staged_of, deployer):
    old = deployed.routes.get().version
    challenger = production_of(seed=5)
    refused(
        services.ab_test_start,
        deployment=deployed,
        version=challenger,
        actor=deployer,
        share_percent=60,
        sticky_key="customer_id",
    )
    services.ab_test_start(
        deployment=deployed, version=challenger, actor=deployer, share_percent=20, sticky_key="customer_id"
    )
    assert routes(deployed) == [(old.number, "live", 80), (challenger.number, "live", 20)]
    refused(services.shadow_start, deployment=deployed, version=staged_of(), actor=deployer)
    services.experiment_end(deployment=deployed, actor=deployer, keep=challenger)
    assert routes(deployed) == [(challenger.number, "live", 100)]

    candidate = staged_of()  # a staging version may shadow production: its answers are never returned
    services.shadow_start(deployment=deployed, version=candidate, actor=deployer)
    assert routes(deployed) == [(challenger.number, "live", 100), (candidate.number, "shadow", 0)]
    error = refused(services.experiment_end, deployment=deployed, actor=deployer, keep=candidate)
    assert "keep" in error.errors  # a staging version cannot take production traffic


def test_stop_and_start_keep_the_routes(deployed, deployer):
    before = routes(deployed)
    refused(services.deployment_stop, deployment=deployed, actor=deployer, reason="  ")
    services.deployment_stop(deployment=deployed, actor=deployer, reason="Maintenance.")
    deployed.refresh_from_db()
    assert deployed.status == DeploymentStatus.STOPPED
    refused(services.deployment_scale, deployment=deployed, actor=deployer, replicas=2)
    services.deployment_start(deployment=deployed, actor=deployer)
    deployed.refresh_from_db()
    assert deployed.status == DeploymentStatus.PENDING and routes(deployed) == before


def test_people_without_the_right_cannot_deploy_or_change_traffic(deployed, production_version, member, outsider):
    from django.core.exceptions import PermissionDenied

    for user in (member("stakeholder"), member("compliance"), outsider):
        before = state()
        with pytest.raises(PermissionDenied):
            services.deployment_create(version=production_version, actor=user, name="other")
        with pytest.raises(PermissionDenied):
            services.deployment_scale(deployment=deployed, actor=user, replicas=3)
        assert state() == before
