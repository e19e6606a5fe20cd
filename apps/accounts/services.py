"""Accounts use cases: sign-in records, API tokens, users and project memberships. Each one audited."""

from datetime import datetime, timedelta

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.accounts.choices import ProjectRole, Role
from apps.accounts.models import ApiToken, Membership, User
from apps.accounts.permissions import Action, require
from apps.accounts.tokens import display_prefix, hash_token, new_token_secret
from apps.audit.services import audit_record
from apps.core.exceptions import ApplicationError

TOKEN_MAX_LIFETIME_DAYS = 365
TOKEN_NAME_MAX_LENGTH = ApiToken._meta.get_field("name").max_length


# --- Sign-in ---------------------------------------------------------------------------------------------------
def login_success_record(*, user: User, method: str) -> None:
    with transaction.atomic():
        audit_record(actor=user, action="auth.login", obj=user, after={"method": method})


def login_failure_record(*, username: str) -> None:
    with transaction.atomic():
        audit_record(actor=None, action="auth.login_failed", object_type="accounts.user", after={"username": username})


def logout_record(*, user: User) -> None:
    with transaction.atomic():
        audit_record(actor=user, action="auth.logout", obj=user)


# --- API tokens ------------------------------------------------------------------------------------------------
def api_token_create(
    *, user: User, name: str, expires_at: datetime | None = None, expires_in_days: int | None = None
) -> tuple[ApiToken, str]:
    """Create a token and return it with its secret, which is never stored and cannot be shown again.

    The expiry is either `expires_at` or `expires_in_days` from now (not both); none means the token does not expire.
    """
    require(user, Action.TOKEN_MANAGE_OWN)
    name = name.strip()
    if not name:
        raise ApplicationError("Give the token a name.", errors={"name": ["This field is required."]})
    if len(name) > TOKEN_NAME_MAX_LENGTH:
        raise ApplicationError(
            "The token name is too long.",
            errors={"name": [f"Use at most {TOKEN_NAME_MAX_LENGTH} characters."]},
        )
    if expires_in_days is not None:
        if expires_at is not None:
            raise ApplicationError("Give either an expiry date or a number of days, not both.")
        if not 1 <= expires_in_days <= TOKEN_MAX_LIFETIME_DAYS:
            raise ApplicationError(
                "The expiry is out of range.",
                errors={"expires_in_days": [f"Choose between 1 and {TOKEN_MAX_LIFETIME_DAYS} days."]},
            )
        expires_at = timezone.now() + timedelta(days=expires_in_days)
    if expires_at is not None and expires_at <= timezone.now():
        raise ApplicationError("The expiry must be in the future.", errors={"expires_at": ["Must be in the future."]})
    if expires_at is not None and expires_at > timezone.now() + timedelta(days=TOKEN_MAX_LIFETIME_DAYS):
        raise ApplicationError(
            "The expiry is too far away.",
            errors={"expires_at": [f"A token lives at most {TOKEN_MAX_LIFETIME_DAYS} days."]},
        )
    secret = new_token_secret()
    with transaction.atomic():
        token = ApiToken.objects.create(
            user=user, name=name, prefix=display_prefix(secret), key_hash=hash_token(secret), expires_at=expires_at
        )
        audit_record(
            actor=user,
            action="token.create",
            obj=token,
            after={"name": name, "prefix": token.prefix, "expires_at": expires_at},
        )
    return token, secret


def api_token_obtain(*, user: User, name: str, expires_in_days: int | None = None) -> tuple[ApiToken, str]:
    """A script traded a username and password (already checked by `authenticate`) for a new token.

    It is a sign-in by password, so it is recorded as one, in the same transaction as the token it produced.
    """
    with transaction.atomic():
        login_success_record(user=user, method="api-token")
        return api_token_create(user=user, name=name, expires_in_days=expires_in_days)


def api_token_revoke(*, token: ApiToken, actor: User) -> ApiToken:
    if token.user_id != actor.pk:
        require(actor, Action.USER_MANAGE)
    with transaction.atomic():
        token = ApiToken.objects.select_for_update().get(pk=token.pk)
        if token.revoked_at is not None:
            raise ApplicationError("This token is already revoked.", status=409)
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at", "updated_at"])
        audit_record(actor=actor, action="token.revoke", obj=token, after={"revoked_at": token.revoked_at})
    return token


def api_token_revoke_all(*, user: User, actor: User) -> int:
    """Revoke every active token of `user` (an admin offboarding someone, or a user cleaning up). Returns how many."""
    if user.pk != actor.pk:
        require(actor, Action.USER_MANAGE)
    now = timezone.now()
    with transaction.atomic():
        tokens = list(
            ApiToken.objects.select_for_update()
            .filter(user=user, revoked_at__isnull=True)
            .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
            .order_by("created_at")
        )
        for token in tokens:
            token.revoked_at = now
            token.save(update_fields=["revoked_at", "updated_at"])
            audit_record(actor=actor, action="token.revoke", obj=token, after={"revoked_at": now})
    return len(tokens)


