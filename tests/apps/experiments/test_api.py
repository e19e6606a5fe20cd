"""The experiments API: launch (201 with the runs; field-level 400s for bad input), lists with pinned query counts,
detail, leaderboard, log paging, comparison, cancel."""

import uuid

import pytest

from apps.accounts.choices import Role
from apps.experiments import services
from apps.experiments.models import Experiment
from tests.apps.experiments.experiment_helpers import FEATURES, QUICK, THREE, finish
from tests.workers.tasks.dataset_helpers import make_version

pytestmark = pytest.mark.django_db


@pytest.fixture
def client(api_client_as, scientist):
    return api_client_as(scientist)


@pytest.fixture
def base(project) -> str:
    return f"/api/v1/projects/{project.pk}/"


def post_launch(client, base, version, **body):
    return client.post(base + "experiments/", {"dataset_version": str(version.pk), **body}, format="json")


def test_launch_answers_201_with_the_experiment_and_its_runs(
    client, base, version, sent_tasks, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = post_launch(
            client,
            base,
            version,
            name="Baseline",
            target="churned",
            features=FEATURES,
            algorithms=["logistic_regression", "lightgbm"],
            split={"cv_folds": 3, "train": 0.6, "validation": 0.2, "test": 0.2},
            search={"method": "random", "max_trials": 5},
            seed=7,
        )

    assert response.status_code == 201, response.json()
    body = response.json()
    experiment = Experiment.objects.get()
    assert (body["id"], body["number"], body["name"], body["status"]) == (str(experiment.pk), 1, "Baseline", "queued")
    assert (body["dataset_version"], body["dataset_version_number"], body["dataset_name"]) == (
        str(version.pk),
        1,
        "churn",
    )
    assert body["spec"]["split"] == {
        "strategy": "stratified",
        "train": 0.6,
        "validation": 0.2,
        "test": 0.2,
        "time_column": None,
        "cv_folds": 3,
    }
    assert (body["spec"]["seed"], body["spec"]["search"]["method"]) == (7, "random")
    assert [(run["number"], run["algorithm"], run["status"]) for run in body["runs"]] == [
        (1, "logistic_regression", "queued"),
        (2, "lightgbm", "queued"),
    ]
    assert [args for _task, args, _queue in sent_tasks] == [[run["id"]] for run in body["runs"]]


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({"target": "churned", "features": []}, {"features": ["Choose at least one feature column."]}),
        (
            {**QUICK, "split": {"train": 0.9, "validation": 0.1, "test": 0.1}},
            {"split.train": ["Train, validation and test shares must add up to 1."]},
        ),
        (
            {**QUICK, "search": {"method": "grid", "max_trials": 0}},
            {"search.max_trials": ["A search needs a budget of at least one trial."]},
        ),
        ({**QUICK, "target": "country"}, {"target": ["'country' is constant: there is nothing to learn."]}),
        ({**QUICK, "algorithms": ["kmeans"]}, {"algorithms": ["k-means does not do binary."]}),
        ({**QUICK, "seed": "abc"}, {"seed": ["Enter a whole number."]}),
    ],
)
def test_bad_spec_answers_400_with_field_errors_and_creates_nothing(client, base, version, sent_tasks, body, errors):
    response = post_launch(client, base, version, **body)

    assert response.status_code == 400
    assert response.json()["errors"] == errors
    assert (Experiment.objects.count(), sent_tasks) == (0, [])


def test_the_dataset_version_must_be_a_usable_version_of_the_project(client, base, dataset, version):
    failed = make_version(dataset, 2, passed=False)

    missing = client.post(base + "experiments/", QUICK, format="json")
    malformed = client.post(base + "experiments/", {**QUICK, "dataset_version": "v1"}, format="json")
    unknown = client.post(base + "experiments/", {**QUICK, "dataset_version": str(uuid.uuid4())}, format="json")
    unusable = post_launch(client, base, failed, **QUICK)

    assert missing.status_code == malformed.status_code == unknown.status_code == unusable.status_code == 400
    assert missing.json()["errors"] == {"dataset_version": ["This field is required."]}
    assert malformed.json()["errors"] == {"dataset_version": ["Must be a valid UUID."]}
    assert unknown.json()["errors"] == {"dataset_version": ["Choose a dataset version."]}
    assert unusable.json()["errors"]["dataset_version"][0].endswith("it cannot be used for training.")
    assert Experiment.objects.count() == 0


