import re

import pytest
from django.urls import reverse

from apps.accounts.choices import Role
from apps.accounts.models import Membership
from apps.audit.models import AuditEvent
from apps.projects.models import ProblemDefinition, Project
from tests.apps.projects.conftest import binary_payload, snapshot
from tests.factories import ProblemDefinitionFactory


def form_data(**overrides) -> dict:
    """The definition as the browser posts it."""
    data = binary_payload()
    data["secondary_metrics"] = "recall >= 0.7"
    data.update(overrides)
    posted = {}
    for key, value in data.items():
        if isinstance(value, bool):
            if value:
                posted[key] = "on"
        elif value is not None:
            posted[key] = str(value)
    return posted


def field_error(html: str, field: str) -> list[str]:
    """The messages rendered next to one field (partials/form_field.html)."""
    return re.findall(rf'<p class="error" id="id_{field}_error" role="alert">(.*?)</p>', html)


@pytest.fixture
def logged_in(client):
    def login(user):
        client.force_login(user)
        return client

    return login


# --- List ------------------------------------------------------------------------------------------------------
def test_anonymous_visitors_are_sent_to_login(client, project):
    for url in (reverse("projects:list"), reverse("projects:detail", args=[project.pk]), reverse("projects:create")):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("accounts:login"))


def test_list_shows_visible_projects_with_status_badges_and_the_new_button(logged_in, project):
    response = logged_in(project.created_by).get(reverse("projects:list"))
    html = response.content.decode()
    assert response.status_code == 200
    assert f'href="{reverse("projects:detail", args=[project.pk])}">{project.name}</a>' in html
    assert '<span class="badge badge-draft">Draft</span>' in html
    assert "F1 ≥ 0.8" in html
    assert f'href="{reverse("projects:create")}">New problem definition</a>' in html


def test_scientists_get_no_new_button_and_see_only_their_projects(logged_in, project, outsider):
    html = logged_in(outsider).get(reverse("projects:list")).content.decode()
    assert "New problem definition" not in html
    assert project.name not in html
    assert "none is visible to you yet" in html


def test_list_filters_and_answers_htmx_with_the_table_only(logged_in, admin_user):
    ProblemDefinitionFactory(project__name="Churn reduction", project__status="submitted")
    ProblemDefinitionFactory(project__name="Fraud alerts")
    client = logged_in(admin_user)
    html = client.get(reverse("projects:list"), {"status": "submitted"}).content.decode()
    assert "Churn reduction" in html and "Fraud alerts" not in html
    partial = client.get(reverse("projects:list"), {"search": "fraud"}, HTTP_HX_REQUEST="true").content.decode()
    assert "Fraud alerts" in partial and "Churn reduction" not in partial
    assert "<html" not in partial


def test_invalid_filter_is_reported_and_ignored(logged_in, admin_user, project):
    html = logged_in(admin_user).get(reverse("projects:list"), {"status": "bogus"}).content.decode()
    assert "Status: Select a valid choice. bogus is not one of the available choices." in html
    assert project.name in html


def test_list_is_paginated(logged_in, admin_user):
    for number in range(26):
        ProblemDefinitionFactory(project__name=f"Project {number:02}")
    client = logged_in(admin_user)
    first = client.get(reverse("projects:list")).content.decode()
    second = client.get(reverse("projects:list"), {"page": 2}).content.decode()
    assert "Page 1 of 2 (26 in all)" in first
    assert first.count('class="badge badge-draft"') == 25
    assert second.count('class="badge badge-draft"') == 1
    assert "Project 00" in second


def test_list_page_query_count_does_not_grow_with_projects(logged_in, admin_user, django_assert_num_queries):
    client = logged_in(admin_user)
    ProblemDefinitionFactory()
    with django_assert_num_queries(4) as one:  # session, user, count, page
        client.get(reverse("projects:list"))
    for _ in range(9):
        ProblemDefinitionFactory()
    with django_assert_num_queries(len(one)):
        response = client.get(reverse("projects:list"))
    assert response.content.decode().count('class="badge badge-draft"') == 10


