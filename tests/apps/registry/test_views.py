"""Registry pages: registering a run, the version page with its card and stage actions, the promotion page with its
gates and decisions (self-approval refused here too), rollback, the stage history and the project page."""

import re

import pytest

from apps.accounts.choices import Role
from apps.registry import services
from apps.registry.choices import RequestStatus, Stage, VersionStatus
from apps.registry.models import ModelVersion, PromotionRequest
from tests.apps.registry.registry_helpers import WRITTEN, staged_version, state

pytestmark = pytest.mark.django_db


def test_a_scientist_registers_a_run_from_its_page(client, scientist, run_of):
    run = run_of()
    client.force_login(scientist)
    run_page = client.get(f"/experiments/runs/{run.pk}/").content.decode()
    assert f'href="/models/register/?run={run.pk}"' in run_page
    assert client.get(f"/models/register/?run={run.pk}").status_code == 200
    response = client.post("/models/register/", {"run": str(run.pk), "model_name": "churn", "tags": "a, b"})
    version = ModelVersion.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/models/versions/{version.pk}/"
    assert (version.status, version.tags, version.registered_model.name) == (VersionStatus.READY, ["a", "b"], "churn")
    page = client.get(f"/models/versions/{version.pk}/").content.decode()
    assert version.artifact_sha256 in page
    assert "Not written yet: required before a promotion to production." in page  # the card's human sections
    assert 'value="staging"' in page


def test_registering_without_a_model_name_is_refused_next_to_the_field(client, scientist, run_of):
    run = run_of()
    client.force_login(scientist)
    before = state()
    response = client.post("/models/register/", {"run": str(run.pk)})
    assert response.status_code == 400
    assert 'class="field field-invalid"' in response.content.decode() or "form-errors" in response.content.decode()
    assert state() == before


def test_model_card_sections_are_written_in_a_form_and_downloadable(client, scientist, run_of):
    version = services.model_version_register(run=run_of(), actor=scientist, model_name="churn")
    client.force_login(scientist)
    form = client.get(f"/models/versions/{version.pk}/card/").content.decode()
    assert 'name="limitations"' in form
    response = client.post(f"/models/versions/{version.pk}/card/", WRITTEN)
    assert response.status_code == 302
    page = client.get(f"/models/versions/{version.pk}/").content.decode()
    assert WRITTEN["limitations"] in page
    document = client.get(f"/models/versions/{version.pk}/card.html?download=1")
    assert document["Content-Disposition"].startswith('attachment; filename="model-card-churn-v1.html"')
    assert "@media print" in document.content.decode() and WRITTEN["limitations"] in document.content.decode()


def test_stakeholders_see_versions_but_cannot_register(client, member, scientist, run_of):
    run = run_of()
    version = services.model_version_register(run=run, actor=scientist, model_name="churn")
    client.force_login(member(Role.STAKEHOLDER))
    assert client.get(f"/models/versions/{version.pk}/").status_code == 200
    assert client.get(f"/models/register/?run={run.pk}").status_code == 403
    assert client.post("/models/register/", {"run": str(run.pk), "model_name": "x"}).status_code == 403


def test_a_reviewer_sees_the_gates_and_approves_and_the_project_page_shows_production(
    client, scientist, reviewer, run_of
):
    version = staged_version(run_of(), scientist)
    client.force_login(scientist)
    response = client.post(
        f"/models/versions/{version.pk}/promote/", {"request-justification": "Better recall on recent data."}
    )
    promotion = PromotionRequest.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/models/promotions/{promotion.pk}/"

    client.force_login(reviewer)
    page = client.get(f"/models/promotions/{promotion.pk}/").content.decode()
    assert len(re.findall(r'<tr data-gate="\w+" data-passed="true">', page)) == len(promotion.gates)
    assert 'id="approve-form"' in page
    response = client.post(f"/models/promotions/{promotion.pk}/approve/", {"approve-comment": "Gates pass; ship it."})
    assert response.status_code == 302
    version.refresh_from_db()
    assert version.stage == Stage.PRODUCTION
    project_page = client.get(f"/projects/{version.registered_model.project_id}/").content.decode()
    assert f'<a href="/models/versions/{version.pk}/">churn version 1</a>' in project_page
    history = client.get(f"/models/{version.registered_model_id}/").content.decode()
    assert "promotion request" in history and "Gates pass" not in history


def test_self_approval_is_refused_through_the_page(client, admin_user, member, project, run_of):
    """An admin may open a request and may decide requests, but never one they opened."""
    scientist = member(Role.SCIENTIST)
    version = staged_version(run_of(actor=scientist), scientist)
    promotion = services.promotion_request_open(version=version, actor=admin_user, justification="Ready.")
    client.force_login(admin_user)
    page = client.get(f"/models/promotions/{promotion.pk}/").content.decode()
    assert 'id="approve-form"' not in page and "another reviewer must decide it" in page
    before = state()
    response = client.post(f"/models/promotions/{promotion.pk}/approve/", {"approve-comment": "ok"})
    assert response.status_code == 403
    assert "You opened this request: another reviewer must decide it." in response.content.decode()
    assert state() == before


def test_a_rejection_needs_a_reason_next_to_the_field(client, scientist, reviewer, run_of):
    version = staged_version(run_of(), scientist)
    promotion = services.promotion_request_open(version=version, actor=scientist, justification="Ready.")
    client.force_login(reviewer)
    before = state()
    response = client.post(f"/models/promotions/{promotion.pk}/reject/", {"reject-reason": ""})
    assert response.status_code == 400 and 'id="id_reject-reason_error"' in response.content.decode()
    assert state() == before
    response = client.post(f"/models/promotions/{promotion.pk}/reject/", {"reject-reason": "Recall too low."})
    assert response.status_code == 302
    promotion.refresh_from_db()
    assert promotion.status == RequestStatus.REJECTED


def test_rollback_from_the_model_page_restores_the_previous_production_version(
    client, scientist, reviewer, member, run_of
):
    first = staged_version(run_of(), scientist)
    services.promotion_approve(
        request=services.promotion_request_open(version=first, actor=scientist, justification="First."),
        actor=reviewer,
        comment="ok",
    )
    second = staged_version(run_of(), scientist, model_name="churn")
    services.promotion_approve(
        request=services.promotion_request_open(version=second, actor=scientist, justification="Second."),
        actor=reviewer,
        comment="ok",
    )
    client.force_login(member(Role.REVIEWER))
    response = client.post(f"/models/{first.registered_model_id}/rollback/", {"rollback-reason": "Complaints."})
    assert response.status_code == 302
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.stage, second.stage) == (Stage.PRODUCTION, Stage.ARCHIVED)
    history = client.get(f"/models/{first.registered_model_id}/").content.decode()
    assert "<strong>Rollback</strong>: Complaints." in history


def test_promotion_list_shows_open_requests_with_their_approval_count(client, scientist, reviewer, run_of):
    version = staged_version(run_of(), scientist)
    promotion = services.promotion_request_open(version=version, actor=scientist, justification="Ready.")
    client.force_login(reviewer)
    page = client.get("/models/promotions/").content.decode()
    assert f'href="/models/promotions/{promotion.pk}/"' in page
    assert f"0 of {promotion.required_approvals}" in page
