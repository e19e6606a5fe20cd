"""HTTP responses for exports, shared by the HTML view and the API: the streamed body with its digest headers, and
the sha256sum sidecar."""

from django.core.exceptions import PermissionDenied
from django.http import HttpResponse, StreamingHttpResponse
from django.utils.http import content_disposition_header

from apps.accounts.permissions import Action
from apps.audit.export import digest_headers, sidecar_text
from apps.audit.forms import AuditExportForm, AuditFilterForm, form_errors
from apps.audit.selectors import audit_scope
from apps.audit.services import AuditExport, audit_export_sidecar, audit_export_start
from apps.core.exceptions import ApplicationError


def _headers(export: AuditExport, filename: str) -> dict[str, str]:
    return {
        **digest_headers(export.digest),
        "X-Audit-Upto-Seq": str(export.upto),
        "X-Audit-Event-Count": str(export.digest.count),
        "Content-Disposition": content_disposition_header(as_attachment=True, filename=filename),
        "Cache-Control": "no-store",
    }


def export_response(export: AuditExport) -> StreamingHttpResponse:
    response = StreamingHttpResponse(export.body(), content_type=export.fmt.content_type)
    for name, value in _headers(export, export.filename).items():
        response[name] = value
    response["Content-Length"] = str(export.digest.size)
    return response


def sidecar_response(export: AuditExport) -> HttpResponse:
    filename = f"{export.filename}.sha256"
    response = HttpResponse(sidecar_text(export.digest, export.filename), content_type="text/plain; charset=utf-8")
    for name, value in _headers(export, filename).items():
        response[name] = value
    return response


def audit_export_http(*, actor, query) -> HttpResponse | StreamingHttpResponse:
    """Answer an export request (`query`: the GET parameters): the export, or with `sidecar=1&upto=N` its digest.

    Raises PermissionDenied for someone who may export nothing (before looking at the input, so nothing about the
    input is revealed to them), ApplicationError for bad input.
    """
    if not audit_scope(actor=actor, action=Action.AUDIT_EXPORT).allowed:
        raise PermissionDenied("You may not export audit events.")
    filter_form = AuditFilterForm(query, actor=actor)
    export_form = AuditExportForm(query)
    filters_ok, options_ok = filter_form.is_valid(), export_form.is_valid()  # both, so every error is reported
    if not (filters_ok and options_ok):
        raise ApplicationError("Invalid export request.", errors=form_errors(filter_form, export_form))
    options = export_form.cleaned_data
    filters = filter_form.cleaned_data
    if options["sidecar"]:
        export = audit_export_sidecar(actor=actor, fmt=options["format"], filters=filters, upto=options["upto"])
        return sidecar_response(export)
    export = audit_export_start(actor=actor, fmt=options["format"], filters=filters, upto=options["upto"])
    return export_response(export)
