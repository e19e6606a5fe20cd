"""The one place that decides who may do what. HTML views, the API and services all ask `can()` / `require()`.

A rule grants an action to roles in two ways:
- `global_roles`: by the user's platform-wide role (`User.role`), whatever the project;
- `project_roles`: by the user's membership role in the project the action is about.

docs/permissions.md shows this table (tests/apps/accounts/test_permissions_doc.py keeps them equal).
"""

from dataclasses import dataclass
from enum import StrEnum

from django.core.exceptions import PermissionDenied

from apps.accounts.choices import Role

S, D, R, C, A = Role.STAKEHOLDER, Role.SCIENTIST, Role.REVIEWER, Role.COMPLIANCE, Role.ADMIN
ALL_PROJECT_ROLES = frozenset({S, D, R, C})


class Action(StrEnum):
    PROJECT_CREATE = "project.create"
    PROJECT_VIEW = "project.view"
    PROJECT_EDIT = "project.edit"
    PROJECT_SUBMIT = "project.submit"
    PROJECT_APPROVE = "project.approve"
    PROJECT_RETURN = "project.return_to_draft"
    PROJECT_MARK_IN_PRODUCTION = "project.mark_in_production"
    PROJECT_RETIRE = "project.retire"
    MEMBERSHIP_MANAGE = "membership.manage"
    AUDIT_VIEW = "audit.view"
    AUDIT_EXPORT = "audit.export"
    USER_MANAGE = "user.manage"
    TOKEN_MANAGE_OWN = "token.manage_own"
    DATASET_VIEW = "dataset.view"
    DATASET_INGEST = "dataset.ingest"
    DATASET_EDIT = "dataset.edit"
    DATASET_MARK_COLUMNS = "dataset.mark_columns"
    DATASET_OVERRIDE_VALIDATION = "dataset.override_validation"
    CONNECTION_MANAGE = "connection.manage"
    EXPERIMENT_VIEW = "experiment.view"
    EXPERIMENT_LAUNCH = "experiment.launch"
    EXPERIMENT_CANCEL = "experiment.cancel"
    MODEL_VIEW = "model.view"
    MODEL_REGISTER = "model.register"
    PROMOTION_DECIDE = "promotion.decide"
    MODEL_ROLLBACK = "model.rollback"
    DEPLOYMENT_VIEW = "deployment.view"
    DEPLOYMENT_MANAGE = "deployment.manage"
    PREDICTION_VIEW = "prediction.view"
    PREDICTION_EXPLAIN = "prediction.explain"
    GROUND_TRUTH_RECORD = "ground_truth.record"
    MONITOR_VIEW = "monitor.view"
    MONITORING_OVERVIEW = "monitoring.overview"
    MONITOR_CONFIGURE = "monitor.configure"
    ALERT_HANDLE = "alert.handle"
    RETRAINING_MANAGE = "retraining.manage"
    FEATURE_VIEW = "feature.view"
    FEATURE_DEFINE = "feature.define"
    TRAINING_SET_BUILD = "training_set.build"
    PERSONAL_FEATURE_EXCEPTION = "feature.personal_exception"
    ONLINE_FEATURES_READ = "feature.online_read"
    NOTIFICATION_READ_OWN = "notification.read_own"
    WEBHOOK_MANAGE = "webhook.manage"


@dataclass(frozen=True)
class Rule:
    description: str
    global_roles: frozenset[str] = frozenset()
    project_roles: frozenset[str] = frozenset()


