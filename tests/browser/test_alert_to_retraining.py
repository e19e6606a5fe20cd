"""A reviewer walks from a drift alert to the promotion request its retraining opened.

Set up the way production gets there, in the test process: a deployed production version with a retraining policy,
shifted live inputs logged, a real check (the monitoring task) that finds drift and raises the alert, which starts a
retraining (the champion's spec on the newest data) that the real training task trains; the retraining registers the
best run and the comparison task opens the promotion request. Then the reviewer clicks through the portal.
"""

import pytest
from playwright.sync_api import expect

from apps.monitoring.choices import Figure, RetrainingStatus
from apps.monitoring.models import Alert, RetrainingRun
from apps.monitoring.services.monitors import check_request
from apps.monitoring.services.retraining import retraining_advance, retraining_policy_set
from apps.registry.choices import Stage
from tests.apps.deployments import deployment_fixtures
from tests.apps.experiments import experiment_fixtures
from tests.apps.experiments.experiment_helpers import churn_frame, ingest, train
from tests.apps.monitoring import monitoring_fixtures
from tests.apps.monitoring.monitoring_fixtures import log_predictions, shifted
from workers.tasks.monitoring import run_check_task
from workers.tasks.monitoring_retraining import compare_challenger_task

pytestmark = pytest.mark.django_db(transaction=True)

launch = experiment_fixtures.launch
version = experiment_fixtures.version
deployer = deployment_fixtures.deployer
staged_of = deployment_fixtures.staged_of
production_of = deployment_fixtures.production_of
production_version = deployment_fixtures.production_version
deployed = monitoring_fixtures.deployed


@pytest.fixture
def retraining_opened_a_request(deployed, production_version, dataset, scientist, sent_tasks):
    retraining_policy_set(
        registered_model=production_version.registered_model,
        actor=scientist,
        on_drift_alert=True,
        on_performance_alert=False,
        schedule_days=None,
        enabled=True,
    )
    ingest(dataset, scientist, churn_frame(rows=500, seed=11), name="customers-march.csv")
    log_predictions(deployed, production_version, shifted(churn_frame(rows=600, seed=11)))
    check = check_request(monitor=deployed.monitor)
    assert run_check_task.apply(args=[str(check.pk)]).get() == "succeeded"
    retraining = RetrainingRun.objects.get()
    assert train(retraining.experiment.runs.get()) == "succeeded"
    retraining_advance(run=retraining)
    assert compare_challenger_task.apply(args=[str(retraining.pk)]).get() == RetrainingStatus.REQUESTED
    retraining.refresh_from_db()
    return retraining


def test_reviewer_walks_from_the_drift_alert_to_the_retrainings_promotion_request(
    page, live_server, login, deployer, retraining_opened_a_request, production_version
):
    alert = Alert.objects.get(rule__figure=Figure.DRIFT_SHARE)
    login(page, live_server, deployer)

    page.goto(f"{live_server.url}/monitoring/alerts/")
    page.get_by_role("link", name=alert.message).click()
    expect(page.locator("#alert-message")).to_contain_text("share of drifted input columns")
    expect(page.locator(".retraining")).to_contain_text("promotion requested")
    page.locator("#retraining-promotion").click()

    expect(page.get_by_role("heading", level=1)).to_contain_text("churn version 2")
    expect(page.locator("#from-retraining")).to_contain_text("retraining")
    expect(page.locator("#promotion-status")).to_have_text("Open")
    production_version.refresh_from_db()
    assert production_version.stage == Stage.PRODUCTION  # a reviewer decides; nothing changed production
