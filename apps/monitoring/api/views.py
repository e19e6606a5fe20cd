"""The monitoring API.

GET/PATCH /deployments/<uuid>/monitor/            the monitor and its rules; change its settings
POST      /deployments/<uuid>/monitor/rules/      add an alert rule
PATCH     /monitoring/rules/<uuid>/               change a rule (threshold, severity, on/off)
GET/POST  /deployments/<uuid>/monitor/checks/     the checks (newest first); queue one now (202)
GET       /monitoring/checks/<uuid>/              one check with every figure
GET       /monitoring/alerts/                     alerts (?status=unresolved|open|acknowledged|resolved)
GET       /monitoring/alerts/<uuid>/              one alert
POST      /monitoring/alerts/<uuid>/acknowledge/  {note?}
POST      /monitoring/alerts/<uuid>/resolve/      {note}
GET       /monitoring/overview/                   every visible deployment's health
"""

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.api import StandardPagination
from apps.core.exceptions import ApplicationError
from apps.monitoring import selectors
from apps.monitoring.api import serializers as io
from apps.monitoring.services import checks as check_services
from apps.monitoring.services import monitors as monitor_services

_ERRORS = {
    400: OpenApiResponse(description='Invalid input: {"message": ..., "errors": {field: [messages]}}'),
    403: OpenApiResponse(description="Your role does not allow this."),
    404: OpenApiResponse(description="No such deployment, check or alert, or you may not see it."),
}


def _parsed(serializer_class, data):
    body = serializer_class(data=data)
    body.is_valid(raise_exception=True)
    return body.validated_data


def _paginated(view, request, queryset, serializer_class):
    paginator = StandardPagination()
    page = paginator.paginate_queryset(queryset, request, view=view)
    return paginator.get_paginated_response(serializer_class(page, many=True).data)


class MonitorView(APIView):
    @extend_schema(
        summary="A deployment's monitor and its alert rules", responses={200: io.MonitorSerializer, **_ERRORS}
    )
    def get(self, request, pk):
        return Response(
            io.MonitorSerializer(selectors.monitor_of_deployment(actor=request.user, deployment_pk=pk)).data
        )

    @extend_schema(
        summary="Change the monitor's reference, window, schedule or thresholds",
        request=io.MonitorUpdateInputSerializer,
        responses={200: io.MonitorSerializer, **_ERRORS},
    )
    def patch(self, request, pk):
        monitor = selectors.monitor_of_deployment(actor=request.user, deployment_pk=pk)
        data = dict(_parsed(io.MonitorUpdateInputSerializer, request.data))
        if "reference_version_number" in data:
            number = data.pop("reference_version_number")
            version = None
            if number is not None:
                version = monitor.deployment.registered_model.versions.filter(number=number).first()
                if version is None:
                    message = f"The model has no version {number}."
                    raise ApplicationError(message, errors={"reference_version_number": [message]})
            data["reference_version"] = version
        monitor_services.monitor_update(monitor=monitor, actor=request.user, data=data)
        monitor = selectors.monitor_of_deployment(actor=request.user, deployment_pk=pk)
        return Response(io.MonitorSerializer(monitor).data)


class RuleCreateView(APIView):
    @extend_schema(
        summary="Add an alert rule", request=io.RuleInputSerializer, responses={201: io.AlertRuleSerializer, **_ERRORS}
    )
    def post(self, request, pk):
        monitor = selectors.monitor_of_deployment(actor=request.user, deployment_pk=pk)
        rule = monitor_services.alert_rule_create(
            monitor=monitor, actor=request.user, data=_parsed(io.RuleInputSerializer, request.data)
        )
        return Response(io.AlertRuleSerializer(rule).data, status=status.HTTP_201_CREATED)


class RuleDetailView(APIView):
    @extend_schema(
        summary="Change an alert rule",
        request=io.RuleUpdateInputSerializer,
        responses={200: io.AlertRuleSerializer, **_ERRORS},
    )
    def patch(self, request, pk):
        rule = selectors.alert_rule_get(actor=request.user, pk=pk)
        rule = monitor_services.alert_rule_update(
            rule=rule, actor=request.user, data=_parsed(io.RuleUpdateInputSerializer, request.data)
        )
        return Response(io.AlertRuleSerializer(rule).data)


class CheckListView(APIView):
    @extend_schema(summary="The monitor's checks, newest first", responses={200: io.CheckSerializer(many=True)})
    def get(self, request, pk):
        monitor = selectors.monitor_of_deployment(actor=request.user, deployment_pk=pk)
        return _paginated(self, request, selectors.checks_of(monitor=monitor), io.CheckSerializer)

    @extend_schema(summary="Queue a check now", request=None, responses={202: io.CheckSerializer, **_ERRORS})
    def post(self, request, pk):
        monitor = selectors.monitor_of_deployment(actor=request.user, deployment_pk=pk)
        check = monitor_services.check_request(monitor=monitor, actor=request.user)
        return Response(io.CheckSerializer(check).data, status=status.HTTP_202_ACCEPTED)


class CheckDetailView(APIView):
    @extend_schema(summary="One check with every figure", responses={200: io.CheckSerializer, **_ERRORS})
    def get(self, request, pk):
        return Response(io.CheckSerializer(selectors.check_get(actor=request.user, pk=pk)).data)


class AlertListView(APIView):
    @extend_schema(
        summary="Alerts you may see, newest first",
        parameters=[OpenApiParameter("status", str, description="unresolved, open, acknowledged or resolved")],
        responses={200: io.AlertSerializer(many=True)},
    )
    def get(self, request):
        wanted = request.query_params.get("status") or None
        if wanted not in (None, "unresolved", "open", "acknowledged", "resolved"):
            message = "One of unresolved, open, acknowledged, resolved."
            return Response({"message": message, "errors": {"status": [message]}}, status=400)
        return _paginated(self, request, selectors.alert_list(actor=request.user, status=wanted), io.AlertSerializer)


class AlertDetailView(APIView):
    @extend_schema(summary="One alert", responses={200: io.AlertSerializer, **_ERRORS})
    def get(self, request, pk):
        return Response(io.AlertSerializer(selectors.alert_get(actor=request.user, pk=pk)).data)


class AlertActionView(APIView):
    action_name = ""

    @extend_schema(
        summary="Acknowledge (someone is on it) or resolve (with what was done) an alert",
        request=io.AlertNoteInputSerializer,
        responses={200: io.AlertSerializer, **_ERRORS},
    )
    def post(self, request, pk):
        alert = selectors.alert_get(actor=request.user, pk=pk)
        note = _parsed(io.AlertNoteInputSerializer, request.data)["note"]
        if self.action_name == "acknowledge":
            check_services.alert_acknowledge(alert=alert, actor=request.user, note=note)
        else:
            check_services.alert_resolve(alert=alert, actor=request.user, note=note)
        return Response(io.AlertSerializer(selectors.alert_get(actor=request.user, pk=pk)).data)


class OverviewView(APIView):
    @extend_schema(summary="Every visible deployment's health", responses={200: io.HealthRowSerializer(many=True)})
    def get(self, request):
        return Response(io.HealthRowSerializer(selectors.overview(actor=request.user), many=True).data)
