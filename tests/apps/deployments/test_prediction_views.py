"""The prediction pages: the prediction page (inputs, outputs, version link, ground truth, explanations drawn as an
SVG bar chart), the Explain button (htmx partial that polls until the explanation ends), the deployment page's live
log partial, and the permission matrix of each (a denied call changes nothing)."""

import pytest
from django.test import Client
from django.utils import timezone

from apps.accounts.choices import Role
from apps.deployments.choices import ExplanationStatus
from apps.deployments.models import GroundTruth, PredictionExplanation
from apps.deployments.services.predictions import EXPLAIN_TASK
from tests.apps.deployments.prediction_helpers import make_deployment, prediction_row, state

pytestmark = pytest.mark.django_db

KINDS = ["anonymous", "non_member", Role.STAKEHOLDER, Role.SCIENTIST, Role.REVIEWER, Role.COMPLIANCE, "admin"]
RESULT = {
    "base_value": -0.1,
    "prediction": 1.2,
    "output": "log_odds",
    "class": "yes",
    "contributions": {"age": 1.0, "plan": -0.25, "tenure_months": 0.55},
    "explainer": "tree",
    "version": 1,
}


@pytest.fixture
def deployment(production_version):
    return make_deployment(production_version)


@pytest.fixture
def prediction(deployment, production_version):
    return prediction_row(deployment, production_version)


def browser(user) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def page_url(prediction) -> str:
    return f"/deployments/{prediction.deployment_id}/predictions/{prediction.pk}/"


def test_the_page_shows_the_prediction_its_ground_truth_and_a_finished_explanation(prediction, caller):
    user = caller(Role.REVIEWER)
    GroundTruth.objects.create(prediction=prediction, actual="yes", observed_at=timezone.now(), recorded_by=user)
    PredictionExplanation.objects.create(
        prediction=prediction, requested_by=user, status=ExplanationStatus.SUCCEEDED, result=RESULT
    )

    html = browser(user).get(page_url(prediction)).content.decode()

    assert f"/models/versions/{prediction.version_id}/" in html and "churn v1" in html
    assert "tenure_months" in html and "basic" in html  # inputs
    assert "Actual outcome: <strong>yes</strong>" in html
    assert 'class="chart contribution-chart"' in html and "the largest is age at +1" in html
    assert html.count('class="bar negative"') == 1 and html.count('class="bar positive"') == 2
    assert 'id="explain-button"' in html
    assert 'hx-trigger="every 2s"' not in html  # nothing polls once finished


def test_explain_queues_one_and_its_partial_polls_until_it_ends(
    prediction, caller, sent_tasks, django_capture_on_commit_callbacks
):
    client = browser(caller(Role.SCIENTIST))

    with django_capture_on_commit_callbacks(execute=True):
        partial = client.post(page_url(prediction) + "explain/", HTTP_HX_REQUEST="true")

    explanation = PredictionExplanation.objects.get()
    assert [task for task in sent_tasks if task[0] == EXPLAIN_TASK] == [(EXPLAIN_TASK, [str(explanation.pk)], None)]
    status_url = f"{page_url(prediction)}explanations/{explanation.pk}/"
    assert 'hx-trigger="every 2s"' in partial.content.decode() and status_url in partial.content.decode()
    PredictionExplanation.objects.filter(pk=explanation.pk).update(status=ExplanationStatus.SUCCEEDED, result=RESULT)
    finished = client.get(status_url).content.decode()
    assert "every 2s" not in finished and "contribution-chart" in finished and "log_odds" in finished


def test_the_log_partial_lists_the_latest_predictions_and_refreshes_itself(deployment, prediction, caller):
    html = browser(caller(Role.COMPLIANCE)).get(f"/deployments/{deployment.pk}/predictions/log/").content.decode()

    assert f"{page_url(prediction)}" in html and 'hx-trigger="every 5s"' in html and "v1" in html


def test_a_prediction_of_another_deployment_is_not_found_under_this_one(prediction, production_version, caller):
    other = make_deployment(production_version, name="churn-other")
    url = f"/deployments/{other.pk}/predictions/{prediction.pk}/"
    assert browser(caller(Role.SCIENTIST)).get(url).status_code == 404


def expected(statuses: list) -> list:
    return list(zip(KINDS, statuses, strict=True))


@pytest.mark.parametrize("kind,status", expected([302, 404, 404, 200, 200, 200, 200]))
def test_the_prediction_page(kind, status, prediction, caller):
    assert browser(caller(kind)).get(page_url(prediction)).status_code == status


@pytest.mark.parametrize("kind,status", expected([302, 404, 403, 200, 200, 200, 200]))
def test_the_log_partial(kind, status, deployment, prediction, caller):
    url = f"/deployments/{deployment.pk}/predictions/log/"
    assert browser(caller(kind)).get(url).status_code == status


@pytest.mark.parametrize("kind,status", expected([302, 404, 404, 302, 302, 302, 302]))
def test_the_explain_button(kind, status, prediction, caller, sent_tasks, django_capture_on_commit_callbacks):
    before = state()
    with django_capture_on_commit_callbacks(execute=True):
        answer = browser(caller(kind)).post(page_url(prediction) + "explain/")
    assert answer.status_code == status
    queued = [task for task in sent_tasks if task[0] == EXPLAIN_TASK]
    if kind in ("anonymous", "non_member", Role.STAKEHOLDER):
        assert state() == before and queued == []
    else:
        assert answer["Location"] == page_url(prediction) and len(queued) == 1
