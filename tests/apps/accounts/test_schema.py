"""The auth endpoints are documented: the OpenAPI schema generates for them with no warnings and no errors."""

import pytest
from django.urls import include, path
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator


@pytest.fixture
def auth_schema():
    GENERATOR_STATS.reset()
    generator = SchemaGenerator(patterns=[path("api/v1/auth/", include("apps.accounts.api.urls"))])
    schema = generator.get_schema(request=None, public=True)
    problems = {**GENERATOR_STATS._warn_cache, **GENERATOR_STATS._error_cache}
    GENERATOR_STATS.reset()
    return schema, problems


def test_auth_schema_generates_without_warnings(auth_schema):
    _, problems = auth_schema

    assert problems == {}


def test_auth_schema_lists_every_endpoint_and_method(auth_schema):
    schema, _ = auth_schema

    assert {p: sorted(m for m in ops if m != "parameters") for p, ops in schema["paths"].items()} == {
        "/api/v1/auth/token/": ["post"],
        "/api/v1/auth/me/": ["get"],
        "/api/v1/auth/tokens/": ["get", "post"],
        "/api/v1/auth/tokens/{id}/": ["delete", "get"],
        "/api/v1/auth/users/": ["get", "post"],
        "/api/v1/auth/users/{id}/": ["get", "patch"],
    }


def test_token_endpoint_needs_no_authentication_and_documents_its_errors(auth_schema):
    schema, _ = auth_schema
    operation = schema["paths"]["/api/v1/auth/token/"]["post"]

    assert "security" not in operation  # no scheme: anyone may call it
    assert sorted(operation["responses"]) == ["201", "400", "429"]
    assert operation["responses"]["429"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Error"
    }


def test_api_token_authentication_is_described(auth_schema):
    schema, _ = auth_schema

    assert schema["components"]["securitySchemes"]["apiToken"] == {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": schema["components"]["securitySchemes"]["apiToken"]["description"],
    }
    assert {"apiToken": []} in schema["paths"]["/api/v1/auth/me/"]["get"]["security"]
