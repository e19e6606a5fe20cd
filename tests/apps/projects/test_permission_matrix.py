"""Every project endpoint and page, for every kind of caller: the status code, and that a denied call changed
nothing (projects, their states, memberships, the audit trail) while an allowed write did change something.

Callers: anonymous, a non-member data scientist, and members of the project with each project role (whose
platform-wide role is the same), and an admin who is not a member.
"""

import pytest
from django.urls import reverse

from apps.accounts.choices import Role
from apps.accounts.models import Membership
from apps.audit.models import AuditEvent
from apps.projects.models import Project
from tests.apps.projects.conftest import api_payload, snapshot
from tests.apps.projects.test_views import form_data

CALLERS = ["anonymous", "non_member", "stakeholder", "scientist", "reviewer", "compliance", "admin"]


def _codes(*codes: int) -> dict[str, int]:
    return dict(zip(CALLERS, codes, strict=True))


@pytest.fixture
def extra_membership(project, make_user):
    """A scientist member that the member-removal calls try to remove."""
    return Membership.objects.create(
        project=project, user=make_user(Role.SCIENTIST, username="removable"), role="scientist"
    )


def state() -> tuple:
    return (snapshot(), sorted(Membership.objects.values_list("pk", "role")))


def prepare(project, status: str) -> None:
    """Put the project in the source state of the call; it was filed and submitted by its creator."""
    submitted_by = project.created_by if status != "draft" else None
    Project.objects.filter(pk=project.pk).update(status=status, submitted_by=submitted_by)


# --- API -------------------------------------------------------------------------------------------------------
# name: (method, path suffix or None for the collection, source status, body, expected code per caller)
API_CALLS = {
    "list": ("get", None, "draft", None, _codes(401, 200, 200, 200, 200, 200, 200)),
    "create": ("post", None, "draft", "definition", _codes(401, 403, 201, 403, 403, 403, 201)),
    "retrieve": ("get", "", "draft", None, _codes(401, 404, 200, 200, 200, 200, 200)),
    "partial_update": ("patch", "", "draft", {"title": "Renamed"}, _codes(401, 404, 200, 403, 403, 403, 200)),
    "submit": ("post", "submit/", "draft", None, _codes(401, 404, 200, 403, 403, 403, 200)),
    "approve": ("post", "approve/", "submitted", None, _codes(401, 404, 403, 403, 200, 403, 200)),
    "return": ("post", "return/", "submitted", {"reason": "Redo"}, _codes(401, 404, 403, 403, 200, 403, 200)),
    "mark_in_production": (
        "post",
        "mark-in-production/",
        "approved",
        None,
        _codes(401, 404, 403, 403, 200, 403, 200),
    ),
    "retire": ("post", "retire/", "in_production", {"reason": "Done"}, _codes(401, 404, 200, 403, 403, 403, 200)),
    "roi": ("get", "roi/", "draft", None, _codes(401, 404, 200, 200, 200, 200, 200)),
    "members_list": ("get", "members/", "draft", None, _codes(401, 404, 200, 200, 200, 200, 200)),
    "members_set": (
        "post",
        "members/",
        "draft",
        {"username": "outsider", "role": "scientist"},
        _codes(401, 404, 201, 403, 403, 403, 201),
    ),
    "members_remove": ("delete", "members/{membership}/", "draft", None, _codes(401, 404, 204, 403, 403, 403, 204)),
}


@pytest.mark.parametrize("who", CALLERS)
@pytest.mark.parametrize("call", list(API_CALLS))
def test_api_permission_matrix(call, who, project, caller, api_client_as, extra_membership):
    method, suffix, status, body, expected = API_CALLS[call]
    prepare(project, status)
    client = api_client_as(caller(who))
    path = "/api/v1/projects/" if suffix is None else f"/api/v1/projects/{project.pk}/{suffix}"
    path = path.format(membership=extra_membership.pk)
    data = api_payload() if body == "definition" else body
    before = state()

    response = getattr(client, method)(path, data, format="json")

    assert response.status_code == expected[who], response.content
    if response.status_code >= 400:
        assert state() == before
        assert set(response.json()) == {"message", "errors"}
    elif method != "get":
        assert AuditEvent.objects.count() > before[0][1]
    else:
        assert state() == before


# --- HTML ------------------------------------------------------------------------------------------------------
# name: (method, url name, source status, POST data, expected code per caller; 302 for anonymous = to login)
HTML_CALLS = {
    "list": ("get", "projects:list", "draft", None, _codes(302, 200, 200, 200, 200, 200, 200)),
    "create_page": ("get", "projects:create", "draft", None, _codes(302, 403, 200, 403, 403, 403, 200)),
    "create": ("post", "projects:create", "draft", "definition", _codes(302, 403, 302, 403, 403, 403, 302)),
    "detail": ("get", "projects:detail", "draft", None, _codes(302, 404, 200, 200, 200, 200, 200)),
    "edit_page": ("get", "projects:edit", "draft", None, _codes(302, 404, 200, 403, 403, 403, 200)),
    "edit": ("post", "projects:edit", "draft", "definition", _codes(302, 404, 302, 403, 403, 403, 302)),
    "submit": ("post", "projects:submit", "draft", {}, _codes(302, 404, 302, 403, 403, 403, 302)),
    "approve": ("post", "projects:approve", "submitted", {}, _codes(302, 404, 403, 403, 302, 403, 302)),
    "return": (
        "post",
        "projects:return",
        "submitted",
        {"return-reason": "Redo"},
        _codes(302, 404, 403, 403, 302, 403, 302),
    ),
    "mark_in_production": (
        "post",
        "projects:mark_in_production",
        "approved",
        {},
        _codes(302, 404, 403, 403, 302, 403, 302),
    ),
    "retire": ("post", "projects:retire", "approved", {}, _codes(302, 404, 302, 403, 403, 403, 302)),
    "member_set": (
        "post",
        "projects:member_set",
        "draft",
        {"member-username": "outsider", "member-role": "reviewer"},
        _codes(302, 404, 302, 403, 403, 403, 302),
    ),
    "member_remove": ("post", "projects:member_remove", "draft", {}, _codes(302, 404, 302, 403, 403, 403, 302)),
}


@pytest.mark.parametrize("who", CALLERS)
@pytest.mark.parametrize("call", list(HTML_CALLS))
def test_html_permission_matrix(call, who, project, caller, client, extra_membership):
    method, url_name, status, body, expected = HTML_CALLS[call]
    prepare(project, status)
    user = caller(who)
    if user is not None:
        client.force_login(user)
    if url_name in ("projects:list", "projects:create"):
        url = reverse(url_name)
    elif url_name == "projects:member_remove":
        url = reverse(url_name, args=[project.pk, extra_membership.pk])
    else:
        url = reverse(url_name, args=[project.pk])
    data = form_data(title="Renamed") if body == "definition" else body
    before = state()

    response = client.get(url) if method == "get" else client.post(url, data)

    assert response.status_code == expected[who]
    if who == "anonymous":
        assert response["Location"].startswith(reverse("accounts:login"))
    if response.status_code in (302, 403, 404) and (who == "anonymous" or response.status_code != 302):
        assert state() == before
    elif method == "post":
        assert response["Location"].startswith("/projects/")
        assert AuditEvent.objects.count() > before[0][1]
