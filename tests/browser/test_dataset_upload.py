"""A data scientist uploads a CSV in Chromium, watches the job finish without reloading, and finds the profile, a PII
flag and the validation failure that blocks the version from training.

The ingestion runs on a real `celery worker` process (tests/support/celery_worker.py) against the test database —
PostgreSQL, the target. An in-memory SQLite test database cannot be opened by another process, so there (and only
there) the dispatched task runs in the web process instead (the eager fallback below).
"""

import csv
import io

import pytest
from playwright.sync_api import expect

from apps.accounts.choices import Role
from apps.core.exceptions import ApplicationError
from apps.datasets import services
from apps.datasets.choices import JobStatus
from apps.datasets.models import DatasetVersion, IngestionJob
from tests.factories import MembershipFactory, ProblemDefinitionFactory, UserFactory

ROWS = 50
JOB_SECONDS = 90


def customers_csv(rows: int = ROWS) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["customer_id", "email", "age", "plan", "monthly_spend"])
    for index in range(1, rows + 1):
        plan = ("basic", "pro", "enterprise")[index % 3]
        writer.writerow([index, f"customer{index}@example.com", 18 + (index * 7) % 60, plan, f"{index * 1.5:.2f}"])
    return out.getvalue().encode()


def test_scientist_uploads_a_csv_and_a_failed_validation_blocks_training(page, live_server, login, task_worker):
    project = ProblemDefinitionFactory(project__name="Churn reduction").project
    scientist = UserFactory(role=Role.SCIENTIST, username="dana")
    MembershipFactory(user=scientist, project=project, role=Role.SCIENTIST)
    dataset = services.dataset_create(project=project, actor=scientist, name="customers")
    services.dataset_rules_set(dataset=dataset, actor=scientist, rules={"min_rows": 1000})

    login(page, live_server, scientist)
    page.goto(f"{live_server.url}/datasets/{dataset.pk}/")
    expect(page.get_by_role("heading", name="Upload a new version")).to_be_visible()
    expect(page.locator("#upload-limit")).to_have_text("2.0 GB")
    page.evaluate("window.__samePage = true")  # gone if anything reloads the page

    # The drop zone's real file input (what a keyboard user reaches); choosing the file starts the upload.
    file_input = page.get_by_label("Drop a file here or choose one")
    file_input.set_input_files(files=[{"name": "customers.csv", "mimeType": "text/csv", "buffer": customers_csv()}])

    progress = page.locator("#upload-progress-bar")
    expect(progress).to_be_visible()
    expect(progress).to_have_attribute("value", "100", timeout=15_000)
    expect(page.locator("[data-upload-status]")).to_have_text(
        "Uploaded customers.csv. The ingestion job is below.", timeout=15_000
    )

    job = IngestionJob.objects.get(dataset=dataset)
    status = page.locator(f"#job-{job.pk}-status")
    expect(page.locator(f"#job-{job.pk}-progress")).to_be_attached()
    expect(status).to_have_text("Succeeded", timeout=JOB_SECONDS * 1000)
    finished = page.locator(f"#job-{job.pk}")
    expect(finished).not_to_have_attribute("hx-trigger", "every 1s")  # polling stopped with the job
    assert page.evaluate("window.__samePage") is True
    job.refresh_from_db()
    assert (job.status, job.error_code, job.error) == (JobStatus.SUCCEEDED, "", "")
    if task_worker is not None:
        assert f"Task datasets.ingest[{job.task_id}] succeeded" in task_worker.log(10**6)

    finished.get_by_role("link", name="Version 1").click()
    page.wait_for_url(f"{live_server.url}/datasets/{dataset.pk}/versions/1/")

    banner = page.locator("#training-blocked")
    expect(banner.get_by_role("heading")).to_have_text("Blocked from training: failed validation")
    expect(page.locator("#version-usable")).to_have_text("no")
    expect(page.locator("#train-link")).to_have_count(0)  # no way to launch training from a blocked version
    expect(page.locator("#version-rows")).to_have_text(str(ROWS))
    failed_check = page.locator("#validation-report tr.check-failed")
    expect(failed_check).to_have_count(1)
    expect(failed_check.locator("td").first).to_have_text("min_rows")

    email_row = page.locator('#schema-table tr[data-column="email"]')
    expect(email_row.locator(".badge-pii")).to_have_text("PII: email")
    expect(page.locator('#schema-table tr[data-column="age"] .badge-pii')).to_have_count(0)

    age = page.locator('.profile-column[data-column="age"]')
    expect(age.locator("table.profile-table")).to_be_visible()
    expect(age.locator("table.profile-table tr").filter(has_text="Min / max")).to_have_text("Min / max19 / 77")
    chart = age.locator("svg.chart.histogram")
    expect(chart).to_be_visible()
    assert chart.get_attribute("aria-label").startswith("Histogram of age: 20 bins from 19 to 77;")
    expect(page.locator('.profile-column[data-column="plan"] svg.chart.top-values')).to_be_visible()

    version = DatasetVersion.objects.get(dataset=dataset)
    assert (version.number, version.row_count, version.validation_status, version.usable_for_training) == (
        1,
        ROWS,
        "failed",
        False,
    )
    with pytest.raises(ApplicationError) as refused:
        services.version_require_usable_for_training(version=version)
    assert refused.value.message == (
        "Version 1 of customers failed validation and has no override: it cannot be used for training."
    )
