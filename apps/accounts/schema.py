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


# The platform role and the project role are both fields named "role", and a token's status shares its field name
# with other statuses, so drf-spectacular cannot name these enums by itself.
# config/settings.py SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"] should hold these (import strings, no app import).
ENUM_NAME_OVERRIDES = {
    "RoleEnum": "apps.accounts.choices.Role",
    "ProjectRoleEnum": "apps.accounts.choices.ProjectRole",
    "ApiTokenStatusEnum": "apps.accounts.choices.ApiTokenStatus",
}