def test_a_body_that_is_not_an_object_is_a_400(client, base):
    response = client.post(base + "experiments/", [1, 2], format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == {"non_field_errors": ["Send the experiment as a JSON object."]}


def test_experiment_list_is_paginated_newest_first(client, base, launch):
    for _ in range(4):
        launch(THREE)

    body = client.get(base + "experiments/?page_size=3").json()

    assert (body["count"], len(body["results"])) == (4, 3)
    assert [item["number"] for item in body["results"]] == [4, 3, 2]
    assert (body["results"][0]["run_count"], body["results"][0]["succeeded_count"]) == (3, 0)


# project (visibility), membership role of the project, count, page
@pytest.mark.parametrize(("path", "rows"), [("experiments/", 3), ("runs/", 9)])
def test_lists_run_a_fixed_number_of_queries_however_many_rows(
    path, rows, client, base, launch, django_assert_num_queries
):
    for _ in range(3):
        launch(THREE)

    with django_assert_num_queries(3):
        response = client.get(base + path)

    assert response.json()["count"] == rows


def test_run_list_filters_by_experiment_and_status(client, base, launch):
    first = launch(THREE)
    second = launch(QUICK)
    finish(first.runs.get(number=2), 0.5)

    by_experiment = client.get(base + f"runs/?experiment={second.pk}").json()
    succeeded = client.get(base + "runs/?status=succeeded").json()
    bad = client.get(base + "runs/?status=sleeping")

    assert [run["experiment"] for run in by_experiment["results"]] == [str(second.pk)]
    assert [(run["experiment"], run["number"]) for run in succeeded["results"]] == [(str(first.pk), 2)]
    assert bad.status_code == 400 and "status" in bad.json()["errors"]


def test_run_detail_has_the_reproducibility_record(client, base, launch, version):
    run = launch().runs.get()
    finish(run, 0.7, 0.75, {"test": {"f1": 0.75}})

    body = client.get(base + f"runs/{run.pk}/").json()

    assert (body["status"], body["primary_score"], body["test_score"]) == ("succeeded", 0.7, 0.75)
    assert (body["seed"], body["dataset_sha256"], body["spec"]["algorithms"]) == (
        42,
        version.sha256,
        ["logistic_regression"],
    )
    assert body["metrics"] == {"test": {"f1": 0.75}}
    assert {"artifact_key", "artifact_sha256", "artifact_signature", "environment", "input_signature"} <= set(body)


def test_leaderboard_answers_ranked_runs(client, base, launch):
    experiment = launch(THREE)
    first, _, third = experiment.runs.order_by("number")
    finish(first, 0.6)
    finish(third, 0.9)

    body = client.get(base + f"experiments/{experiment.pk}/leaderboard/").json()

    assert [(entry["number"], entry["rank"]) for entry in body] == [(3, 1), (1, 2), (2, None)]


def test_log_is_polled_after_the_last_id(client, base, launch):
    run = launch().runs.get()
    for index in range(3):
        services.run_log(run_id=run.pk, level="info", message=f"line {index}")

    tail = client.get(base + f"runs/{run.pk}/log/?limit=2").json()
    after = client.get(base + f"runs/{run.pk}/log/?after={tail['last_id']}").json()
    bad = client.get(base + f"runs/{run.pk}/log/?after=-1")

    assert [line["message"] for line in tail["lines"]] == ["line 1", "line 2"]
    assert (tail["run_status"], after["lines"], after["last_id"]) == ("queued", [], tail["last_id"])
    assert bad.status_code == 400 and "after" in bad.json()["errors"]


def test_compare_answers_side_by_side_and_refuses_bad_ids(client, base, launch):
    first, second, _ = launch(THREE).runs.order_by("number")
    finish(first, 0.6, 0.7, {"test": {"f1": 0.7}})
    finish(second, 0.8, 0.6, {"test": {"f1": 0.6}})

    good = client.get(base + f"runs/compare/?ids={first.pk},{second.pk}")
    single = client.get(base + f"runs/compare/?ids={first.pk}")
    missing = client.get(base + "runs/compare/")

    assert good.status_code == 200
    assert [run["id"] for run in good.json()["runs"]] == [str(first.pk), str(second.pk)]
    assert good.json()["metrics"] == [{"section": "test", "metric": "f1", "values": [0.7, 0.6], "best": 0}]
    assert (single.status_code, single.json()["errors"]) == (400, {"ids": ["Choose between 2 and 6 runs to compare."]})
    assert missing.status_code == 400 and "ids" in missing.json()["errors"]


def test_compare_does_not_reach_into_another_project(client, api_client_as, admin_user, launch, project_factory):
    first, second, _ = launch(THREE).runs.order_by("number")
    other = project_factory()

    response = api_client_as(admin_user).get(f"/api/v1/projects/{other.pk}/runs/compare/?ids={first.pk},{second.pk}")

    assert response.status_code == 404


def test_cancel_endpoints_cancel_and_then_answer_409(client, base, launch):
    experiment = launch(THREE)
    run = experiment.runs.get(number=1)

    cancelled_run = client.post(base + f"runs/{run.pk}/cancel/")
    cancelled_experiment = client.post(base + f"experiments/{experiment.pk}/cancel/")
    again = client.post(base + f"experiments/{experiment.pk}/cancel/")

    assert (cancelled_run.status_code, cancelled_run.json()["status"]) == (200, "cancelled")
    assert cancelled_experiment.status_code == 200
    assert cancelled_experiment.json()["status"] == "cancelled"
    assert {run["status"] for run in cancelled_experiment.json()["runs"]} == {"cancelled"}
    assert again.status_code == 409


def test_a_stakeholder_is_refused_before_the_body_is_looked_at(api_client_as, member, base, sent_tasks):
    response = api_client_as(member(Role.STAKEHOLDER)).post(base + "experiments/", {"nonsense": 1}, format="json")

    assert response.status_code == 403
    assert (Experiment.objects.count(), sent_tasks) == (0, [])