# --- Create ----------------------------------------------------------------------------------------------------
def test_create_form_is_grouped_in_fieldsets(logged_in, make_user):
    html = logged_in(make_user(Role.STAKEHOLDER)).get(reverse("projects:create")).content.decode()
    legends = re.findall(r"<legend>(.*?)</legend>", html)
    assert legends == ["The problem", "Success", "ROI targets", "Constraints", "Regulation and ethics", "Stakeholders"]
    for field in ("title", "business_problem", "primary_metric", "secondary_metrics", "cost_false_positive", "gdpr"):
        assert f'id="id_{field}"' in html


def test_valid_post_creates_project_definition_membership_and_audit_event(logged_in, make_user):
    filer = make_user(Role.STAKEHOLDER)
    response = logged_in(filer).post(reverse("projects:create"), form_data())
    project = Project.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("projects:detail", args=[project.pk])
    assert (project.name, project.status, project.created_by) == ("Churn reduction", "draft", filer)
    assert ProblemDefinition.objects.get(project=project).secondary_metrics == [{"metric": "recall", "threshold": 0.7}]
    assert Membership.objects.get(project=project).role == "stakeholder"
    assert AuditEvent.objects.filter(action="project.create", project=project, actor=filer).count() == 1


def test_invalid_post_shows_the_message_next_to_the_field_and_creates_nothing(logged_in, make_user):
    client = logged_in(make_user(Role.STAKEHOLDER))
    before = snapshot()
    response = client.post(
        reverse("projects:create"),
        form_data(primary_threshold="1.4", gdpr=True, personal_data=False, cost_false_negative=None),
    )
    html = response.content.decode()
    assert response.status_code == 400
    assert field_error(html, "primary_threshold") == ["F1 is a share: enter a value between 0 and 1."]
    assert field_error(html, "personal_data") == [
        "GDPR and HIPAA only apply to personal data: tick “Personal data” as well."
    ]
    assert field_error(html, "cost_false_negative") == [
        "Binary classification needs the cost of each false negative to estimate the ROI: enter it."
    ]
    assert 'aria-describedby="id_primary_threshold_helptext id_primary_threshold_error"' in html
    assert 'value="Churn reduction"' in html  # what was typed is kept
    assert snapshot() == before


def test_type_errors_and_rule_errors_are_shown_together(logged_in, make_user):
    client = logged_in(make_user(Role.STAKEHOLDER))
    response = client.post(reverse("projects:create"), form_data(implementation_cost="lots", currency="eur"))
    html = response.content.decode()
    assert response.status_code == 400
    assert field_error(html, "implementation_cost") == ["Enter a number."]
    assert field_error(html, "currency") == ["Enter the currency as a three-letter code in capitals, for example EUR."]
    assert Project.objects.count() == 0


def test_secondary_metric_errors_name_the_bad_line(logged_in, make_user):
    client = logged_in(make_user(Role.STAKEHOLDER))
    response = client.post(reverse("projects:create"), form_data(secondary_metrics="recall >= 0.7\nrecal >= 0.6"))
    assert field_error(response.content.decode(), "secondary_metrics") == [
        "Line 2 (“recal &gt;= 0.6”): “recal” is not a metric we know; write it like “recall &gt;= 0.7”."
    ]
    response = client.post(reverse("projects:create"), form_data(secondary_metrics="log loss >= 0.3"))
    assert field_error(response.content.decode(), "secondary_metrics") == [
        "Line 1 (“log loss &gt;= 0.3”): for Log loss lower is better, so write “log_loss &lt;= …”."
    ]
    response = client.post(reverse("projects:create"), form_data(secondary_metrics="recall is high"))
    assert field_error(response.content.decode(), "secondary_metrics") == [
        "Line 1 (“recall is high”) is not understood: write it like “recall &gt;= 0.7”."
    ]
    assert Project.objects.count() == 0


