"""deployments.import_prediction_logs: bring every deployment's new prediction-log lines into the portal's store.

Beat runs it every few seconds (CELERY_BEAT_SCHEDULE). Each deployment is imported in its own try, so one bad folder
(unreadable, a database error on its rows) does not stop the others, and under a cache lock (`cache.add`, atomic in
Redis) so two workers never import the same deployment at once; the service's compare-and-set cursors keep even a
lock that expired mid-import from doubling or losing a row. The reading itself is workers.serving.log_files (no
Django); the service (apps.deployments.services.predictions) writes the rows and cursors.
"""

import logging
import uuid

from celery import shared_task
from django.core.cache import cache

from workers.tasks.base import ContextTask

logger = logging.getLogger(__name__)

# Longer than any import of one deployment's bounded read (log_files.DEFAULT_MAX_BYTES) takes.
LOCK_SECONDS = 300


def import_lock_key(deployment_id) -> str:
    return f"deployments:import-prediction-logs:{deployment_id}"


def import_deployment_logs(deployment) -> dict | None:
    """Import one deployment's logs under its lock; None when another worker holds it or there is no folder."""
    from apps.deployments.runtime import prediction_log_dir
    from apps.deployments.services.predictions import predictions_import
    from workers.serving.log_files import read_log_folder

    if not prediction_log_dir(deployment.name).is_dir():
        return None
    key, token = import_lock_key(deployment.pk), uuid.uuid4().hex
    if not cache.add(key, token, timeout=LOCK_SECONDS):
        return None
    try:
        return predictions_import(deployment=deployment, reader=read_log_folder).as_dict()
    finally:
        if cache.get(key) == token:  # not a lock another worker took after ours expired
            cache.delete(key)


@shared_task(
    name="deployments.import_prediction_logs", base=ContextTask, acks_late=True, soft_time_limit=240, time_limit=300
)
def import_prediction_logs() -> dict:
    """{deployment name: what was imported, or "error"} for every deployment with a log folder (one another worker
    is importing is left out)."""
    from apps.deployments.selectors.predictions import deployments_to_import

    outcome: dict = {}
    for deployment in deployments_to_import():
        try:
            result = import_deployment_logs(deployment)
        except Exception:  # one deployment's failure must not stop the others; the next run retries it
            logger.exception("importing the prediction log of %s failed", deployment.name)
            outcome[deployment.name] = "error"
            continue
        if result is not None:
            outcome[deployment.name] = result
    return outcome