POLICY: dict[Action, Rule] = {
    Action.PROJECT_CREATE: Rule("File a new problem definition (creates a project)", global_roles=frozenset({S, A})),
    Action.PROJECT_VIEW: Rule(
        "See a project, its definition and expected ROI",
        global_roles=frozenset({C, A}),
        project_roles=ALL_PROJECT_ROLES,
    ),
    Action.PROJECT_EDIT: Rule(
        "Edit the problem definition (draft only)", global_roles=frozenset({A}), project_roles=frozenset({S})
    ),
    Action.PROJECT_SUBMIT: Rule("Submit a draft for review", global_roles=frozenset({A}), project_roles=frozenset({S})),
    Action.PROJECT_APPROVE: Rule(
        "Approve a submitted project for development", global_roles=frozenset({A}), project_roles=frozenset({R})
    ),
    Action.PROJECT_RETURN: Rule(
        "Return a submitted project to draft with a reason", global_roles=frozenset({A}), project_roles=frozenset({R})
    ),
    Action.PROJECT_MARK_IN_PRODUCTION: Rule(
        "Mark an approved project as in production", global_roles=frozenset({A}), project_roles=frozenset({R})
    ),
    Action.PROJECT_RETIRE: Rule("Retire a project", global_roles=frozenset({A}), project_roles=frozenset({S})),
    Action.MEMBERSHIP_MANAGE: Rule(
        "Add or remove project members and change their roles",
        global_roles=frozenset({A}),
        project_roles=frozenset({S}),
    ),
    Action.AUDIT_VIEW: Rule(
        "Browse audit events (platform-wide, or of one project)",
        global_roles=frozenset({C, A}),
        project_roles=frozenset({C}),
    ),
    Action.AUDIT_EXPORT: Rule(
        "Export audit events as CSV or JSON Lines", global_roles=frozenset({C}), project_roles=frozenset({C})
    ),
    Action.USER_MANAGE: Rule("Create users, change roles, deactivate", global_roles=frozenset({A})),
    Action.TOKEN_MANAGE_OWN: Rule("Create and revoke one's own API tokens", global_roles=frozenset({S, D, R, C, A})),
    Action.DATASET_VIEW: Rule(
        "See datasets, versions, profiles, PII flags and validation reports",
        global_roles=frozenset({C, A}),
        project_roles=ALL_PROJECT_ROLES,
    ),
    Action.DATASET_INGEST: Rule(
        "Create datasets and ingest new versions (upload, S3 object, SQL query)",
        global_roles=frozenset({A}),
        project_roles=frozenset({D}),
    ),
    Action.DATASET_EDIT: Rule(
        "Edit a dataset's description and validation rules", global_roles=frozenset({A}), project_roles=frozenset({D})
    ),
    Action.DATASET_MARK_COLUMNS: Rule(
        "Mark columns personal, sensitive or excluded from training",
        global_roles=frozenset({A}),
        project_roles=frozenset({D, C}),
    ),
    Action.DATASET_OVERRIDE_VALIDATION: Rule(
        "Allow a version that failed validation to be used for training, with a written reason",
        project_roles=frozenset({D}),
    ),
    Action.CONNECTION_MANAGE: Rule(
        "Register read-only database connections for SQL ingestion",
        global_roles=frozenset({A}),
        project_roles=frozenset({D}),
    ),
    Action.EXPERIMENT_VIEW: Rule(
        "See experiments and their runs: progress, logs, metrics, explanations, fairness, leaderboards",
        global_roles=frozenset({C, A}),
        project_roles=ALL_PROJECT_ROLES,
    ),
    Action.EXPERIMENT_LAUNCH: Rule(
        "Launch experiments (train candidate models on a dataset version)",
        global_roles=frozenset({A}),
        project_roles=frozenset({D}),
    ),
    Action.EXPERIMENT_CANCEL: Rule(
        "Cancel queued or running experiments and runs", global_roles=frozenset({A}), project_roles=frozenset({D})
    ),
    Action.MODEL_VIEW: Rule(
        "See registered models, their versions, model cards, stage history and promotion requests",
        global_roles=frozenset({C, A}),
        project_roles=ALL_PROJECT_ROLES,
    ),
    Action.MODEL_REGISTER: Rule(
        "Register models and versions from runs, edit them and their model cards, move them to staging or archive, "
        "request promotion to production",
        global_roles=frozenset({A}),
        project_roles=frozenset({D}),
    ),
    Action.PROMOTION_DECIDE: Rule(
        "Approve or reject promotion requests (never one's own request or a version one trained)",
        global_roles=frozenset({A}),
        project_roles=frozenset({R}),
    ),
    Action.MODEL_ROLLBACK: Rule(
        "Roll a registered model back to its previous production version, with a reason",
        global_roles=frozenset({A}),
        project_roles=frozenset({R}),
    ),
    Action.DEPLOYMENT_VIEW: Rule(
        "See deployments: status, URL, replicas, traffic split, request rate, latency, errors and traffic history",
        global_roles=frozenset({C, A}),
        project_roles=ALL_PROJECT_ROLES,
    ),
    Action.DEPLOYMENT_MANAGE: Rule(
        "Deploy approved versions, change traffic (blue-green, canary, A/B, shadow), scale, stop and restart endpoints",
        global_roles=frozenset({A}),
        project_roles=frozenset({D, R}),
    ),
    Action.PREDICTION_VIEW: Rule(
        "See logged predictions (their inputs may hold personal data) and their ground truth",
        global_roles=frozenset({C, A}),
        project_roles=frozenset({D, R, C}),
    ),
    Action.PREDICTION_EXPLAIN: Rule(
        "Explain a logged prediction with the exact version that made it",
        global_roles=frozenset({C, A}),
        project_roles=frozenset({D, R, C}),
    ),
    Action.GROUND_TRUTH_RECORD: Rule(
        "Record actual outcomes of predictions (ground truth), one at a time or in bulk",
        global_roles=frozenset({A}),
        project_roles=frozenset({S, D}),
    ),
    Action.MONITOR_VIEW: Rule(
        "See a deployment's monitoring: checks, drift reports, performance, service health, realised value, alerts",
        global_roles=frozenset({C, A}),
        project_roles=ALL_PROJECT_ROLES,
    ),
    Action.MONITORING_OVERVIEW: Rule(
        "See every deployment's health on one page (status, open alerts, drift, errors; no predictions)",
        global_roles=frozenset({R, C, A}),
    ),
    Action.MONITOR_CONFIGURE: Rule(
        "Edit a monitor (reference, window, schedule, alert rules) and run a check now",
        global_roles=frozenset({A}),
        project_roles=frozenset({D, R}),
    ),
    Action.ALERT_HANDLE: Rule(
        "Acknowledge and resolve alerts with a note", global_roles=frozenset({A}), project_roles=frozenset({D, R})
    ),
    Action.RETRAINING_MANAGE: Rule(
        "Set a model's retraining policy (triggers, schedule) and start a retraining by hand",
        global_roles=frozenset({A}),
        project_roles=frozenset({D}),
    ),
    Action.FEATURE_VIEW: Rule(
        "Browse the feature catalog: definitions, versions, freshness, statistics and where features are used",
        global_roles=frozenset({D, R, C, A}),
    ),
    Action.FEATURE_DEFINE: Rule(
        "Define entities, features and feature views on the project's datasets, and materialise them",
        global_roles=frozenset({A}),
        project_roles=frozenset({D}),
    ),
    Action.TRAINING_SET_BUILD: Rule(
        "Build point-in-time correct training sets from catalog features into the project's datasets",
        global_roles=frozenset({A}),
        project_roles=frozenset({D}),
    ),
    Action.PERSONAL_FEATURE_EXCEPTION: Rule(
        "Allow a personal feature into a training set of the project, with a written reason",
        global_roles=frozenset({C}),
        project_roles=frozenset({C}),
    ),
    Action.ONLINE_FEATURES_READ: Rule(
        "Read online feature values by entity keys through the API",
        global_roles=frozenset({A}),
        project_roles=frozenset({D, R}),
    ),
    Action.NOTIFICATION_READ_OWN: Rule(
        "Read one's own notification inbox and mark items read", global_roles=frozenset({S, D, R, C, A})
    ),
    Action.WEBHOOK_MANAGE: Rule(
        "Register, change and remove webhooks (platform-wide or for one project) and see their deliveries",
        global_roles=frozenset({A}),
    ),
}


