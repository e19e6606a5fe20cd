"""Deployment tasks: reconcile one deployment after each change (all of them: workers/tasks/periodic.py). Thin: the
reconciler (apps/deployments/services/reconcile.py) holds the rules; the runner does the processes.

Two rounds for the same deployment never overlap: a cache lock per deployment (Redis in production) lets the second
one skip, since the round that holds the lock applies the newest desired state anyway."""

from celery import shared_task
from django.core.cache import cache

from workers.tasks.base import ContextTask

LOCK_SECONDS = 300  # longer than a round can take (a replica gets SERVING_READY_TIMEOUT to answer)


def reconcile_one(deployment_id: str) -> str:
    from apps.deployments.models import Deployment
    from apps.deployments.runners import runner_named
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
