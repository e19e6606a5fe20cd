"""Dataset pages: lists, the dataset page with its upload panel and imports, job status polling, version pages with
the validation banner and override, profile tables and charts, compare, rules, column marks, connections."""

import re
from html import unescape

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from apps.accounts.choices import Role
from apps.audit.models import AuditEvent
from apps.datasets.choices import JobStatus
from apps.datasets.models import DataConnection, Dataset, DatasetVersion, IngestionJob
from tests.apps.datasets.test_views_helpers import (
    SCHEMA,
    make_connection,
    make_dataset,
    make_job,
    make_version,
)
from tests.factories import MembershipFactory, ProblemDefinitionFactory


@pytest.fixture(autouse=True)
def _artifacts(settings, tmp_path):
    settings.ARTIFACT_STORE = f"file://{tmp_path / 'artifacts'}"
    settings.DATASET_IMPORT_S3_PREFIXES = ["s3://landing/"]


@pytest.fixture
def scientist(member):
    return member(Role.SCIENTIST)


@pytest.fixture
def dataset(project):
    return make_dataset(project)


def login(client, user) -> Client:
    client.force_login(user)
    return client


def field_errors(html: str, field: str) -> list[str]:
    """The messages rendered next to one field (partials/form_field.html, datasets/partials/rule_input.html)."""
    found = re.findall(rf'class="error" id="id_{field}_error" role="alert">(.*?)</', html, flags=re.S)
    return [unescape(text) for text in found]


def events(action: str) -> int:
    return AuditEvent.objects.filter(action=action).count()


# --- List -------------------------------------------------------------------------------------------------------
def test_list_shows_visible_datasets_with_latest_version_and_the_new_button(client, scientist, dataset):
    make_version(dataset, number=1)
    make_version(dataset, number=2)
    html = login(client, scientist).get(reverse("datasets:list")).content.decode()
    assert f'<a href="{reverse("datasets:detail", args=[dataset.pk])}">churn</a>' in html
    assert f'<a href="{reverse("datasets:version", args=[dataset.pk, 2])}">Version 2</a>' in html
    assert f'<a class="button" href="{reverse("datasets:create")}">New dataset</a>' in html
    assert "1 dataset</caption>" in html


def test_list_hides_other_projects_datasets_and_the_new_button_from_outsiders(client, outsider, dataset):
    html = login(client, outsider).get(reverse("datasets:list")).content.decode()
    assert "churn" not in html
    assert "New dataset" not in html
    assert "none is visible to you yet" in html


def test_stakeholder_sees_datasets_but_gets_no_new_button(client, project, dataset):
    html = login(client, project.created_by).get(reverse("datasets:list")).content.decode()
    assert ">churn</a>" in html
    assert "New dataset" not in html


def test_list_filters_by_project_and_name_and_answers_htmx_with_the_table(client, admin_user, dataset):
    other = ProblemDefinitionFactory(project__name="Fraud").project
    make_dataset(other, name="transactions")
    make_dataset(other, name="churn-labels")
    client = login(client, admin_user)
    html = client.get(reverse("datasets:list"), {"project": other.pk}).content.decode()
    assert ">transactions</a>" in html and ">churn-labels</a>" in html and ">churn</a>" not in html
    partial = client.get(reverse("datasets:list"), {"search": "CHURN"}, HTTP_HX_REQUEST="true").content.decode()
    assert ">churn</a>" in partial and ">churn-labels</a>" in partial and ">transactions</a>" not in partial
    assert "<html" not in partial


def test_list_is_paginated(client, admin_user, project):
    for index in range(27):
        make_dataset(project, name=f"set-{index:02d}")
    html = login(client, admin_user).get(reverse("datasets:list"), {"page": 2}).content.decode()
    assert "Page 2 of 2 (27 in all)" in html
    assert re.findall(r">(set-\d+)</a>", html) == ["set-25", "set-26"]


def test_list_query_count_is_pinned_and_does_not_grow_with_datasets(
    client, scientist, project, django_assert_num_queries
):
    client = login(client, scientist)
    for index in range(3):
        dataset = make_dataset(project, name=f"set-{index}")
        make_version(dataset, number=1)
    # session, user, the navigation's membership check, projects where the user may ingest (the New button), the
    # filter's project options, the datasets page and its count
    with django_assert_num_queries(7):
        first = client.get(reverse("datasets:list"))
    for index in range(3, 9):
        make_dataset(project, name=f"set-{index}")
    with django_assert_num_queries(7):
        second = client.get(reverse("datasets:list"))
    assert len(re.findall(r">set-\d</a>", first.content.decode())) == 3
    assert len(re.findall(r">set-\d</a>", second.content.decode())) == 9


# --- Create -----------------------------------------------------------------------------------------------------
def test_scientist_creates_a_dataset_and_lands_on_its_page(client, scientist, project):
    response = login(client, scientist).post(
        reverse("datasets:create"),
        {"project": str(project.pk), "name": " churn ", "description": "One row a customer."},
    )
    dataset = Dataset.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("datasets:detail", args=[dataset.pk])
    assert (dataset.name, dataset.description, dataset.created_by) == ("churn", "One row a customer.", scientist)
    assert events("dataset.create") == 1


