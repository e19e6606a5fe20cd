from datetime import UTC, date, datetime

import pytest
from django.urls import reverse

from apps.accounts.choices import Role
from apps.audit.models import AuditEvent
from apps.audit.selectors import audit_event_list
from apps.audit.services import audit_record
from tests.apps.audit.chain_helpers import build_chain

LIST_URL = reverse("audit:list")
API_LIST_URL = reverse("audit-event-list")

# Who asks, and what the audit area answers them: 200 allowed, 403 denied (anonymous: login redirect or 401).
VIEWERS = {
    "outsider": 403,
    "stakeholder": 403,
    "scientist": 403,
    "reviewer": 403,
    "project_compliance": 200,
    "platform_compliance": 200,
    "admin": 200,
}
EXPORTERS = VIEWERS | {"admin": 403}


@pytest.fixture
def person(request, member):
    def get(who: str):
        if who in {"stakeholder", "scientist", "reviewer"}:
            return member(Role(who))
        if who == "admin":
            return request.getfixturevalue("admin_user")
        return request.getfixturevalue(who)

    return get


def _filters(**values):
    base = dict.fromkeys(("project", "actor", "action", "object_type", "object_id", "date_from", "date_to"))
    return base | values


def _seqs(events) -> list[int]:
    return [event.seq for event in events]


# --- Visibility and filters --------------------------------------------------------------------------------------
def test_project_compliance_member_sees_only_their_projects_events(project_compliance, project, other_project):
    build_chain(2, project=project)
    build_chain(2, project=other_project)
    build_chain(1)
    assert _seqs(audit_event_list(actor=project_compliance)) == [2, 1]


def test_platform_compliance_and_admin_see_every_event(platform_compliance, admin_user, project):
    build_chain(2, project=project)
    build_chain(1)
    assert _seqs(audit_event_list(actor=platform_compliance)) == [3, 2, 1]
    assert _seqs(audit_event_list(actor=admin_user)) == [3, 2, 1]


def test_inactive_compliance_officer_sees_nothing(platform_compliance):
    build_chain(2)
    platform_compliance.is_active = False
    assert _seqs(audit_event_list(actor=platform_compliance)) == []


def test_filters_narrow_by_project_actor_action_object(platform_compliance, project, user):
    audit_record(actor=user, action="project.edit", obj=project, project=project)
    audit_record(actor=user, action="project.submit", obj=project, project=project)
    audit_record(actor=None, action="projects.import", object_type="projects.project", object_id="x")
    audit_record(actor=platform_compliance, action="auth.login", obj=platform_compliance)

    def seqs(**values):
        return _seqs(audit_event_list(actor=platform_compliance, filters=_filters(**values)))

    assert seqs(project=project) == [2, 1]
    assert seqs(actor=user.username) == [2, 1]
    assert seqs(action="project.edit") == [1]
    assert seqs(action="project.") == [2, 1]  # a prefix ending in "." does not match "projects.import"
    assert seqs(action="project") == []  # without the dot it is an exact action
    assert seqs(object_type="projects.project") == [3, 2, 1]
    assert seqs(object_type="projects.project", object_id=str(project.pk)) == [2, 1]


def test_date_filters_are_inclusive_utc_days(platform_compliance):
    build_chain(1, occurred_at=datetime(2025, 3, 1, 23, 59, 59, 999999, tzinfo=UTC))
    build_chain(1, occurred_at=datetime(2025, 3, 2, 0, 0, tzinfo=UTC))
    build_chain(1, occurred_at=datetime(2025, 3, 3, 0, 0, tzinfo=UTC))

    def seqs(**values):
        return _seqs(audit_event_list(actor=platform_compliance, filters=_filters(**values)))

    assert seqs(date_from=date(2025, 3, 2)) == [3, 2]
    assert seqs(date_to=date(2025, 3, 1)) == [1]
    assert seqs(date_from=date(2025, 3, 2), date_to=date(2025, 3, 2)) == [2]


def test_api_list_applies_query_filters(api_client_as, platform_compliance, project):
    build_chain(2, project=project, action="project.edit")
    build_chain(2, action="auth.login")
    response = api_client_as(platform_compliance).get(API_LIST_URL, {"action": "project.", "project": str(project.pk)})
    assert response.status_code == 200
    assert [row["seq"] for row in response.json()["results"]] == [2, 1]
    assert response.json()["count"] == 2


