"""The portal's areas, in navigation order. An area appears for a user when its page exists (its URL name
resolves: areas arrive one by one) and the user's role may use it."""

from dataclasses import dataclass

from django.urls import NoReverseMatch, reverse

from apps.accounts.choices import Role

S, D, R, C, A = Role.STAKEHOLDER, Role.SCIENTIST, Role.REVIEWER, Role.COMPLIANCE, Role.ADMIN
EVERYONE = frozenset({S, D, R, C, A})


@dataclass(frozen=True)
class Area:
    key: str
    label: str
    url_name: str
    roles: frozenset[str]
    # Shown also to users who hold one of these roles in some project (e.g. a project's compliance officer).
    membership_roles: frozenset[str] = frozenset()


AREAS = [
    Area("projects", "Projects", "projects:list", EVERYONE),
    Area("datasets", "Datasets", "datasets:list", EVERYONE),
    Area("features", "Features", "features:list", frozenset({D, R, C, A})),
    Area("experiments", "Experiments", "experiments:list", frozenset({D, R, C, A})),
    Area("models", "Models", "registry:list", EVERYONE),
    Area("deployments", "Deployments", "deployments:list", EVERYONE),
    Area("monitoring", "Monitoring", "monitoring:overview", EVERYONE),
    Area("audit", "Audit", "audit:list", frozenset({C, A}), membership_roles=frozenset({C})),
    Area("users", "Users", "accounts:user_list", frozenset({A})),
]


def areas_for(user) -> list[dict]:
    if not getattr(user, "is_authenticated", False):
        return []
    role = Role.ADMIN if user.is_superuser else user.role
    visible = []
    for area in AREAS:
        if role not in area.roles and not _holds_membership_role(user, area.membership_roles):
            continue
        try:
            url = reverse(area.url_name)
        except NoReverseMatch:
            continue
        visible.append({"key": area.key, "label": area.label, "url": url})
    return visible


def _holds_membership_role(user, roles: frozenset[str]) -> bool:
    if not roles:
        return False
    return user.memberships.filter(role__in=roles).exists()
