"""Celery entry points. Each module registers its tasks when imported here."""

from workers.tasks import datasets, deployments, notifications, periodic, system, training  # noqa: F401
