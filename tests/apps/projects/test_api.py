import pytest
from django.urls import include, path
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator

from apps.accounts.choices import Role
from apps.accounts.models import Membership
from apps.audit.models import AuditEvent
from apps.projects.models import Project
from tests.apps.projects.conftest import api_payload, snapshot
from tests.factories import ProblemDefinitionFactory

BASE = "/api/v1/projects/"


def url(project, suffix=""):
    return f"{BASE}{project.pk}/{suffix}"


# --- Create ----------------------------------------------------------------------------------------------------
def test_stakeholder_files_a_definition_through_the_api(api_client_as, make_user):
    filer = make_user(Role.STAKEHOLDER)
    response = api_client_as(filer).post(BASE, api_payload(), format="json")
    assert response.status_code == 201
    body = response.json()
    project = Project.objects.get()
    assert body["id"] == str(project.pk)
    assert (body["title"], body["status"], body["status_label"], body["created_by"]) == (
        "Churn reduction",
        "draft",
        "Draft",
        filer.username,
    )
    assert body["definition"]["primary_metric"] == "f1"
    assert body["definition"]["cost_false_negative"] == "120.00"
    assert body["definition"]["secondary_metrics"] == [{"metric": "recall", "threshold": 0.7}]
    assert Membership.objects.get(project=project).user == filer
    assert AuditEvent.objects.filter(action="project.create", project=project).count() == 1


def test_business_rule_errors_come_back_per_field_and_create_nothing(api_client_as, make_user):
    client = api_client_as(make_user(Role.STAKEHOLDER))
    before = snapshot()
    response = client.post(
        BASE, api_payload(primary_metric="rmse", currency="Euro", false_positive_share=1.5), format="json"
    )
    assert response.status_code == 400
    assert response.json() == {
        "message": "The problem definition is not complete yet: correct the fields marked.",
        "errors": {
            "primary_metric": [
                "RMSE does not measure binary classification: choose one of Accuracy, Precision, Recall, F1, ROC AUC, "
                "PR AUC (average precision), Log loss."
            ],
            "currency": ["Enter the currency as a three-letter code in capitals, for example EUR."],
            "false_positive_share": [
                "Enter the share of errors that are false positives as a share between 0 and 1 (0.9 means 90 %)."
            ],
        },
    }
    assert snapshot() == before


def test_type_errors_and_missing_fields_have_the_same_shape(api_client_as, make_user):
    client = api_client_as(make_user(Role.STAKEHOLDER))
    data = api_payload(primary_threshold="high", secondary_metrics=[{"metric": "recall", "threshold": "x"}])
    del data["title"]
    response = client.post(BASE, data, format="json")
    assert response.status_code == 400
    assert response.json() == {
        "message": "Invalid input.",
        "errors": {
            "title": ["Give the project a title."],
            "primary_threshold": ["A valid number is required."],
            "secondary_metrics": ["0: threshold: A valid number is required."],
        },
    }
    assert Project.objects.count() == 0


# --- List and retrieve -----------------------------------------------------------------------------------------
def test_list_is_paginated_and_filtered(api_client_as, admin_user):
    ProblemDefinitionFactory(project__name="Churn reduction", project__status="submitted")
    ProblemDefinitionFactory(project__name="Fraud alerts")
    client = api_client_as(admin_user)
    body = client.get(BASE).json()
    assert (body["count"], body["next"], body["previous"]) == (2, None, None)
    assert [p["title"] for p in body["results"]] == ["Fraud alerts", "Churn reduction"]
    assert [p["title"] for p in client.get(BASE, {"status": "submitted"}).json()["results"]] == ["Churn reduction"]
    assert [p["title"] for p in client.get(BASE, {"search": "fraud"}).json()["results"]] == ["Fraud alerts"]
    assert client.get(BASE, {"problem_type": "regression"}).json()["count"] == 0
    assert client.get(BASE, {"page_size": 1}).json()["next"] == "http://testserver/api/v1/projects/?page=2&page_size=1"


def test_invalid_list_filter_is_a_field_error(api_client_as, admin_user):
    response = api_client_as(admin_user).get(BASE, {"status": "done"})
    assert response.status_code == 400
    assert response.json() == {"message": "Invalid input.", "errors": {"status": ['"done" is not a valid choice.']}}


def test_non_member_lists_nothing_and_gets_404_for_the_project(api_client_as, project, outsider):
    client = api_client_as(outsider)
    assert client.get(BASE).json()["count"] == 0
    response = client.get(url(project))
    assert response.status_code == 404
    assert response.json() == {"message": "Not found.", "errors": {}}