def test_secondary_metrics_accept_labels_and_unicode_operators(logged_in, make_user):
    client = logged_in(make_user(Role.STAKEHOLDER))
    client.post(
        reverse("projects:create"), form_data(secondary_metrics="ROC AUC ≥ 0.85\n\nlog_loss <= 0.4\nprecision 0.6")
    )
    assert Project.objects.get().definition.secondary_metrics == [
        {"metric": "roc_auc", "threshold": 0.85},
        {"metric": "log_loss", "threshold": 0.4},
        {"metric": "precision", "threshold": 0.6},
    ]


# --- Detail ----------------------------------------------------------------------------------------------------
def test_detail_shows_definition_roi_history_members_and_placeholders(logged_in, project):
    html = logged_in(project.created_by).get(reverse("projects:detail", args=[project.pk])).content.decode()
    assert '<span class="badge badge-draft" id="project-status">Draft</span>' in html
    assert '<dd id="primary-target">F1 ≥ 0.8</dd>' in html
    # ROI of the factory definition: 0.9*40 - 0.1*62.5 = 29.75 a decision, 100 000 decisions
    assert '<div class="stat" id="roi-yearly-model">2,975,000.00 EUR</div>' in html
    assert '<div class="stat ok" id="roi-yearly-gain">2,050,000.00 EUR</div>' in html
    assert '<div class="stat" id="roi-payback">0.88 months</div>' in html
    assert "Meets the target of 12 months." in html
    for heading in ("Experiments", "Models", "Deployments"):
        assert f'<h2 id="{heading.lower()}-heading">{heading}</h2>' in html
    assert html.count("None yet.") == 2  # experiments and deployments
    assert '<p class="muted" id="production-versions">No model in production yet.</p>' in html
    assert f"<td>{project.created_by.username}</td>" in html
    assert "Submit for review" in html and "Edit the definition" in html


def test_detail_offers_reviewers_only_their_transitions(logged_in, project, member):
    Project.objects.filter(pk=project.pk).update(status="submitted", submitted_by=project.created_by)
    html = logged_in(member(Role.REVIEWER)).get(reverse("projects:detail", args=[project.pk])).content.decode()
    assert "Approve for development" in html
    assert 'id="id_return-reason"' in html
    assert "Submit for review" not in html and "Edit the definition" not in html
    assert "Add a member or change a role" not in html


def test_detail_history_lists_transitions_with_reasons(logged_in, project, member):
    reviewer = member(Role.REVIEWER)
    client = logged_in(project.created_by)
    client.post(reverse("projects:submit", args=[project.pk]))
    client.force_login(reviewer)
    client.post(reverse("projects:return", args=[project.pk]), {"return-reason": "Add the baseline."})
    html = client.get(reverse("projects:detail", args=[project.pk])).content.decode()
    history = html[html.index('id="project-history"') :]
    assert "Submitted for review" in history
    assert "Returned to draft" in history
    assert "submitted → draft" in history
    assert "<td>Add the baseline.</td>" in history


def test_non_members_get_404_on_every_project_page(logged_in, project, outsider):
    client = logged_in(outsider)
    before = snapshot()
    assert client.get(reverse("projects:detail", args=[project.pk])).status_code == 404
    assert client.get(reverse("projects:edit", args=[project.pk])).status_code == 404
    assert client.post(reverse("projects:submit", args=[project.pk])).status_code == 404
    assert snapshot() == before


# --- Edit ------------------------------------------------------------------------------------------------------
def test_edit_form_starts_from_the_current_definition(logged_in, project):
    ProblemDefinition.objects.filter(project=project).update(
        secondary_metrics=[{"metric": "log_loss", "threshold": 0.3}]
    )
    html = logged_in(project.created_by).get(reverse("projects:edit", args=[project.pk])).content.decode()
    assert f'value="{project.name}"' in html
    assert "log_loss &lt;= 0.3</textarea>" in html


def test_edit_saves_changes_and_audits_them(logged_in, project):
    response = logged_in(project.created_by).post(
        reverse("projects:edit", args=[project.pk]), form_data(title="Churn v2", primary_threshold="0.82")
    )
    assert response.status_code == 302
    project.refresh_from_db()
    assert project.name == "Churn v2"
    assert project.definition.primary_threshold == 0.82
    event = AuditEvent.objects.get(action="project.update")
    assert event.after["title"] == "Churn v2"
    assert event.after["primary_threshold"] == 0.82


