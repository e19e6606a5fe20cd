"""Experiments services: launch (defaults, numbering, dispatch, every bad input of the issue refused field by field
with nothing created or queued), cancel, the worker's bookkeeping (claim, progress, exactly-once finish) and the
sweep."""

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from apps.accounts.choices import Role
from apps.audit.models import AuditEvent
from apps.core.exceptions import ApplicationError
from apps.datasets import services as dataset_services
from apps.experiments import services
from apps.experiments.choices import ExperimentStatus, RunStatus
from apps.experiments.models import Experiment, Run
from apps.projects.models import Project
from tests.apps.experiments.experiment_helpers import FEATURES, QUICK, state
from tests.workers.tasks.dataset_helpers import make_version

pytestmark = pytest.mark.django_db

OUTCOME = {
    "params": {"C": 1.0},
    "trials": [{"number": 0, "params": {"C": 1.0}, "score": 0.8}],
    "metrics": {"test": {"f1": 0.8, "roc_auc": float("nan")}, "validation": {"f1": 0.7}},
    "primary_score": 0.7,
    "test_score": 0.8,
    "cv": {},
    "input_signature": {"columns": []},
    "environment": {"python": "3.11"},
    "timings": {"total": 1.0},
    "artifact_key": "projects/x/model.joblib",
    "artifact_sha256": "a" * 64,
    "artifact_signature": "b" * 64,
    "artifact_size": 10,
}


def last_event() -> AuditEvent:
    return AuditEvent.objects.order_by("-seq").first()


def refused(launch, data, **kwargs) -> dict[str, list[str]]:
    """The field errors of a refused launch, after checking it created and queued nothing."""
    before = state()
    with pytest.raises(ApplicationError) as error:
        launch(data, **kwargs)
    assert state() == before
    assert Experiment.objects.count() == 0
    return error.value.errors


# --- Launching --------------------------------------------------------------------------------------------------
def test_launch_creates_a_run_per_algorithm_and_queues_each_after_commit(launch, version, scientist, sent_tasks):
    experiment = launch(
        {"target": "churned", "features": FEATURES, "algorithms": ["logistic_regression", "random_forest"]},
        name="  First try ",
        description="baseline",
    )

    runs = list(experiment.runs.order_by("number"))
    assert (experiment.number, experiment.name, experiment.description) == (1, "First try", "baseline")
    assert (experiment.status, experiment.created_by, experiment.dataset_version) == ("queued", scientist, version)
    assert experiment.spec["primary_metric"] == "f1"  # the project's success metric
    assert experiment.spec["algorithms"] == ["logistic_regression", "random_forest"]
    assert [(run.number, run.algorithm, run.status) for run in runs] == [
        (1, "logistic_regression", "queued"),
        (2, "random_forest", "queued"),
    ]
    assert [run.spec["algorithms"] for run in runs] == [["logistic_regression"], ["random_forest"]]
    assert {run.seed for run in runs} == {42}
    assert {run.dataset_sha256 for run in runs} == {version.sha256}
    assert sent_tasks == [("experiments.train_run", [str(run.pk)], "training") for run in runs]
    event = last_event()
    assert (event.action, event.actor_id, event.object_id) == ("experiment.launch", scientist.pk, str(experiment.pk))
    assert event.after["algorithms"] == ["logistic_regression", "random_forest"]
    assert event.after["dataset_sha256"] == version.sha256


def test_just_launch_needs_only_the_target_and_trainable_features(launch):
    experiment = launch({"target": "churned", "features": FEATURES})

    assert experiment.spec["algorithms"] == ["logistic_regression", "random_forest", "lightgbm"]
    assert experiment.name == "Experiment 1"
    assert experiment.spec["split"]["strategy"] == "stratified"


def test_experiments_are_numbered_per_project(launch):
    first, second = launch(), launch()

    assert (first.number, second.number) == (1, 2)


def test_nothing_is_queued_when_the_launch_rolls_back(launch, sent_tasks, monkeypatch):
    def broken_audit(**kwargs):
        raise RuntimeError("audit down")

    monkeypatch.setattr(services, "audit_record", broken_audit)
    with pytest.raises(RuntimeError):
        launch()

    assert (Experiment.objects.count(), Run.objects.count(), sent_tasks) == (0, 0, [])


