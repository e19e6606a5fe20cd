import re
import uuid

from django.conf import settings

from apps.core.context import request_context

# A caller may pass its own request id (for tracing across services) if it is short and plain.
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def client_address(request) -> str:
    """REMOTE_ADDR, or the address the trusted proxies saw when TRUSTED_PROXY_COUNT > 0."""
    proxies = settings.TRUSTED_PROXY_COUNT
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if proxies and forwarded:
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        if len(hops) >= proxies:
            return hops[-proxies][:45]
    return request.META.get("REMOTE_ADDR", "")[:45]


class RequestContextMiddleware:
    """Gives each request an id (echoed in X-Request-ID) and records the client address for audit events."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get("X-Request-ID", "")
        request.request_id = incoming if _VALID_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        with request_context(request_id=request.request_id, client_ip=client_address(request)):
            response = self.get_response(request)
        response["X-Request-ID"] = request.request_id
        return response
