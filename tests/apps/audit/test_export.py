import base64
import csv
import hashlib
import io
import json
from datetime import UTC, datetime

import pytest
from django.urls import reverse

from apps.audit.chain import format_timestamp
from apps.audit.export import EXPORT_COLUMNS, neutralise_cell
from apps.audit.models import AuditEvent
from apps.audit.services import audit_record
from tests.apps.audit.chain_helpers import build_chain

EXPORT_URL = reverse("audit-event-export")


def _body(response) -> bytes:
    return b"".join(response.streaming_content)


def _csv_rows(body: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(body.decode(), newline="")))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("=1+2", "'=1+2"),
        ("+SUM(A1)", "'+SUM(A1)"),
        ("-2", "'-2"),
        ("@cmd", "'@cmd"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("a=b", "a=b"),
        ("", ""),
    ],
)
def test_neutralise_cell_prefixes_only_formula_starts(text, expected):
    assert neutralise_cell(text) == expected


def test_csv_export_neutralises_every_dangerous_prefix(api_client_as, platform_compliance):
    dangerous = ['=HYPERLINK("http://evil")', "+cmd|' /C calc'!A0", "-2+3", "@SUM(1+1)", "\t=1", "\r=1", "plain"]
    for value in dangerous:
        audit_record(actor=None, action="test.injection", object_type="test.cell", object_id=value[:64])
    audit_record(actor=None, action="=cmd()", object_type="test.cell", object_id="action")

    response = api_client_as(platform_compliance).get(EXPORT_URL, {"format": "csv", "object_type": "test.cell"})

    assert response.status_code == 200
    rows = _csv_rows(_body(response))
    assert rows[0] == list(EXPORT_COLUMNS)
    object_ids = [row[EXPORT_COLUMNS.index("object_id")] for row in rows[1:]]
    assert object_ids == [
        '\'=HYPERLINK("http://evil")',
        "'+cmd|' /C calc'!A0",
        "'-2+3",
        "'@SUM(1+1)",
        "'\t=1",
        "'\r=1",
        "plain",
        "action",
    ]
    assert rows[-1][EXPORT_COLUMNS.index("action")] == "'=cmd()"


def test_csv_export_writes_each_column_of_an_event(api_client_as, platform_compliance, project, user):
    event = audit_record(
        actor=user, action="project.edit", obj=project, project=project, before={"name": "A"}, after={"name": "B"}
    )

    response = api_client_as(platform_compliance).get(EXPORT_URL, {"format": "csv", "action": "project.edit"})

    assert _csv_rows(_body(response))[1:] == [
        [
            str(event.seq),
            format_timestamp(event.occurred_at),
            user.username,
            "project.edit",
            "projects.project",
            str(project.pk),
            str(project.pk),
            '{"name":"A"}',
            '{"name":"B"}',
            "",
            "",
            event.prev_hash,
            event.hash,
        ]
    ]


def test_jsonl_export_round_trips_every_field(api_client_as, platform_compliance, project, user):
    audit_record(actor=user, action="project.submit", obj=project, project=project, after={"note": "=x", "n": [1, 2]})
    audit_record(actor=None, action="system.tick", object_type="worker", before={"é": "ü"})
    expected = list(AuditEvent.objects.order_by("seq"))

    response = api_client_as(platform_compliance).get(EXPORT_URL, {"format": "jsonl"})

    assert response.status_code == 200
    assert response["Content-Type"] == "application/x-ndjson; charset=utf-8"
    lines = _body(response).decode().splitlines()
    records = [json.loads(line) for line in lines]
    assert [list(record) for record in records] == [list(EXPORT_COLUMNS)] * 2
    for record, event in zip(records, expected, strict=True):
        assert record == {
            "seq": event.seq,
            "occurred_at": format_timestamp(event.occurred_at),
            "actor_username": event.actor_username,
            "action": event.action,
            "object_type": event.object_type,
            "object_id": event.object_id,
            "project_id": str(event.project_id) if event.project_id else None,
            "before": event.before,
            "after": event.after,
            "request_id": event.request_id,
            "client_ip": event.client_ip,
            "prev_hash": event.prev_hash,
            "hash": event.hash,
        }
    assert datetime.fromisoformat(records[0]["occurred_at"]).tzinfo == UTC
    assert records[0]["after"] == {"note": "=x", "n": [1, 2]}  # JSON Lines carries values as they are


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_digest_headers_and_sidecar_match_the_streamed_body(api_client_as, platform_compliance, project, fmt):
    build_chain(1200, project=project)  # more than one chunk
    client = api_client_as(platform_compliance)

    response = client.get(EXPORT_URL, {"format": fmt, "project": str(project.pk)})
    body = _body(response)

    digest = hashlib.sha256(body)
    assert response["X-Export-SHA256"] == digest.hexdigest()
    assert response["Digest"] == "sha-256=" + base64.b64encode(digest.digest()).decode()
    assert response["Content-Digest"] == "sha-256=:" + base64.b64encode(digest.digest()).decode() + ":"
    assert response["Content-Length"] == str(len(body))
    assert response["X-Audit-Upto-Seq"] == "1200"
    assert response["X-Audit-Event-Count"] == "1200"
    assert response["Content-Disposition"] == f'attachment; filename="audit-1200.{fmt}"'

    audit_record(actor=None, action="system.tick", project=project)  # the chain moves on; the pinned digest does not
    sidecar = client.get(EXPORT_URL, {"format": fmt, "project": str(project.pk), "sidecar": "1", "upto": "1200"})

    assert sidecar.status_code == 200
    assert sidecar.content.decode() == f"{digest.hexdigest()}  audit-1200.{fmt}\n"
    assert sidecar["Content-Disposition"] == f'attachment; filename="audit-1200.{fmt}.sha256"'