BAD_INPUT = {
    "target missing": ({**QUICK, "target": None}, {"target": ["Choose the column to predict."]}),
    "target all missing": (
        {**QUICK, "target": "notes"},
        {"target": ["'notes' has no values: every row is missing."]},
    ),
    "target constant": (
        {**QUICK, "target": "country"},
        {"target": ["'country' is constant: there is nothing to learn."]},
    ),
    "one class only": (
        {**QUICK, "target": "verdict"},
        {"target": ["'verdict' is constant: there is nothing to learn."]},
    ),
    "all-missing feature": (
        {**QUICK, "features": [*FEATURES, "notes"]},
        {"features": ["'notes' has no values: every row is missing. Leave it out."]},
    ),
    "class of one row under stratification": (
        {**QUICK, "target": "segment", "problem_type": "multiclass", "primary_metric": "f1_macro"},
        {
            "split.strategy": [
                "Class 'lonely' of 'segment' has a single row: it cannot be stratified across train and test. "
                "Remove it, or choose a random split."
            ]
        },
    ),
    "datetime as a numeric feature": (
        {**QUICK, "feature_kinds": {"signup": "numeric"}},
        {"feature_kinds": ["'signup' holds date values; it cannot be used as a numeric feature."]},
    ),
    "empty feature list": ({**QUICK, "features": []}, {"features": ["Choose at least one feature column."]}),
    "zero trials": (
        {**QUICK, "search": {"method": "bayesian", "max_trials": 0}},
        {"search.max_trials": ["A search needs a budget of at least one trial."]},
    ),
    "personal column (PII flag) as a feature": (
        {**QUICK, "features": [*FEATURES, "email"], "feature_kinds": {"email": "categorical"}},
        {"features": ["'email' looks like personal data (email); personal columns are not used as features."]},
    ),
    "unknown field": ({**QUICK, "colour": "red"}, {"colour": ["Unknown field."]}),
}


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_input_is_refused_with_a_field_error_and_nothing_is_created_or_queued(case, launch, sent_tasks):
    data, expected = BAD_INPUT[case]

    errors = refused(launch, data)

    assert errors == expected
    assert sent_tasks == []


def test_marked_personal_and_excluded_columns_cannot_be_features(launch, dataset, scientist):
    dataset_services.dataset_column_marks_set(
        dataset=dataset,
        actor=scientist,
        marks={"age": {"personal": True}, "tenure_months": {"excluded": True}},
    )

    errors = refused(launch, QUICK)

    assert errors == {
        "features": [
            "'age' is marked personal data; personal columns are not used as features.",
            "'tenure_months' is marked excluded from training; leave it out, or remove the mark first.",
        ]
    }


def test_a_version_that_failed_validation_is_refused(launch, dataset):
    failed = make_version(dataset, 2, passed=False)

    errors = refused(launch, QUICK, dataset_version=failed)

    assert errors == {
        "dataset_version": ["Version 2 of churn failed validation and has no override: it cannot be used for training."]
    }


def test_an_overridden_version_can_be_launched(launch, dataset, scientist, version):
    dataset_services.version_override_validation(
        version=make_version(dataset, 2, passed=False), actor=scientist, reason="The pilot export is small by design."
    )
    # The override makes version 2 usable; its schema has no 'churned', so the spec (not the status) refuses it.
    overridden = dataset.versions.get(number=2)

    errors = refused(launch, QUICK, dataset_version=overridden)

    assert "dataset_version" not in errors
    assert errors["target"] == ["No column named 'churned' in this dataset version."]


def test_a_version_of_another_project_is_refused(launch, project_factory, scientist):
    from apps.datasets.models import Dataset

    other = Dataset.objects.create(project=project_factory(), name="other", created_by=scientist)

    errors = refused(launch, QUICK, dataset_version=make_version(other, 1))

    assert errors == {"dataset_version": ["Choose a version of a dataset of this project."]}


def test_a_search_budget_over_the_training_time_limit_is_refused(launch, settings):
    settings.TRAINING_SOFT_TIME_LIMIT = 1000

    errors = refused(launch, {**QUICK, "search": {"method": "random", "max_trials": 5, "timeout_seconds": 900}})

    assert errors == {
        "search.timeout_seconds": [
            "Training runs are stopped after 1000 seconds; give the search at most 800 seconds so the final fit and "
            "evaluation fit in."
        ]
    }


