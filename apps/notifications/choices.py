from django.db import models


class Event(models.TextChoices):
    """The events the platform notifies about. Webhooks subscribe to these names (none = all of them)."""

    REGISTRY_VERSION_CREATED = "registry.version_created", "A model version was registered"
    REGISTRY_STAGE_CHANGED = "registry.stage_changed", "A model version changed stage"
    REGISTRY_REQUEST_OPENED = "registry.request_opened", "A promotion request was opened"
    REGISTRY_REQUEST_DECIDED = "registry.request_decided", "A promotion request was approved or rejected"
    DEPLOYMENT_TRAFFIC_CHANGED = "deployment.traffic_changed", "A deployment's traffic changed"
    DEPLOYMENT_ROLLED_BACK = "deployment.rolled_back", "A canary was rolled back automatically"
    DEPLOYMENT_FAILED = "deployment.failed", "A deployment stopped serving"
    MONITORING_ALERT_RAISED = "monitoring.alert_raised", "A monitoring alert was raised"
    MONITORING_RETRAINING_REQUESTED = (
        "monitoring.retraining_requested",
        "A retraining registered a new version and requested its promotion",
    )
    MONITORING_RETRAINING_FAILED = "monitoring.retraining_failed", "A retraining failed"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
