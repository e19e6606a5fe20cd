from datetime import timedelta

from django.db.models import Count, Prefetch, Q, QuerySet
from django.utils import timezone

from apps.accounts.models import ApiToken, Membership, User
from apps.accounts.permissions import Action, can
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


def api_token_visible_to(*, actor) -> QuerySet[ApiToken]:
    """The tokens `actor` may act on: their own, or everyone's for a user manager. Others' tokens stay invisible."""
    tokens = ApiToken.objects.select_related("user").order_by("-created_at")
    if can(actor, Action.USER_MANAGE):
        return tokens
    if not getattr(actor, "is_authenticated", False):
        return tokens.none()
    return tokens.filter(user=actor)


def user_list(*, search: str = "", role: str = "", is_active: bool | None = None) -> QuerySet[User]:
    """Users by username, each with `membership_count`, for the admin pages and the users API."""
    users = User.objects.annotate(membership_count=Count("memberships")).order_by("username")
    if search:
        users = users.filter(
            Q(username__icontains=search)
            | Q(email__icontains=search)
            | Q(first_name__icontains=search)
            | Q(last_name__icontains=search)
        )
    if role:
        users = users.filter(role=role)
    if is_active is not None:
        users = users.filter(is_active=is_active)
    return users


def membership_list_for_user(*, user) -> QuerySet[Membership]:
    """The projects a user belongs to, with the project loaded (one query for the whole list)."""
    return Membership.objects.filter(user=user).select_related("project").order_by("project__name", "project_id")


def user_with_memberships(*, user) -> User:
    """`user` again, with `memberships` (and each one's project) loaded in one more query."""
    memberships = Prefetch("memberships", queryset=membership_list_for_user(user=user))
    return User.objects.prefetch_related(memberships).get(pk=user.pk)