def test_list_query_count_is_the_same_for_one_and_ten_projects(api_client_as, make_user, django_assert_num_queries):
    stakeholder = make_user(Role.STAKEHOLDER)
    client = api_client_as(stakeholder)

    def add_project():
        definition = ProblemDefinitionFactory()
        Membership.objects.create(project=definition.project, user=stakeholder, role="stakeholder")

    add_project()
    with django_assert_num_queries(2):  # count, page (definition and users joined, visibility as a subquery)
        assert client.get(BASE).json()["count"] == 1
    for _ in range(9):
        add_project()
    with django_assert_num_queries(2):
        assert client.get(BASE).json()["count"] == 10


def test_retrieve_returns_the_definition(api_client_as, project):
    body = api_client_as(project.created_by).get(url(project)).json()
    assert body["title"] == project.name
    assert body["submitted_by"] is None
    assert body["definition"]["problem_type"] == "binary"
    assert body["definition"]["expected_yearly_decisions"] == 100_000


def test_malformed_ids_are_not_found(api_client_as, admin_user):
    assert api_client_as(admin_user).get(f"{BASE}not-a-uuid/").status_code == 404


# --- Update ----------------------------------------------------------------------------------------------------
def test_patch_changes_only_the_given_fields(api_client_as, project):
    response = api_client_as(project.created_by).patch(
        url(project), {"title": "Churn v2", "primary_threshold": 0.85}, format="json"
    )
    assert response.status_code == 200
    assert (response.json()["title"], response.json()["definition"]["primary_threshold"]) == ("Churn v2", 0.85)
    assert response.json()["definition"]["cost_false_negative"] == "120.00"
    event = AuditEvent.objects.get(action="project.update")
    assert event.after == {"title": "Churn v2", "primary_threshold": 0.85}


def test_patch_is_validated_against_the_whole_definition(api_client_as, project):
    before = snapshot()
    response = api_client_as(project.created_by).patch(url(project), {"problem_type": "clustering"}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"] == {
        "primary_metric": [
            "F1 does not measure clustering: choose one of Silhouette, Davies–Bouldin, Calinski–Harabasz."
        ]
    }
    assert snapshot() == before


def test_patch_of_a_submitted_project_is_a_conflict(api_client_as, project):
    Project.objects.filter(pk=project.pk).update(status="submitted")
    before = snapshot()
    response = api_client_as(project.created_by).patch(url(project), {"title": "Late change"}, format="json")
    assert response.status_code == 409
    assert response.json() == {"message": "Only a draft project can be edited.", "errors": {}}
    assert snapshot() == before


def test_put_is_not_offered(api_client_as, project):
    assert api_client_as(project.created_by).put(url(project), api_payload(), format="json").status_code == 405


# --- Lifecycle -------------------------------------------------------------------------------------------------
def test_full_lifecycle_through_the_api(api_client_as, project, member):
    stakeholder, reviewer = project.created_by, member(Role.REVIEWER)
    as_stakeholder, as_reviewer = api_client_as(stakeholder), api_client_as(reviewer)

    body = as_stakeholder.post(url(project, "submit/")).json()
    assert (body["status"], body["submitted_by"]) == ("submitted", stakeholder.username)
    body = as_reviewer.post(url(project, "return/"), {"reason": "Add a baseline."}, format="json").json()
    assert (body["status"], body["status_note"], body["submitted_by"]) == ("draft", "Add a baseline.", None)
    as_stakeholder.post(url(project, "submit/"))
    body = as_reviewer.post(url(project, "approve/")).json()
    assert (body["status"], body["approved_by"]) == ("approved", reviewer.username)
    body = as_reviewer.post(url(project, "mark-in-production/")).json()
    assert body["status"] == "in_production" and body["in_production_at"] is not None
    body = as_stakeholder.post(url(project, "retire/"), {"reason": "Replaced."}, format="json").json()
    assert (body["status"], body["status_note"]) == ("retired", "Replaced.")

    actions = list(AuditEvent.objects.filter(project=project).order_by("seq").values_list("action", flat=True))
    assert actions == [
        "project.submit",
        "project.return_to_draft",
        "project.submit",
        "project.approve",
        "project.mark_in_production",
        "project.retire",
    ]


def test_return_without_reason_is_a_field_error(api_client_as, project, member):
    Project.objects.filter(pk=project.pk).update(status="submitted")
    before = snapshot()
    response = api_client_as(member(Role.REVIEWER)).post(url(project, "return/"), {}, format="json")
    assert response.status_code == 400
    assert response.json() == {
        "message": "Give a reason.",
        "errors": {"reason": ["Say what should change before the project is submitted again."]},
    }
    assert snapshot() == before


