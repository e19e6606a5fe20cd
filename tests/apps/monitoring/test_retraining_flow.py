"""Retraining end to end: a drift alert on a deployment of the production version starts a retraining with the
champion's spec on the newest data; the real training task trains it; advancing registers the best run as a new
version in staging; the comparison task scores both models on the same rows and opens a promotion request. Production
does not change. Also: a failed experiment fails the retraining, with its reason."""

import numpy as np
import pytest
from django.conf import settings

from apps.audit.models import AuditEvent
from apps.experiments import services as experiment_services
from apps.monitoring.choices import RetrainingStatus, RetrainingTrigger
from apps.monitoring.services.retraining import (
    COMPARE_TASK,
    retraining_advance,
    retraining_on_alert,
    retraining_policy_set,
)
from apps.notifications.choices import Event
from apps.notifications.models import Notification
from apps.registry.choices import RequestStatus, Stage, VersionStatus
from apps.registry.models import ModelVersion
from tests.apps.experiments.experiment_helpers import churn_frame, ingest, train
from tests.apps.monitoring.retraining_helpers import audit_actions, raise_alert
from tests.apps.registry.registry_helpers import WRITTEN
from workers.ml.evaluation.metrics import score
from workers.ml.training.artifacts import load_model
from workers.ml.training.data import load_frame
from workers.ml.training.spec import spec_from_dict
from workers.tasks.monitoring_retraining import compare_challenger_task, test_rows

pytestmark = pytest.mark.django_db


def model_of(version, store):
    data = store.get_bytes(version.artifact_key)
    return load_model(
        data,
        sha256=version.artifact_sha256,
        signature=version.artifact_signature,
        key=settings.MODEL_SIGNING_KEY.encode(),
    )


def scores_on(pipeline, rows, spec) -> dict[str, float]:
    """f1 (the project's primary metric) and ROC AUC of `pipeline` on `rows`, computed here from its predictions."""
    proba = pipeline.predict_proba(rows[list(spec.features)])
    classes = tuple(pipeline.classes_)
    labels = np.asarray(classes)[proba.argmax(axis=1)]
    truth = rows[spec.target].to_numpy()
    return {
        "f1": score("f1", truth, y_pred=labels, classes=classes),
        "roc_auc": score("roc_auc", truth, y_proba=proba, classes=classes),
    }


@pytest.fixture
def policy(production_version, scientist):
    return retraining_policy_set(
        registered_model=production_version.registered_model,
        actor=scientist,
        on_drift_alert=True,
        on_performance_alert=False,
        schedule_days=None,
        enabled=True,
    )