def test_a_retired_project_takes_no_experiment(launch, project):
    Project.objects.filter(pk=project.pk).update(status="retired")
    project.refresh_from_db()

    with pytest.raises(ApplicationError) as error:
        launch()

    assert error.value.status == 409
    assert Experiment.objects.count() == 0


@pytest.mark.parametrize("role", [Role.STAKEHOLDER, Role.REVIEWER, Role.COMPLIANCE])
def test_only_scientists_of_the_project_launch(role, launch, member, sent_tasks):
    before = state()

    with pytest.raises(PermissionDenied):
        launch(actor=member(role))

    assert (state(), sent_tasks) == (before, [])


def test_a_scientist_of_another_project_cannot_launch(launch, outsider):
    with pytest.raises(PermissionDenied):
        launch(actor=outsider)
    assert Experiment.objects.count() == 0


def test_a_too_long_name_is_a_field_error(launch):
    assert refused(launch, QUICK, name="x" * 201) == {"name": ["Use at most 200 characters."]}


# --- The worker's bookkeeping -----------------------------------------------------------------------------------
def test_claim_takes_a_queued_run_once(launch):
    run = launch().runs.get()

    claimed = services.run_claim(run_id=run.pk, task_id="task-1")

    assert (claimed.status, claimed.task_id, claimed.attempts) == (RunStatus.RUNNING, "task-1", 1)
    assert claimed.experiment.status == ExperimentStatus.RUNNING
    assert services.run_claim(run_id=run.pk, task_id="task-2") is None


def test_the_same_task_delivered_again_takes_its_running_run_back(launch):
    run = launch().runs.get()
    services.run_claim(run_id=run.pk, task_id="task-1")
    services.run_progress(run_id=run.pk, fraction=0.5, message="half", trials_done=3, trials_total=6, best_score=0.7)

    again = services.run_claim(run_id=run.pk, task_id="task-1")

    assert (again.status, again.attempts, again.progress, again.trials_done, again.best_score) == (
        RunStatus.RUNNING,
        2,
        0.0,
        0,
        None,
    )
    assert again.log_lines.last().message == "Started again (attempt 2): the previous attempt did not finish."


def test_a_cancelled_or_finished_run_cannot_be_claimed(launch, scientist):
    cancelled, finished = launch({**QUICK, "algorithms": ["logistic_regression", "random_forest"]}).runs.all()
    services.run_cancel(run=cancelled, actor=scientist)
    services.run_claim(run_id=finished.pk, task_id="t")
    services.run_succeed(run_id=finished.pk, **OUTCOME)

    assert services.run_claim(run_id=cancelled.pk, task_id="t") is None
    assert services.run_claim(run_id=finished.pk, task_id="t") is None


def test_progress_is_recorded_and_says_stop_once_the_run_is_cancelled(launch, scientist):
    run = launch().runs.get()
    services.run_claim(run_id=run.pk, task_id="t")

    assert services.run_progress(
        run_id=run.pk, fraction=1.7, message="Trial 4 of 10", trials_done=4, trials_total=10, best_score=0.81
    )
    run.refresh_from_db()
    assert (run.progress, run.progress_message, run.trials_done, run.trials_total, run.best_score) == (
        1.0,
        "Trial 4 of 10",
        4,
        10,
        0.81,
    )
    assert services.run_should_stop(run_id=run.pk) is False

    services.run_cancel(run=run, actor=scientist)

    assert services.run_progress(run_id=run.pk, fraction=0.5, message="more") is False
    assert services.run_should_stop(run_id=run.pk) is True
    assert services.run_heartbeat(run_id=run.pk) is False


def test_log_lines_are_kept_while_the_run_is_active(launch):
    run = launch().runs.get()

    assert services.run_log(run_id=run.pk, level="warning", message="slow") is True
    assert services.run_log(run_id=run.pk, level="shout", message="odd level") is True
    services.run_claim(run_id=run.pk, task_id="t")
    services.run_fail(run_id=run.pk, code="bad_data", message="broken")

    assert services.run_log(run_id=run.pk, level="info", message="too late") is False
    assert list(run.log_lines.values_list("level", "message")) == [
        ("warning", "slow"),
        ("info", "odd level"),
        ("error", "broken"),
    ]


