from django.db import models


class VersionStatus(models.TextChoices):
    """Registration: the run's artifact is copied into the registry's own key and verified."""

    PENDING = "pending_registration", "Pending registration"
    READY = "ready", "Ready"
    FAILED = "failed_registration", "Registration failed"


class Stage(models.TextChoices):
    NONE = "none", "None"
    STAGING = "staging", "Staging"
    PRODUCTION = "production", "Production"
    ARCHIVED = "archived", "Archived"


class RequestStatus(models.TextChoices):
    OPEN = "open", "Open"
    APPROVED = "approved", "Approved"  # enough approvals: the version went to production
    REJECTED = "rejected", "Rejected"
    WITHDRAWN = "withdrawn", "Withdrawn"  # by its requester
    VOID = "void", "Void"  # the version's artifact or metrics changed after it was opened


class Decision(models.TextChoices):
    APPROVE = "approve", "Approve"
    REJECT = "reject", "Reject"


class GateName(models.TextChoices):
    SUCCESS_THRESHOLD = "success_threshold", "Test metric meets the project's success threshold"
    BEATS_CHAMPION = "beats_champion", "Beats the production version by the margin"
    FAIRNESS = "fairness", "Fairness differences within the project's limit"
    LATENCY = "latency", "p99 latency within the project's budget"
    DATA_VALIDATED = "data_validated", "Dataset version passed validation (or carries an override)"
    MODEL_CARD = "model_card", "Model card's required sections are filled"
    SIGNATURE = "signature", "Artifact signature verifies"
