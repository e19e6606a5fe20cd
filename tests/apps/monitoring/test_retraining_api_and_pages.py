"""Retraining API and pages: the policy's permission matrix (a refusal changes nothing), field-level 400s, the runs
list and one run, and the HTML policy page with its errors next to the fields and a run's comparison table."""

import pytest
from django.test import Client

from apps.monitoring.choices import RetrainingTrigger
from apps.monitoring.models import RetrainingRun
from apps.monitoring.services.retraining import retraining_policy_set, retraining_start
from tests.apps.monitoring.retraining_helpers import state

pytestmark = pytest.mark.django_db

BODY = {"on_drift_alert": True, "on_performance_alert": False, "schedule_days": 14, "enabled": True}
# anonymous: 401 (no credentials); outsiders do not see the model: 404; members who may not manage: 403.
PUT_STATUS = {
    "anonymous": 401,
    "non_member": 404,
    "stakeholder": 403,
    "scientist": 200,
    "reviewer": 403,
    "compliance": 403,
    "admin": 200,
}
GET_STATUS = {**{kind: 200 for kind in PUT_STATUS}, "anonymous": 401, "non_member": 404}


def policy_url(model) -> str:
    return f"/api/v1/projects/{model.project_id}/models/{model.pk}/retraining-policy/"


def runs_url(model) -> str:
    return f"/api/v1/projects/{model.project_id}/models/{model.pk}/retrainings/"


@pytest.fixture
def model(production_version):
    return production_version.registered_model


@pytest.mark.parametrize("kind", list(PUT_STATUS))
def test_policy_put_matrix_and_a_refusal_changes_nothing(kind, caller, api_client_as, model):
    user = caller(kind)
    before = state()
    answer = api_client_as(user).put(policy_url(model), BODY, format="json")
    assert answer.status_code == PUT_STATUS[kind], answer.content
    if answer.status_code == 200:
        assert {key: answer.json()[key] for key in BODY} == BODY
        assert answer.json()["owner"] == user.username
        assert answer.json()["periodic_task"] == f"monitoring-retraining-{answer.json()['id']}"
    else:
        assert state() == before


@pytest.mark.parametrize("kind", list(GET_STATUS))
def test_policy_get_matrix(kind, caller, api_client_as, model, scientist):
    retraining_policy_set(registered_model=model, actor=scientist, **BODY)
    answer = api_client_as(caller(kind)).get(policy_url(model))
    assert answer.status_code == GET_STATUS[kind]
    if answer.status_code == 200:
        assert answer.json()["schedule_days"] == 14


def test_a_model_without_a_policy_answers_404_with_a_message(api_client_as, model, scientist):
    answer = api_client_as(scientist).get(policy_url(model))
    assert answer.status_code == 404
    assert "no retraining policy" in answer.json()["message"]


def test_bad_policy_input_gets_field_errors(api_client_as, model, scientist):
    before = state()
    answer = api_client_as(scientist).put(
        policy_url(model), {**BODY, "schedule_days": 0, "enabled": "maybe"}, format="json"
    )
    assert answer.status_code == 400
    assert set(answer.json()["errors"]) == {"schedule_days", "enabled"}
    assert state() == before


def test_start_by_hand_list_and_detail(api_client_as, model, scientist, member, sent_tasks):
    client = api_client_as(scientist)
    answer = client.post(runs_url(model))
    assert answer.status_code == 409 and "policy" in answer.json()["errors"]  # no policy yet

    retraining_policy_set(registered_model=model, actor=scientist, **BODY)
    started = client.post(runs_url(model))
    assert started.status_code == 201
    assert (started.json()["trigger"], started.json()["status"]) == ("manual", "training")
    again = client.post(runs_url(model))
    assert again.json()["id"] == started.json()["id"]  # joins the running one

    listed = api_client_as(member("stakeholder")).get(runs_url(model))
    assert listed.status_code == 200
    assert [run["id"] for run in listed.json()["results"]] == [started.json()["id"]]
    detail = client.get(runs_url(model) + f"{started.json()['id']}/")
    assert detail.status_code == 200 and detail.json()["comparison"] == {}
    assert client.get(runs_url(model) + "00000000-0000-0000-0000-000000000000/").status_code == 404

    reviewer = api_client_as(member("reviewer"))
    assert reviewer.post(runs_url(model)).status_code == 403


def test_the_policy_page_saves_and_shows_errors_next_to_fields(model, scientist, member):
    client = Client()
    client.force_login(scientist)
    url = f"/monitoring/models/{model.pk}/retraining/"
    assert client.get(url).status_code == 200

    answer = client.post(url, {"on_drift_alert": "on", "schedule_days": "0", "enabled": "on"})
    assert answer.status_code == 400
    assert b'id="id_schedule_days_error"' in answer.content
    assert not RetrainingRun.objects.exists()

    answer = client.post(url, {"on_drift_alert": "on", "schedule_days": "30", "enabled": "on"})
    assert answer.status_code == 302
    page = client.get(url)
    assert b"Owner: <strong>" + scientist.username.encode() in page.content

    stakeholder = Client()
    stakeholder.force_login(member("stakeholder"))
    assert b'id="policy-form"' not in stakeholder.get(url).content
    assert stakeholder.post(url, {"schedule_days": "3"}).status_code == 403


def test_a_run_page_links_its_experiment_and_shows_the_comparison(model, scientist, sent_tasks):
    policy = retraining_policy_set(registered_model=model, actor=scientist, **BODY)
    run = retraining_start(policy=policy, trigger=RetrainingTrigger.MANUAL, actor=scientist)
    run.comparison = {
        "rows": 60,
        "primary_metric": "f1",
        "split": {"seed": 42},
        "metrics": {"f1": {"champion": 0.8, "challenger": 0.85, "delta": 0.05}},
    }
    run.save()
    client = Client()
    client.force_login(scientist)
    page = client.get(f"/monitoring/retrainings/{run.pk}/")
    assert page.status_code == 200
    assert f'href="/experiments/{run.experiment_id}/"'.encode() in page.content
    assert b'data-metric="f1"' in page.content and b"0.0500" in page.content
    assert b"same 60 held-out test rows" in page.content
