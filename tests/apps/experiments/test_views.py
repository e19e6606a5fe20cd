"""Experiment pages: the launch form (defaults from the version's columns, errors next to their fields, nothing queued
on a refusal), the leaderboard, a trained run's results and the comparison page."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.accounts.choices import Role
from apps.experiments.choices import RunStatus
from apps.experiments.models import Experiment
from tests.apps.experiments.experiment_helpers import QUICK, state, train

pytestmark = pytest.mark.django_db


def launch_url(project, version=None) -> str:
    return f"/experiments/new/?project={project.pk}" + (f"&version={version.pk}" if version else "")


def form_post(version, **overrides) -> dict:
    """What the browser sends for QUICK's spec with the form's defaults."""
    data = {
        "dataset_version": str(version.pk),
        "name": "quick",
        "problem_type": "binary",
        "target": "churned",
        "features": QUICK["features"],
        "missing": "median",
        "outliers": "none",
        "scaling": "standard",
        "encoding": "onehot",
        "datetime_parts": ["year", "month"],
        "split_strategy": "stratified",
        "split_train": "0.7",
        "split_validation": "0.15",
        "split_test": "0.15",
        "cv_folds": "0",
        "algorithms": ["logistic_regression"],
        "search_method": "none",
        "max_trials": "20",
        "timeout_seconds": "600",
        "seed": "42",
    }
    data.update(overrides)
    return data


def test_launch_form_lists_usable_versions_and_preselects_safe_features(client, scientist, project, version):
    client.force_login(scientist)
    response = client.get(launch_url(project))
    assert response.status_code == 200
    assert f'value="{version.pk}"' in response.content.decode()
    assert 'id="launch-form"' not in response.content.decode()  # no version chosen yet

    page = client.get(launch_url(project, version)).content.decode()
    assert 'id="launch-form"' in page

    def checked(column: str) -> bool:
        box = re.search(rf'<input type="checkbox" name="features" value="{column}"[^>]*>', page)
        assert box, column
        return "checked" in box.group(0)

    assert checked("age") and checked("plan")
    assert not checked("email")  # personal data (PII flag) stays out by default
    assert not checked("customer_id")  # an identifier does not generalise


def test_a_bad_split_is_shown_next_to_its_field_and_nothing_is_queued(client, scientist, project, version, sent_tasks):
    client.force_login(scientist)
    before = state()
    response = client.post(launch_url(project), form_post(version, split_train="0.9"))
    assert response.status_code == 400
    page = response.content.decode()
    assert 'id="id_split_train_error"' in page and "add up to 1" in page
    assert state() == before and sent_tasks == []


def test_a_personal_column_as_feature_is_refused_next_to_the_features(client, scientist, project, version, sent_tasks):
    client.force_login(scientist)
    response = client.post(launch_url(project), form_post(version, features=[*QUICK["features"], "email"]))
    assert response.status_code == 400
    assert "email" in re.search(
        r'<p class="error" role="alert" id="features_error">(.*?)</p>', response.content.decode()
    ).group(1)
    assert not Experiment.objects.exists()


def test_launch_queues_one_run_per_algorithm_with_the_form_spec(
    client, scientist, project, version, sent_tasks, django_capture_on_commit_callbacks
):
    client.force_login(scientist)
    data = form_post(version, algorithms=["logistic_regression", "random_forest"], cv_folds="3", target="churned")
    data["features"] = [*QUICK["features"], "churned"]  # a checked target is the target, not a feature
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(launch_url(project), data)
    experiment = Experiment.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/experiments/{experiment.pk}/"
    assert experiment.spec["split"]["cv_folds"] == 3
    assert experiment.spec["features"] == QUICK["features"]
    assert sorted(experiment.runs.values_list("algorithm", flat=True)) == ["logistic_regression", "random_forest"]
    assert [queue for _, _, queue in sent_tasks] == ["training", "training"]


def test_stakeholders_cannot_open_the_launch_form(client, member, project, version):
    client.force_login(member(Role.STAKEHOLDER))
    assert client.get(launch_url(project, version)).status_code == 403


def test_list_is_paginated_and_its_queries_do_not_grow_with_experiments(client, scientist, project, launch):
    client.force_login(scientist)
    launch()
    with CaptureQueriesContext(connection) as one:
        assert client.get("/experiments/").status_code == 200
    for _ in range(3):
        launch()
    with CaptureQueriesContext(connection) as four:
        page = client.get(f"/experiments/?project={project.pk}").content.decode()
    assert page.count('href="/experiments/') >= 4
    assert len(four.captured_queries) <= len(one.captured_queries) + 1  # + the project filter lookup


def test_a_trained_run_shows_metrics_charts_fairness_and_its_record(client, scientist, launch):
    experiment = launch({**QUICK, "sensitive_columns": ["plan"]})
    run = experiment.runs.get()
    train(run)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    client.force_login(scientist)

    board = client.get(f"/experiments/{experiment.pk}/").content.decode()
    assert f'href="/experiments/runs/{run.pk}/"' in board and 'name="run"' in board

    page = client.get(f"/experiments/runs/{run.pk}/").content.decode()
    primary = experiment.spec["primary_metric"]
    assert f"{primary} (primary)" in page
    metric_names = re.findall(r'<tr(?: class="primary")?><th scope="row">(\w+)', page.split('id="metrics-table"')[1])
    assert metric_names[:3] == ["accuracy", "balanced_accuracy", "precision"]  # the spec's order, not jsonb's
    for chart in ("roc", "pr", "calibration", "confusion", "importance", "shap_summary"):
        assert f'data-chart="{chart}"' in page, chart
    assert 'data-chart="fairness-plan"' in page and "Demographic parity difference" in page
    assert run.artifact_sha256 in page
    assert "Single-row latency" in page


def test_the_status_partial_asks_a_live_page_to_reload_once_the_run_has_finished(client, scientist, launch):
    run = launch().runs.get()
    client.force_login(scientist)
    live = client.get(f"/experiments/runs/{run.pk}/status/?active=1", HTTP_HX_REQUEST="true")
    assert live.status_code == 200 and 'hx-trigger="every 2s"' in live.content.decode()
    train(run)
    finished = client.get(f"/experiments/runs/{run.pk}/status/?active=1", HTTP_HX_REQUEST="true")
    assert finished.status_code == 204 and finished["HX-Refresh"] == "true"


def test_cancel_from_the_run_page(client, scientist, launch):
    run = launch().runs.get()
    client.force_login(scientist)
    response = client.post(f"/experiments/runs/{run.pk}/cancel/")
    assert response.status_code == 302
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED


def test_compare_page_puts_runs_side_by_side(client, scientist, launch):
    experiment = launch({**QUICK, "algorithms": ["logistic_regression", "random_forest"]})
    runs = list(experiment.runs.order_by("number"))
    for run in runs:
        train(run)
    client.force_login(scientist)
    page = client.get("/experiments/runs/compare/", {"run": [str(run.pk) for run in runs]}).content.decode()
    assert page.count('<th scope="col"><a href="/experiments/runs/') == 2
    assert "roc_auc (test)" in page and 'class="num best"' in page
    refused = client.get("/experiments/runs/compare/", {"run": [str(runs[0].pk)], "experiment": str(experiment.pk)})
    assert refused.status_code == 302 and refused["Location"] == f"/experiments/{experiment.pk}/"


def test_a_usable_version_links_to_the_launch_form_for_those_who_may_launch(client, scientist, member, version):
    url = f"/datasets/{version.dataset_id}/versions/{version.number}/"
    client.force_login(scientist)
    assert f'href="/experiments/new/?project={version.dataset.project_id}&amp;version={version.pk}"' in (
        client.get(url).content.decode()
    )
    client.force_login(member(Role.STAKEHOLDER))
    assert 'id="train-link"' not in client.get(url).content.decode()
