from django.db import models


class Role(models.TextChoices):
    """A user's job. `User.role` is the role for platform-wide actions; a membership gives the role in one project."""

    STAKEHOLDER = "stakeholder", "Business stakeholder"
    SCIENTIST = "scientist", "Data scientist"
    REVIEWER = "reviewer", "Reviewer"
    COMPLIANCE = "compliance", "Compliance officer"
    ADMIN = "admin", "Admin"


# Admin is platform-wide and never a project role: an admin already sees and manages every project.
PROJECT_ROLES = [Role.STAKEHOLDER, Role.SCIENTIST, Role.REVIEWER, Role.COMPLIANCE]


class ProjectRole(models.TextChoices):
    STAKEHOLDER = Role.STAKEHOLDER.value, Role.STAKEHOLDER.label
    SCIENTIST = Role.SCIENTIST.value, Role.SCIENTIST.label
    REVIEWER = Role.REVIEWER.value, Role.REVIEWER.label
    COMPLIANCE = Role.COMPLIANCE.value, Role.COMPLIANCE.label


class ApiTokenStatus(models.TextChoices):
    """Derived from an ApiToken's timestamps, never stored."""

    ACTIVE = "active", "Active"
    EXPIRED = "expired", "Expired"
    REVOKED = "revoked", "Revoked"
