"""Checks run through the real task in process: drift found on shifted inputs and not on same-distribution ones,
performance from ground truth posted late, an alert raised once, acknowledged and resolved, realised value."""

import pytest

from apps.audit.models import AuditEvent
from apps.deployments.services.predictions import ground_truth_record
from apps.monitoring.choices import AlertStatus, Figure, JobStatus, Operator
from apps.monitoring.models import Alert, MonitorCheck
from apps.monitoring.services import checks as check_services
from apps.monitoring.services import monitors as monitor_services
from tests.apps.monitoring.monitoring_fixtures import log_predictions, shifted
from workers.tasks.monitoring import run_check_task

pytestmark = pytest.mark.django_db


def run_check(monitor, actor):
    check = monitor_services.check_request(monitor=monitor, actor=actor)
    outcome = run_check_task.apply(args=[str(check.pk)]).get()
    check.refresh_from_db()
    assert outcome == "succeeded", check.error
    return check


def test_shifted_inputs_drift_and_raise_one_drift_alert(deployed, production_version, churn_rows, deployer):
    log_predictions(deployed, production_version, shifted(churn_rows))

    check = run_check(deployed.monitor, deployer)

    assert check.drift.get("dataset_drift") is True, (check.drift, check.figures)
    assert check.figures[Figure.DRIFT_SHARE] > 0.5
    assert {column["column"] for column in check.drift["columns"] if column["drifted"]} >= {"age", "plan"}
    assert check.report_key and check.rows == 600
    [alert] = Alert.objects.filter(rule__figure=Figure.DRIFT_SHARE)
    assert alert.status == AlertStatus.OPEN and alert.value == check.figures[Figure.DRIFT_SHARE]


def test_same_distribution_inputs_do_not_drift(deployed, production_version, deployer):
    from tests.apps.experiments.experiment_helpers import churn_frame

    log_predictions(deployed, production_version, churn_frame(rows=600, seed=21))

    check = run_check(deployed.monitor, deployer)

    assert check.drift["dataset_drift"] is False
    assert check.figures[Figure.DRIFT_SHARE] < 0.5
    assert not Alert.objects.filter(rule__figure=Figure.DRIFT_SHARE).exists()


def test_an_alert_is_raised_once_acknowledged_and_resolved(deployed, production_version, churn_rows, deployer):
    log_predictions(deployed, production_version, shifted(churn_rows))
    run_check(deployed.monitor, deployer)
    second = run_check(deployed.monitor, deployer)  # still breaching: the open alert is seen again, not repeated
    [alert] = Alert.objects.filter(rule__figure=Figure.DRIFT_SHARE)
    assert alert.last_seen_at == second.finished_at

    check_services.alert_acknowledge(alert=alert, actor=deployer, note="Looking at the new customer segment.")
    run_check(deployed.monitor, deployer)
    assert Alert.objects.filter(rule__figure=Figure.DRIFT_SHARE).count() == 1
    with pytest.raises(Exception) as refused:
        check_services.alert_resolve(alert=alert, actor=deployer, note="")
    assert "note" in refused.value.errors
    check_services.alert_resolve(alert=alert, actor=deployer, note="Retrained on the new segment.")
    alert.refresh_from_db()
    assert alert.status == AlertStatus.RESOLVED and alert.resolved_by == deployer

    run_check(deployed.monitor, deployer)  # breached again after resolution: a new alert
    assert Alert.objects.filter(rule__figure=Figure.DRIFT_SHARE).count() == 2
    actions = set(AuditEvent.objects.filter(action__startswith="monitoring.alert_").values_list("action", flat=True))
    assert actions == {"monitoring.alert_raise", "monitoring.alert_acknowledge", "monitoring.alert_resolve"}


def test_performance_and_realised_value_from_ground_truth_posted_late(
    deployed, production_version, churn_rows, deployer, member
):
    predictions = log_predictions(deployed, production_version, churn_rows.head(40))
    before = run_check(deployed.monitor, deployer)
    assert before.performance["rows"] == 0 and not before.value["overall"]["computed"]

    stakeholder = member("stakeholder")
    truths = list(churn_rows.head(40)["churned"])
    for prediction, actual in zip(predictions, truths, strict=True):
        ground_truth_record(prediction=prediction, actor=stakeholder, actual=actual)
    after = run_check(deployed.monitor, deployer)

    assert after.performance["rows"] == 40
    right = sum(str(p.outputs["predict"]) == str(a) for p, a in zip(predictions, truths, strict=True))
    assert after.performance["metrics"]["accuracy"] == pytest.approx(right / 40)
    assert after.figures[f"metric:{'accuracy'}"] == pytest.approx(right / 40)
    definition = deployed.project.definition
    if definition.value_per_correct_decision is not None and definition.cost_false_positive is not None:
        assert after.value["overall"]["decisions"] == 40


def test_a_rule_on_a_figure_the_check_could_not_compute_never_fires(deployed, production_version, deployer):
    monitor_services.alert_rule_create(
        monitor=deployed.monitor,
        actor=deployer,
        data={"figure": Figure.METRIC, "metric": "roc_auc", "operator": Operator.BELOW, "threshold": 0.99},
    )
    check = run_check(deployed.monitor, deployer)  # no predictions, no ground truth
    assert check.status == JobStatus.SUCCEEDED and check.drift["computed"] is False
    assert not Alert.objects.exists()
    assert MonitorCheck.objects.count() == 1