def test_wrong_state_is_a_conflict(api_client_as, project, member):
    before = snapshot()
    response = api_client_as(member(Role.REVIEWER)).post(url(project, "approve/"))
    assert response.status_code == 409
    assert response.json() == {"message": "Only a submitted project can be approved.", "errors": {}}
    assert snapshot() == before


def test_self_approval_is_forbidden(api_client_as, project, admin_user):
    client = api_client_as(admin_user)
    client.post(url(project, "submit/"))
    before = snapshot()
    response = client.post(url(project, "approve/"))
    assert response.status_code == 403
    assert response.json() == {
        "message": "You filed or submitted this project, so someone else must approve it.",
        "errors": {},
    }
    assert snapshot() == before


def test_roi_endpoint_returns_the_estimate(api_client_as, project):
    body = api_client_as(project.created_by).get(url(project, "roi/")).json()
    assert body == {
        "computed": True,
        "currency": "EUR",
        "yearly_value_model": "2975000.00",
        "yearly_value_baseline": "925000.00",
        "yearly_gain": "2050000.00",
        "first_year_net": "1900000.00",
        "payback_months": "0.88",
        "target_payback_months": 12,
        "meets_payback_target": True,
        "roi_percent": "1266.67",
        "assumptions": [],
        "missing": [],
    }


# --- Members ---------------------------------------------------------------------------------------------------
def test_members_are_listed_added_and_removed(api_client_as, project, make_user):
    make_user(Role.SCIENTIST, username="ada")
    client = api_client_as(project.created_by)
    response = client.post(url(project, "members/"), {"username": "ada", "role": "scientist"}, format="json")
    assert response.status_code == 201
    added = response.json()
    assert (added["username"], added["role"], added["role_label"]) == ("ada", "scientist", "Data scientist")

    listing = client.get(url(project, "members/")).json()
    assert [(m["username"], m["role"]) for m in listing["results"]] == [
        ("ada", "scientist"),
        (project.created_by.username, "stakeholder"),
    ]
    assert client.delete(url(project, f"members/{added['id']}/")).status_code == 204
    assert not Membership.objects.filter(pk=added["id"]).exists()


def test_member_errors_are_field_errors(api_client_as, project):
    client = api_client_as(project.created_by)
    before = (snapshot(), Membership.objects.count())
    response = client.post(url(project, "members/"), {"username": "nobody", "role": "scientist"}, format="json")
    assert response.status_code == 400
    assert response.json() == {
        "message": "There is no such user.",
        "errors": {"username": ["No user is called “nobody”: check the spelling."]},
    }
    response = client.post(url(project, "members/"), {"username": project.created_by.username, "role": "boss"})
    assert response.status_code == 400
    assert response.json()["errors"] == {"role": ['"boss" is not a valid choice.']}
    assert (snapshot(), Membership.objects.count()) == before


def test_removing_the_last_stakeholder_is_refused(api_client_as, project):
    membership = Membership.objects.get(project=project)
    response = api_client_as(project.created_by).delete(url(project, f"members/{membership.pk}/"))
    assert response.status_code == 400
    assert response.json() == {"message": "A project keeps at least one business stakeholder.", "errors": {}}
    assert Membership.objects.filter(pk=membership.pk).exists()


# --- Schema ----------------------------------------------------------------------------------------------------
def test_projects_api_schema_generates_without_warnings():
    GENERATOR_STATS.reset()
    generator = SchemaGenerator(patterns=[path("api/v1/", include("apps.projects.api.urls"))])
    with GENERATOR_STATS.silence():
        schema = generator.get_schema(request=None, public=True)
    assert (dict(GENERATOR_STATS._warn_cache), dict(GENERATOR_STATS._error_cache)) == ({}, {})
    assert sorted(schema["paths"]) == [
        "/api/v1/projects/",
        "/api/v1/projects/{id}/",
        "/api/v1/projects/{id}/approve/",
        "/api/v1/projects/{id}/mark-in-production/",
        "/api/v1/projects/{id}/retire/",
        "/api/v1/projects/{id}/return/",
        "/api/v1/projects/{id}/roi/",
        "/api/v1/projects/{id}/submit/",
        "/api/v1/projects/{project_pk}/members/",
        "/api/v1/projects/{project_pk}/members/{id}/",
    ]
    create = schema["paths"]["/api/v1/projects/"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "ProblemDefinitionInputRequest"
    )
    assert set(create["responses"]) == {"201", "400", "403", "404"}


def test_project_scoped_viewsets_cannot_replace_the_scoping():
    from apps.projects.api.base import ProjectScopedViewSet

    with pytest.raises(TypeError, match="must implement scoped_queryset"):

        class Unscoped(ProjectScopedViewSet):
            def get_queryset(self):
                return Membership.objects.all()