def test_a_run_succeeds_exactly_once(launch):
    experiment = launch()
    run = experiment.runs.get()
    services.run_claim(run_id=run.pk, task_id="t")

    done = services.run_succeed(run_id=run.pk, **OUTCOME)

    assert (done.status, done.primary_score, done.test_score, done.progress) == (RunStatus.SUCCEEDED, 0.7, 0.8, 1.0)
    assert done.metrics["test"] == {"f1": 0.8, "roc_auc": None}  # NaN is stored as null
    experiment.refresh_from_db()
    assert (experiment.status, experiment.finished_at is not None) == (ExperimentStatus.SUCCEEDED, True)
    assert last_event().action == "experiment.run_succeeded"
    events = AuditEvent.objects.count()

    with pytest.raises(services.RunNotRunning):
        services.run_succeed(run_id=run.pk, **{**OUTCOME, "primary_score": 0.1})
    assert services.run_fail(run_id=run.pk, code="worker_lost", message="late").status == RunStatus.SUCCEEDED

    run.refresh_from_db()
    assert (run.status, run.primary_score, run.error) == (RunStatus.SUCCEEDED, 0.7, "")
    assert AuditEvent.objects.count() == events


def test_a_failed_run_cannot_succeed_afterwards(launch):
    run = launch().runs.get()
    services.run_claim(run_id=run.pk, task_id="t")
    services.run_fail(run_id=run.pk, code="worker_lost", message="The worker stopped responding.")

    with pytest.raises(services.RunNotRunning):
        services.run_succeed(run_id=run.pk, **OUTCOME)

    run.refresh_from_db()
    assert (run.status, run.error_code, run.artifact_key) == (RunStatus.FAILED, "worker_lost", "")
    assert run.experiment.status == ExperimentStatus.FAILED


def test_the_experiment_status_follows_its_runs(launch, scientist):
    experiment = launch({**QUICK, "algorithms": ["logistic_regression", "random_forest", "lightgbm"]})
    first, second, third = experiment.runs.order_by("number")

    def status():
        experiment.refresh_from_db()
        return experiment.status

    assert status() == ExperimentStatus.QUEUED
    services.run_claim(run_id=first.pk, task_id="a")
    assert status() == ExperimentStatus.RUNNING
    services.run_fail(run_id=first.pk, code="bad_data", message="x")
    assert status() == ExperimentStatus.RUNNING  # one run finished, two queued
    services.run_cancel(run=second, actor=scientist)
    services.run_claim(run_id=third.pk, task_id="c")
    services.run_succeed(run_id=third.pk, **OUTCOME)
    assert status() == ExperimentStatus.SUCCEEDED


def test_every_run_failed_or_cancelled_makes_the_experiment_failed_or_cancelled(launch, scientist):
    failed = launch()
    run = failed.runs.get()
    services.run_claim(run_id=run.pk, task_id="a")
    services.run_fail(run_id=run.pk, code="bad_data", message="x")
    cancelled = launch({**QUICK, "algorithms": ["logistic_regression", "random_forest"]})
    first, second = cancelled.runs.order_by("number")
    services.run_claim(run_id=first.pk, task_id="b")
    services.run_fail(run_id=first.pk, code="bad_data", message="x")
    services.run_cancel(run=second, actor=scientist)

    failed.refresh_from_db()
    cancelled.refresh_from_db()
    assert (failed.status, cancelled.status) == (ExperimentStatus.FAILED, ExperimentStatus.CANCELLED)


