"""experiments.train_run run in-process (eagerly): a run succeeds with metrics and a signed artifact, the same spec
gives the same metrics, bad data fails the run with its message, a redelivery cannot record a second result, and a
tampered artifact is never loaded."""

import hashlib
import hmac
import uuid

import pytest
from django.conf import settings

from apps.audit.models import AuditEvent
from apps.experiments import services
from apps.experiments.choices import ExperimentStatus, RunStatus
from apps.experiments.models import Run
from tests.apps.experiments import experiment_fixtures
from tests.apps.experiments.experiment_helpers import FEATURES, train
from workers.ml.training.artifacts import ArtifactTampered
from workers.tasks.training import load_run_model, train_run_task

pytestmark = pytest.mark.django_db

launch = experiment_fixtures.launch
version = experiment_fixtures.version

# Cross-validation and a small seeded search: the parts of a run where randomness could creep in.
SEARCHED = {
    "target": "churned",
    "features": FEATURES,
    "algorithms": ["lightgbm"],
    "split": {"cv_folds": 3},
    "search": {"method": "bayesian", "max_trials": 4},
    "seed": 11,
}
# What a run's results must repeat exactly (timings and latencies are measurements, not results).
REPRODUCED_SECTIONS = ("validation", "test", "confusion_matrix", "curves", "project", "fairness", "explanations")


def only_run(experiment) -> Run:
    return experiment.runs.get()


def test_a_run_succeeds_with_metrics_and_a_signed_artifact(launch, file_store, project):
    experiment = launch()
    run = only_run(experiment)

    assert train(run) == "succeeded"

    run.refresh_from_db()
    experiment.refresh_from_db()
    assert (run.status, run.progress, run.attempts, run.error) == (RunStatus.SUCCEEDED, 1.0, 1, "")
    assert experiment.status == ExperimentStatus.SUCCEEDED
    assert run.artifact_key == f"projects/{project.pk}/experiments/{experiment.pk}/runs/{run.pk}/model.joblib"
    data = file_store.get_bytes(run.artifact_key)
    assert (run.artifact_sha256, run.artifact_size) == (hashlib.sha256(data).hexdigest(), len(data))
    assert run.artifact_signature == hmac.new(settings.MODEL_SIGNING_KEY.encode(), data, hashlib.sha256).hexdigest()
    assert 0 <= run.primary_score <= 1 and 0 <= run.test_score <= 1
    assert run.metrics["test"]["f1"] == pytest.approx(run.test_score)
    project_verdict = run.metrics["project"]  # judged against the project's success criterion and ROI targets
    assert (project_verdict["primary_metric"], project_verdict["threshold"]) == ("f1", 0.8)
    assert project_verdict["business"]
    assert set(run.environment) >= {"python", "scikit-learn", "lightgbm"}
    assert run.input_signature and run.timings["total"] > 0
    assert run.log_lines.filter(message__startswith="Training logistic_regression on churn v1").exists()
    event = AuditEvent.objects.get(action="experiment.run_succeeded")
    assert (event.object_id, event.after["artifact_sha256"]) == (str(run.pk), run.artifact_sha256)


def test_the_stored_model_predicts_from_raw_columns(launch, file_store):
    from tests.apps.experiments.experiment_helpers import churn_frame

    run = only_run(launch())
    train(run)

    model = load_run_model(run_id=run.pk)

    predictions = model.predict(churn_frame(rows=20, seed=9)[FEATURES])
    assert set(predictions) <= {"yes", "no"} and len(predictions) == 20


def test_the_same_spec_gives_the_same_metrics(launch, file_store):
    first = only_run(launch(SEARCHED))
    second = only_run(launch(SEARCHED))

    assert train(first) == train(second) == "succeeded"

    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.spec, first.seed, first.dataset_sha256) == (second.spec, second.seed, second.dataset_sha256)
    assert (first.params, first.cv, first.primary_score, first.test_score) == (
        second.params,
        second.cv,
        second.primary_score,
        second.test_score,
    )
    assert [trial["score"] for trial in first.trials] == [trial["score"] for trial in second.trials]
    assert len(first.trials) == 4
    for section in REPRODUCED_SECTIONS:
        assert first.metrics[section] == second.metrics[section], section


def test_a_tampered_artifact_is_refused(launch, file_store):
    run = only_run(launch())
    train(run)
    run.refresh_from_db()
    root = settings.ARTIFACT_STORE.removeprefix("file://")
    with open(f"{root}/{run.artifact_key}", "r+b") as stored:  # one flipped byte, as an attacker or a bad disk would
        stored.seek(200)
        byte = stored.read(1)
        stored.seek(200)
        stored.write(bytes([byte[0] ^ 0xFF]))

    with pytest.raises(ArtifactTampered, match="SHA-256"):
        load_run_model(run_id=run.pk)


def test_an_artifact_replaced_with_a_matching_hash_but_no_valid_signature_is_refused(launch, file_store):
    run = only_run(launch())
    train(run)
    run.refresh_from_db()
    forged = b"not the model"
    file_store.delete(run.artifact_key)
    file_store.put_bytes(run.artifact_key, forged)
    Run.objects.filter(pk=run.pk).update(artifact_sha256=hashlib.sha256(forged).hexdigest())

    with pytest.raises(ArtifactTampered, match="signature"):
        load_run_model(run_id=run.pk)


