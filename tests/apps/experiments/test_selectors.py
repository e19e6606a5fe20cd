"""Experiments selectors: visibility, query counts, the leaderboard's order, comparisons, log paging, launchable
versions, the project's targets."""

import pytest
from django.http import Http404

from apps.accounts.choices import Role
from apps.core.exceptions import ApplicationError
from apps.datasets import services as dataset_services
from apps.experiments import selectors, services
from apps.experiments.choices import RunStatus
from apps.experiments.models import Run
from tests.apps.experiments.experiment_helpers import THREE, finish
from tests.workers.tasks.dataset_helpers import make_version
from workers.ml.evaluation.targets import ProjectTargets

pytestmark = pytest.mark.django_db


# --- Visibility -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("role", [Role.STAKEHOLDER, Role.SCIENTIST, Role.REVIEWER, Role.COMPLIANCE])
def test_members_see_the_projects_experiments_and_runs(role, launch, member):
    experiment = launch()
    run = experiment.runs.get()
    reader = member(role)

    assert list(selectors.experiment_list(actor=reader)) == [experiment]
    assert selectors.experiment_get(actor=reader, pk=experiment.pk) == experiment
    assert selectors.run_get(actor=reader, pk=run.pk) == run


def test_outsiders_see_nothing_and_get_404(launch, outsider):
    experiment = launch()
    run = experiment.runs.get()

    assert list(selectors.experiment_list(actor=outsider)) == []
    with pytest.raises(Http404):
        selectors.experiment_get(actor=outsider, pk=experiment.pk)
    with pytest.raises(Http404):
        selectors.run_get(actor=outsider, pk=run.pk)
    with pytest.raises(Http404):
        selectors.run_get(actor=outsider, pk="not-a-uuid")


@pytest.mark.parametrize("role", [Role.COMPLIANCE, Role.ADMIN])
def test_compliance_and_admins_see_every_project(role, launch, make_user):
    experiment = launch()

    assert list(selectors.experiment_list(actor=make_user(role))) == [experiment]


def test_an_object_of_another_project_is_404_when_a_project_is_given(launch, admin_user, project_factory):
    experiment = launch()

    with pytest.raises(Http404):
        selectors.experiment_get(actor=admin_user, pk=experiment.pk, project=project_factory())
    with pytest.raises(Http404):
        selectors.run_get(actor=admin_user, pk=experiment.runs.get().pk, project=project_factory())


# --- Lists and query counts -------------------------------------------------------------------------------------
def test_experiment_list_counts_runs_in_one_query(launch, scientist, django_assert_num_queries):
    for _ in range(3):
        experiment = launch(THREE)
    finish(experiment.runs.order_by("number").first(), 0.5)

    with django_assert_num_queries(1):
        rows = [
            (e.number, e.run_count, e.succeeded_count, e.project.name, e.dataset_version.dataset.name)
            for e in selectors.experiment_list(actor=scientist)
        ]

    assert [row[:3] for row in rows] == [(3, 3, 1), (2, 3, 0), (1, 3, 0)]


def test_experiment_get_prefetches_its_runs_in_order(launch, scientist, django_assert_num_queries):
    experiment = launch(THREE)

    with django_assert_num_queries(2):
        got = selectors.experiment_get(actor=scientist, pk=experiment.pk)
        numbers = [run.number for run in got.runs.all()]

    assert numbers == [1, 2, 3]


def test_run_list_runs_one_query(launch, scientist, django_assert_num_queries):
    launch(THREE)
    launch(THREE)

    with django_assert_num_queries(1):
        rows = [(r.experiment.number, r.number, r.experiment.project.name) for r in selectors.run_list(actor=scientist)]

    assert [row[:2] for row in rows] == [(2, 1), (2, 2), (2, 3), (1, 1), (1, 2), (1, 3)]


# --- Leaderboard ------------------------------------------------------------------------------------------------
def test_leaderboard_ranks_succeeded_runs_best_first_then_the_others(launch):
    experiment = launch(THREE)  # primary metric f1: higher is better
    first, _, third = experiment.runs.order_by("number")
    finish(first, 0.6)
    finish(third, 0.9)

    ranked = selectors.leaderboard(experiment=experiment)

    assert [(run.number, run.rank) for run in ranked] == [(3, 1), (1, 2), (2, None)]


def test_leaderboard_puts_the_smallest_first_for_a_lower_is_better_metric(launch):
    experiment = launch({**THREE, "primary_metric": "log_loss"})
    first, second, third = experiment.runs.order_by("number")
    for run, score in ((first, 0.4), (second, 0.2), (third, 0.9)):
        finish(run, score)

    assert [run.number for run in selectors.leaderboard(experiment=experiment)] == [2, 1, 3]


