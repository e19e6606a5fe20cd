"""The reconciler with real model-server processes (the local runner): one-click deploy answers requests, a killed
replica is restarted, blue-green switches and switches back without a failed request, a canary that breaches its
error limit is rolled back by the platform, and metrics reach the portal."""

import os
import signal
import threading
import time

import pytest

from apps.audit.models import AuditEvent
from apps.deployments.choices import DeploymentStatus, RolloutState, Strategy, TrafficChangeKind
from apps.deployments.models import MetricSample
from apps.deployments.selectors.deployments import live_figures
from apps.deployments.services import deployments as services
from apps.deployments.services.reconcile import deployment_reconcile
from tests.apps.deployments.deployment_fixtures import predict

pytestmark = pytest.mark.django_db(transaction=True)


def reconcile(deployment, runner):
    return deployment_reconcile(deployment_id=deployment.pk, runner=runner)


def deploy(version, actor, runner, **kwargs):
    deployment = services.deployment_create(version=version, actor=actor, **kwargs)
    return reconcile(deployment, runner)


def test_one_click_deploy_serves_the_version_and_reports_ready(production_version, deployer, local_runner):
    deployment = deploy(production_version, deployer, local_runner)

    status, answer = predict(deployment.url)

    assert deployment.status == DeploymentStatus.READY, deployment.status_reason
    assert deployment.name == "churn"
    assert status == 200 and answer["model_version"] == str(production_version.number)
    assert deployment.observed["ready_versions"] == [production_version.number]
    assert deployment.applied_revision == deployment.revision
    assert AuditEvent.objects.filter(action="deployment.deploy", object_id=str(deployment.pk)).count() == 1


def test_requests_served_reach_the_portal_as_metric_samples(production_version, deployer, local_runner):
    deployment = deploy(production_version, deployer, local_runner)
    for _ in range(7):
        predict(deployment.url)
    predict(deployment.url, {"age": "old"})  # refused (400): an error of this version

    reconcile(deployment, local_runner)

    [figures] = live_figures(deployment=deployment)
    assert (figures.version_number, figures.requests, figures.errors) == (production_version.number, 8, 1)
    assert figures.p99_ms is not None
    reconcile(deployment, local_runner)  # nothing new served: no new sample, no double counting
    assert sum(MetricSample.objects.filter(deployment=deployment).values_list("requests", flat=True)) == 8


def test_a_killed_model_server_process_is_restarted(production_version, deployer, local_runner):
    deployment = deploy(production_version, deployer, local_runner)
    [replica] = deployment.observed["replicas"]
    os.killpg(replica["pid"], signal.SIGKILL)
    time.sleep(0.5)

    deployment = reconcile(deployment, local_runner)

    [restarted] = deployment.observed["replicas"]
    assert deployment.status == DeploymentStatus.READY, deployment.status_reason
    assert restarted["pid"] != replica["pid"] and restarted["restarts"] == 1
    assert predict(deployment.url)[0] == 200


class Traffic(threading.Thread):
    """Requests one after the other until stopped, recording each status and answering version."""

    def __init__(self, url: str):
        super().__init__(daemon=True)
        self.url, self.answers, self.stopping = url, [], threading.Event()

    def run(self):
        while not self.stopping.is_set():
            status, answer = predict(self.url)
            self.answers.append((status, answer.get("model_version")))

    def stop(self) -> list:
        self.stopping.set()
        self.join(10)
        return self.answers


def test_blue_green_switches_and_switches_back_without_a_failed_request(production_of, deployer, local_runner):
    first = production_of()
    deployment = deploy(first, deployer, local_runner)
    second = production_of(seed=5)
    traffic = Traffic(deployment.url)
    traffic.start()
    time.sleep(0.3)

    services.deployment_rollout(deployment=deployment, version=second, actor=deployer, strategy=Strategy.BLUE_GREEN)
    deployment = reconcile(deployment, local_runner)  # loads the new version beside the old one, then switches
    time.sleep(0.3)
    switched = len(traffic.answers)
    services.blue_green_switch_back(deployment=deployment, actor=deployer, reason="Support calls went up.")
    deployment = reconcile(deployment, local_runner)
    time.sleep(0.3)
    answers = traffic.stop()

    assert deployment.rollout_state == RolloutState.ROLLED_BACK
    assert [status for status, _ in answers if status != 200] == []
    versions = [version for _, version in answers]
    assert str(second.number) in versions[:switched] and versions[-1] == str(first.number)
    kinds = list(deployment.traffic_changes.order_by("created_at").values_list("kind", flat=True))
    assert kinds == [
        TrafficChangeKind.DEPLOY,
        TrafficChangeKind.BLUE_GREEN_START,
        TrafficChangeKind.BLUE_GREEN_SWITCH,
        TrafficChangeKind.BLUE_GREEN_SWITCH_BACK,
    ]
    assert deployment.traffic_changes.get(kind=TrafficChangeKind.BLUE_GREEN_SWITCH).actor is None  # the platform