def test_edit_of_a_submitted_project_is_refused(logged_in, project):
    Project.objects.filter(pk=project.pk).update(status="submitted")
    client = logged_in(project.created_by)
    before = snapshot()
    response = client.get(reverse("projects:edit", args=[project.pk]), follow=True)
    assert "Only a draft project can be edited." in response.content.decode()
    response = client.post(reverse("projects:edit", args=[project.pk]), form_data(title="Sneaky"), follow=True)
    assert "Only a draft project can be edited." in response.content.decode()
    assert snapshot() == before


# --- Transitions -----------------------------------------------------------------------------------------------
def test_stakeholder_submits_from_the_page(logged_in, project):
    response = logged_in(project.created_by).post(reverse("projects:submit", args=[project.pk]), follow=True)
    project.refresh_from_db()
    assert project.status == "submitted"
    assert "Submitted for review." in response.content.decode()


def test_return_without_reason_shows_the_message_next_to_the_reason(logged_in, project, member):
    Project.objects.filter(pk=project.pk).update(status="submitted")
    client = logged_in(member(Role.REVIEWER))
    before = snapshot()
    response = client.post(reverse("projects:return", args=[project.pk]), {"return-reason": ""})
    assert response.status_code == 400
    assert field_error(response.content.decode(), "return-reason") == [
        "Say what should change before the project is submitted again."
    ]
    assert snapshot() == before


def test_transition_in_the_wrong_state_explains_and_changes_nothing(logged_in, project, member):
    client = logged_in(member(Role.REVIEWER))
    before = snapshot()
    response = client.post(reverse("projects:approve", args=[project.pk]), follow=True)
    assert "Only a submitted project can be approved." in response.content.decode()
    assert snapshot() == before


def test_self_approval_is_refused_on_the_page(logged_in, project, admin_user):
    client = logged_in(admin_user)
    client.post(reverse("projects:submit", args=[project.pk]))
    before = snapshot()
    response = client.post(reverse("projects:approve", args=[project.pk]), follow=True)
    assert "You filed or submitted this project, so someone else must approve it." in response.content.decode()
    assert snapshot() == before


def test_retire_keeps_the_optional_reason(logged_in, project):
    logged_in(project.created_by).post(reverse("projects:retire", args=[project.pk]), {"retire-reason": "Obsolete"})
    project.refresh_from_db()
    assert (project.status, project.status_note) == ("retired", "Obsolete")


# --- Members ---------------------------------------------------------------------------------------------------
def test_stakeholder_adds_and_removes_a_member_from_the_page(logged_in, project, make_user):
    make_user(Role.SCIENTIST, username="ada")
    client = logged_in(project.created_by)
    response = client.post(
        reverse("projects:member_set", args=[project.pk]), {"member-username": "ada", "member-role": "scientist"}
    )
    assert response.status_code == 302
    membership = Membership.objects.get(project=project, user__username="ada")
    assert membership.role == "scientist"
    client.post(reverse("projects:member_remove", args=[project.pk, membership.pk]))
    assert not Membership.objects.filter(pk=membership.pk).exists()


def test_unknown_member_shows_the_message_next_to_the_username(logged_in, project):
    client = logged_in(project.created_by)
    before = (snapshot(), Membership.objects.count())
    response = client.post(
        reverse("projects:member_set", args=[project.pk]), {"member-username": "nobody", "member-role": "scientist"}
    )
    assert response.status_code == 400
    assert field_error(response.content.decode(), "member-username") == [
        "No user is called “nobody”: check the spelling."
    ]
    assert (snapshot(), Membership.objects.count()) == before


def test_the_last_stakeholder_cannot_be_removed(logged_in, project):
    membership = Membership.objects.get(project=project, user=project.created_by)
    response = logged_in(project.created_by).post(
        reverse("projects:member_remove", args=[project.pk, membership.pk]), follow=True
    )
    assert "A project keeps at least one business stakeholder." in response.content.decode()
    assert Membership.objects.filter(pk=membership.pk).exists()
