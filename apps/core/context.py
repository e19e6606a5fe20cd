"""Who is asking and from where, for the audit trail, without passing the request through every service.

The middleware sets these per request; Celery tasks set them per task (request id = task id).
"""

import contextvars
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class RequestContext:
    request_id: str = ""
    client_ip: str = ""


_current: contextvars.ContextVar[RequestContext] = contextvars.ContextVar("request_context", default=RequestContext())  # noqa: B039 (frozen)


def current_request_context() -> RequestContext:
    return _current.get()


@contextmanager
def request_context(*, request_id: str, client_ip: str = ""):
    token = _current.set(RequestContext(request_id=request_id, client_ip=client_ip))
    try:
        yield
    finally:
        _current.reset(token)