def test_a_model_signed_with_another_key_is_refused(launch, file_store, settings):
    run = only_run(launch())
    train(run)
    settings.MODEL_SIGNING_KEY = "another-key"

    with pytest.raises(ArtifactTampered, match="signature"):
        load_run_model(run_id=run.pk)


def test_a_redelivered_message_cannot_record_a_second_result(launch, file_store):
    run = only_run(launch())
    task_id = f"train-{uuid.uuid4()}"
    assert train_run_task.apply(args=[str(run.pk)], task_id=task_id).get() == "succeeded"
    run.refresh_from_db()
    recorded = (run.artifact_sha256, run.finished_at, run.attempts)
    events = AuditEvent.objects.count()

    assert train_run_task.apply(args=[str(run.pk)], task_id=task_id).get() == "skipped"

    run.refresh_from_db()
    assert (run.artifact_sha256, run.finished_at, run.attempts) == recorded
    assert file_store.get_bytes(run.artifact_key)  # still there, still the recorded one
    assert hashlib.sha256(file_store.get_bytes(run.artifact_key)).hexdigest() == recorded[0]
    assert AuditEvent.objects.count() == events


def test_an_artifact_left_by_an_attempt_that_died_is_replaced(launch, file_store, project):
    experiment = launch()
    run = only_run(experiment)
    key = f"projects/{project.pk}/experiments/{experiment.pk}/runs/{run.pk}/model.joblib"
    file_store.put_bytes(key, b"half of an earlier attempt")

    assert train(run) == "succeeded"

    run.refresh_from_db()
    assert hashlib.sha256(file_store.get_bytes(key)).hexdigest() == run.artifact_sha256
    load_run_model(run_id=run.pk)


def test_a_run_cancelled_before_a_worker_takes_it_is_skipped(launch, scientist, file_store):
    run = only_run(launch())
    services.run_cancel(run=run, actor=scientist)

    assert train(run) == "skipped"

    run.refresh_from_db()
    assert (run.status, run.artifact_key, run.attempts) == (RunStatus.CANCELLED, "", 0)
    assert not any("/experiments/" in key for key in file_store.list_keys("projects/"))


def test_bad_data_that_slipped_past_the_launch_fails_the_run_with_its_message(launch, file_store):
    run = only_run(launch())
    # The launch checks the stored profile; the worker checks the data itself. A spec changed under the run stands for
    # whatever the profile did not show.
    Run.objects.filter(pk=run.pk).update(
        spec={
            **run.spec,
            "features": [*run.spec["features"], "notes"],
            "feature_kinds": {**run.spec["feature_kinds"], "notes": "categorical"},
        }
    )

    assert train(run) == "failed"

    run.refresh_from_db()
    assert (run.status, run.error_code) == (RunStatus.FAILED, "bad_data")
    assert run.error == "'notes' has no values: every row is missing. Leave it out."
    assert run.experiment.status == ExperimentStatus.FAILED
    assert not any("/experiments/" in key for key in file_store.list_keys("projects/"))


def test_missing_data_fails_the_run_with_the_reason(launch, file_store, version):
    run = only_run(launch())
    file_store.delete(version.parquet_key)

    assert train(run) == "failed"

    run.refresh_from_db()
    assert run.error_code == "data_unavailable"
    assert run.error.startswith("The dataset version's stored data is missing or damaged")


def test_the_task_runs_on_the_training_queue_with_its_safety_settings():
    from config.celery import app

    task = app.tasks["experiments.train_run"]

    assert (task.acks_late, task.reject_on_worker_lost) == (True, True)
    assert (task.soft_time_limit, task.time_limit) == (
        settings.TRAINING_SOFT_TIME_LIMIT,
        settings.TRAINING_HARD_TIME_LIMIT,
    )
    assert settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("visibility_timeout", 10**9) > task.time_limit or (
        "data_folder_in" in settings.CELERY_BROKER_TRANSPORT_OPTIONS
    )
    assert settings.CELERY_BEAT_SCHEDULE["experiments-sweep-stale-runs"]["task"] == "experiments.sweep_stale_runs"


def test_loading_the_celery_app_imports_no_ml_library():
    """The web process loads the Celery app (to dispatch), which imports every task module: the training task's ML
    libraries must wait until a worker runs it."""
    import subprocess
    import sys

    code = (
        "import sys, django; django.setup(); import config, workers.tasks.training, apps.experiments.services, "
        "apps.experiments.selectors, apps.experiments.api.views; print(sorted(m for m in sys.modules if m.split('.')[0]"
        " in {'numpy', 'pandas', 'pyarrow', 'sklearn', 'lightgbm', 'shap', 'optuna', 'joblib'}))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)

    assert result.stdout.strip() == "[]"


def test_the_periodic_sweep_fails_a_run_whose_worker_went_silent(launch, settings):
    from datetime import timedelta

    from django.utils import timezone

    from workers.tasks.periodic import sweep_stale_runs

    run = only_run(launch())
    services.run_claim(run_id=run.pk, task_id="lost")
    silent_since = timezone.now() - timedelta(seconds=settings.RUN_STALE_SECONDS + 1)
    Run.objects.filter(pk=run.pk).update(heartbeat_at=silent_since)

    assert sweep_stale_runs.apply().get() == {"failed_stale": 1, "failed_never_started": 0, "requeued": 0}

    run.refresh_from_db()
    assert (run.status, run.error_code) == (RunStatus.FAILED, "worker_lost")
