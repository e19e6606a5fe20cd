"""Every periodic task of the platform, in one module (beat schedules them: CELERY_BEAT_SCHEDULE in settings)."""

from celery import shared_task
from django.conf import settings

from workers.tasks.base import ContextTask

# Running jobs whose heartbeat (every 30 s, workers/tasks/datasets.py) is older than this are failed.
DEFAULT_STALE_MINUTES = 10
# Queued jobs not dispatched for this long are dispatched again (the broker lost the message, or the dispatch after
# commit never happened).
DEFAULT_REQUEUE_MINUTES = 5
# Queued jobs older than this are failed: no worker serves the queue.
DEFAULT_GIVE_UP_HOURS = 24


@shared_task(name="datasets.sweep_stale_jobs", base=ContextTask, acks_late=True, soft_time_limit=240, time_limit=300)
def sweep_stale_ingestion_jobs() -> dict:
    """Fail ingestion jobs whose worker died; dispatch again those whose dispatch was lost."""
    from apps.datasets.services import ingestion_jobs_sweep

    return ingestion_jobs_sweep(
        stale_after_minutes=getattr(settings, "DATASET_JOB_STALE_MINUTES", DEFAULT_STALE_MINUTES),
        requeue_after_minutes=getattr(settings, "DATASET_JOB_REQUEUE_MINUTES", DEFAULT_REQUEUE_MINUTES),
        give_up_after_hours=getattr(settings, "DATASET_JOB_GIVE_UP_HOURS", DEFAULT_GIVE_UP_HOURS),
    )


@shared_task(name="experiments.sweep_stale_runs", base=ContextTask, acks_late=True, soft_time_limit=240, time_limit=300)
def sweep_stale_runs() -> dict:
    """Fail training runs whose worker died; dispatch again those whose dispatch was lost."""
    from apps.experiments.services import runs_sweep

    return runs_sweep(
        stale_after_seconds=settings.RUN_STALE_SECONDS,
        requeue_after_minutes=settings.RUN_REQUEUE_MINUTES,
        give_up_after_hours=settings.RUN_GIVE_UP_HOURS,
    )


@shared_task(
    name="notifications.dispatch_due_deliveries", base=ContextTask, acks_late=True, soft_time_limit=50, time_limit=60
)
def dispatch_due_webhook_deliveries() -> int:
    """Send webhook deliveries whose retry is due, or whose dispatch or worker was lost, to the worker."""
    from apps.notifications.services import webhook_deliveries_dispatch_due

    return webhook_deliveries_dispatch_due()


@shared_task(name="deployments.reconcile_all", base=ContextTask, acks_late=True, soft_time_limit=280, time_limit=300)
def reconcile_all_deployments() -> dict[str, str]:
    """Every deployment that runs or should stop: restarts crashed replicas, scrapes metrics, moves rollouts on."""
    from apps.deployments.selectors.deployments import deployments_to_reconcile
    from workers.tasks.deployments import reconcile_one

    return {str(pk): reconcile_one(str(pk)) for pk in deployments_to_reconcile()}


@shared_task(name="deployments.sweep_explanations", base=ContextTask, acks_late=True, soft_time_limit=50, time_limit=60)
def sweep_explanations() -> dict:
    """Fail explanations whose worker died; dispatch again those whose dispatch was lost."""
    from apps.deployments.services.predictions import explanations_sweep

    return explanations_sweep(stale_after_minutes=settings.EXPLANATION_STALE_MINUTES)