def test_export_pinned_to_an_earlier_seq_leaves_later_events_out(api_client_as, platform_compliance):
    build_chain(10)
    response = api_client_as(platform_compliance).get(EXPORT_URL, {"format": "jsonl", "upto": "4"})
    assert [json.loads(line)["seq"] for line in _body(response).decode().splitlines()] == [1, 2, 3, 4]
    assert response["X-Audit-Upto-Seq"] == "4"


def test_export_is_audited_with_its_digest_before_streaming(api_client_as, platform_compliance, project):
    build_chain(5, project=project)
    build_chain(2)

    response = api_client_as(platform_compliance).get(
        EXPORT_URL, {"format": "csv", "project": str(project.pk), "action": "test.", "date_from": "2000-01-01"}
    )

    event = AuditEvent.objects.order_by("-seq").first()
    assert (event.seq, event.action, event.actor_id, event.project_id) == (
        8,
        "audit.export",
        platform_compliance.pk,
        project.pk,
    )
    assert event.after == {
        "format": "csv",
        "filters": {"project": str(project.pk), "action": "test.", "date_from": "2000-01-01"},
        "upto": 7,
        "count": 5,
        "sha256": response["X-Export-SHA256"],
    }
    assert len(_csv_rows(_body(response))) == 6  # the header and 5 events; not the export's own event


def test_sidecar_is_not_audited(api_client_as, platform_compliance):
    build_chain(3)
    response = api_client_as(platform_compliance).get(EXPORT_URL, {"format": "csv", "sidecar": "1", "upto": "3"})
    assert response.status_code == 200
    assert AuditEvent.objects.count() == 3


@pytest.mark.parametrize(
    ("params", "errors"),
    [
        ({}, {"format": ["This field is required."]}),
        ({"format": "xlsx"}, {"format": ["Select a valid choice. xlsx is not one of the available choices."]}),
        (
            {"format": "csv", "sidecar": "1"},
            {"upto": ["The digest sidecar needs the seq its export was pinned to (upto=…)."]},
        ),
        ({"format": "csv", "upto": "-1"}, {"upto": ["Ensure this value is greater than or equal to 0."]}),
        ({"format": "csv", "upto": "99"}, {"upto": ["The newest event is #3; choose a seq up to it."]}),
        ({"format": "csv", "date_from": "yesterday"}, {"date_from": ["Enter a valid date."]}),
    ],
)
def test_export_rejects_bad_input_with_field_errors_and_audits_nothing(
    api_client_as, platform_compliance, params, errors
):
    build_chain(3)
    response = api_client_as(platform_compliance).get(EXPORT_URL, params)
    assert response.status_code == 400
    assert response.json()["errors"] == errors
    assert AuditEvent.objects.count() == 3


def test_project_compliance_member_exports_only_their_project(
    api_client_as, project_compliance, project, other_project
):
    build_chain(3, project=project)
    build_chain(4, project=other_project)
    build_chain(2)

    response = api_client_as(project_compliance).get(EXPORT_URL, {"format": "jsonl", "project": str(project.pk)})

    assert response.status_code == 200
    records = [json.loads(line) for line in _body(response).decode().splitlines()]
    assert [(r["seq"], r["project_id"]) for r in records] == [
        (1, str(project.pk)),
        (2, str(project.pk)),
        (3, str(project.pk)),
    ]
    assert AuditEvent.objects.order_by("-seq").values_list("action", "project_id").first() == (
        "audit.export",
        project.pk,
    )


def test_project_compliance_member_cannot_export_without_naming_their_project(api_client_as, project_compliance):
    build_chain(3)
    response = api_client_as(project_compliance).get(EXPORT_URL, {"format": "csv"})
    assert response.status_code == 403
    assert AuditEvent.objects.count() == 3


def test_project_compliance_member_cannot_name_another_project(api_client_as, project_compliance, other_project):
    build_chain(3, project=other_project)
    response = api_client_as(project_compliance).get(EXPORT_URL, {"format": "csv", "project": str(other_project.pk)})
    assert response.status_code == 400
    assert response.json()["errors"] == {"project": ["Choose one of the projects whose audit you may see."]}
    assert AuditEvent.objects.count() == 3
