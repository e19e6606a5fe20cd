"""Deployment tasks: reconcile one deployment after each change (all of them: workers/tasks/periodic.py). Thin: the
reconciler (apps/deployments/services/reconcile.py) holds the rules; the runner does the processes.

Two rounds for the same deployment never overlap: a cache lock per deployment (Redis in production) lets the second
one skip, since the round that holds the lock applies the newest desired state anyway."""

from functools import lru_cache

from celery import shared_task
from django.conf import settings
from django.core.cache import cache

from workers.serving.runners.base import Runner
from workers.serving.runners.factory import runner_for
from workers.tasks.base import ContextTask

LOCK_SECONDS = 300  # longer than a round can take (a replica gets SERVING_READY_TIMEOUT to answer)


def runner_options(name: str) -> dict:
    """The runner's constructor options, from settings (docs/operations.md, "Model servers")."""
    if name == "local":
        return {
            "state_dir": settings.SERVING_STATE_DIR,
            "ready_timeout": float(settings.SERVING_READY_TIMEOUT),
            "max_restarts": settings.SERVING_RUNNER_OPTIONS["docker"]["max_restarts"],
        }
    return dict(getattr(settings, "SERVING_RUNNER_OPTIONS", {}).get(name, {}))


@lru_cache(maxsize=4)
def runner_named(name: str) -> Runner:
    """One runner per worker process and kind, so the local runner keeps the exit codes of what it started."""
    return runner_for(name, **runner_options(name))


def reconcile_one(deployment_id: str) -> str:
    from apps.deployments.models import Deployment
    from apps.deployments.services.reconcile import deployment_reconcile

    lock = f"deployments:reconcile:{deployment_id}"
    if not cache.add(lock, 1, LOCK_SECONDS):
        return "busy"
    try:
        deployment = Deployment.objects.filter(pk=deployment_id).first()
        if deployment is None:
            return "gone"
        return deployment_reconcile(deployment_id=deployment.pk, runner=runner_named(deployment.runner)).status
    finally:
        cache.delete(lock)


@shared_task(name="deployments.reconcile", base=ContextTask, acks_late=True, soft_time_limit=280, time_limit=300)
def reconcile_deployment_task(deployment_id: str) -> str:
    return reconcile_one(deployment_id)
