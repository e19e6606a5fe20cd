"""The prediction-log API: filters, pinned query counts, ground truth single and bulk, explanations (202), and the
permission matrix of every endpoint (a denied call changes nothing and queues nothing)."""

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.accounts.choices import Role
from apps.deployments.models import GroundTruth, PredictionExplanation
from apps.deployments.services.predictions import EXPLAIN_TASK
from tests.apps.deployments.prediction_helpers import make_deployment, prediction_row, state

pytestmark = pytest.mark.django_db

KINDS = ["anonymous", "non_member", Role.STAKEHOLDER, Role.SCIENTIST, Role.REVIEWER, Role.COMPLIANCE, "admin"]


@pytest.fixture
def deployment(production_version):
    return make_deployment(production_version)


@pytest.fixture
def prediction(deployment, production_version):
    return prediction_row(deployment, production_version)


def client_for(kind, caller, api_client_as):
    return api_client_as(caller(kind))


def test_the_list_filters_and_its_query_count_does_not_grow_with_rows(
    deployment, production_version, caller, api_client_as
):
    client = client_for(Role.SCIENTIST, caller, api_client_as)
    now = timezone.now()
    old = prediction_row(deployment, production_version, predicted_at=now - datetime.timedelta(days=2))
    shadow = prediction_row(deployment, production_version, shadow=True, variant="")
    GroundTruth.objects.create(prediction=old, actual="yes", observed_at=now, recorded_by=deployment.created_by)
    url = f"/api/v1/deployments/{deployment.pk}/predictions/"

    assert [row["id"] for row in client.get(url, {"shadow": "true"}).json()["results"]] == [shadow.pk]
    assert [row["id"] for row in client.get(url, {"has_ground_truth": "true"}).json()["results"]] == [old.pk]
    since = (now - datetime.timedelta(days=1)).isoformat()
    assert [row["id"] for row in client.get(url, {"since": since}).json()["results"]] == [shadow.pk]
    assert client.get(url, {"version": 2}).json()["count"] == 0
    body = client.get(url, {"version": production_version.number, "has_ground_truth": "true"}).json()
    assert body["results"][0]["ground_truth"]["actual"] == "yes" and body["results"][0]["version"] == 1
    assert client.get(url, {"since": "yesterday"}).status_code == 400

    with CaptureQueriesContext(connection) as few:
        client.get(url)
    for _ in range(20):
        prediction_row(deployment, production_version)
    with CaptureQueriesContext(connection) as many:
        answer = client.get(url)
    assert answer.json()["count"] == 22
    # the deployment, the count, the page (the caller's project role is cached on the user by the earlier calls)
    assert len(many) == len(few) == 3


def test_detail_shows_ground_truth_and_explanations(prediction, caller, api_client_as, sent_tasks):
    client = client_for(Role.COMPLIANCE, caller, api_client_as)
    explained = client.post(f"/api/v1/predictions/{prediction.pk}/explanations/")
    assert explained.status_code == 202 and explained.json()["status"] == "queued"

    body = client.get(f"/api/v1/predictions/{prediction.pk}/").json()

    assert body["id"] == prediction.pk and body["registered_model"] == "churn" and body["ground_truth"] is None
    assert [item["id"] for item in body["explanations"]] == [explained.json()["id"]]
    assert client.get(f"/api/v1/explanations/{explained.json()['id']}/").json()["prediction"] == prediction.pk


def test_bulk_errors_name_the_item_and_field(prediction, caller, api_client_as):
    client = client_for(Role.STAKEHOLDER, caller, api_client_as)
    before = state()

    answer = client.post(
        "/api/v1/ground-truth/",
        {"items": [{"prediction_id": prediction.pk, "actual": "yes", "observed_at": "soon"}]},
        format="json",
    )
    refused = client.post(
        "/api/v1/ground-truth/", {"items": [{"prediction_id": prediction.pk, "actual": 7}]}, format="json"
    )

    assert answer.status_code == 400 and list(answer.json()["errors"]) == ["items[0].observed_at"]
    assert refused.status_code == 400 and list(refused.json()["errors"]) == ["items[0].actual"]
    assert state() == before
    ok = client.post(
        "/api/v1/ground-truth/", {"items": [{"prediction_id": prediction.pk, "actual": "yes"}]}, format="json"
    )
    assert ok.status_code == 200 and ok.json() == {"recorded": 1}


# --- The permission matrix ------------------------------------------------------------------------------------------
def expected(statuses: list) -> list:
    return list(zip(KINDS, statuses, strict=True))


@pytest.mark.parametrize("kind,status", expected([401, 404, 403, 200, 200, 200, 200]))
def test_listing(kind, status, deployment, prediction, caller, api_client_as):
    answer = client_for(kind, caller, api_client_as).get(f"/api/v1/deployments/{deployment.pk}/predictions/")
    assert answer.status_code == status


@pytest.mark.parametrize("kind,status", expected([401, 404, 404, 200, 200, 200, 200]))
def test_reading_a_prediction(kind, status, prediction, caller, api_client_as):
    assert client_for(kind, caller, api_client_as).get(f"/api/v1/predictions/{prediction.pk}/").status_code == status


@pytest.mark.parametrize("kind,status", expected([401, 404, 200, 200, 403, 403, 200]))
def test_recording_ground_truth(kind, status, prediction, caller, api_client_as):
    before = state()
    answer = client_for(kind, caller, api_client_as).post(
        f"/api/v1/predictions/{prediction.pk}/ground-truth/", {"actual": "yes"}, format="json"
    )
    assert answer.status_code == status
    if status == 200:
        assert answer.json()["actual"] == "yes" and GroundTruth.objects.get(prediction=prediction).actual == "yes"
    else:
        assert state() == before


@pytest.mark.parametrize("kind,status", expected([401, 403, 200, 200, 403, 403, 200]))
def test_recording_ground_truth_in_bulk(kind, status, prediction, caller, api_client_as):
    before = state()
    answer = client_for(kind, caller, api_client_as).post(
        "/api/v1/ground-truth/", {"items": [{"prediction_id": prediction.pk, "actual": "no"}]}, format="json"
    )
    assert answer.status_code == status
    if status != 200:
        assert state() == before


@pytest.mark.parametrize("kind,status", expected([401, 404, 404, 202, 202, 202, 202]))
def test_requesting_an_explanation(
    kind, status, prediction, caller, api_client_as, sent_tasks, django_capture_on_commit_callbacks
):
    before = state()
    with django_capture_on_commit_callbacks(execute=True):
        answer = client_for(kind, caller, api_client_as).post(f"/api/v1/predictions/{prediction.pk}/explanations/")
    assert answer.status_code == status
    queued = [task for task in sent_tasks if task[0] == EXPLAIN_TASK]
    if status == 202:
        assert queued == [(EXPLAIN_TASK, [answer.json()["id"]], None)]
    else:
        assert state() == before and queued == []


@pytest.mark.parametrize("kind,status", expected([401, 404, 404, 200, 200, 200, 200]))
def test_reading_an_explanation(kind, status, prediction, caller, api_client_as):
    explanation = PredictionExplanation.objects.create(
        prediction=prediction, requested_by=prediction.deployment.created_by
    )
    assert client_for(kind, caller, api_client_as).get(f"/api/v1/explanations/{explanation.pk}/").status_code == status