def test_duplicate_dataset_name_is_reported_next_to_the_name(client, scientist, project, dataset):
    response = login(client, scientist).post(reverse("datasets:create"), {"project": str(project.pk), "name": "churn"})
    assert response.status_code == 400
    assert field_errors(response.content.decode(), "name") == [
        "A dataset with this name already exists in the project."
    ]
    assert Dataset.objects.count() == 1
    assert events("dataset.create") == 0


def test_create_offers_only_projects_where_the_user_may_ingest(client, scientist, project):
    elsewhere = ProblemDefinitionFactory(project__name="Elsewhere").project
    MembershipFactory(user=scientist, project=elsewhere, role=Role.REVIEWER)
    client = login(client, scientist)
    html = client.get(reverse("datasets:create")).content.decode()
    assert f'<option value="{project.pk}" selected>{project.name}</option>' in html
    assert str(elsewhere.pk) not in html
    response = client.post(reverse("datasets:create"), {"project": str(elsewhere.pk), "name": "sneaky"})
    assert response.status_code == 400
    assert field_errors(response.content.decode(), "project")[0].startswith("Select a valid choice.")
    assert Dataset.objects.count() == 0


def test_stakeholder_may_not_open_the_create_form(client, project):
    response = login(client, project.created_by).get(reverse("datasets:create"))
    assert response.status_code == 403


# --- The dataset page -------------------------------------------------------------------------------------------
def test_dataset_page_lists_versions_with_validation_and_training_use(client, scientist, dataset):
    make_version(dataset, number=1, passed=True)
    make_version(dataset, number=2)
    make_version(dataset, number=3, override_reason="Known small sample for a pilot run.", overridden_by=scientist)
    html = login(client, scientist).get(reverse("datasets:detail", args=[dataset.pk])).content.decode()
    rows = re.findall(r"<tr>\s*<td><a href=\"[^\"]+\">Version (\d)</a>.*?</tr>", html, flags=re.S)
    assert rows == ["3", "2", "1"]
    table = html[html.index('id="version-table"') : html.index("</table>", html.index('id="version-table"'))]
    assert re.findall(r'badge-validation-(\w+)">', table) == ["overridden", "failed", "passed"]
    assert re.findall(r'<span class="(?:ok|bad)">(yes|no)</span>', table) == ["yes", "no", "yes"]
    assert f'href="{reverse("datasets:compare", args=[dataset.pk])}"' in html


def test_dataset_page_has_the_upload_panel_with_progress_bar_and_size_limit(client, scientist, dataset, settings):
    settings.DATASET_MAX_UPLOAD_BYTES = 5 * 1024**2
    html = login(client, scientist).get(reverse("datasets:detail", args=[dataset.pk])).content.decode()
    assert f'action="{reverse("datasets:upload", args=[dataset.pk])}" enctype="multipart/form-data"' in html
    assert '<label for="id_file">' in html
    assert re.search(r'<input type="file" name="file"[^>]*accept="\.csv,\.tsv,\.parquet,\.jsonl,\.ndjson,\.gz"', html)
    assert 'data-max-bytes="5242880"' in html
    assert 'Size limit: <strong id="upload-limit">5.0 MB</strong>' in html
    assert '<progress id="upload-progress-bar" max="100" value="0">' in html
    assert '<script src="/static/js/upload.js" defer></script>' in html


def test_stakeholder_sees_the_dataset_without_upload_or_import_forms(client, project, dataset):
    html = login(client, project.created_by).get(reverse("datasets:detail", args=[dataset.pk])).content.decode()
    assert "Upload a new version" not in html
    assert "Import a new version" not in html
    assert "upload.js" not in html
    assert "Validation rules</a>" not in html


def test_dataset_of_another_project_is_a_404(client, outsider, dataset):
    assert login(client, outsider).get(reverse("datasets:detail", args=[dataset.pk])).status_code == 404


def test_dataset_page_query_count_does_not_grow_with_versions_and_jobs(
    client, scientist, project, dataset, django_assert_num_queries
):
    client = login(client, scientist)
    make_connection(project)
    for number in (1, 2):
        make_job(dataset, status=JobStatus.SUCCEEDED, version=make_version(dataset, number=number))
    url = reverse("datasets:detail", args=[dataset.pk])
    # session, user, dataset, the user's project role (looked up once), versions count + page, recent jobs,
    # connections (exists + the select's options), navigation
    with django_assert_num_queries(10):
        client.get(url)
    for number in range(3, 9):
        make_job(dataset, status=JobStatus.SUCCEEDED, version=make_version(dataset, number=number))
    with django_assert_num_queries(10):
        html = client.get(url).content.decode()
    assert len(re.findall(r">Version \d</a></td>", html)) == 8


def test_dataset_page_shows_recent_jobs_with_their_outcome(client, scientist, dataset):
    version = make_version(dataset, number=1)
    make_job(dataset, status=JobStatus.FAILED, error_code="ragged_rows", error="Row 3 has 4 fields; the header has 3.")
    make_job(dataset, status=JobStatus.SUCCEEDED, version=version, deduplicated=True)
    html = login(client, scientist).get(reverse("datasets:detail", args=[dataset.pk])).content.decode()
    assert '<span class="bad">Row 3 has 4 fields; the header has 3.</span>' in html
    assert f'identical to <a href="{reverse("datasets:version", args=[dataset.pk, 1])}">version 1</a>' in html


