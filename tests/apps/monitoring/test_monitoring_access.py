"""Who may read and change monitoring (API and pages), denied calls changing nothing; field-level errors; the
overview for reviewers; the Evidently report served sandboxed."""

import pytest

from apps.accounts.choices import Role
from apps.audit.models import AuditEvent
from apps.monitoring.choices import AlertStatus, Figure, JobStatus, Operator
from apps.monitoring.models import Alert, AlertRule, Monitor, MonitorCheck

pytestmark = pytest.mark.django_db

ROLES = ["anonymous", "non_member", Role.STAKEHOLDER, Role.SCIENTIST, Role.REVIEWER, Role.COMPLIANCE, "admin"]


def state() -> tuple:
    return (
        sorted(Monitor.objects.values_list("window_hours", "schedule_minutes", "enabled")),
        sorted(AlertRule.objects.values_list("figure", "threshold", "enabled")),
        sorted(Alert.objects.values_list("status", "note")),
        MonitorCheck.objects.count(),
        AuditEvent.objects.count(),
    )


@pytest.fixture
def alert(deployed):
    monitor = deployed.monitor
    rule = monitor.rules.get(figure=Figure.DRIFT_SHARE)
    check = MonitorCheck.objects.create(monitor=monitor, status=JobStatus.SUCCEEDED, figures={"drift_share": 0.8})
    return Alert.objects.create(
        rule=rule,
        monitor=monitor,
        check_run=check,
        severity=rule.severity,
        value=0.8,
        threshold=0.5,
        message="churn: drift",
        last_seen_at=check.created_at,
    )


@pytest.mark.parametrize("kind,expected", zip(ROLES, [401, 404, 200, 200, 200, 200, 200], strict=True))
def test_reading_monitoring(kind, expected, deployed, alert, caller, api_client_as):
    client = api_client_as(caller(kind))
    for url in (
        f"/api/v1/deployments/{deployed.pk}/monitor/",
        f"/api/v1/deployments/{deployed.pk}/monitor/checks/",
        f"/api/v1/monitoring/alerts/{alert.pk}/",
    ):
        assert client.get(url).status_code == expected, url


@pytest.mark.parametrize("kind,expected", zip(ROLES, [401, 404, 403, 200, 200, 403, 200], strict=True))
def test_changing_the_monitor(kind, expected, deployed, caller, api_client_as):
    before = state()
    answer = api_client_as(caller(kind)).patch(
        f"/api/v1/deployments/{deployed.pk}/monitor/", {"window_hours": 6}, format="json"
    )
    assert answer.status_code == expected, answer.content
    if expected == 200:
        assert answer.json()["window_hours"] == 6
    else:
        assert state() == before


@pytest.mark.parametrize("kind,expected", zip(ROLES, [401, 404, 403, 200, 200, 403, 200], strict=True))
def test_handling_an_alert(kind, expected, alert, caller, api_client_as):
    before = state()
    answer = api_client_as(caller(kind)).post(
        f"/api/v1/monitoring/alerts/{alert.pk}/acknowledge/", {"note": "on it"}, format="json"
    )
    assert answer.status_code == expected, answer.content
    if expected == 200:
        assert answer.json()["status"] == AlertStatus.ACKNOWLEDGED
    else:
        assert state() == before


def test_errors_name_the_field(deployed, alert, deployer, api_client_as):
    client = api_client_as(deployer)
    bad_window = client.patch(f"/api/v1/deployments/{deployed.pk}/monitor/", {"window_hours": 0}, format="json")
    no_metric = client.post(
        f"/api/v1/deployments/{deployed.pk}/monitor/rules/",
        {"figure": Figure.METRIC, "operator": Operator.BELOW, "threshold": 0.7},
        format="json",
    )
    no_note = client.post(f"/api/v1/monitoring/alerts/{alert.pk}/resolve/", {}, format="json")
    assert bad_window.status_code == 400 and "window_hours" in bad_window.json()["errors"]
    assert no_metric.status_code == 400 and "metric" in no_metric.json()["errors"]
    assert no_note.status_code == 400 and "note" in no_note.json()["errors"]


def test_a_new_deployment_gets_a_monitor_with_default_rules_and_a_schedule(deployed):
    from django_celery_beat.models import PeriodicTask

    monitor = deployed.monitor
    figures = set(monitor.rules.values_list("figure", flat=True))
    assert {Figure.DRIFT_SHARE, Figure.ERROR_RATE, Figure.METRIC} <= figures
    task = PeriodicTask.objects.get(pk=monitor.periodic_task_id)
    assert task.task == "monitoring.scheduled_check" and task.enabled


@pytest.mark.parametrize(
    "kind,sees",
    [
        ("other_reviewer", True),
        ("admin", True),
        (Role.STAKEHOLDER, True),
        (Role.SCIENTIST, True),
        ("non_member", False),
    ],
)
def test_the_overview_shows_every_deployment_to_reviewers_and_admins(kind, sees, deployed, caller, client):
    from tests.factories import UserFactory

    # A reviewer of no project sees every deployment's health; others see their projects' deployments.
    user = UserFactory(role=Role.REVIEWER) if kind == "other_reviewer" else caller(kind)
    client.force_login(user)
    page = client.get("/monitoring/")
    assert page.status_code == 200
    assert (b'data-deployment="churn"' in page.content) == sees


@pytest.mark.parametrize("kind,expected", zip(ROLES[1:], [404, 200, 200, 200, 200, 200], strict=True))
def test_the_dashboard_and_alert_pages(kind, expected, deployed, alert, caller, client):
    client.force_login(caller(kind))
    assert client.get(f"/monitoring/deployments/{deployed.pk}/").status_code == expected
    assert client.get(f"/monitoring/alerts/{alert.pk}/").status_code == expected


def test_the_evidently_report_is_served_sandboxed(deployed, alert, deployer, client, file_store):
    check = alert.check_run
    check.report_key = f"monitoring/{deployed.monitor.pk}/checks/{check.pk}/drift-report.html"
    check.save()
    file_store.put_bytes(check.report_key, b"<html><script>1</script></html>", overwrite=True)
    client.force_login(deployer)
    answer = client.get(f"/monitoring/checks/{check.pk}/report/")
    assert answer.status_code == 200 and answer.content.startswith(b"<html>")
    assert answer["Content-Security-Policy"].startswith("sandbox")


def test_checks_pause_while_the_deployment_is_stopped(deployed, deployer):
    from django_celery_beat.models import PeriodicTask

    from apps.deployments.services import deployments as deployment_services

    deployment_services.deployment_stop(deployment=deployed, actor=deployer, reason="Maintenance.")
    assert not PeriodicTask.objects.get(pk=deployed.monitor.periodic_task_id).enabled
    deployment_services.deployment_start(deployment=deployed, actor=deployer)
    assert PeriodicTask.objects.get(pk=deployed.monitor.periodic_task_id).enabled


def test_the_overview_costs_the_same_queries_however_many_checks_are_kept(deployed, admin_user):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from apps.monitoring.selectors import overview

    def checks(count: int):
        for share in range(count):
            MonitorCheck.objects.create(monitor=deployed.monitor, status=JobStatus.SUCCEEDED, figures={"drift": share})

    checks(1)
    with CaptureQueriesContext(connection) as few:
        overview(actor=admin_user)
    checks(5)
    with CaptureQueriesContext(connection) as many:
        [row] = overview(actor=admin_user)
    assert len(many) == len(few)
    assert row.last_check == MonitorCheck.objects.order_by("-created_at").first()
