"""Ground truth by prediction id: single and bulk, replacing audited with the old value, and every refusal (wrong
type for the version's problem type, unknown id, a prediction the actor may not record for, too many items)
changing nothing."""

import pytest
from django.core.exceptions import PermissionDenied

from apps.accounts.choices import Role
from apps.audit.models import AuditEvent
from apps.core.exceptions import ApplicationError
from apps.deployments.models import GroundTruth
from apps.deployments.services.predictions import MAX_BULK_ITEMS, ground_truth_record, ground_truth_record_bulk
from tests.apps.deployments.prediction_helpers import make_deployment, prediction_row, state
from tests.factories import MembershipFactory, ProjectFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def deployment(production_version):
    return make_deployment(production_version)


@pytest.fixture
def prediction(deployment, production_version):
    return prediction_row(deployment, production_version)


@pytest.fixture
def recorder(member):
    return member(Role.STAKEHOLDER)


def test_a_stakeholder_records_an_outcome_and_posting_again_replaces_it_audited_with_the_old_value(
    prediction, recorder
):
    ground_truth_record(prediction=prediction, actor=recorder, actual="yes")

    truth = ground_truth_record(prediction=prediction, actor=recorder, actual="no")

    assert GroundTruth.objects.get(prediction=prediction).actual == "no" == truth.actual
    event = AuditEvent.objects.order_by("-seq").first()
    assert event.action == "ground_truth.record" and event.object_id == prediction.pk
    assert (event.before["actual"], event.after["actual"]) == ("yes", "no")
    assert event.project_id == prediction.deployment.project_id


@pytest.mark.parametrize("actual", ["maybe", 1, True, None, ["yes"], 0.5])
def test_a_value_that_is_not_one_of_the_versions_classes_is_refused(prediction, recorder, actual):
    before = state()

    with pytest.raises(ApplicationError) as refused:
        ground_truth_record(prediction=prediction, actor=recorder, actual=actual)

    assert list(refused.value.errors) == ["actual"] and "'no', 'yes'" in refused.value.errors["actual"][0]
    assert state() == before


def test_a_reviewer_may_not_record(prediction, member):
    before = state()

    with pytest.raises(PermissionDenied):
        ground_truth_record(prediction=prediction, actor=member(Role.REVIEWER), actual="yes")

    assert state() == before


def test_bulk_records_every_item_in_one_audit_event(deployment, production_version, recorder):
    predictions = [prediction_row(deployment, production_version) for _ in range(3)]
    ground_truth_record(prediction=predictions[0], actor=recorder, actual="no")
    events = AuditEvent.objects.count()

    recorded = ground_truth_record_bulk(
        actor=recorder, items=[{"prediction_id": row.pk, "actual": "yes"} for row in predictions]
    )

    assert recorded == 3
    assert sorted(GroundTruth.objects.values_list("actual", flat=True)) == ["yes", "yes", "yes"]
    assert AuditEvent.objects.count() == events + 1
    event = AuditEvent.objects.order_by("-seq").first()
    assert event.action == "ground_truth.record_bulk"
    assert (event.after["count"], event.after["replaced"]) == (3, 1)
    assert event.before == {"replaced": {predictions[0].pk: "no"}}


def test_one_bad_item_refuses_the_whole_bulk_call_naming_it(deployment, production_version, recorder):
    good, other = prediction_row(deployment, production_version), prediction_row(deployment, production_version)
    before = state()

    with pytest.raises(ApplicationError) as refused:
        ground_truth_record_bulk(
            actor=recorder,
            items=[
                {"prediction_id": good.pk, "actual": "yes"},
                {"prediction_id": "f" * 32, "actual": "yes"},
                {"prediction_id": other.pk, "actual": 3.5},
                {"prediction_id": good.pk, "actual": "no"},
                {"prediction_id": other.pk},
            ],
        )

    assert refused.value.errors.keys() == {
        "items[1].prediction_id",
        "items[2].actual",
        "items[3].prediction_id",
        "items[4].prediction_id",
    }
    assert state() == before


def test_bulk_refuses_predictions_of_a_project_the_actor_may_not_record_for(deployment, production_version, recorder):
    elsewhere = ProjectFactory()
    MembershipFactory(user=recorder, project=elsewhere, role=Role.REVIEWER)
    mine = prediction_row(deployment, production_version)
    foreign_deployment = make_deployment(production_version, name="churn-other")
    foreign_deployment.project = elsewhere
    foreign_deployment.save()
    foreign = prediction_row(foreign_deployment, production_version)
    before = state()

    with pytest.raises(ApplicationError) as refused:
        ground_truth_record_bulk(
            actor=recorder,
            items=[{"prediction_id": mine.pk, "actual": "yes"}, {"prediction_id": foreign.pk, "actual": "yes"}],
        )

    assert list(refused.value.errors) == ["items[1].prediction_id"]
    assert state() == before


def test_bulk_refuses_more_than_the_limit_and_an_actor_who_may_record_nowhere(prediction, recorder, member):
    before = state()
    too_many = [{"prediction_id": prediction.pk, "actual": "yes"}] * (MAX_BULK_ITEMS + 1)

    with pytest.raises(ApplicationError) as refused:
        ground_truth_record_bulk(actor=recorder, items=too_many)
    with pytest.raises(PermissionDenied):
        ground_truth_record_bulk(actor=member(Role.REVIEWER), items=[{"prediction_id": prediction.pk, "actual": "yes"}])

    assert list(refused.value.errors) == ["items"]
    assert state() == before


def test_regression_outcomes_must_be_finite_numbers():
    from types import SimpleNamespace

    from apps.deployments.services.predictions import actual_refusal

    version = SimpleNamespace(run=SimpleNamespace(spec={"problem_type": "regression"}), input_signature={}, metrics={})

    assert actual_refusal(version, 12.5) is None and actual_refusal(version, 3) is None
    assert actual_refusal(version, float("nan")) and actual_refusal(version, True) and actual_refusal(version, "1")
