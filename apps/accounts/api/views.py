"""Auth API: trade a password for a token, see oneself, manage one's tokens; admins manage users."""

from axes.helpers import get_cool_off
from django.contrib.auth import authenticate
from django.contrib.auth.signals import user_logged_in
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.exceptions import Throttled
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from apps.accounts.api.serializers import (
    ApiTokenCreatedSerializer,
    ApiTokenCreateInputSerializer,
    ApiTokenObtainInputSerializer,
    ApiTokenSerializer,
    MeSerializer,
    UserCreateInputSerializer,
    UserFilterInputSerializer,
    UserSerializer,
    UserUpdateInputSerializer,
)
from apps.accounts.models import ApiToken, User
from apps.accounts.permissions import Action, require
from apps.accounts.selectors import api_token_list, user_list, user_with_memberships
from apps.accounts.services import api_token_create, api_token_obtain, api_token_revoke, user_create, user_update
from apps.core.api import ErrorSerializer
from apps.core.exceptions import ApplicationError

BAD_CREDENTIALS = "Unable to log in with those credentials."
LOCKED_OUT = "Too many failed logins for this username from this address. Try again later."

_ERRORS = {
    400: OpenApiResponse(ErrorSerializer, description="Invalid input"),
    401: OpenApiResponse(ErrorSerializer, description="Not authenticated, or an invalid, expired or revoked token"),
    403: OpenApiResponse(ErrorSerializer, description="Not allowed"),
    404: OpenApiResponse(ErrorSerializer, description="Not found"),
}


def _errors(*codes: int) -> dict:
    return {code: _ERRORS[code] for code in codes}


def _lockout_taken(request) -> bool:
    """Whether django-axes refused this login attempt because the username+address pair is locked out.

    AxesMiddleware would swap our answer for its HTML lockout page; the API answers in its own error shape instead,
    so the flag is taken off the request once read (axes has already recorded the attempt by then).
    """
    django_request = request._request
    locked = bool(getattr(django_request, "axes_locked_out", False))
    django_request.axes_locked_out = False
    return locked


@extend_schema(
    tags=["auth"],
    summary="Create a personal API token with a username and password",
    description=(
        "For scripts and the command line. Answers the secret once; only its SHA-256 is stored. Failed attempts "
        "count towards the login lockout (429 after too many for one username from one address) and the endpoint "
        "is rate-limited."
    ),
    request=ApiTokenObtainInputSerializer,
    responses={
        201: ApiTokenCreatedSerializer,
        400: _ERRORS[400],
        429: OpenApiResponse(ErrorSerializer, description="Locked out after failed logins, or rate-limited"),
    },
    auth=[],
)
class ApiTokenObtainView(APIView):
    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "token_create"

    def post(self, request):
        data = ApiTokenObtainInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        # The Django request, so django-axes sees the attempt, counts a failure and can refuse a locked-out pair.
        user = authenticate(
            request=request._request, username=data.validated_data["username"], password=data.validated_data["password"]
        )
        if _lockout_taken(request):
            cool_off = get_cool_off(request._request)
            raise Throttled(wait=cool_off.total_seconds() if cool_off else None, detail=LOCKED_OUT)
        if user is None:
            raise ApplicationError(BAD_CREDENTIALS, errors={"non_field_errors": [BAD_CREDENTIALS]})
        token, secret = api_token_obtain(
            user=user, name=data.validated_data["name"], expires_in_days=data.validated_data.get("expires_in_days")
        )
        # A sign-in by password: lets axes clear this pair's failures (AXES_RESET_ON_SUCCESS) and sets last_login.
        user_logged_in.send(sender=user.__class__, request=request._request, user=user)
        return Response(
            ApiTokenCreatedSerializer(token, context={"secret": secret}).data, status=status.HTTP_201_CREATED
        )


@extend_schema(
    tags=["auth"],
    summary="The signed-in user and their project memberships",
    responses={200: MeSerializer, **_errors(401)},
)
class MeView(APIView):
    def get(self, request):
        return Response(MeSerializer(user_with_memberships(user=request.user)).data)


@extend_schema_view(
    list=extend_schema(
        summary="Your API tokens, newest first", responses={200: ApiTokenSerializer(many=True), **_errors(401)}
    ),
    retrieve=extend_schema(summary="One of your API tokens", responses={200: ApiTokenSerializer, **_errors(401, 404)}),
    create=extend_schema(
        summary="Create an API token for yourself (the secret is in this answer only)",
        request=ApiTokenCreateInputSerializer,
        responses={201: ApiTokenCreatedSerializer, **_errors(400, 401)},
    ),
    destroy=extend_schema(
        summary="Revoke one of your API tokens",
        responses={
            204: OpenApiResponse(description="Revoked"),
            **_errors(401, 404),
            409: OpenApiResponse(ErrorSerializer, description="Already revoked"),
        },
    ),
)
@extend_schema(tags=["auth"])
class ApiTokenViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """The caller's own tokens only: another user's token is a 404, whoever asks."""

    serializer_class = ApiTokenSerializer
    lookup_value_converter = "uuid"
    queryset = ApiToken.objects.none()  # for the schema; requests use get_queryset

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return ApiToken.objects.none()
        return api_token_list(user=self.request.user)

    def create(self, request):
        data = ApiTokenCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        token, secret = api_token_create(
            user=request.user,
            name=data.validated_data["name"],
            expires_in_days=data.validated_data.get("expires_in_days"),
        )
        return Response(
            ApiTokenCreatedSerializer(token, context={"secret": secret}).data, status=status.HTTP_201_CREATED
        )

    def destroy(self, request, pk=None):
        api_token_revoke(token=self.get_object(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema_view(
    list=extend_schema(
        summary="Users (admins)",
        parameters=[UserFilterInputSerializer],
        responses={200: UserSerializer(many=True), **_errors(401, 403)},
    ),
    retrieve=extend_schema(summary="One user (admins)", responses={200: UserSerializer, **_errors(401, 403, 404)}),
    create=extend_schema(
        summary="Create a user (admins)",
        request=UserCreateInputSerializer,
        responses={201: UserSerializer, **_errors(400, 401, 403)},
    ),
    partial_update=extend_schema(
        summary="Change a user's role or whether they may sign in (admins)",
        request=UserUpdateInputSerializer,
        responses={200: UserSerializer, **_errors(400, 401, 403, 404)},
    ),
)
@extend_schema(tags=["users"])
class UserViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet):
    serializer_class = UserSerializer
    lookup_value_converter = "int"
    queryset = User.objects.none()  # for the schema; requests use get_queryset
    http_method_names = ["get", "post", "patch", "head", "options"]

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)  # authentication first: anonymous callers get 401, not 403
        require(request.user, Action.USER_MANAGE)

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return User.objects.none()
        filters = UserFilterInputSerializer(data=self.request.query_params.dict())  # a dict: absent booleans stay None
        filters.is_valid(raise_exception=True)
        return user_list(**filters.validated_data)

    def create(self, request):
        data = UserCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        created = user_create(actor=request.user, **data.validated_data)
        return Response(
            UserSerializer(get_object_or_404(user_list(), pk=created.pk)).data, status=status.HTTP_201_CREATED
        )

    def partial_update(self, request, pk=None):
        managed = self.get_object()
        data = UserUpdateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user_update(actor=request.user, user=managed, **data.validated_data)
        return Response(UserSerializer(get_object_or_404(user_list(), pk=managed.pk)).data)
