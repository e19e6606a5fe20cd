"""A data scientist registers a finished run, writes its model card, stages it and requests promotion; a reviewer
sees every gate with its numbers and approves; the project page then shows the new production version.

The run is a real succeeded run with a signed artifact in the store (tests/apps/registry/registry_helpers.py), so
registration copies and verifies real bytes; training itself is covered by the experiments browser test.
"""

import pytest
from playwright.sync_api import expect

from apps.accounts.choices import Role
from apps.registry.choices import Stage
from apps.registry.models import ModelVersion
from tests.apps.experiments import experiment_fixtures
from tests.apps.registry.registry_helpers import WRITTEN, succeeded_run

launch = experiment_fixtures.launch
version = experiment_fixtures.version


@pytest.fixture
def finished_run(launch, file_store):
    return succeeded_run(launch, test_f1=0.9)


def test_scientist_requests_promotion_and_a_reviewer_approves(
    page, new_context, live_server, login, member, scientist, finished_run
):
    reviewer = member(Role.REVIEWER)
    login(page, live_server, scientist)
    page.goto(f"{live_server.url}/experiments/runs/{finished_run.pk}/")
    page.get_by_role("link", name="Register as a model version").click()
    page.get_by_label("…or a new model named").fill("churn")
    page.get_by_role("button", name="Register").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("churn version 1")

    page.get_by_role("link", name="Write the sections people know").click()
    for label, key in (("Intended use", "intended_use_notes"), ("Known limitations", "limitations")):
        page.get_by_label(label).fill(WRITTEN[key])
    page.get_by_label("Ethical considerations").fill(WRITTEN["ethical_considerations"])
    page.get_by_role("button", name="Save the model card").click()
    page.get_by_role("button", name="Move to staging").click()
    page.get_by_label("Justification").fill("Beats the rule-based baseline on recent data.")
    page.get_by_role("button", name="Request promotion").click()
    expect(page.locator("#promotion-status")).to_have_text("Open")

    reviewer_page = new_context().new_page()
    login(reviewer_page, live_server, reviewer)
    reviewer_page.goto(f"{live_server.url}/models/promotions/")
    reviewer_page.get_by_role("link", name="churn v1").click()
    gates = reviewer_page.locator("#gate-table tbody tr")
    expect(gates).to_have_count(7)
    expect(reviewer_page.locator("#gate-table [data-passed='false']")).to_have_count(0)
    threshold = reviewer_page.locator("tr[data-gate='success_threshold']")
    expect(threshold).to_contain_text("0.9")  # the test metric, shown with its number
    reviewer_page.get_by_label("Comment").fill("All gates pass; approved.")
    reviewer_page.get_by_role("button", name="Approve").click()
    expect(reviewer_page.locator("#promotion-status")).to_have_text("Approved")

    registered = ModelVersion.objects.get()
    assert registered.stage == Stage.PRODUCTION
    reviewer_page.goto(f"{live_server.url}/projects/{registered.registered_model.project_id}/")
    expect(reviewer_page.locator("#production-versions")).to_contain_text("churn version 1")
