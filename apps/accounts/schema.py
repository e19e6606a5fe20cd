"""How the OpenAPI schema describes personal API tokens (drf-spectacular finds this extension once imported)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiTokenAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "apps.accounts.authentication.ApiTokenAuthentication"
    name = "apiToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": (
                "A personal API token from your settings page or POST /api/v1/auth/token/: "
                "`Token mlp_…` (or `Bearer mlp_…`)."
            ),
        }