@pytest.mark.parametrize(
    ("params", "errors"),
    [
        ({"date_from": "2025-13-01"}, {"date_from": ["Enter a valid date."]}),
        (
            {"date_from": "2025-03-02", "date_to": "2025-03-01"},
            {"date_to": ["The end date must not be before the start date."]},
        ),
        ({"project": "not-a-uuid"}, {"project": ["“not-a-uuid” is not a valid UUID."]}),
        (
            {"project": "00000000-0000-0000-0000-000000000000"},
            {"project": ["Choose one of the projects whose audit you may see."]},
        ),
        ({"object_id": "x" * 65}, {"object_id": ["Ensure this value has at most 64 characters (it has 65)."]}),
    ],
)
def test_api_list_rejects_bad_filters_with_field_errors(api_client_as, platform_compliance, params, errors):
    response = api_client_as(platform_compliance).get(API_LIST_URL, params)
    assert response.status_code == 400
    assert response.json() == {"message": "Invalid filters.", "errors": errors}


def test_html_list_shows_a_bad_date_next_to_its_field(client, platform_compliance):
    build_chain(2)
    client.force_login(platform_compliance)
    response = client.get(LIST_URL, {"date_from": "tomorrow"})
    assert response.status_code == 200
    html = response.content.decode()
    assert '<p class="error" id="id_date_from_error" role="alert">Enter a valid date.</p>' in html
    assert response.context["page_obj"].paginator.count == 0
    assert response.context["export_allowed"] is False


# --- HTML pages ---------------------------------------------------------------------------------------------------
def test_html_list_shows_events_and_export_links_pinned_to_the_head(client, platform_compliance, project, user):
    event = audit_record(actor=user, action="project.edit", obj=project, project=project, after={"name": "New"})
    build_chain(2)
    client.force_login(platform_compliance)

    response = client.get(LIST_URL, {"project": str(project.pk)})

    html = response.content.decode()
    assert response.status_code == 200
    assert _seqs(response.context["page_obj"]) == [event.seq]
    assert f'href="{reverse("audit:detail", args=[event.seq])}">#{event.seq}</a>' in html
    assert project.name in html
    assert "&quot;name&quot;: &quot;New&quot;" in html
    assert response.context["export_head_seq"] == 3
    export = reverse("audit:export")
    assert f'href="{export}?project={project.pk}&amp;format=csv&amp;upto=3"' in html
    assert f'href="{export}?project={project.pk}&amp;format=jsonl&amp;upto=3&amp;sidecar=1"' in html
    assert "CSV digest (.sha256)" in html


def test_html_list_answers_htmx_with_just_the_results(client, platform_compliance):
    build_chain(3)
    client.force_login(platform_compliance)
    response = client.get(LIST_URL, {"action": "test.event"}, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.templates[0].name == "audit/partials/event_table.html"
    assert "<html" not in html
    assert html.count("<tr>") == 4  # the header row and 3 events


def test_html_list_offers_no_export_to_an_admin(client, admin_user):
    build_chain(1)
    client.force_login(admin_user)
    response = client.get(LIST_URL)
    assert response.status_code == 200
    assert response.context["export_allowed"] is False
    assert reverse("audit:export") not in response.content.decode()


def test_html_list_asks_a_project_compliance_member_to_choose_a_project(client, project_compliance, project):
    build_chain(1, project=project)
    client.force_login(project_compliance)

    unfiltered = client.get(LIST_URL)
    filtered = client.get(LIST_URL, {"project": str(project.pk)})

    assert "To export, choose one of your projects" in unfiltered.content.decode()
    assert (unfiltered.context["export_allowed"], filtered.context["export_allowed"]) == (False, True)
    assert [choice[1] for choice in unfiltered.context["form"].fields["project"].choices] == [
        "All projects you may see",
        project.name,
    ]


def test_html_detail_shows_every_field_and_both_hashes(client, platform_compliance, project, user):
    event = audit_record(actor=user, action="project.edit", obj=project, project=project, before={"a": 1})
    client.force_login(platform_compliance)
    response = client.get(reverse("audit:detail", args=[event.seq]))
    html = response.content.decode()
    assert response.status_code == 200
    for text in (event.prev_hash, event.hash, "project.edit", user.username, str(project.pk), "&quot;a&quot;: 1"):
        assert text in html


def test_html_detail_of_another_projects_event_is_404(client, project_compliance, other_project):
    build_chain(1, project=other_project)
    client.force_login(project_compliance)
    assert client.get(reverse("audit:detail", args=[1])).status_code == 404


def test_html_export_streams_csv_with_digest(client, platform_compliance):
    build_chain(2)
    client.force_login(platform_compliance)
    response = client.get(reverse("audit:export"), {"format": "csv", "upto": "2"})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert b"".join(response.streaming_content).count(b"\r\n") == 3
    assert AuditEvent.objects.order_by("-seq").values_list("seq", "action").first() == (3, "audit.export")


def test_html_export_with_bad_input_is_400_text(client, platform_compliance):
    client.force_login(platform_compliance)
    response = client.get(reverse("audit:export"), {"format": "pdf"})
    assert response.status_code == 400
    assert response.content.decode() == (
        "Invalid export request.\nformat: Select a valid choice. pdf is not one of the available choices.\n"
    )
    assert AuditEvent.objects.count() == 0


# --- Permission matrix --------------------------------------------------------------------------------------------
def test_anonymous_is_sent_to_login_from_every_audit_page(client, db):
    for url in (LIST_URL, reverse("audit:detail", args=[1]), reverse("audit:export") + "?format=csv"):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("accounts:login"))
    assert AuditEvent.objects.count() == 0


