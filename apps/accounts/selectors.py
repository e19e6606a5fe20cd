from datetime import timedelta

from django.db.models import Q, QuerySet
from django.utils import timezone

from apps.accounts.models import ApiToken, User
from apps.accounts.tokens import hash_token

# last_used_at is written at most this often per token, so API calls do not each cost a write.
_LAST_USED_RESOLUTION = timedelta(minutes=1)


def api_token_user(*, secret: str) -> User | None:
    """The active user behind a token secret, or None for an unknown, revoked or expired token."""
    now = timezone.now()
    token = (
        ApiToken.objects.select_related("user")
        .filter(key_hash=hash_token(secret), revoked_at__isnull=True, user__is_active=True)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        .first()
    )
    if token is None:
        return None
    if token.last_used_at is None or now - token.last_used_at > _LAST_USED_RESOLUTION:
        # Bookkeeping, not a state change a person made: no audit event.
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token.user


def api_token_list(*, user) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(user=user).order_by("-created_at")


def user_list(*, search: str = "") -> QuerySet[User]:
    users = User.objects.order_by("username")
    if search:
        users = users.filter(Q(username__icontains=search) | Q(email__icontains=search))
    return users
