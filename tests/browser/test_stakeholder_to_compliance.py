"""The issue's end-to-end path in Chromium: a stakeholder logs in, files a problem definition with one invalid field,
fixes it and submits it for review; a compliance officer then exports the audit trail as CSV and finds those events."""

import csv
import hashlib
import io
from pathlib import Path

from apps.accounts.choices import Role
from apps.projects.models import Project
from tests.factories import UserFactory


def fill_definition(page, *, threshold: str) -> None:
    page.get_by_label("Title").fill("Fraud screening")
    page.get_by_label("Business problem").fill("Card fraud is found weeks late, after the money is gone.")
    page.get_by_label("Problem type").select_option("binary")
    page.get_by_label("Primary success metric").select_option("recall")
    page.get_by_label("Threshold").fill(threshold)
    page.get_by_label("Value of each correct decision").fill("25")
    page.get_by_label("Cost of each false positive").fill("3")
    page.get_by_label("Cost of each false negative").fill("400")
    page.get_by_label("Expected decisions a year").fill("2000000")
    page.get_by_label("Implementation cost").fill("250000")


def test_stakeholder_files_and_submits_then_compliance_exports_those_events(new_context, live_server, login):
    stakeholder = UserFactory(role=Role.STAKEHOLDER, username="stella")
    compliance = UserFactory(role=Role.COMPLIANCE, username="connor")

    # The stakeholder files a definition with an impossible recall, sees the message by the field, and fixes it.
    stakeholder_context = new_context()
    page = stakeholder_context.new_page()
    login(page, live_server, stakeholder)
    page.get_by_role("link", name="Projects").click()
    page.get_by_role("link", name="New problem definition").click()
    fill_definition(page, threshold="80")
    page.get_by_role("button", name="File the problem definition").click()

    assert page.locator("#id_primary_threshold_error").inner_text() == (
        "Recall is a share: enter a value between 0 and 1."
    )
    assert Project.objects.count() == 0
    assert page.get_by_label("Title").input_value() == "Fraud screening"  # nothing typed is lost

    page.get_by_label("Threshold").fill("0.8")
    page.get_by_role("button", name="File the problem definition").click()
    page.wait_for_url(f"{live_server.url}/projects/*/")
    project = Project.objects.get()
    page.get_by_role("button", name="Submit for review").click()
    page.wait_for_load_state()
    assert page.locator("#project-status").inner_text() == "Submitted"

    # The compliance officer exports the audit trail filtered to the stakeholder's actions.
    compliance_context = new_context(accept_downloads=True)
    page = compliance_context.new_page()
    login(page, live_server, compliance)
    page.get_by_role("link", name="Audit").click()
    page.get_by_label("Actor").fill("stella")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_load_state("networkidle")
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Export CSV").click()
    body = Path(download_info.value.path()).read_bytes()
    with page.expect_download() as sidecar_info:
        page.get_by_role("link", name="CSV digest (.sha256)").click()
    sidecar = Path(sidecar_info.value.path()).read_text()

    rows = list(csv.DictReader(io.StringIO(body.decode("utf-8"))))
    actions_on_project = [row["action"] for row in rows if row["object_id"] == str(project.pk)]
    assert sorted(actions_on_project) == ["project.create", "project.submit"]
    assert {row["actor_username"] for row in rows} == {"stella"}
    assert sidecar.split()[0] == hashlib.sha256(body).hexdigest()
