"""Every datasets API endpoint for every kind of caller: the status code; a refused call changed nothing and queued
nothing, an allowed write changed something.

Callers: anonymous, a non-member data scientist, members of the project with each project role (whose platform-wide
role is the same), and an admin who is not a member.
"""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.datasets import services
from tests.support.placeholders import fill_placeholders
from tests.workers.tasks.dataset_helpers import make_version, queued_job, state

pytestmark = pytest.mark.django_db

CALLERS = ["anonymous", "non_member", "stakeholder", "scientist", "reviewer", "compliance", "admin"]
CSV = b"a,b\n1,2\n"


def _codes(*codes: int) -> dict[str, int]:
    return dict(zip(CALLERS, codes, strict=True))


VIEW = _codes(401, 404, 200, 200, 200, 200, 200)
INGEST = _codes(401, 404, 403, 202, 403, 403, 202)
EDIT = _codes(401, 404, 403, 200, 403, 403, 200)
MANAGE_CONNECTIONS = _codes(401, 404, 403, 200, 403, 403, 200)

# name: (method, path template, body, format, expected code per caller, queues a task when allowed)
CALLS = {
    "datasets_list": ("get", "datasets/", None, None, VIEW, False),
    "datasets_create": ("post", "datasets/", {"name": "new"}, "json", _codes(401, 404, 403, 201, 403, 403, 201), False),
    "dataset_retrieve": ("get", "datasets/{dataset}/", None, None, VIEW, False),
    "dataset_patch": ("patch", "datasets/{dataset}/", {"description": "changed"}, "json", EDIT, False),
    "dataset_upload": ("post", "datasets/{dataset}/uploads/", "upload", "multipart", INGEST, True),
    "dataset_ingest_s3": (
        "post",
        "datasets/{dataset}/ingestions/",
        {"source": "s3", "uri": "s3://landing/exports/x.csv"},
        "json",
        INGEST,
        True,
    ),
    "dataset_ingest_sql": (
        "post",
        "datasets/{dataset}/ingestions/",
        {"source": "sql", "connection": "{connection}", "query": "SELECT 1 AS one"},
        "json",
        INGEST,
        True,
    ),
    "rules_get": ("get", "datasets/{dataset}/rules/", None, None, VIEW, False),
    "rules_put": ("put", "datasets/{dataset}/rules/", {"min_rows": 5}, "json", EDIT, False),
    "marks_get": ("get", "datasets/{dataset}/column-marks/", None, None, VIEW, False),
    "marks_patch": (
        "patch",
        "datasets/{dataset}/column-marks/",
        {"marks": {"email": {"personal": True}}},
        "json",
        _codes(401, 404, 403, 200, 403, 200, 200),
        False,
    ),
    "versions_list": ("get", "datasets/{dataset}/versions/", None, None, VIEW, False),
    "version_retrieve": ("get", "datasets/{dataset}/versions/1/", None, None, VIEW, False),
    "version_override": (
        "post",
        "datasets/{dataset}/versions/1/override/",
        {"reason": "The pilot export is small by design."},
        "json",
        _codes(401, 404, 403, 200, 403, 403, 403),
        False,
    ),
    "version_compare": ("get", "datasets/{dataset}/versions/1/compare/?with=1", None, None, VIEW, False),
    "version_download": ("get", "datasets/{dataset}/versions/1/download/?artifact=original", None, None, VIEW, False),
    "jobs_list": ("get", "ingestion-jobs/", None, None, VIEW, False),
    "job_retrieve": ("get", "ingestion-jobs/{job}/", None, None, VIEW, False),
    "job_cancel": ("post", "ingestion-jobs/{job}/cancel/", None, None, EDIT, False),
    "connections_list": ("get", "connections/", None, None, MANAGE_CONNECTIONS, False),
    "connections_create": (
        "post",
        "connections/",
        {"name": "other", "host": "db", "port": 5432, "database": "d", "username": "u", "password": "pw"},
        "json",
        _codes(401, 404, 403, 201, 403, 403, 201),
        False,
    ),
    "connection_retrieve": ("get", "connections/{connection}/", None, None, MANAGE_CONNECTIONS, False),
    "connection_patch": ("patch", "connections/{connection}/", {"host": "db2"}, "json", MANAGE_CONNECTIONS, False),
    "connection_delete": (
        "delete",
        "connections/{spare}/",
        None,
        None,
        _codes(401, 404, 403, 204, 403, 403, 204),
        False,
    ),
}
WRITES = {"post", "put", "patch", "delete"}


@pytest.fixture
def world(project, dataset, scientist, file_store, settings):
    """A dataset with a failed version 1 (stored), a queued job, a used and a spare connection."""
    settings.DATASET_IMPORT_S3_PREFIXES = ["s3://landing/exports/"]
    version = make_version(dataset, 1, passed=False)
    file_store.put_bytes(version.original_key, CSV)
    connection = services.connection_create(
        project=project,
        actor=scientist,
        name="warehouse",
        host="db",
        port=5432,
        database="d",
        username="u",
        password="pw",
    )
    spare = services.connection_create(
        project=project, actor=scientist, name="spare", host="db", port=5432, database="d", username="u", password=""
    )
    job = queued_job(dataset, scientist, connection=connection)
    return {"dataset": dataset.pk, "connection": connection.pk, "spare": spare.pk, "job": job.pk}


@pytest.mark.parametrize("kind", CALLERS)
@pytest.mark.parametrize("name", list(CALLS))
def test_api_permission_matrix(
    name, kind, world, project, caller, api_client_as, sent_tasks, django_capture_on_commit_callbacks
):
    method, template, body, fmt, expected, queues = CALLS[name]
    client = api_client_as(caller(kind))
    path = f"/api/v1/projects/{project.pk}/" + template.format(**world)
    data = fill_placeholders(body, {key: str(value) for key, value in world.items()})
    if data == "upload":
        data = {"file": SimpleUploadedFile("customers.csv", CSV, content_type="text/csv")}
    before = state()

    with django_capture_on_commit_callbacks(execute=True):
        response = (
            getattr(client, method)(path, data, format=fmt) if data is not None else getattr(client, method)(path)
        )

    assert response.status_code == expected[kind], response.content[:300]
    allowed = response.status_code < 400
    if method in WRITES and not allowed:
        assert state() == before
        assert sent_tasks == []
    if method in WRITES and allowed:
        assert state() != before
        assert [task for task, _args, _queue in sent_tasks] == (["datasets.ingest"] if queues else [])
    if method == "get" and allowed:
        assert sent_tasks == []


def test_matrix_covers_every_datasets_api_route():
    from tests.test_route_inventory import SAMPLE_UUID, all_paths

    sample = dict.fromkeys(["dataset", "job", "connection", "spare"], SAMPLE_UUID)
    covered = {
        f"/api/v1/projects/{SAMPLE_UUID}/" + template.format(**sample).split("?")[0]
        for _method, template, *_rest in CALLS.values()
    }
    routes = {
        path
        for path in all_paths()
        if path.startswith("/api/v1/projects/")
        and any(part in path for part in ("/datasets/", "/ingestion-jobs/", "/connections/"))
    }
    assert routes == covered
