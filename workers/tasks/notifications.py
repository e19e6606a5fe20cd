"""Notification tasks: e-mail one inbox item, attempt one webhook delivery. Both are thin: the row's id in, a service
call, the outcome out (apps/notifications/services.py holds the claim, the retry schedule and the SSRF checks).

Webhook retries are not Celery retries: a failed attempt records when the next one is due and the periodic task
notifications.dispatch_due_deliveries (workers/tasks/periodic.py) sends it then, so a 12-hour wait is a row in
PostgreSQL, not a message held by Redis past its visibility timeout.
"""

import smtplib

from celery import shared_task

from workers.tasks.base import ContextTask

# An attempt waits at most a few socket timeouts (apps/notifications/webhooks.py: 10 s each); the claim on the
# delivery (services.CLAIM_DURATION, 5 min) outlasts the hard limit, so no second worker sends it meanwhile.
DELIVERY_SOFT_TIME_LIMIT = 100
DELIVERY_HARD_TIME_LIMIT = 120


@shared_task(
    name="notifications.send_email",
    base=ContextTask,
    acks_late=True,
    reject_on_worker_lost=True,
    # A mail server that is down or refuses for now: try again, waiting 1, 2, 4, 8, 16 minutes (at most 30).
    autoretry_for=(smtplib.SMTPException, OSError),
    max_retries=5,
    retry_backoff=60,
    retry_backoff_max=1800,
    retry_jitter=False,
    soft_time_limit=60,
    time_limit=90,
)
def send_notification_email_task(notification_id: str) -> bool:
    """E-mail one inbox item to its recipient (once: a sent item is not sent again)."""
    from apps.notifications.services import notification_email_send

    return notification_email_send(notification_id=notification_id)


@shared_task(
    name="notifications.deliver_webhook",
    base=ContextTask,
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=DELIVERY_SOFT_TIME_LIMIT,
    time_limit=DELIVERY_HARD_TIME_LIMIT,
)
def deliver_webhook_task(delivery_id: str) -> str:
    """One attempt of one webhook delivery: succeeded, retrying, failed, or skipped (not due, or claimed)."""
    from apps.notifications.services import webhook_delivery_attempt

    return webhook_delivery_attempt(delivery_id=delivery_id)