# --- Upload -----------------------------------------------------------------------------------------------------
CSV = b"customer_id,email,age\n1,ada@example.com,31\n2,bob@example.com,45\n"


def upload(client, dataset, content=CSV, name="customers.csv", **extra):
    file = SimpleUploadedFile(name, content, content_type="text/csv")
    return client.post(reverse("datasets:upload", args=[dataset.pk]), {"file": file}, **extra)


def test_upload_from_javascript_answers_with_the_polling_job_partial(client, scientist, dataset):
    response = upload(login(client, scientist), dataset, HTTP_HX_REQUEST="true")
    job = IngestionJob.objects.get()
    html = response.content.decode()
    assert response.status_code == 202
    assert (job.status, job.source_display, job.created_by) == (JobStatus.QUEUED, "customers.csv", scientist)
    assert f'hx-get="{reverse("datasets:job_status", args=[job.pk])}" hx-trigger="every 1s"' in html
    assert f'<span class="badge badge-job-queued" id="job-{job.pk}-status">Queued</span>' in html
    assert "<html" not in html
    assert events("dataset.ingest_start") == 1


def test_upload_stages_the_bytes_in_the_artifact_store(client, scientist, dataset):
    from apps.core.artifacts import artifact_store

    upload(login(client, scientist), dataset, HTTP_HX_REQUEST="true")
    job = IngestionJob.objects.get()
    assert artifact_store().get_bytes(job.staging_key) == CSV


def test_upload_without_javascript_redirects_to_the_job_page(client, scientist, dataset):
    response = upload(login(client, scientist), dataset, name="../../etc/passwd.csv")
    job = IngestionJob.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("datasets:job", args=[job.pk])
    assert job.source_display == "passwd.csv"  # Django keeps only the base name; it is display text anyway
    assert job.staging_key == f"projects/{dataset.project_id}/uploads/{job.pk}/original"


