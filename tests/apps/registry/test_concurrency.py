"""Two reviewers approve two versions of one model at the same moment, each on its own database connection: the
promotions run one after the other (every version of the model is locked first), and exactly one version ends in
production. Real PostgreSQL transactions, so the test database is not wrapped in one transaction."""

import threading

import pytest
from django.db import connection

from apps.registry import services
from apps.registry.choices import RequestStatus, Stage
from apps.registry.models import ModelVersion, PromotionRequest
from tests.apps.registry.registry_helpers import staged_version

pytestmark = pytest.mark.django_db(transaction=True)


def test_concurrent_approvals_of_two_versions_leave_exactly_one_in_production(
    run_of, scientist, reviewer, second_reviewer
):
    v1 = staged_version(run_of(), scientist)
    v2 = staged_version(run_of(), scientist)
    first = services.promotion_request_open(version=v1, actor=scientist, justification="v1")
    second = services.promotion_request_open(version=v2, actor=scientist, justification="v2")
    start = threading.Barrier(2)
    outcomes: dict[str, object] = {}

    def approve(request, actor):
        try:
            start.wait(timeout=10)
            outcomes[str(request.pk)] = services.promotion_approve(request=request, actor=actor, comment="ship it")
        except Exception as error:
            outcomes[str(request.pk)] = error
        finally:
            connection.close()

    threads = [
        threading.Thread(target=approve, args=(first, reviewer)),
        threading.Thread(target=approve, args=(second, second_reviewer)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert all(isinstance(outcome, PromotionRequest) for outcome in outcomes.values()), outcomes
    production = list(ModelVersion.objects.filter(registered_model=v1.registered_model, stage=Stage.PRODUCTION))
    assert len(production) == 1
    loser = ({v1.pk, v2.pk} - {production[0].pk}).pop()
    assert ModelVersion.objects.get(pk=loser).stage == Stage.ARCHIVED
    assert set(PromotionRequest.objects.values_list("status", flat=True)) == {RequestStatus.APPROVED}