def project_role(user, project) -> str | None:
    """The user's role in `project`, cached on the user object for the rest of the request."""
    if project is None or not getattr(user, "is_authenticated", False):
        return None
    cache = user.__dict__.setdefault("_project_role_cache", {})
    if project.pk not in cache:
        membership = user.memberships.filter(project_id=project.pk).values_list("role", flat=True).first()
        cache[project.pk] = membership
    return cache[project.pk]


def global_role(user) -> str | None:
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return None
    return Role.ADMIN if user.is_superuser else user.role


def can(user, action: Action, project=None) -> bool:
    rule = POLICY[action]
    role = global_role(user)
    if role is None:
        return False
    if role in rule.global_roles:
        return True
    return project is not None and project_role(user, project) in rule.project_roles


def require(user, action: Action, project=None) -> None:
    if not can(user, action, project):
        raise PermissionDenied(f"You may not {POLICY[action].description[0].lower()}{POLICY[action].description[1:]}.")


def policy_markdown_table() -> str:
    """The policy as the Markdown table in docs/permissions.md."""
    roles = [S, D, R, C, A]
    header = "| Action | What it allows | " + " | ".join(Role(r).label for r in roles) + " |"
    lines = [header, "|" + "---|" * (len(roles) + 2)]
    for action, rule in POLICY.items():
        cells = []
        for role in roles:
            if role in rule.global_roles:
                cells.append("platform-wide")
            elif role in rule.project_roles:
                cells.append("as project member")
            else:
                cells.append("—")
        lines.append(f"| `{action.value}` | {rule.description} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