def test_anonymous_gets_401_from_the_api(api_client_as, db):
    build_chain(1)
    client = api_client_as(None)
    for url in (API_LIST_URL, reverse("audit-event-detail", args=[1]), reverse("audit-event-export") + "?format=csv"):
        assert client.get(url).status_code == 401
    assert AuditEvent.objects.count() == 1


@pytest.mark.parametrize(("who", "status"), VIEWERS.items())
def test_html_list_and_detail_permission_matrix(client, person, project, who, status):
    build_chain(1, project=project)
    client.force_login(person(who))
    assert client.get(LIST_URL).status_code == status
    assert client.get(reverse("audit:detail", args=[1])).status_code == status
    assert AuditEvent.objects.count() == 1


@pytest.mark.parametrize(("who", "status"), VIEWERS.items())
def test_api_list_and_detail_permission_matrix(api_client_as, person, project, who, status):
    build_chain(1, project=project)
    client = api_client_as(person(who))
    listed = client.get(API_LIST_URL)
    assert listed.status_code == status
    assert client.get(reverse("audit-event-detail", args=[1])).status_code == status
    if status == 200:
        assert [row["seq"] for row in listed.json()["results"]] == [1]
    else:
        assert listed.json() == {"message": "You may not browse audit events.", "errors": {}}


@pytest.mark.parametrize(("who", "status"), EXPORTERS.items())
@pytest.mark.parametrize("interface", ["html", "api"])
def test_export_permission_matrix_and_denied_exports_are_not_audited(
    client, api_client_as, person, project, who, status, interface
):
    build_chain(2, project=project)
    user = person(who)
    params = {"format": "csv", "project": str(project.pk)}
    if interface == "html":
        client.force_login(user)
        response = client.get(reverse("audit:export"), params)
    else:
        response = api_client_as(user).get(reverse("audit-event-export"), params)

    assert response.status_code == status
    if status == 200:
        assert b"".join(response.streaming_content).count(b"\r\n") == 3
        assert list(AuditEvent.objects.order_by("seq").values_list("action", flat=True)) == [
            "test.event",
            "test.event",
            "audit.export",
        ]
    else:
        assert AuditEvent.objects.count() == 2


# --- Query counts --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("events", [3, 30])
def test_api_list_query_count_is_pinned(api_client_as, platform_compliance, project, django_assert_num_queries, events):
    build_chain(events, project=project)
    client = api_client_as(platform_compliance)
    with django_assert_num_queries(2):  # count, page (with the project joined)
        response = client.get(API_LIST_URL)
    assert len(response.json()["results"]) == min(events, 25)


@pytest.mark.parametrize("events", [3, 30])
def test_api_list_query_count_for_a_project_compliance_member(
    api_client_as, project_compliance, project, django_assert_num_queries, events
):
    build_chain(events, project=project)
    client = api_client_as(project_compliance)
    with django_assert_num_queries(3):  # memberships, count, page
        response = client.get(API_LIST_URL)
    assert response.json()["count"] == events


@pytest.mark.parametrize("events", [3, 30])
def test_html_list_query_count_is_pinned(client, platform_compliance, project, django_assert_num_queries, events):
    build_chain(events, project=project)
    client.force_login(platform_compliance)
    with django_assert_num_queries(6):  # session, user, project choices, chain head, count, page
        response = client.get(LIST_URL)
    assert len(response.context["page_obj"]) == min(events, 25)
