"""The feature store pages: discovery, the define form (errors next to fields), materialise with its polling status,
the training-set builder and its link to the experiment form."""

import pytest
from django.test import Client

from apps.features import services
from apps.features.models import Feature, MaterialisationJob, TrainingSet
from tests.apps.features.helpers import materialise, state

pytestmark = pytest.mark.django_db

MEAN_7D = {"kind": "window", "column": "amount", "function": "mean", "window": "7d"}


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _define_data(view, events, **overrides) -> dict:
    return {
        "view": str(view.pk),
        "name": "spend_7d",
        "dataset": str(events.pk),
        "timestamp_column": "event_time",
        "entity_columns": "customer_id",
        "value_type": "float",
        "kind": "window",
        "column": "amount",
        "function": "mean",
        "window": "7d",
        "tags": "churn, spend",
    } | overrides


def test_the_define_form_creates_a_feature_and_shows_it(view, events, scientist):
    client = _client(scientist)
    response = client.post("/features/define/", _define_data(view, events))
    feature = Feature.objects.get(name="spend_7d")
    assert response.status_code == 302 and response["Location"] == f"/features/{feature.pk}/"
    assert feature.versions.get().transformation == MEAN_7D
    page = client.get(f"/features/{feature.pk}/").content.decode()
    assert "Version 1" in page and "function=mean" in page
    listing = client.get("/features/", {"tag": "spend"}).content.decode()
    assert "spend_7d" in listing


def test_define_errors_are_shown_next_to_their_fields(view, events, scientist):
    before = state()
    response = _client(scientist).post(
        "/features/define/", _define_data(view, events, window="7 weeks", entity_columns="nope")
    )
    assert response.status_code == 400
    form = response.context["form"]
    assert "entity_columns" in form.errors
    assert state() == before
    response = _client(scientist).post("/features/define/", _define_data(view, events, window="7 weeks"))
    assert list(response.context["form"].errors) == ["window"]


def test_stakeholders_do_not_see_the_catalog(view, member):
    from apps.accounts.choices import Role

    assert _client(member(Role.STAKEHOLDER)).get("/features/").status_code == 404


def test_materialise_answers_a_status_that_polls_until_the_job_ends(define, scientist, sent_tasks):
    version = define("amount")
    client = _client(scientist)
    response = client.post(f"/features/versions/{version.pk}/materialise/", HTTP_HX_REQUEST="true")
    job = MaterialisationJob.objects.get()
    assert 'hx-trigger="every 2s"' in response.content.decode()
    materialise(job)
    status = client.get(f"/features/materialisations/{job.pk}/status/", HTTP_HX_REQUEST="true").content.decode()
    assert "hx-trigger" not in status and "6 rows" in status


def test_the_training_set_page_links_to_the_experiment_form_with_the_result(
    define, scientist, project, spine_version, sent_tasks
):
    from tests.apps.features.helpers import run_task
    from workers.tasks.features import build_training_set_task

    version = define("amount_7d", MEAN_7D)
    materialise(services.materialisation_request(actor=scientist, feature_version=version))
    client = _client(scientist)
    form = client.get("/features/training-sets/new/", {"project": project.pk})
    assert form.status_code == 200
    response = client.post(
        f"/features/training-sets/new/?project={project.pk}",
        {
            "spine_version": str(spine_version.pk),
            "spine_key_columns": "cust",
            "spine_timestamp_column": "as_of",
            "label_column": "churned",
            "features": [str(version.pk)],
            "output_dataset": "churn_training",
        },
    )
    training_set = TrainingSet.objects.get()
    assert response.status_code == 302
    run_task(build_training_set_task, training_set.pk)
    training_set.refresh_from_db()
    page = client.get(f"/features/training-sets/{training_set.pk}/").content.decode()
    status = page[page.index("training-set-status") :][:1500]
    assert f"/experiments/new/?project={project.pk}&amp;version={training_set.result_version_id}" in page, status
    launch = client.get("/experiments/new/", {"project": project.pk, "version": training_set.result_version_id})
    assert launch.status_code == 200 and "amount_7d" in launch.content.decode()