def test_upload_over_the_declared_size_limit_is_refused_before_the_body_is_read(client, scientist, dataset, settings):
    settings.DATASET_MAX_UPLOAD_BYTES = 1024
    body = b'--x\r\nContent-Disposition: form-data; name="file"; filename="a.csv"\r\n\r\na,b\r\n--x--\r\n'
    # The declared length is far larger than the body: reading the body would fail the request (FakePayload asserts).
    response = login(client, scientist).generic(
        "POST",
        reverse("datasets:upload", args=[dataset.pk]),
        body,
        content_type="multipart/form-data; boundary=x",
        CONTENT_LENGTH=str(50 * 1024**2),
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 413
    assert "The file is larger than the 1.0 KB limit." in response.content.decode()
    assert IngestionJob.objects.count() == 0


def test_upload_over_the_declared_limit_without_javascript_shows_the_dataset_page(client, scientist, dataset, settings):
    settings.DATASET_MAX_UPLOAD_BYTES = 1024
    response = login(client, scientist).generic(
        "POST",
        reverse("datasets:upload", args=[dataset.pk]),
        b"--x--\r\n",
        content_type="multipart/form-data; boundary=x",
        CONTENT_LENGTH=str(50 * 1024**2),
    )
    assert response.status_code == 413
    assert field_errors(response.content.decode(), "file") == ["The file is larger than the 1.0 KB limit."]
    assert "<h1>churn</h1>" in response.content.decode()
    assert IngestionJob.objects.count() == 0


def test_upload_growing_past_the_limit_is_refused_with_the_error_next_to_the_file(client, scientist, dataset, settings):
    settings.DATASET_MAX_UPLOAD_BYTES = 64
    response = upload(login(client, scientist), dataset, content=b"a,b\n" + b"1,2\n" * 100)
    assert response.status_code == 413
    assert field_errors(response.content.decode(), "file") == ["The file is larger than the 64 bytes limit."]
    assert IngestionJob.objects.count() == 0


def test_upload_without_a_file_says_so(client, scientist, dataset):
    response = login(client, scientist).post(reverse("datasets:upload", args=[dataset.pk]), {})
    assert response.status_code == 400
    assert field_errors(response.content.decode(), "file") == ["This field is required."]
    assert IngestionJob.objects.count() == 0


def test_upload_checks_the_csrf_token_after_installing_the_limit(scientist, dataset):
    client = login(Client(enforce_csrf_checks=True), scientist)
    response = upload(client, dataset)
    assert response.status_code == 403
    assert IngestionJob.objects.count() == 0


def test_stakeholder_cannot_upload(client, project, dataset):
    response = upload(login(client, project.created_by), dataset)
    assert response.status_code == 403
    assert IngestionJob.objects.count() == 0
    assert events("dataset.ingest_start") == 0


def test_upload_to_a_retired_project_is_refused_with_the_reason(client, scientist, project, dataset):
    project.status = "retired"
    project.save(update_fields=["status"])
    response = upload(login(client, scientist), dataset, HTTP_HX_REQUEST="true")
    assert response.status_code == 409
    assert "The project is retired: it takes no new datasets or versions." in response.content.decode()
    assert IngestionJob.objects.count() == 0


# --- S3 and SQL imports -----------------------------------------------------------------------------------------
def test_s3_import_queues_a_job(client, scientist, dataset):
    response = login(client, scientist).post(
        reverse("datasets:import_s3", args=[dataset.pk]), {"uri": "s3://landing/churn/2024-06.csv"}
    )
    job = IngestionJob.objects.get()
    assert response["Location"] == reverse("datasets:job", args=[job.pk])
    assert (job.source_kind, job.s3_uri) == ("s3", "s3://landing/churn/2024-06.csv")


def test_s3_import_outside_the_allowed_prefixes_is_refused_next_to_the_uri(client, scientist, dataset):
    response = login(client, scientist).post(
        reverse("datasets:import_s3", args=[dataset.pk]), {"uri": "s3://private/secrets.csv"}
    )
    assert response.status_code == 400
    assert field_errors(response.content.decode(), "uri") == ["Objects can be imported only from: s3://landing/."]
    assert IngestionJob.objects.count() == 0


def test_import_forms_offer_the_projects_connections(client, scientist, project, dataset):
    connection = make_connection(project)
    make_connection(ProblemDefinitionFactory().project, name="elsewhere")
    html = login(client, scientist).get(reverse("datasets:detail", args=[dataset.pk])).content.decode()
    assert f'<option value="{connection.pk}">warehouse</option>' in html
    assert "elsewhere" not in html
    assert f'href="{reverse("datasets:connections")}?project={project.pk}"' in html


def test_sql_import_refuses_a_writing_query_next_to_the_query(client, scientist, project, dataset):
    connection = make_connection(project)
    response = login(client, scientist).post(
        reverse("datasets:import_sql", args=[dataset.pk]),
        {"connection": str(connection.pk), "query": "INSERT INTO t VALUES (1)"},
    )
    assert response.status_code == 400
    assert field_errors(response.content.decode(), "query") == [
        "Only a read-only SELECT query is allowed: this statement would change data or the database."
    ]
    assert IngestionJob.objects.count() == 0


def test_sql_import_queues_a_job_for_a_select(client, scientist, project, dataset):
    connection = make_connection(project)
    response = login(client, scientist).post(
        reverse("datasets:import_sql", args=[dataset.pk]),
        {"connection": str(connection.pk), "query": "SELECT id, plan FROM customers"},
    )
    job = IngestionJob.objects.get()
    assert response["Location"] == reverse("datasets:job", args=[job.pk])
    assert (job.source_kind, job.connection, job.query) == ("sql", connection, "SELECT id, plan FROM customers")


def test_sql_import_cannot_use_another_projects_connection(client, scientist, dataset):
    foreign = make_connection(ProblemDefinitionFactory().project, name="theirs")
    response = login(client, scientist).post(
        reverse("datasets:import_sql", args=[dataset.pk]), {"connection": str(foreign.pk), "query": "SELECT 1"}
    )
    assert response.status_code == 400
    assert field_errors(response.content.decode(), "connection")[0].startswith("Select a valid choice.")
    assert IngestionJob.objects.count() == 0


# --- Jobs -------------------------------------------------------------------------------------------------------
def test_running_job_partial_polls_every_second_and_shows_progress(client, scientist, dataset):
    job = make_job(dataset, status=JobStatus.RUNNING, progress=0.4, progress_message="Profiling columns.")
    html = login(client, scientist).get(reverse("datasets:job_status", args=[job.pk])).content.decode()
    assert f'hx-get="{reverse("datasets:job_status", args=[job.pk])}" hx-trigger="every 1s" hx-swap="outerHTML"' in html
    assert f'<progress id="job-{job.pk}-progress" max="1" value="0.400"' in html
    assert "<span>40 %</span>" in html
    assert "Profiling columns." in html
    assert "Cancel the job" in html


def test_finished_job_partial_stops_polling_and_links_the_version(client, scientist, dataset):
    version = make_version(dataset, number=4)
    job = make_job(dataset, status=JobStatus.SUCCEEDED, progress=1.0, version=version)
    html = login(client, scientist).get(reverse("datasets:job_status", args=[job.pk])).content.decode()
    assert "hx-trigger" not in html and "hx-get" not in html
    assert f'<a href="{reverse("datasets:version", args=[dataset.pk, 4])}">Version 4</a> is ready.' in html
    assert "Cancel the job" not in html


def test_deduplicated_job_says_which_version_it_matched(client, scientist, dataset):
    version = make_version(dataset, number=2)
    job = make_job(dataset, status=JobStatus.SUCCEEDED, progress=1.0, version=version, deduplicated=True)
    html = login(client, scientist).get(reverse("datasets:job", args=[job.pk])).content.decode()
    assert f'Identical to <a href="{reverse("datasets:version", args=[dataset.pk, 2])}">version 2</a>' in html


def test_failed_job_shows_the_error_code_and_message(client, scientist, dataset):
    job = make_job(
        dataset, status=JobStatus.FAILED, error_code="ragged_rows", error="Row 3 has 4 fields; the header has 3."
    )
    html = login(client, scientist).get(reverse("datasets:job", args=[job.pk])).content.decode()
    assert (
        "<strong>The ingestion failed</strong> (<code>ragged_rows</code>): Row 3 has 4 fields; the header has 3."
        in html
    )
    assert 'hx-trigger="every 1s"' not in html  # a finished job does not poll


def test_cancel_stops_a_queued_job_and_answers_htmx_with_the_partial(client, scientist, dataset):
    job = make_job(dataset)
    response = login(client, scientist).post(reverse("datasets:job_cancel", args=[job.pk]), HTTP_HX_REQUEST="true")
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED
    assert f'id="job-{job.pk}-status">Cancelled</span>' in response.content.decode()
    assert events("dataset.ingest_cancel") == 1


def test_cancelling_a_finished_job_says_why_and_changes_nothing(client, scientist, dataset):
    job = make_job(dataset, status=JobStatus.FAILED, error_code="empty_file", error="The file is empty.")
    response = login(client, scientist).post(reverse("datasets:job_cancel", args=[job.pk]), follow=True)
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert "The job is already failed." in response.content.decode()
    assert events("dataset.ingest_cancel") == 0


def test_reviewer_cannot_cancel_a_job(client, member, dataset):
    job = make_job(dataset)
    response = login(client, member(Role.REVIEWER)).post(reverse("datasets:job_cancel", args=[job.pk]))
    job.refresh_from_db()
    assert response.status_code == 403
    assert job.status == JobStatus.QUEUED


# --- Versions ---------------------------------------------------------------------------------------------------
def test_failed_version_is_blocked_from_training_with_its_report(client, scientist, dataset):
    make_version(dataset, number=1)
    html = login(client, scientist).get(reverse("datasets:version", args=[dataset.pk, 1])).content.decode()
    assert '<h2 id="blocked-heading">Blocked from training: failed validation</h2>' in html
    assert "This version failed 1 validation check (see the report below)." in html
    assert "The version has 3 rows; at least 1000 are required." in html
    assert re.findall(r'<span class="(ok|bad)">(pass|fail)</span>', html) == [("bad", "fail"), ("ok", "pass")]
    assert 'id="override-form"' in html
    assert '<div class="stat bad" id="version-usable">no</div>' in html


def test_version_page_shows_the_summary_and_download_links(client, scientist, dataset):
    version = make_version(dataset, number=1, passed=True)
    html = login(client, scientist).get(reverse("datasets:version", args=[dataset.pk, 1])).content.decode()
    base = f"/api/v1/projects/{dataset.project_id}/datasets/{dataset.pk}/versions/1/download/"
    assert f'<a href="{base}?artifact=original" download>original file</a>' in html
    assert f'<a href="{base}?artifact=parquet" download>Parquet copy</a>' in html
    assert f'<dd class="mono hash">{version.sha256}</dd>' in html
    assert "<dd>2.0\xa0KB</dd>" in html
    assert "Blocked from training" not in html


def test_version_page_flags_pii_and_shows_marks(client, scientist, dataset):
    dataset.column_marks = {"age": {"personal": False, "sensitive": True, "excluded": False}}
    dataset.save()
    make_version(dataset, number=1)
    html = login(client, scientist).get(reverse("datasets:version", args=[dataset.pk, 1])).content.decode()
    email_row = re.search(r'<tr id="schema-2" data-column="email">.*?</tr>', html, flags=re.S).group(0)
    assert (
        '<span class="badge badge-pii" title="100% of sampled values look like e-mail addresses.">PII: email</span>'
        in (email_row)
    )
    age_row = re.search(r'<tr id="schema-3" data-column="age">.*?</tr>', html, flags=re.S).group(0)
    assert '<span class="badge badge-mark">sensitive</span>' in age_row
    assert "PII:" not in age_row


def test_version_profile_has_a_table_and_a_chart_per_column(client, scientist, dataset):
    make_version(dataset, number=1)
    html = login(client, scientist).get(reverse("datasets:version", args=[dataset.pk, 1])).content.decode()
    assert html.count('<table class="profile-table">') == 4
    age = re.search(r'<article class="card profile-column"[^>]*data-column="age">.*?</article>', html, flags=re.S)[0]
    assert '<tr><th scope="row">Missing</th><td>25 % (1)</td></tr>' in age
    assert '<tr><th scope="row">Mean</th><td>41.5</td></tr>' in age
    assert "p05 19 · p25 25 · p50 40 · p75 60 · p95 88" in age
    assert 'aria-label="Histogram of age: 4 bins from 18 to 90; the tallest bin, 18 to 36, holds 2 of 3 values."' in age
    assert age.count('<rect class="bar"') == 4
    plan = re.search(r'<article class="card profile-column"[^>]*data-column="plan">.*?</article>', html, flags=re.S)[0]
    assert '<svg class="chart top-values" role="img"' in plan
    assert "<title>basic: 2</title>" in plan


def test_top_values_of_a_pii_column_are_not_repeated_on_the_page(client, scientist, dataset):
    make_version(dataset, number=1)
    html = login(client, scientist).get(reverse("datasets:version", args=[dataset.pk, 1])).content.decode()
    assert "ada@example.com" not in html
    assert "hidden: the column holds personal data" in html


def test_override_needs_a_written_reason_and_changes_nothing_without_one(client, scientist, dataset):
    version = make_version(dataset, number=1)
    response = login(client, scientist).post(
        reverse("datasets:version_override", args=[dataset.pk, 1]), {"reason": "looks fine"}
    )
    version.refresh_from_db()
    assert response.status_code == 400
    assert field_errors(response.content.decode(), "reason") == ["Explain the override in at least 20 characters."]
    assert (version.override_reason, version.overridden_by, version.usable_for_training) == ("", None, False)
    assert events("dataset.version_override") == 0


def test_scientist_overrides_a_failed_version_with_a_reason(client, scientist, dataset):
    version = make_version(dataset, number=1)
    reason = "Pilot sample; the full extract arrives next week."
    client = login(client, scientist)
    response = client.post(reverse("datasets:version_override", args=[dataset.pk, 1]), {"reason": reason})
    version.refresh_from_db()
    assert response["Location"] == reverse("datasets:version", args=[dataset.pk, 1])
    assert (version.override_reason, version.overridden_by, version.usable_for_training) == (reason, scientist, True)
    event = AuditEvent.objects.get(action="dataset.version_override")
    assert event.after["reason"] == reason
    html = client.get(response["Location"]).content.decode()
    assert f"<strong>Overridden by {scientist.username}</strong>" in html
    assert f"“{reason}”" in html
    assert "Blocked from training" not in html


def test_admin_may_not_override_validation(client, admin_user, dataset):
    version = make_version(dataset, number=1)
    client = login(client, admin_user)
    assert 'id="override-form"' not in client.get(reverse("datasets:version", args=[dataset.pk, 1])).content.decode()
    response = client.post(
        reverse("datasets:version_override", args=[dataset.pk, 1]), {"reason": "An administrator says it is fine."}
    )
    version.refresh_from_db()
    assert response.status_code == 403
    assert version.override_reason == ""


def test_missing_version_is_a_404(client, scientist, dataset):
    assert login(client, scientist).get(reverse("datasets:version", args=[dataset.pk, 9])).status_code == 404


# --- Compare ----------------------------------------------------------------------------------------------------
def test_compare_shows_schema_differences_and_row_count_change(client, scientist, dataset):
    make_version(dataset, number=1, rows=1200)
    new_schema = [
        SCHEMA[0],
        {"name": "age", "dtype": "float64", "nullable": True, "semantic_type": "numeric"},
        SCHEMA[3],
        {"name": "country", "dtype": "string", "nullable": True, "semantic_type": "categorical"},
    ]
    make_version(dataset, number=2, rows=1150, schema=new_schema)
    html = login(client, scientist).get(reverse("datasets:compare", args=[dataset.pk])).content.decode()
    assert '<td id="row-delta">-50</td>' in html
    assert '<tr class="diff-added"><th scope="row" class="mono">country</th><td>added</td>' in html
    assert '<tr class="diff-removed"><th scope="row" class="mono">email</th><td>removed</td>' in html
    assert (
        '<tr class="diff-changed"><th scope="row" class="mono">age</th><td>type changed</td>'
        "<td>int64</td><td>float64</td></tr>" in html
    )
    assert "2 columns kept their name and type." in html


def test_compare_chosen_versions_and_an_unknown_one(client, scientist, dataset):
    for number, rows in ((1, 10), (2, 20), (3, 35)):
        make_version(dataset, number=number, rows=rows)
    client = login(client, scientist)
    html = client.get(reverse("datasets:compare", args=[dataset.pk]), {"old": 1, "new": 3}).content.decode()
    assert '<td id="row-delta">+25</td>' in html
    assert "Same columns and types (4 columns)." in html
    response = client.get(reverse("datasets:compare", args=[dataset.pk]), {"old": 1, "new": 7})
    assert response.status_code == 400
    assert "New version: Select a valid choice. 7 is not one of the available choices." in response.content.decode()


# --- Rules ------------------------------------------------------------------------------------------------------
def test_rules_form_is_prefilled_from_the_newest_schema(client, scientist, dataset):
    make_version(dataset, number=1)
    html = login(client, scientist).get(reverse("datasets:rules", args=[dataset.pk])).content.decode()
    for index in range(4):
        assert re.search(rf'<input type="checkbox" name="col{index}_expected"[^>]*checked', html)
    assert '<option value="int64" selected>int64</option>' in html
    assert 'name="col2_min"' in html and 'name="col2_max"' in html  # age is numeric
    assert 'name="col0_min"' not in html  # an id has no range
    assert 'name="col3_categories"' in html and 'name="col1_categories"' not in html
    assert '<label for="id_col2_min" class="visually-hidden">Minimum of age</label>' in html


def test_rules_form_shows_the_current_rules(client, scientist, dataset):
    make_version(dataset, number=1)
    dataset.validation_rules = {
        "expected_columns": {"customer_id": "int64", "age": "float64"},
        "ranges": {"age": {"min": 18, "max": None}},
        "allowed_categories": {"plan": ["basic", "pro"]},
        "unique_columns": ["customer_id"],
        "min_rows": 500,
    }
    dataset.save()
    html = login(client, scientist).get(reverse("datasets:rules", args=[dataset.pk])).content.decode()
    ticked = [int(i) for i in re.findall(r'<input type="checkbox" name="col(\d)_expected"[^>]*checked', html)]
    assert ticked == [0, 2]
    assert re.search(r'<select name="col2_dtype"[^>]*>.*?<option value="float64" selected>', html, flags=re.S)
    assert re.search(r'<input type="number" name="col2_min" value="18"', html)
    assert re.search(r'<textarea name="col3_categories"[^>]*>\nbasic\npro</textarea>', html)
    assert re.search(r'<input type="checkbox" name="col0_unique"[^>]*checked', html)
    assert re.search(r'<input type="number" name="min_rows" value="500"', html)


def rules_post(**overrides) -> dict:
    data = {
        "min_rows": "1000",
        "max_missing_share": "0.1",
        "col0_expected": "on",
        "col0_dtype": "int64",
        "col1_expected": "on",
        "col1_dtype": "string",
        "col2_expected": "on",
        "col2_dtype": "int64",
        "col2_min": "18",
        "col2_max": "120",
        "col3_expected": "on",
        "col3_dtype": "string",
        "col3_categories": "basic\r\npro\r\n\r\nenterprise",
        "col0_unique": "on",
    }
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


def test_scientist_saves_rules_from_the_form(client, scientist, dataset):
    make_version(dataset, number=1)
    response = login(client, scientist).post(reverse("datasets:rules", args=[dataset.pk]), rules_post())
    dataset.refresh_from_db()
    assert response["Location"] == reverse("datasets:detail", args=[dataset.pk])
    assert dataset.validation_rules == {
        "expected_columns": {"customer_id": "int64", "email": "string", "age": "int64", "plan": "string"},
        "max_missing_share": 0.1,
        "max_missing_share_by_column": {},
        "ranges": {"age": {"min": 18.0, "max": 120.0}},
        "allowed_categories": {"plan": ["basic", "pro", "enterprise"]},
        "unique_columns": ["customer_id"],
        "min_rows": 1000,
    }
    assert events("dataset.rules_set") == 1


def test_rules_with_no_column_ticked_fall_back_to_the_previous_schema(client, scientist, dataset):
    make_version(dataset, number=1)
    data = rules_post(col0_expected=None, col1_expected=None, col2_expected=None, col3_expected=None)
    login(client, scientist).post(reverse("datasets:rules", args=[dataset.pk]), data)
    dataset.refresh_from_db()
    assert dataset.validation_rules["expected_columns"] is None


def test_rule_errors_appear_next_to_their_fields_and_nothing_is_saved(client, scientist, dataset):
    make_version(dataset, number=1)
    data = rules_post(max_missing_share="2", col2_min="90", col2_max="10")
    response = login(client, scientist).post(reverse("datasets:rules", args=[dataset.pk]), data)
    html = response.content.decode()
    dataset.refresh_from_db()
    assert response.status_code == 400
    assert field_errors(html, "max_missing_share") == ["Maximum missing share must be a number from 0 to 1, not 2.0."]
    assert field_errors(html, "col2_min") == ["Column 'age': the minimum 90.0 is above the maximum 10.0."]
    assert dataset.validation_rules == {}
    assert events("dataset.rules_set") == 0


def test_rules_page_without_a_version_edits_the_whole_version_rules(client, scientist, dataset):
    client = login(client, scientist)
    html = client.get(reverse("datasets:rules", args=[dataset.pk])).content.decode()
    assert "Upload a first version to set rules per column" in html
    client.post(reverse("datasets:rules", args=[dataset.pk]), {"min_rows": "1000"})
    dataset.refresh_from_db()
    assert dataset.validation_rules["min_rows"] == 1000
    assert dataset.validation_rules["expected_columns"] is None


def test_reviewer_cannot_edit_rules(client, member, dataset):
    client = login(client, member(Role.REVIEWER))
    assert client.get(reverse("datasets:rules", args=[dataset.pk])).status_code == 403
    assert client.post(reverse("datasets:rules", args=[dataset.pk]), {"min_rows": "5"}).status_code == 403
    dataset.refresh_from_db()
    assert dataset.validation_rules == {}


# --- Column marks -----------------------------------------------------------------------------------------------
def test_column_marks_page_shows_pii_flags_beside_the_checkboxes(client, scientist, dataset):
    make_version(dataset, number=1)
    html = login(client, scientist).get(reverse("datasets:columns", args=[dataset.pk])).content.decode()
    email_row = re.search(r'<tr data-column="email">.*?</tr>', html, flags=re.S).group(0)
    assert '<span class="badge badge-pii">PII: email</span>' in email_row
    assert 'name="col1_personal"' in email_row
    assert '<label for="id_col1_sensitive" class="visually-hidden">Sensitive (protected attribute): email</label>' in (
        email_row
    )


def test_compliance_officer_marks_columns(client, member, dataset):
    make_version(dataset, number=1)
    officer = member(Role.COMPLIANCE)
    data = {"col1_personal": "on", "col1_excluded": "on", "col2_sensitive": "on"}
    response = login(client, officer).post(reverse("datasets:columns", args=[dataset.pk]), data)
    dataset.refresh_from_db()
    assert response["Location"] == reverse("datasets:columns", args=[dataset.pk])
    assert dataset.column_marks == {
        "age": {"personal": False, "sensitive": True, "excluded": False},
        "email": {"personal": True, "sensitive": False, "excluded": True},
    }
    assert AuditEvent.objects.get(action="dataset.column_marks_set").actor == officer


def test_unticking_every_box_clears_a_columns_marks(client, scientist, dataset):
    make_version(dataset, number=1)
    dataset.column_marks = {"email": {"personal": True, "sensitive": False, "excluded": True}}
    dataset.save()
    client = login(client, scientist)
    html = client.get(reverse("datasets:columns", args=[dataset.pk])).content.decode()
    assert re.search(r'<input type="checkbox" name="col1_personal"[^>]*checked', html)
    client.post(reverse("datasets:columns", args=[dataset.pk]), {})
    dataset.refresh_from_db()
    assert dataset.column_marks == {}


def test_stakeholder_cannot_mark_columns(client, project, dataset):
    make_version(dataset, number=1)
    response = login(client, project.created_by).post(
        reverse("datasets:columns", args=[dataset.pk]), {"col1_personal": "on"}
    )
    dataset.refresh_from_db()
    assert response.status_code == 403
    assert dataset.column_marks == {}


# --- Connections ------------------------------------------------------------------------------------------------
def connections_url(project) -> str:
    return f"{reverse('datasets:connections')}?project={project.pk}"


CONNECTION = {
    "name": "warehouse",
    "host": "db.internal",
    "port": "5432",
    "database": "sales",
    "username": "reader",
    "password": "s3cret-Passw0rd",
}


def test_scientist_registers_a_connection_and_the_password_is_never_shown(client, scientist, project):
    client = login(client, scientist)
    response = client.post(connections_url(project), CONNECTION)
    connection = DataConnection.objects.get()
    assert response["Location"] == connections_url(project)
    assert connection.encrypted_password and "s3cret-Passw0rd" not in connection.encrypted_password
    html = client.get(connections_url(project)).content.decode()
    assert "s3cret-Passw0rd" not in html
    assert '<td class="mono">db.internal:5432</td>' in html
    assert '<input type="password" name="password"' in html
    assert "s3cret" not in str(AuditEvent.objects.get(action="connection.create").after)


def test_connections_page_query_count_does_not_grow_with_connections(
    client, scientist, project, django_assert_num_queries
):
    client = login(client, scientist)
    make_connection(project, name="one")
    with django_assert_num_queries(7):
        client.get(connections_url(project))
    for index in range(5):
        make_connection(project, name=f"more-{index}")
    with django_assert_num_queries(7):
        html = client.get(connections_url(project)).content.decode()
    assert html.count('<button type="submit" class="button-secondary" aria-label="Remove') == 6


def test_invalid_connection_does_not_render_the_password_back(client, scientist, project):
    response = login(client, scientist).post(connections_url(project), {**CONNECTION, "port": "99999"})
    html = response.content.decode()
    assert response.status_code == 400
    assert field_errors(html, "port") == ["A port number between 1 and 65535."]
    assert "s3cret-Passw0rd" not in html
    assert DataConnection.objects.count() == 0


def test_connection_in_use_is_kept_with_the_reason(client, scientist, project, dataset):
    connection = make_connection(project)
    make_job(dataset, source_kind="sql", connection=connection, query="SELECT 1")
    response = login(client, scientist).post(
        reverse("datasets:connection_delete", args=[connection.pk]), {"project": str(project.pk)}, follow=True
    )
    assert DataConnection.objects.filter(pk=connection.pk).exists()
    assert "This connection was used by 1 ingestion job; it is kept" in response.content.decode()


def test_unused_connection_is_removed(client, scientist, project):
    connection = make_connection(project)
    login(client, scientist).post(
        reverse("datasets:connection_delete", args=[connection.pk]), {"project": str(project.pk)}
    )
    assert not DataConnection.objects.filter(pk=connection.pk).exists()
    assert events("connection.delete") == 1


def test_reviewer_cannot_see_or_register_connections(client, member, project):
    client = login(client, member(Role.REVIEWER))
    assert client.get(connections_url(project)).status_code == 403
    assert client.post(connections_url(project), CONNECTION).status_code == 403
    assert DataConnection.objects.count() == 0


def test_connections_without_a_valid_project_are_a_404(client, scientist):
    client = login(client, scientist)
    assert client.get(reverse("datasets:connections")).status_code == 404
    assert client.get(reverse("datasets:connections"), {"project": "not-a-uuid"}).status_code == 404


def test_version_rows_are_not_written_by_any_page(client, scientist, dataset):
    """The pages start jobs; only the worker records versions."""
    upload(login(client, scientist), dataset)
    assert DatasetVersion.objects.count() == 0


def test_new_dataset_form_preselects_the_only_project_the_user_may_ingest_into(client, scientist, project):
    response = login(client, scientist).get(reverse("datasets:create"))

    assert f'<option value="{project.pk}" selected>' in response.content.decode()


def test_new_dataset_form_preselects_nothing_when_there_is_a_choice(client, scientist, project, project_factory):
    other = project_factory()
    MembershipFactory(user=scientist, project=other, role=Role.SCIENTIST)

    html = login(client, scientist).get(reverse("datasets:create")).content.decode()

    select = html.split('name="project"')[1].split("</select>")[0]
    assert re.findall(r'<option value="([^"]*)" selected>', select) == [""]