# --- Cancelling -------------------------------------------------------------------------------------------------
def test_cancelling_an_experiment_cancels_its_active_runs_and_keeps_finished_ones(launch, scientist):
    experiment = launch({**QUICK, "algorithms": ["logistic_regression", "random_forest", "lightgbm"]})
    done, running, _ = experiment.runs.order_by("number")
    services.run_claim(run_id=done.pk, task_id="a")
    services.run_succeed(run_id=done.pk, **OUTCOME)
    services.run_claim(run_id=running.pk, task_id="b")

    result = services.experiment_cancel(experiment=experiment, actor=scientist)

    statuses = list(experiment.runs.order_by("number").values_list("status", "cancel_requested"))
    assert statuses == [("succeeded", False), ("cancelled", True), ("cancelled", True)]
    assert result.status == ExperimentStatus.SUCCEEDED  # one run has a result
    event = last_event()
    assert (event.action, event.after) == ("experiment.cancel", {"status": "succeeded", "cancelled_runs": [2, 3]})
    with pytest.raises(ApplicationError) as error:
        services.experiment_cancel(experiment=experiment, actor=scientist)
    assert error.value.status == 409


def test_a_finished_run_cannot_be_cancelled(launch, scientist):
    run = launch().runs.get()
    services.run_cancel(run=run, actor=scientist)
    events = AuditEvent.objects.count()

    with pytest.raises(ApplicationError) as error:
        services.run_cancel(run=run, actor=scientist)

    assert (error.value.status, error.value.message) == (409, "The run is already cancelled.")
    assert AuditEvent.objects.count() == events


@pytest.mark.parametrize("role", [Role.STAKEHOLDER, Role.REVIEWER, Role.COMPLIANCE])
def test_only_scientists_of_the_project_cancel(role, launch, member):
    experiment = launch()
    run = experiment.runs.get()
    someone = member(role)
    before = state()

    with pytest.raises(PermissionDenied):
        services.run_cancel(run=run, actor=someone)
    with pytest.raises(PermissionDenied):
        services.experiment_cancel(experiment=experiment, actor=someone)

    assert state() == before


# --- The sweep --------------------------------------------------------------------------------------------------
def _age(run, **fields) -> None:
    Run.objects.filter(pk=run.pk).update(**fields)


def test_sweep_fails_a_running_run_whose_worker_stopped_responding(launch):
    stale, alive = launch({**QUICK, "algorithms": ["logistic_regression", "random_forest"]}).runs.order_by("number")
    for run in (stale, alive):
        services.run_claim(run_id=run.pk, task_id=f"t-{run.number}")
    _age(stale, heartbeat_at=timezone.now() - timedelta(minutes=11))

    touched = services.runs_sweep(stale_after_seconds=600, requeue_after_minutes=15)

    stale.refresh_from_db()
    alive.refresh_from_db()
    assert touched == {"failed_stale": 1, "failed_never_started": 0, "requeued": 0}
    assert (stale.status, stale.error_code) == (RunStatus.FAILED, "worker_lost")
    assert stale.error.startswith("The worker stopped responding (lost or killed): no heartbeat for 10 minutes.")
    assert alive.status == RunStatus.RUNNING
    assert last_event().action == "experiment.run_failed"


def test_sweep_dispatches_again_a_run_whose_message_was_lost_then_gives_up(
    launch, sent_tasks, django_capture_on_commit_callbacks
):
    lost, fresh = launch({**QUICK, "algorithms": ["logistic_regression", "random_forest"]}).runs.order_by("number")
    sent_tasks.clear()
    _age(lost, updated_at=timezone.now() - timedelta(minutes=16))

    with django_capture_on_commit_callbacks(execute=True):
        touched = services.runs_sweep(stale_after_seconds=600, requeue_after_minutes=15)

    assert touched == {"failed_stale": 0, "failed_never_started": 0, "requeued": 1}
    assert sent_tasks == [("experiments.train_run", [str(lost.pk)], "training")]

    _age(fresh, queued_at=timezone.now() - timedelta(hours=25))
    touched = services.runs_sweep(stale_after_seconds=600, requeue_after_minutes=15, give_up_after_hours=24)

    fresh.refresh_from_db()
    assert touched["failed_never_started"] == 1
    assert (fresh.status, fresh.error_code) == (RunStatus.FAILED, "never_started")


def test_plain_json_drops_what_postgresql_cannot_store():
    import numpy as np

    assert services.plain_json(
        {"a": float("inf"), "b": [np.float64(0.5), np.int64(3)], 1: np.array([1.0, np.nan])}
    ) == {
        "a": None,
        "b": [0.5, 3],
        "1": [1.0, None],
    }
