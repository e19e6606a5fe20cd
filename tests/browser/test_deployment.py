"""A reviewer deploys an approved production version in one click; the real worker starts its model server (the
local runner); a prediction the test sends to the endpoint's URL appears in the deployment page's log.

The version is a real fitted pipeline approved through the registry (tests/apps/deployments/deployment_fixtures.py).
The prediction log is imported by the task beat runs every few seconds; the test runs that task itself, once, instead
of starting beat.
"""

import pytest
from django.conf import settings
from playwright.sync_api import expect

from apps.deployments.models import Deployment, Prediction
from tests.apps.deployments import deployment_fixtures
from tests.apps.deployments.deployment_fixtures import predict
from tests.apps.experiments import experiment_fixtures
from tests.support.celery_worker import wait_for
from workers.serving.runners.local import LocalRunner

pytestmark = pytest.mark.django_db(transaction=True)

launch = experiment_fixtures.launch
version = experiment_fixtures.version
deployer = deployment_fixtures.deployer
staged_of = deployment_fixtures.staged_of
production_of = deployment_fixtures.production_of
production_version = deployment_fixtures.production_version


@pytest.fixture
def serving_dirs(tmp_path, settings):
    settings.SERVING_STATE_DIR = tmp_path / "serving"
    settings.SERVING_LOG_ROOT = tmp_path / "predictions"
    yield settings.SERVING_STATE_DIR
    for folder in settings.SERVING_STATE_DIR.glob("*"):  # the worker's model servers outlive the worker: stop them
        LocalRunner(settings.SERVING_STATE_DIR).stop(folder.name)


@pytest.fixture
def celery_worker_env(file_store, serving_dirs, settings):
    return {
        "ARTIFACT_STORE": settings.ARTIFACT_STORE,
        "MODEL_SIGNING_KEY": settings.MODEL_SIGNING_KEY,
        "SERVING_STATE_DIR": str(settings.SERVING_STATE_DIR),
        "SERVING_LOG_ROOT": str(settings.SERVING_LOG_ROOT),
        "SERVING_LOG_ROTATE_SECONDS": "1",
    }


@pytest.fixture
def approved_version(production_version, monkeypatch):
    """The production version, made with task dispatch captured (`sent_tasks`); dispatch reaches the broker again
    from here on, so the one-click deploy's reconcile goes to the real worker."""
    from config.celery import app

    monkeypatch.delattr(app, "send_task")
    return production_version


def test_reviewer_deploys_in_one_click_and_a_prediction_appears_in_the_log(
    page, live_server, login, approved_version, deployer, celery_worker_process
):
    production_version = approved_version
    from workers.tasks.predictions import import_prediction_logs

    login(page, live_server, deployer)
    page.goto(f"{live_server.url}/models/versions/{production_version.pk}/")
    page.get_by_role("button", name="Deploy to production").click()

    expect(page.get_by_role("heading", level=1)).to_contain_text("churn")
    expect(page.locator("#deployment-status")).to_have_text("Ready", timeout=60_000)  # the worker started it
    url = page.locator("#deployment-url").inner_text()
    status, answer = predict(url)
    assert status == 200, answer
    [prediction_id] = answer["prediction_ids"]

    expect(page.locator(f"tr[data-prediction='{prediction_id}']")).to_have_count(0)
    # What beat runs every few seconds: import until the server has written the record.
    assert wait_for(lambda: import_prediction_logs.apply() and Prediction.objects.filter(pk=prediction_id).exists())
    row = page.locator(f"tr[data-prediction='{prediction_id}']")
    expect(row).to_contain_text(f"v{production_version.number}", timeout=10_000)
    assert Deployment.objects.get().url == url
    assert settings.SERVING_STATE_DIR  # the fixture stops the servers the worker started
