"""Celery entry points. Each module registers its tasks when imported here."""

from workers.tasks import system  # noqa: F401
