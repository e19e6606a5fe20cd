from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "apps.accounts"
    label = "accounts"

    def ready(self) -> None:
        from apps.accounts import (
            schema,  # noqa: F401  (describes API token authentication in the OpenAPI schema)
            signals,  # noqa: F401  (records failed logins in the audit trail)
        )
