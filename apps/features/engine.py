"""The one place the portal calls the feature engine (workers.ml.features): to validate a definition the way the
worker will compute it, and to read the online store.

The modules are imported when first used, not when the web process starts: defining a feature and reading online
values are the only portal paths that need them. import-linter allows exactly these modules (pyproject.toml).
"""

from typing import Any


def validate_transformation(spec: dict, *, source_columns: dict[str, str]) -> dict:
    """The normalised spec, or `TransformationError(field, message)` (see `transformation_error_type`)."""
    from workers.ml.features import transforms

    return transforms.validate_transformation(spec, source_columns=source_columns)


def transformation_error_type() -> type[Exception]:
    from workers.ml.features import transforms

    return transforms.TransformationError


def parse_expression(text: str, *, columns: set[str]):
    """The parsed tree (never evaluated here), or `ExpressionError` (see `expression_error_type`)."""
    from workers.ml.features import expressions

    return expressions.parse_expression(text, columns=columns)


def expression_error_type() -> type[Exception]:
    from workers.ml.features import expressions

    return expressions.ExpressionError


def read_online(client, *, feature_view: str, entity_rows: list[dict], features: list[str]) -> list[dict[str, Any]]:
    from workers.ml.features import online

    return online.read_online(client, feature_view=feature_view, entity_rows=entity_rows, features=features)


def online_client():
    """The online store's Redis (FEATURES_ONLINE_REDIS_URL, else REDIS_URL, else the local database 0)."""
    import redis
    from django.conf import settings

    url = getattr(settings, "FEATURES_ONLINE_REDIS_URL", "") or settings.REDIS_URL or "redis://127.0.0.1:6379/0"
    return redis.Redis.from_url(url, socket_timeout=2)