def test_a_canary_breaching_its_error_limit_is_rolled_back_automatically(production_of, deployer, local_runner):
    stable = production_of()
    deployment = deploy(stable, deployer, local_runner)
    # The new version was trained on fewer features: it refuses the rows clients send (400 naming the column).
    canary = production_of(features=["age", "plan", "tenure_months"])
    services.canary_configure(
        deployment=deployment,
        actor=deployer,
        step_percent=50,
        step_seconds=3600,
        max_error_rate=0.05,
        max_p99_ms=None,
        min_requests=10,
    )
    services.deployment_rollout(deployment=deployment, version=canary, actor=deployer, strategy=Strategy.CANARY)
    deployment = reconcile(deployment, local_runner)
    statuses = [predict(deployment.url)[0] for _ in range(60)]

    deployment = reconcile(deployment, local_runner)

    assert 400 in statuses  # the canary answered some of them
    assert deployment.rollout_state == RolloutState.ROLLED_BACK
    assert deployment.strategy == Strategy.DIRECT
    assert [route.version for route in deployment.routes.all()] == [stable]
    rollback = deployment.traffic_changes.get(kind=TrafficChangeKind.CANARY_ROLLBACK)
    assert rollback.actor is None and "error rate" in rollback.reason
    assert {predict(deployment.url)[1]["model_version"] for _ in range(20)} == {str(stable.number)}


def test_a_blue_green_whose_new_version_does_not_load_is_rolled_back_and_the_old_one_keeps_serving(
    production_of, deployer, local_runner
):
    from apps.core.artifacts import artifact_store

    first = production_of()
    deployment = deploy(first, deployer, local_runner)
    second = production_of(seed=5)
    artifact_store().put_bytes(second.artifact_key, b"not the approved model", overwrite=True)

    services.deployment_rollout(deployment=deployment, version=second, actor=deployer, strategy=Strategy.BLUE_GREEN)
    deployment = reconcile(deployment, local_runner)

    assert deployment.rollout_state == RolloutState.ROLLED_BACK
    rollback = deployment.traffic_changes.get(kind=TrafficChangeKind.BLUE_GREEN_SWITCH_BACK)
    assert rollback.actor is None and "did not load" in rollback.reason and "ArtifactTampered" in rollback.reason
    assert deployment.status == DeploymentStatus.READY, deployment.status_reason
    assert {predict(deployment.url)[1]["model_version"] for _ in range(10)} == {str(first.number)}


def test_a_shadow_gets_a_copy_of_live_traffic_and_the_page_compares_them(
    production_version, staged_of, deployer, local_runner
):
    from apps.deployments.models import Prediction
    from apps.deployments.selectors.deployments import shadow_comparison
    from apps.deployments.services.predictions import predictions_import
    from workers.serving.log_files import read_log_folder

    deployment = deploy(production_version, deployer, local_runner)
    candidate = staged_of(seed=5)
    services.shadow_start(deployment=deployment, version=candidate, actor=deployer)
    deployment = reconcile(deployment, local_runner)

    answers = [predict(deployment.url)[1] for _ in range(10)]
    live_ids = {answer["prediction_ids"][0] for answer in answers}

    def all_shadows_imported() -> bool:
        predictions_import(deployment=deployment, reader=read_log_folder)
        return Prediction.objects.filter(deployment=deployment, shadow=True).count() == 10

    from tests.support.celery_worker import wait_for

    assert wait_for(all_shadows_imported, timeout=20)
    assert {answer["model_version"] for answer in answers} == {str(production_version.number)}  # never the shadow
    shadows = Prediction.objects.filter(deployment=deployment, shadow=True)
    assert set(shadows.values_list("shadow_of", flat=True)) == live_ids
    [comparison] = shadow_comparison(deployment=deployment)
    assert (comparison.shadow_version, comparison.pairs) == (candidate.number, 10)
    assert 0 <= comparison.agreement <= 1 and comparison.mean_probability_gap is not None


def test_stop_local_model_servers_stops_what_the_local_runner_started(production_version, deployer, local_runner):
    from django.core.management import call_command

    deployment = deploy(production_version, deployer, local_runner)
    [replica] = deployment.observed["replicas"]

    call_command("stop_local_model_servers")

    assert local_runner.status(deployment.name).state == "stopped"
    with pytest.raises(OSError):
        predict(deployment.url)
    assert replica["pid"]
