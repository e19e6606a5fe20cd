"""The two problem-definition fields the registry reads: the fairness limit and the approvals a promotion needs
(defaults, bounds, the project API and the form)."""

import pytest

from apps.projects.forms import ProblemDefinitionForm
from apps.projects.validation import definition_errors

pytestmark = pytest.mark.django_db


def test_defaults_apply_to_existing_definitions(project):
    assert (project.definition.fairness_max_difference, project.definition.required_approvals) == (0.1, 1)


@pytest.mark.parametrize(
    "field,value",
    [
        ("fairness_max_difference", -0.1),
        ("fairness_max_difference", 1.5),
        ("required_approvals", 0),
        ("required_approvals", 11),
        ("required_approvals", True),
    ],
)
def test_out_of_range_values_are_refused_by_field(field, value):
    assert list(definition_errors({field: value}).get(field, [])) != []


def test_the_project_api_changes_them(api_client_as, project):
    client = api_client_as(project.created_by)
    url = f"/api/v1/projects/{project.pk}/"

    refused = client.patch(url, {"required_approvals": 0}, format="json")
    assert refused.status_code == 400 and list(refused.json()["errors"]) == ["required_approvals"]
    answer = client.patch(url, {"fairness_max_difference": 0.05, "required_approvals": 3}, format="json")

    assert answer.status_code == 200, answer.json()
    assert (
        answer.json()["definition"]["fairness_max_difference"],
        answer.json()["definition"]["required_approvals"],
    ) == (
        0.05,
        3,
    )


def test_the_form_leaves_an_empty_value_at_the_default():
    form = ProblemDefinitionForm(data={"fairness_max_difference": "", "required_approvals": ""})
    form.is_valid()

    assert (form.cleaned_data["fairness_max_difference"], form.cleaned_data["required_approvals"]) == (0.1, 1)
