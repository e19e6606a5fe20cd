from django.db import models


class Environment(models.TextChoices):
    """A production endpoint serves production versions; a staging endpoint serves staging (or production) ones."""

    PRODUCTION = "production", "Production"
    STAGING = "staging", "Staging"


class Strategy(models.TextChoices):
    """How live traffic is spread (workers.serving.config.STRATEGIES)."""

    DIRECT = "direct", "Direct"
    BLUE_GREEN = "blue_green", "Blue-green"
    CANARY = "canary", "Canary"
    AB = "ab", "A/B test"
    SHADOW = "shadow", "Shadow"


class DeploymentStatus(models.TextChoices):
    PENDING = "pending", "Pending"  # the desired state changed; the reconciler has not applied it yet
    READY = "ready", "Ready"  # every replica serves every routed version
    DEGRADED = "degraded", "Degraded"  # some replicas (or a routed version) are not ready
    FAILED = "failed", "Failed"  # nothing serves: no replica ready, a crash loop, a runner error
    STOPPED = "stopped", "Stopped"


class RouteRole(models.TextChoices):
    LIVE = "live", "Live"  # answers requests (weight 0: loaded and ready to take over, e.g. blue-green's idle side)
    SHADOW = "shadow", "Shadow"  # gets a copy of live traffic; its answers are logged, never returned


class RolloutState(models.TextChoices):
    """Where a change of version stands (blue-green and canary move through these; the others are applied at once)."""

    NONE = "none", "No rollout"
    WARMING = "warming", "Loading the new version beside the old"  # blue-green before the switch
    SWITCHED = "switched", "Switched (previous version kept for switch-back)"
    CANARY = "canary", "Canary in progress"
    ROLLED_BACK = "rolled_back", "Rolled back"
    COMPLETED = "completed", "Completed"


class TrafficChangeKind(models.TextChoices):
    DEPLOY = "deploy", "Deployed"
    REPLACE = "replace", "Version replaced (direct)"
    BLUE_GREEN_START = "blue_green_start", "Blue-green: new version loading"
    BLUE_GREEN_SWITCH = "blue_green_switch", "Blue-green: traffic switched"
    BLUE_GREEN_SWITCH_BACK = "blue_green_switch_back", "Blue-green: switched back"
    CANARY_START = "canary_start", "Canary started"
    CANARY_STEP = "canary_step", "Canary share raised"
    CANARY_COMPLETE = "canary_complete", "Canary completed"
    CANARY_ROLLBACK = "canary_rollback", "Canary rolled back"
    AB_START = "ab_start", "A/B test started"
    SHADOW_START = "shadow_start", "Shadow started"
    END_EXPERIMENT = "end_experiment", "A/B or shadow ended"
    RETIRE_PREVIOUS = "retire_previous", "Previous version unloaded"
    SCALE = "scale", "Replicas changed"
    FEATURE_VIEW = "feature_view", "Feature view changed"
    STOP = "stop", "Stopped"
    RESTART = "restart", "Started again"


class ExplanationStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
