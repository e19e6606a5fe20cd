"""The notifications API: /api/v1/notifications/ (one's own inbox) and /api/v1/webhooks/ (admins).

Reads go through the selectors (another person's item is a 404), writes through the services
(input serializer -> service -> output serializer), which check the policy.
"""

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from apps.accounts.permissions import Action, require
from apps.core.exceptions import ApplicationError
from apps.notifications import selectors, services
from apps.notifications.api.serializers import (
    MarkedReadSerializer,
    NotificationFilterSerializer,
    NotificationSerializer,
    WebhookCreatedSerializer,
    WebhookDeliverySerializer,
    WebhookInputSerializer,
    WebhookSerializer,
    WebhookUpdateInputSerializer,
)
from apps.notifications.models import Notification, Webhook, WebhookDelivery
from apps.projects.selectors import project_visible_queryset


def _errors(*codes: int) -> dict:
    texts = {
        400: 'Invalid input: {"message": ..., "errors": {field: [messages]}}',
        401: "Not signed in.",
        403: "Your role does not allow this.",
        404: "No such object, or it is not yours to see.",
    }
    return {code: OpenApiResponse(description=texts[code]) for code in codes}


@extend_schema_view(
    list=extend_schema(
        summary="Your notifications, newest first",
        parameters=[NotificationFilterSerializer],
        responses={200: NotificationSerializer(many=True), **_errors(400, 401)},
    ),
    retrieve=extend_schema(
        summary="One of your notifications", responses={200: NotificationSerializer, **_errors(401, 404)}
    ),
    read=extend_schema(
        summary="Mark one of your notifications read",
        request=None,
        responses={200: NotificationSerializer, **_errors(401, 404)},
    ),
    read_all=extend_schema(
        summary="Mark all your notifications read", request=None, responses={200: MarkedReadSerializer, **_errors(401)}
    ),
)
class NotificationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = NotificationSerializer
    lookup_value_converter = "uuid"
    queryset = Notification.objects.none()  # for the schema; requests use get_queryset

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Notification.objects.none()
        unread_only = False
        if self.action == "list":
            filters = NotificationFilterSerializer(data=self.request.query_params.dict())
            filters.is_valid(raise_exception=True)
            unread_only = filters.validated_data["unread"]
        return selectors.notification_list(actor=self.request.user, unread_only=unread_only)

    @action(detail=True, methods=["post"])
    def read(self, request, pk=None):
        notification = services.notification_mark_read(notification=self.get_object(), actor=request.user)
        return Response(NotificationSerializer(notification).data)

    @action(detail=False, methods=["post"], url_path="read-all")
    def read_all(self, request):
        count = services.notifications_mark_all_read(actor=request.user)
        return Response(MarkedReadSerializer({"marked_read": count}).data)


@extend_schema_view(
    list=extend_schema(summary="Webhooks (admins)", responses={200: WebhookSerializer(many=True), **_errors(401, 403)}),
    retrieve=extend_schema(
        summary="One webhook (admins)", responses={200: WebhookSerializer, **_errors(401, 403, 404)}
    ),
    create=extend_schema(
        summary="Register a webhook (admins); the answer carries its signing secret, once",
        request=WebhookInputSerializer,
        responses={201: WebhookCreatedSerializer, **_errors(400, 401, 403)},
    ),
    partial_update=extend_schema(
        summary="Change a webhook's name, URL, events or active flag (admins)",
        request=WebhookUpdateInputSerializer,
        responses={200: WebhookSerializer, **_errors(400, 401, 403, 404)},
    ),
    destroy=extend_schema(
        summary="Remove a webhook and its deliveries (admins)", responses={204: None, **_errors(401, 403, 404)}
    ),
    deliveries=extend_schema(
        summary="A webhook's deliveries, newest first (admins)",
        responses={200: WebhookDeliverySerializer(many=True), **_errors(401, 403, 404)},
    ),
)
class WebhookViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = WebhookSerializer
    lookup_value_converter = "uuid"
    queryset = Webhook.objects.none()  # for the schema; requests use get_queryset
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)  # authentication first: anonymous callers get 401, not 403
        require(request.user, Action.WEBHOOK_MANAGE)

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Webhook.objects.none()
        return selectors.webhook_list(actor=self.request.user)

    def _project(self, project_id):
        if project_id is None:
            return None
        project = project_visible_queryset(actor=self.request.user).filter(pk=project_id).first()
        if project is None:
            raise ApplicationError("The webhook is not valid.", errors={"project": ["No such project."]})
        return project

    def create(self, request):
        body = WebhookInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        fields = dict(body.validated_data)
        project = self._project(fields.pop("project", None))
        webhook, secret = services.webhook_create(actor=request.user, project=project, **fields)
        data = WebhookCreatedSerializer(webhook, context={"secret": secret}).data
        return Response(data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, pk=None):
        webhook = self.get_object()
        body = WebhookUpdateInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        webhook = services.webhook_update(webhook=webhook, actor=request.user, **body.validated_data)
        return Response(WebhookSerializer(webhook).data)

    def destroy(self, request, pk=None):
        services.webhook_delete(webhook=self.get_object(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @action(
        detail=True,
        methods=["get"],
        serializer_class=WebhookDeliverySerializer,
        queryset=WebhookDelivery.objects.none(),
    )
    def deliveries(self, request, pk=None):
        deliveries = selectors.webhook_delivery_list(actor=request.user, webhook=self.get_object())
        page = self.paginate_queryset(deliveries)
        return self.get_paginated_response(WebhookDeliverySerializer(page, many=True).data)
