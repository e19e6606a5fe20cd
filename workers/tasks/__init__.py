"""Celery entry points. Each module registers its tasks when imported here."""

from workers.tasks import (  # noqa: F401
    datasets,
    deployments,
    explanations,
    features,
    monitoring,
    monitoring_retraining,
    notifications,
    periodic,
    predictions,
    system,
    training,
)
