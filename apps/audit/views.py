from urllib.parse import urlencode

from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views import View

from apps.accounts.permissions import Action, can
from apps.audit.export import ExportFormat, export_filename
from apps.audit.forms import AuditFilterForm
from apps.audit.http import audit_export_http
from apps.audit.models import AuditEvent
from apps.audit.selectors import (
    audit_chain_head,
    audit_event_get,
    audit_event_list,
    audit_filters_as_json,
    audit_scope,
)
from apps.core.exceptions import ApplicationError
from apps.core.pagination import paginate


def _require_audit_view(user) -> None:
    if not audit_scope(actor=user).allowed:
        raise PermissionDenied("You may not browse audit events.")


def _export_panel(user, filters: dict | None) -> dict:
    """Export links for the current filters, pinned to the chain head as the page is rendered, so the file and its
    digest sidecar describe exactly the same events however many events are added meanwhile."""
    if filters is None or not audit_scope(actor=user, action=Action.AUDIT_EXPORT).allowed:
        return {"export_allowed": False, "export_needs_project": False}
    if not can(user, Action.AUDIT_EXPORT, project=filters.get("project")):
        return {"export_allowed": False, "export_needs_project": True}
    head_seq, _head_hash = audit_chain_head()
    base = reverse("audit:export")
    query = audit_filters_as_json(filters)
    links = []
    for fmt in ExportFormat:
        pinned = {**query, "format": fmt.value, "upto": head_seq}
        links.append(
            {
                "label": fmt.label,
                "url": f"{base}?{urlencode(pinned)}",
                "sidecar_url": f"{base}?{urlencode({**pinned, 'sidecar': 1})}",
                "filename": export_filename(fmt, head_seq),
            }
        )
    return {"export_allowed": True, "export_needs_project": False, "export_head_seq": head_seq, "export_links": links}


class AuditEventListView(LoginRequiredMixin, View):
    """Browse and filter the events the user may see; htmx requests get just the results partial."""

    def get(self, request):
        _require_audit_view(request.user)
        form = AuditFilterForm(request.GET, actor=request.user)
        filters = form.cleaned_data if form.is_valid() else None
        events = audit_event_list(actor=request.user, filters=filters)
        if filters is None:
            events = events.none()
        context = {
            "form": form,
            "page_obj": paginate(request, events),
            "filters_invalid": filters is None,
            **_export_panel(request.user, filters),
        }
        template = "audit/partials/event_table.html" if request.htmx else "audit/auditevent_list.html"
        return render(request, template, context)


class AuditEventDetailView(LoginRequiredMixin, View):
    def get(self, request, seq: int):
        _require_audit_view(request.user)
        try:
            event = audit_event_get(actor=request.user, seq=seq)
        except AuditEvent.DoesNotExist:
            raise Http404("No such audit event.") from None
        return render(request, "audit/auditevent_detail.html", {"event": event})


class AuditEventExportView(LoginRequiredMixin, View):
    """The filtered events as a streamed CSV or JSON Lines download, or (sidecar=1&upto=N) its SHA-256 sidecar."""

    def get(self, request):
        try:
            return audit_export_http(actor=request.user, query=request.GET)
        except ApplicationError as error:
            lines = [error.message] + [f"{field}: {msg}" for field, msgs in error.errors.items() for msg in msgs]
            return HttpResponse("\n".join(lines) + "\n", status=error.status, content_type="text/plain; charset=utf-8")
