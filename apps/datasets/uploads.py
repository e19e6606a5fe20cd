"""The upload size limit, enforced before an upload is buffered.

Django parses a multipart body into temporary files as soon as anything touches `request.POST`/`request.FILES`
(DRF: `request.data`) — and CsrfViewMiddleware / DRF's SessionAuthentication touch `request.POST` before the view
runs. So the limit is installed before that happens:

- `install_upload_limit(request)` refuses at once when CONTENT_LENGTH is over the limit (nothing of the body is read),
  and puts `UploadLimitHandler` first in the request's upload handlers: it counts the bytes of every file as they
  arrive and stops a body that grows past the limit (chunked requests, a lying Content-Length).
- The API (apps/datasets/api/views.py) calls it in `initial()`, before authentication. HTML views use the
  `upload_limited` decorator, which installs the limit and then runs the CSRF check itself.

Both raise `UploadTooLarge`, an ApplicationError with status 413 and an error on the "file" field.
"""

from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler
from django.http import HttpResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.utils.html import escape
from django.views.decorators.csrf import csrf_exempt

from apps.core.exceptions import ApplicationError

# Room for the multipart framing (boundaries, part headers, small form fields) around a file of exactly the limit.
MULTIPART_OVERHEAD_BYTES = 1024 * 1024


def format_bytes(size: int) -> str:
    """2147483648 -> "2.0 GB"; 1536 -> "1.5 KB" (binary multiples, one decimal)."""
    value = float(size)
    for unit in ("bytes", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{int(value)} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def max_upload_bytes() -> int:
    return int(settings.DATASET_MAX_UPLOAD_BYTES)


def upload_limit_text() -> str:
    """The limit as people read it, e.g. "2.0 GB" (the UI shows it next to the file input)."""
    return format_bytes(max_upload_bytes())


class UploadTooLarge(ApplicationError):
    def __init__(self, limit: int | None = None):
        limit = max_upload_bytes() if limit is None else limit
        message = f"The file is larger than the {format_bytes(limit)} limit."
        super().__init__(message, errors={"file": [message]}, status=413)


class UploadLimitHandler(FileUploadHandler):
    """First in the handler chain: passes every chunk on, and raises UploadTooLarge past the limit."""

    def __init__(self, request=None, limit: int | None = None):
        super().__init__(request)
        self.limit = max_upload_bytes() if limit is None else limit
        self.received = 0

    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        if content_length and content_length > self.limit + MULTIPART_OVERHEAD_BYTES:
            raise UploadTooLarge(self.limit)
        return None

    def new_file(self, *args, **kwargs):
        super().new_file(*args, **kwargs)
        self.received = 0

    def receive_data_chunk(self, raw_data, start):
        self.received += len(raw_data)
        if self.received > self.limit:
            raise UploadTooLarge(self.limit)
        return raw_data

    def file_complete(self, file_size):
        return None


def _django_request(request):
    return getattr(request, "_request", request)  # a DRF Request wraps the Django one


def content_length(request) -> int | None:
    try:
        value = int(_django_request(request).META.get("CONTENT_LENGTH") or 0)
    except (TypeError, ValueError):
        return None
    return value if value > 0 else None


def install_upload_limit(request) -> None:
    """Refuse now if the declared body is over the limit; else count the bytes while the body is parsed.

    Call it before anything reads request.POST / request.FILES / request.data (the body is not read here).
    """
    limit = max_upload_bytes()
    declared = content_length(request)
    if declared is not None and declared > limit + MULTIPART_OVERHEAD_BYTES:
        raise UploadTooLarge(limit)
    django_request = _django_request(request)
    if not any(isinstance(handler, UploadLimitHandler) for handler in django_request.upload_handlers):
        django_request.upload_handlers.insert(0, UploadLimitHandler(django_request, limit))


def _default_too_large_response(request, error: UploadTooLarge) -> HttpResponse:
    return HttpResponse(f'<p class="bad" role="alert">{escape(error.message)}</p>', status=413)


def upload_limited(view: Callable | None = None, *, on_too_large: Callable | None = None):
    """Decorate an HTML view that receives uploads: the limit is installed before the CSRF check reads the body.

    CsrfViewMiddleware would parse the whole body (request.POST) before the view runs, so the view is exempted from
    the middleware and this wrapper runs the same CSRF check after installing the limit. An upload over the limit
    (declared, or found while the CSRF check parses the body) gets `on_too_large(request, error)` — by default a
    small 413 HTML fragment; an over-limit body found later, when the view reads request.FILES, raises UploadTooLarge
    in the view (catch ApplicationError there).
    """

    def decorate(func):
        @wraps(func)
        def wrapped(request, *args, **kwargs):
            respond = on_too_large or _default_too_large_response
            try:
                install_upload_limit(request)
                reason = CsrfViewMiddleware(lambda req: None).process_view(request, None, (), {})
            except UploadTooLarge as error:
                return respond(request, error)
            if reason is not None:
                return reason  # the CSRF failure response (403)
            return func(request, *args, **kwargs)

        return csrf_exempt(wrapped)

    return decorate(view) if view is not None else decorate
