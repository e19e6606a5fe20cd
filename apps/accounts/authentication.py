from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header

from apps.accounts.selectors import api_token_user


class ApiTokenAuthentication(BaseAuthentication):
    """`Authorization: Token mlp_...` (or `Bearer mlp_...`) with a personal API token."""

    keywords = (b"token", b"bearer")

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() not in self.keywords:
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed(_("Invalid token header: expected 'Token <secret>'."))
        user = api_token_user(secret=parts[1].decode("latin-1"))
        if user is None:
            raise exceptions.AuthenticationFailed(_("Invalid, expired or revoked token."))
        return (user, None)

    def authenticate_header(self, request) -> str:
        return "Token"
