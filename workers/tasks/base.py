"""What every Celery entry point shares: the audit trail learns which task made a change, and long tasks keep a
heartbeat.

A web request gets a request id from RequestContextMiddleware; a task gets its Celery task id, so the audit events a
task writes can be matched to the task (and to its log lines) the same way.
"""

import logging
import threading
from collections.abc import Callable

from celery import Task
from django.db import connection

from apps.core.context import request_context

logger = logging.getLogger(__name__)


class ContextTask(Task):
    """Runs the task body inside `request_context(request_id=<task id>)`. Use with `@shared_task(base=ContextTask)`."""

    abstract = True

    def __call__(self, *args, **kwargs):
        with request_context(request_id=str(self.request.id or "")):
            return super().__call__(*args, **kwargs)


class Heartbeat:
    """Calls `beat()` every `seconds` from a daemon thread while a task works, so a periodic sweep can tell a dead
    worker from a slow step. Use as a context manager around the work."""

    def __init__(self, name: str, beat: Callable[[], object], seconds: float):
        self.name = name
        self.beat = beat
        self.seconds = seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{name}", daemon=True)

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.seconds):
                try:
                    self.beat()
                except Exception:  # a missed heartbeat is not worth stopping the work for
                    logger.warning("heartbeat of %s failed", self.name, exc_info=True)
        finally:
            connection.close()  # this thread's own database connection

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=5)
