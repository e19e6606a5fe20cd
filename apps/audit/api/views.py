from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.renderers import JSONRenderer

from apps.audit.api.serializers import AuditEventSerializer
from apps.audit.forms import AuditFilterForm, form_errors
from apps.audit.http import audit_export_http
from apps.audit.selectors import audit_event_list, audit_scope
from apps.core.exceptions import ApplicationError

FILTER_PARAMETERS = [
    OpenApiParameter("project", OpenApiTypes.UUID, description="Events about this project (one you may see)."),
    OpenApiParameter("actor", OpenApiTypes.STR, description="Exact username of the actor."),
    OpenApiParameter(
        "action", OpenApiTypes.STR, description='Exact action, or a prefix ending in ".", e.g. "project.".'
    ),
    OpenApiParameter("object_type", OpenApiTypes.STR, description='e.g. "projects.project".'),
    OpenApiParameter("object_id", OpenApiTypes.STR),
    OpenApiParameter("date_from", OpenApiTypes.DATE, description="Inclusive, UTC."),
    OpenApiParameter("date_to", OpenApiTypes.DATE, description="Inclusive, UTC."),
]

EXPORT_HEADERS = [
    OpenApiParameter(
        "X-Export-SHA256",
        OpenApiTypes.STR,
        OpenApiParameter.HEADER,
        description="SHA-256 of the body, hex.",
        response=[200],
    ),
    OpenApiParameter(
        "Digest", OpenApiTypes.STR, OpenApiParameter.HEADER, description="RFC 3230: sha-256=<base64>.", response=[200]
    ),
    OpenApiParameter(
        "Content-Digest",
        OpenApiTypes.STR,
        OpenApiParameter.HEADER,
        description="RFC 9530: sha-256=:<base64>:.",
        response=[200],
    ),
    OpenApiParameter(
        "X-Audit-Upto-Seq",
        OpenApiTypes.INT,
        OpenApiParameter.HEADER,
        description="The export covers seq <= this.",
        response=[200],
    ),
]


class CanViewAudit(BasePermission):
    """Platform compliance and admins, or a compliance member of at least one project (policy: AUDIT_VIEW)."""

    message = "You may not browse audit events."

    def has_permission(self, request, view) -> bool:
        return audit_scope(actor=request.user).allowed


class ExportFormatNegotiation(DefaultContentNegotiation):
    """`?format=` names the export format here, not a renderer; errors are always JSON."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


@extend_schema_view(
    list=extend_schema(
        summary="Audit events you may see, newest first",
        description="Platform compliance officers and admins see every event; a project's compliance members see "
        "that project's events. A bad filter is a 400 with the field named.",
        parameters=FILTER_PARAMETERS,
    ),
    retrieve=extend_schema(summary="One audit event, by seq"),
)
class AuditEventViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = AuditEventSerializer
    permission_classes = [IsAuthenticated, CanViewAudit]
    lookup_field = "seq"
    lookup_value_converter = "int"

    def get_queryset(self):
        if self.action != "list":
            return audit_event_list(actor=self.request.user)
        form = AuditFilterForm(self.request.query_params, actor=self.request.user)
        if not form.is_valid():
            raise ApplicationError("Invalid filters.", errors=form_errors(form))
        return audit_event_list(actor=self.request.user, filters=form.cleaned_data)

    @extend_schema(
        summary="Export audit events as CSV or JSON Lines (streamed)",
        description=(
            "Streams the events that match the filters, oldest first, up to `upto` (default: the newest event). The "
            "digest headers cover exactly the bytes of the body. With `sidecar=1&upto=N` the answer is the "
            "`sha256sum` line for that export instead. Every export is recorded as an `audit.export` event (after "
            "`upto`). Platform compliance officers may export everything; a project's compliance members must name "
            "their project in `project`. Admins may browse but not export. CSV cells starting with = + - @ tab or "
            "carriage return are prefixed with a single quote."
        ),
        parameters=[
            OpenApiParameter("format", OpenApiTypes.STR, enum=["csv", "jsonl"], required=True),
            OpenApiParameter("upto", OpenApiTypes.INT, description="Export events up to this seq."),
            OpenApiParameter("sidecar", OpenApiTypes.BOOL, description="Return the sha256sum sidecar (needs upto)."),
            *FILTER_PARAMETERS,
            *EXPORT_HEADERS,
        ],
        responses={
            (200, "text/csv"): OpenApiResponse(
                OpenApiTypes.BINARY, description="The export, or with sidecar=1 its sha256sum line"
            ),
            (200, "application/x-ndjson"): OpenApiResponse(OpenApiTypes.BINARY, description="JSON Lines export"),
            (200, "text/plain"): OpenApiResponse(OpenApiTypes.STR, description="sha256sum sidecar"),
            400: OpenApiResponse(description='{"message": ..., "errors": {field: [...]}}'),
            403: OpenApiResponse(description="Not allowed to export (these events)."),
        },
        filters=False,
    )
    @action(
        detail=False,
        methods=["get"],
        url_path="export",
        pagination_class=None,
        renderer_classes=[JSONRenderer],
        content_negotiation_class=ExportFormatNegotiation,
    )
    def export(self, request):
        return audit_export_http(actor=request.user, query=request.query_params)