def test_a_drift_alert_retrains_to_a_new_version_with_an_open_request_and_production_unchanged(
    production_version,
    policy,
    dataset,
    scientist,
    deployer,
    file_store,
    sent_tasks,
    django_capture_on_commit_callbacks,
    tmp_path,
):
    champion = production_version
    newer = ingest(dataset, scientist, churn_frame(rows=500, seed=11), name="customers-march.csv")
    alert = raise_alert(champion)
    sent_tasks.clear()  # the champion's own launch

    with django_capture_on_commit_callbacks(execute=True):
        retraining = retraining_on_alert(alert=alert)

    assert retraining.status == RetrainingStatus.TRAINING
    assert (retraining.trigger, retraining.alert_id) == (RetrainingTrigger.DRIFT_ALERT, alert.pk)
    assert (retraining.champion_id, retraining.dataset_version_id) == (champion.pk, newer.pk)
    experiment = retraining.experiment
    assert experiment.dataset_version_id == newer.pk
    assert experiment.created_by_id == scientist.pk  # launched on the owner's behalf
    champion_spec = dict(champion.run.spec)
    assert {key: experiment.spec[key] for key in champion_spec} == champion_spec  # features, algorithm, seed...
    (run,) = experiment.runs.all()
    assert sent_tasks == [("experiments.train_run", [str(run.pk)], "training")]

    assert train(run) == "succeeded"
    run.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):
        retraining = retraining_advance(run=retraining)

    new_version = retraining.new_version
    assert retraining.status == RetrainingStatus.TRAINING  # until the comparison is recorded
    assert (new_version.number, new_version.status, new_version.stage) == (2, VersionStatus.READY, Stage.STAGING)
    assert new_version.run_id == run.pk and new_version.created_by_id == scientist.pk
    assert new_version.card.written == WRITTEN  # copied from the champion's card
    assert sent_tasks[-1] == (COMPARE_TASK, [str(retraining.pk)], "monitoring")

    with django_capture_on_commit_callbacks(execute=True):
        assert compare_challenger_task.apply(args=[str(retraining.pk)]).get() == RetrainingStatus.REQUESTED

    retraining.refresh_from_db()
    assert retraining.status == RetrainingStatus.REQUESTED and retraining.finished_at is not None
    request = retraining.promotion_request
    assert (request.version_id, request.status, request.requester_id) == (
        new_version.pk,
        RequestStatus.OPEN,
        scientist.pk,
    )
    assert request.champion_id == champion.pk

    # The comparison: both models on the challenger's own test rows, recomputed here independently.
    spec = spec_from_dict(run.spec)
    file_store.download_to(newer.parquet_key, tmp_path / "data.parquet")
    rows = test_rows(load_frame(tmp_path / "data.parquet", spec), spec)
    champion_scores = scores_on(model_of(champion, file_store), rows, spec)
    challenger_scores = scores_on(model_of(new_version, file_store), rows, spec)
    comparison = retraining.comparison
    assert comparison["rows"] == len(rows) == 75  # 15 % of 500 rows
    assert comparison["primary_metric"] == "f1"  # the project's
    for metric in ("f1", "roc_auc"):
        row = comparison["metrics"][metric]
        assert row["champion"] == pytest.approx(champion_scores[metric], abs=1e-9)
        assert row["challenger"] == pytest.approx(challenger_scores[metric], abs=1e-9)
        assert row["delta"] == pytest.approx(challenger_scores[metric] - champion_scores[metric], abs=1e-9)
        assert row["challenger"] == pytest.approx(run.metrics["test"][metric], abs=1e-9)  # the run's own test rows
        line = f"{metric}: champion {row['champion']:.4f}, challenger {row['challenger']:.4f}"
        assert f"{line}, difference {row['delta']:+.4f}" in request.justification
    assert set(comparison["metrics"]) >= {"accuracy", "f1", "roc_auc", "log_loss"}
    assert "same 75 held-out test rows" in request.justification

    # Production is untouched: the reviewer decides.
    assert list(
        ModelVersion.objects.filter(registered_model=champion.registered_model, stage=Stage.PRODUCTION).values_list(
            "pk", flat=True
        )
    ) == [champion.pk]

    assert audit_actions(retraining) == [
        "monitoring.retraining_start",
        "monitoring.retraining_card_copied",
        "monitoring.retraining_registered",
        "monitoring.retraining_requested",
    ]
    registry_events = AuditEvent.objects.filter(
        actor_id=scientist.pk, object_id__in=[str(new_version.pk), str(request.pk)]
    )
    assert {"registry.version_create", "registry.stage_change", "registry.request_open"} <= set(
        registry_events.values_list("action", flat=True)
    )
    told = Notification.objects.filter(event=Event.MONITORING_RETRAINING_REQUESTED)
    assert set(told.values_list("recipient_id", flat=True)) == {scientist.pk, deployer.pk}


def test_a_failed_experiment_fails_the_retraining_with_its_reason(
    production_version, policy, sent_tasks, django_capture_on_commit_callbacks, deployer
):
    with django_capture_on_commit_callbacks(execute=True):
        retraining = retraining_on_alert(alert=raise_alert(production_version))
    (run,) = retraining.experiment.runs.all()
    experiment_services.run_fail(run_id=run.pk, code="bad_data", message="The target has one class.")

    with django_capture_on_commit_callbacks(execute=True):
        retraining = retraining_advance(run=retraining)

    assert retraining.status == RetrainingStatus.FAILED
    assert "The target has one class." in retraining.error
    assert retraining.new_version_id is None and retraining.promotion_request_id is None
    assert audit_actions(retraining)[-1] == "monitoring.retraining_failed"
    told = Notification.objects.filter(event=Event.MONITORING_RETRAINING_FAILED)
    assert set(told.values_list("recipient_id", flat=True)) == {policy.owner_id, deployer.pk}
    assert not [name for name, _, _ in sent_tasks if name == COMPARE_TASK]


def test_advancing_before_the_experiment_finished_changes_nothing(
    production_version, policy, sent_tasks, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        retraining = retraining_on_alert(alert=raise_alert(production_version))
    events = AuditEvent.objects.count()

    assert retraining_advance(run=retraining).status == RetrainingStatus.TRAINING
    assert AuditEvent.objects.count() == events