# --- Comparison -------------------------------------------------------------------------------------------------
def test_runs_compare_puts_metrics_side_by_side(launch, scientist):
    experiment = launch(THREE)
    first, second, _ = experiment.runs.order_by("number")
    finish(first, 0.6, 0.7, {"test": {"f1": 0.7, "log_loss": 0.5}, "validation": {"f1": 0.6}})
    finish(second, 0.8, 0.65, {"test": {"f1": 0.65, "log_loss": 0.4, "note": "x"}})

    comparison = selectors.runs_compare(actor=scientist, run_ids=[second.pk, str(first.pk).upper()])

    assert comparison["runs"] == [second, first]
    assert comparison["primary_metrics"] == ["f1"]
    assert comparison["primary"] == [
        {"row": "primary_score", "values": [0.8, 0.6], "best": 0},
        {"row": "test_score", "values": [0.65, 0.7], "best": 1},
    ]
    assert comparison["metrics"] == [
        {"section": "test", "metric": "f1", "values": [0.65, 0.7], "best": 1},
        {"section": "test", "metric": "log_loss", "values": [0.4, 0.5], "best": 0},  # lower is better
        {"section": "validation", "metric": "f1", "values": [None, 0.6], "best": None},
    ]


@pytest.mark.parametrize("count", [0, 1, 7])
def test_runs_compare_needs_two_to_six_runs(count, launch, scientist):
    runs = []
    while len(runs) < count:
        runs.extend(launch(THREE).runs.all())

    with pytest.raises(ApplicationError) as error:
        selectors.runs_compare(actor=scientist, run_ids=[run.pk for run in runs[:count]])

    assert error.value.errors == {"ids": ["Choose between 2 and 6 runs to compare."]}


def test_runs_compare_refuses_runs_the_actor_cannot_see(launch, scientist, outsider):
    first, second, _ = launch(THREE).runs.order_by("number")

    with pytest.raises(ApplicationError) as error:
        selectors.runs_compare(actor=outsider, run_ids=[first.pk, second.pk])
    assert error.value.status == 404
    with pytest.raises(ApplicationError) as error:
        selectors.runs_compare(actor=scientist, run_ids=[first.pk, "nonsense"])
    assert error.value.errors == {"ids": ["No such run: nonsense."]}


# --- Logs -------------------------------------------------------------------------------------------------------
def test_log_lines_give_the_tail_or_the_lines_after_an_id(launch):
    run = launch().runs.get()
    for index in range(5):
        services.run_log(run_id=run.pk, level="info", message=f"line {index}")
    ids = list(run.log_lines.values_list("id", flat=True))

    def messages(lines):
        return [line.message for line in lines]

    assert messages(selectors.run_log_lines(run=run, limit=2)) == ["line 3", "line 4"]
    assert messages(selectors.run_log_lines(run=run, after_id=0, limit=2)) == ["line 0", "line 1"]
    assert messages(selectors.run_log_lines(run=run, after_id=ids[3])) == ["line 4"]
    assert selectors.run_log_lines(run=run, after_id=ids[4]) == []


# --- Launching --------------------------------------------------------------------------------------------------
def test_launchable_versions_are_the_usable_ones_newest_first(dataset, scientist):
    passed = make_version(dataset, 1)
    failed = make_version(dataset, 2, passed=False)
    overridden = make_version(dataset, 3, passed=False)
    dataset_services.version_override_validation(
        version=overridden, actor=scientist, reason="Checked by hand against the source system."
    )

    versions = list(selectors.launchable_versions(project=dataset.project))

    assert versions == [overridden, passed]
    assert failed not in versions


def test_project_targets_come_from_the_definition(project):
    project.definition.baseline_metric_value = 0.6
    project.definition.save()

    assert selectors.project_targets(project) == ProjectTargets(
        primary_metric="f1",
        threshold=0.8,
        baseline_value=0.6,
        currency="EUR",
        value_per_correct_decision=40.0,
        cost_false_positive=5.0,
        cost_false_negative=120.0,
        cost_per_misclassification=None,
        cost_per_unit_error=None,
        latency_budget_p99_ms=200.0,
    )


def test_artifact_keys_of_succeeded_runs_are_in_use(launch):
    first, second, _ = launch(THREE).runs.order_by("number")
    finish(first, 0.5)
    Run.objects.filter(pk=second.pk).update(artifact_key="k/other", status=RunStatus.FAILED)

    assert selectors.artifact_key_in_use(key=f"k/{first.pk}") is True
    assert selectors.artifact_key_in_use(key="k/other") is False
