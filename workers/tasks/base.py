"""What every Celery entry point shares: the audit trail learns which task made a change.

A web request gets a request id from RequestContextMiddleware; a task gets its Celery task id, so the audit events a
task writes can be matched to the task (and to its log lines) the same way.
"""

from celery import Task

from apps.core.context import request_context


class ContextTask(Task):
    """Runs the task body inside `request_context(request_id=<task id>)`. Use with `@shared_task(base=ContextTask)`."""

    abstract = True

    def __call__(self, *args, **kwargs):
        with request_context(request_id=str(self.request.id or "")):
            return super().__call__(*args, **kwargs)