# --- Users -----------------------------------------------------------------------------------------------------
def user_create(
    *,
    actor: User | None,
    username: str,
    role: str,
    password: str,
    email: str = "",
    first_name: str = "",
    last_name: str = "",
) -> User:
    """Create a user. `actor=None` only for seeding from the command line (demo users, first admin)."""
    if actor is not None:
        require(actor, Action.USER_MANAGE)
    if role not in Role.values:
        raise ApplicationError("Unknown role.", errors={"role": [f"Choose one of: {', '.join(Role.values)}."]})
    if User.objects.filter(username__iexact=username).exists():
        raise ApplicationError("That username is taken.", errors={"username": ["A user with that username exists."]})
    candidate = User(username=username, email=email, first_name=first_name, last_name=last_name, role=role)
    try:
        validate_password(password, user=candidate)
    except ValidationError as exc:
        raise ApplicationError("The password is too weak.", errors={"password": exc.messages}) from exc
    with transaction.atomic():
        candidate.set_password(password)
        candidate.save()
        audit_record(
            actor=actor, action="user.create", obj=candidate, after={"username": username, "role": role, "email": email}
        )
    return candidate


def user_role_change(*, actor: User, user: User, role: str) -> User:
    require(actor, Action.USER_MANAGE)
    if role not in Role.values:
        raise ApplicationError("Unknown role.", errors={"role": [f"Choose one of: {', '.join(Role.values)}."]})
    if user.pk == actor.pk and role != Role.ADMIN:
        raise ApplicationError("You cannot remove your own admin role.", errors={"role": ["Ask another admin."]})
    with transaction.atomic():
        before = {"role": user.role}
        user.role = role
        user.save(update_fields=["role"])
        audit_record(actor=actor, action="user.role_change", obj=user, before=before, after={"role": role})
    return user


def user_set_active(*, actor: User, user: User, active: bool) -> User:
    require(actor, Action.USER_MANAGE)
    if user.pk == actor.pk and not active:
        raise ApplicationError("You cannot deactivate yourself.")
    with transaction.atomic():
        before = {"is_active": user.is_active}
        user.is_active = active
        user.save(update_fields=["is_active"])
        audit_record(
            actor=actor,
            action="user.activate" if active else "user.deactivate",
            obj=user,
            before=before,
            after={"is_active": active},
        )
    return user


def user_update(*, actor: User, user: User, role: str | None = None, is_active: bool | None = None) -> User:
    """Change a user's role and/or whether they may sign in, as one change (both or neither)."""
    require(actor, Action.USER_MANAGE)
    with transaction.atomic():
        if role is not None and role != user.role:
            user_role_change(actor=actor, user=user, role=role)
        if is_active is not None and is_active != user.is_active:
            user_set_active(actor=actor, user=user, active=is_active)
    return user


# --- Project memberships ---------------------------------------------------------------------------------------
def membership_set(*, actor: User | None, project, user: User, role: str) -> Membership:
    """Add `user` to `project` with `role`, or change their role. `actor=None` for the project's creator only."""
    if actor is not None:
        require(actor, Action.MEMBERSHIP_MANAGE, project)
    if role not in ProjectRole.values:
        raise ApplicationError(
            "Unknown project role.", errors={"role": [f"Choose one of: {', '.join(ProjectRole.values)}."]}
        )
    if not user.is_active:
        raise ApplicationError("That user is deactivated.", errors={"user": ["Choose an active user."]})
    with transaction.atomic():
        existing = Membership.objects.select_for_update().filter(project=project, user=user).first()
        before = {"user": user.username, "role": existing.role} if existing else None
        membership, _ = Membership.objects.update_or_create(project=project, user=user, defaults={"role": role})
        audit_record(
            actor=actor,
            action="membership.set",
            obj=membership,
            project=project,
            before=before,
            after={"user": user.username, "role": role},
        )
    return membership


def membership_remove(*, actor: User, membership: Membership) -> None:
    require(actor, Action.MEMBERSHIP_MANAGE, membership.project)
    with transaction.atomic():
        project = membership.project
        if (
            membership.role == ProjectRole.STAKEHOLDER
            and not project.memberships.filter(role=ProjectRole.STAKEHOLDER).exclude(pk=membership.pk).exists()
        ):
            raise ApplicationError("A project keeps at least one business stakeholder.")
        before = {"user": membership.user.username, "role": membership.role}
        audit_record(actor=actor, action="membership.remove", obj=membership, project=project, before=before)
        membership.delete()


# --- Added by the ops helper for `manage.py seed_demo` (DEMO_PASSWORD resets the demo users' passwords) ---------
def user_password_set(*, actor: User | None, user: User, password: str) -> User:
    """Set a user's password. `actor=None` only from the command line (seed_demo); else the user or an admin."""
    if actor is not None and actor.pk != user.pk:
        require(actor, Action.USER_MANAGE)
    try:
        validate_password(password, user=user)
    except ValidationError as exc:
        raise ApplicationError("The password is too weak.", errors={"password": exc.messages}) from exc
    with transaction.atomic():
        user.set_password(password)
        user.save(update_fields=["password"])
        # Never the password or its hash: the event only says that it changed.
        audit_record(actor=actor, action="user.password_set", obj=user, after={"password_changed": True})
    return user
