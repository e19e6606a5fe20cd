"""Registry use cases: registered models, versions registered from finished runs (their artifact copied and
verified), model cards, stages, promotion requests decided by reviewers against gates, and rollback.

Every change is one transaction with its audit event, and every refusal an ApplicationError naming the field. The
workflow's rules live here so that the pages, the API, the admin and any command are bound by them
(docs/adr/0008-model-registry.md):
- separation of duties: nobody decides a request they opened or a version they trained, nobody decides twice, and
  nobody rolls back to a version they trained;
- a request needs max(the project's required approvals, 2 when GDPR, HIPAA or high-risk use applies) approvals;
- gates are evaluated when a request opens and again at each decision; a failing gate blocks an approval unless an
  admin gives a written override reason;
- an approval binds to the version's artifact and metrics hashes: if either changed, the request is void;
- production changes (promotion, rollback) lock every version of the model first, so two of them run one after the
  other; the one-production-version constraint is the last line.
"""

import hashlib
import json
from decimal import Decimal
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.urls import reverse
from django.utils import timezone

from apps.accounts.choices import Role
from apps.accounts.models import Membership
from apps.accounts.permissions import Action, can, global_role, require
from apps.audit.services import audit_record
from apps.core.artifacts import artifact_store
from apps.core.exceptions import ApplicationError, field_error
from apps.datasets.models import DatasetVersion
from apps.datasets.selectors import version_effective_columns
from apps.experiments.choices import RunStatus
from apps.experiments.models import Run
from apps.notifications.services import notify
from apps.projects.choices import ProjectStatus
from apps.projects.models import Project
from apps.registry import cards, gates
from apps.registry.choices import Decision, RequestStatus, Stage, VersionStatus
from apps.registry.models import Approval, ModelCard, ModelVersion, PromotionRequest, RegisteredModel, StageTransition
from workers.storage.base import StorageError
from workers.storage.keys import model_version_key

NAME_CHARS = 200
MAX_TAGS = 20
TAG_CHARS = 50
# Regulatory flags of the problem definition that raise the approvals a promotion needs to at least two.
REGULATED_FLAGS = ("gdpr", "hipaa", "high_risk")
REGULATED_MIN_APPROVALS = 2
# The definition fields copied into a version's lineage (the definition as it was when the model was registered).
DEFINITION_SNAPSHOT_FIELDS = (
    "business_problem",
    "scope",
    "problem_type",
    "primary_metric",
    "primary_threshold",
    "secondary_metrics",
    "baseline_metric_value",
    "currency",
    "value_per_correct_decision",
    "cost_false_positive",
    "cost_false_negative",
    "cost_per_misclassification",
    "cost_per_unit_error",
    "expected_yearly_decisions",
    "latency_budget_p99_ms",
    "personal_data",
    "gdpr",
    "hipaa",
    "high_risk",
    "fairness_max_difference",
    "required_approvals",
    "ethical_considerations",
    "stakeholders",
)
# Sections of a run's evaluation copied into a version's metrics snapshot (curves and local explanations stay with
# the run: the snapshot is what an approval binds to, not everything the run page draws).
METRIC_SECTIONS = ("validation", "test", "fairness", "operational", "robustness")

EVENT_VERSION_CREATED = "registry.version_created"
EVENT_STAGE_CHANGED = "registry.stage_changed"
EVENT_REQUEST_OPENED = "registry.request_opened"
EVENT_REQUEST_DECIDED = "registry.request_decided"


def _required_text(field: str, value, message: str) -> str:
    text = str(value or "").strip()
    if not text:
        raise field_error(field, message)
    return text


def metrics_digest(metrics: dict) -> str:
    """SHA-256 of the canonical JSON of a metrics snapshot (what an approval binds to with the artifact hash)."""
    canonical = json.dumps(metrics, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _plain(value: Any) -> Any:
    """Definition values as JSON: money (Decimal) as numbers."""
    if isinstance(value, Decimal):
        return float(value)
    return value


def _project_of(version: ModelVersion) -> Project:
    return Project.objects.select_related("definition").get(pk=version.registered_model.project_id)


def _is_admin(user) -> bool:
    return global_role(user) == Role.ADMIN


# --- Notifications --------------------------------------------------------------------------------------------------
def _project_reviewers(project: Project, *, excluding: set) -> list:
    memberships = Membership.objects.filter(project=project, role=Role.REVIEWER, user__is_active=True).select_related(
        "user"
    )
    return [membership.user for membership in memberships if membership.user_id not in excluding]


def _version_payload(version: ModelVersion) -> dict[str, Any]:
    return {
        "registered_model": {"id": str(version.registered_model_id), "name": version.registered_model.name},
        "version": {"id": str(version.pk), "number": version.number, "stage": version.stage, "status": version.status},
        "artifact_sha256": version.artifact_sha256,
    }


def _notify_stage_change(version: ModelVersion, project: Project, actor, *, from_stage: str, reason: str) -> None:
    recipients = [user for user in {version.created_by, version.registered_model.created_by} if user.pk != actor.pk]
    notify(
        event=EVENT_STAGE_CHANGED,
        project=project,
        recipients=recipients,
        title=f"{version} moved from {Stage(from_stage).label.lower()} to {version.get_stage_display().lower()}",
        body=f"By {actor.get_username()}." + (f" Reason: {reason}" if reason else ""),
        link=reverse("registry:version", args=[version.pk]),
        payload={**_version_payload(version), "from_stage": from_stage, "to_stage": version.stage, "reason": reason},
    )


def _notify_decision(request: PromotionRequest, project: Project, actor, *, comment: str) -> None:
    version = request.version
    recipients = [user for user in (request.requester,) if user.pk != actor.pk]
    notify(
        event=EVENT_REQUEST_DECIDED,
        project=project,
        recipients=recipients,
        title=f"Promotion of {version} to production: {request.get_status_display().lower()}",
        body=f"By {actor.get_username()}." + (f" {comment}" if comment else ""),
        link=reverse("registry:promotion", args=[request.pk]),
        payload={
            **_version_payload(version),
            "request": {"id": str(request.pk), "status": request.status},
            "decided_by": actor.get_username(),
            "comment": comment,
        },
    )


# --- Registered models ----------------------------------------------------------------------------------------------
def _clean_model_name(name: str) -> str:
    name = _required_text("name", name, "Give the model a name.")
    if len(name) > NAME_CHARS:
        raise field_error("name", f"Use at most {NAME_CHARS} characters.")
    return name


def _require_open_project(project: Project) -> None:
    if project.status == ProjectStatus.RETIRED:
        raise field_error("project", "The project is retired: it takes no new models.", status=409)


def _create_model(*, project: Project, actor, name: str, description: str) -> RegisteredModel:
    if RegisteredModel.objects.filter(project=project, name=name).exists():
        raise field_error("name", f"The project already has a model named “{name}”.", status=409)
    try:
        with transaction.atomic():
            model = RegisteredModel.objects.create(
                project=project, name=name, description=str(description or "").strip(), created_by=actor
            )
    except IntegrityError as error:  # registered by someone else in the meantime
        raise field_error("name", f"The project already has a model named “{name}”.", status=409) from error
    audit_record(
        actor=actor,
        action="registry.model_create",
        obj=model,
        project=project,
        after={"name": model.name, "description": model.description},
    )
    return model


def registered_model_create(*, project: Project, actor, name: str, description: str = "") -> RegisteredModel:
    require(actor, Action.MODEL_REGISTER, project)
    _require_open_project(project)
    name = _clean_model_name(name)
    with transaction.atomic():
        return _create_model(project=project, actor=actor, name=name, description=description)


def registered_model_update(*, registered_model: RegisteredModel, actor, description: str) -> RegisteredModel:
    """Change a registered model's description (its name is what versions and MLflow clients refer to: fixed)."""
    project = Project.objects.get(pk=registered_model.project_id)
    require(actor, Action.MODEL_REGISTER, project)
    with transaction.atomic():
        locked = RegisteredModel.objects.select_for_update().get(pk=registered_model.pk)
        before = locked.description
        locked.description = str(description or "").strip()
        if locked.description != before:
            locked.save(update_fields=["description", "updated_at"])
            audit_record(
                actor=actor,
                action="registry.model_update",
                obj=locked,
                project=project,
                before={"description": before},
                after={"description": locked.description},
            )
    return locked


# --- Registering a version ------------------------------------------------------------------------------------------
def _clean_tags(tags) -> list[str]:
    if tags is None:
        return []
    if not isinstance(tags, list | tuple):
        raise field_error("tags", "Give the tags as a list of words.")
    cleaned: list[str] = []
    for tag in tags:
        text = str(tag).strip() if isinstance(tag, str | int | float) and not isinstance(tag, bool) else None
        if text is None:
            raise field_error("tags", "Each tag is a short text.")
        if len(text) > TAG_CHARS:
            raise field_error("tags", f"Keep each tag to {TAG_CHARS} characters (“{text[:20]}…” is longer).")
        if text and text not in cleaned:
            cleaned.append(text)
    if len(cleaned) > MAX_TAGS:
        raise field_error("tags", f"Use at most {MAX_TAGS} tags.")
    return cleaned


def _require_registrable_run(run: Run, project: Project) -> Run:
    run = Run.objects.select_related(
        "experiment__project", "experiment__created_by", "experiment__dataset_version__dataset"
    ).get(pk=run.pk)
    if run.experiment.project_id != project.pk:
        raise field_error("run", "Choose a run of this project.")
    if run.status != RunStatus.SUCCEEDED or not run.artifact_key:
        raise field_error(
            "run", f"Only a succeeded run with a stored model can be registered; this one is {run.status}."
        )
    return run


def _metrics_snapshot(run: Run) -> dict[str, Any]:
    evaluation = run.metrics or {}
    project = dict(evaluation.get("project") or {})
    business = dict(project.get("business") or {})
    if isinstance(business.get("threshold"), dict):  # the value-by-threshold curve stays with the run
        business["threshold"] = {key: value for key, value in business["threshold"].items() if key != "curve"}
    if business:
        project["business"] = business
    explanations = evaluation.get("explanations") or {}
    return {
        "problem_type": evaluation.get("problem_type"),
        "primary_metric": (run.spec or {}).get("primary_metric", ""),
        "primary_score": run.primary_score,
        "test_score": run.test_score,
        **{section: evaluation.get(section) for section in METRIC_SECTIONS},
        "cv": run.cv or {},
        "project": project,
        "explanations": {
            key: explanations.get(key)
            for key in ("computed", "reason", "explainer", "output", "rows", "global_importance")
            if key in explanations
        },
    }


def _lineage(run: Run, project: Project) -> dict[str, Any]:
    experiment = run.experiment
    version: DatasetVersion = experiment.dataset_version
    definition = getattr(project, "definition", None)
    columns = version_effective_columns(version=version)
    spec = run.spec or {}
    return {
        "project": {"id": str(project.pk), "name": project.name},
        "definition": {
            name: _plain(getattr(definition, name)) for name in DEFINITION_SNAPSHOT_FIELDS if definition is not None
        },
        "dataset": {
            "id": str(version.dataset_id),
            "name": version.dataset.name,
            "version_id": str(version.pk),
            "version_number": version.number,
            "sha256": version.sha256,
            "run_dataset_sha256": run.dataset_sha256,
            "rows": version.row_count,
            "columns": version.column_count,
            "validation_status": version.validation_status,
            "override_reason": version.override_reason,
        },
        "data": {
            "target": spec.get("target"),
            "pii_columns": [column["name"] for column in columns if column["pii"]],
            "personal_columns": [column["name"] for column in columns if column["personal"] or column["pii"]],
            "sensitive_columns": sorted(
                {column["name"] for column in columns if column["sensitive"]} | set(spec.get("sensitive_columns") or [])
            ),
        },
        "features": list(spec.get("features") or []),
        "algorithm": run.algorithm,
        "params": run.params or {},
        "spec": spec,
        "seed": run.seed,
        "environment": run.environment or {},
        "trained_by": experiment.created_by.get_username(),
        "trained_by_id": experiment.created_by_id,
        "run": {"id": str(run.pk), "number": run.number},
        "experiment": {"id": str(experiment.pk), "number": experiment.number, "name": experiment.name},
    }


def _target_model(*, project: Project, actor, registered_model, model_name: str) -> RegisteredModel:
    """The model to add the version to (locked, so version numbers are taken one at a time): the one given, or the
    project's model named `model_name`, created when it does not exist."""
    if registered_model is not None:
        if registered_model.project_id != project.pk:
            raise field_error("registered_model", "Choose a model of the run's project.")
        return RegisteredModel.objects.select_for_update().get(pk=registered_model.pk)
    name = str(model_name or "").strip()
    if not name:
        raise field_error("model_name", "Choose a registered model or name a new one.")
    existing = RegisteredModel.objects.select_for_update().filter(project=project, name=name).first()
    if existing is not None:
        return existing
    _clean_model_name(name)
    return _create_model(project=project, actor=actor, name=name, description="")


def _create_pending_version(*, run, project, actor, registered_model, model_name, description, tags) -> ModelVersion:
    with transaction.atomic():
        model = _target_model(project=project, actor=actor, registered_model=registered_model, model_name=model_name)
        duplicate = (
            ModelVersion.objects.filter(registered_model=model, run=run)
            .exclude(status=VersionStatus.FAILED)
            .values_list("number", flat=True)
            .first()
        )
        if duplicate is not None:
            raise field_error("run", f"This run is already version {duplicate} of “{model.name}”.", status=409)
        number = (ModelVersion.objects.filter(registered_model=model).aggregate(top=Max("number"))["top"] or 0) + 1
        metrics = _metrics_snapshot(run)
        version = ModelVersion.objects.create(
            registered_model=model,
            number=number,
            run=run,
            status=VersionStatus.PENDING,
            artifact_sha256=run.artifact_sha256,
            artifact_signature=run.artifact_signature,
            artifact_size=run.artifact_size,
            input_signature=run.input_signature or {},
            metrics=metrics,
            metrics_sha256=metrics_digest(metrics),
            lineage=_lineage(run, project),
            tags=tags,
            description=description,
            created_by=actor,
        )
        version.refresh_from_db()  # the JSON as PostgreSQL gives it back is what the card is generated from
        ModelCard.objects.create(
            version=version, generated=cards.generate_card(metrics=version.metrics, lineage=version.lineage)
        )
        audit_record(
            actor=actor,
            action="registry.version_create",
            obj=version,
            project=project,
            after={
                "registered_model": model.name,
                "number": number,
                "run": str(run.pk),
                "status": version.status,
                "artifact_sha256": version.artifact_sha256,
                "metrics_sha256": version.metrics_sha256,
            },
        )
    return version


def _copy_and_verify(version: ModelVersion, run: Run, project: Project) -> tuple[str, str]:
    """Copy the run's artifact to the version's own key (a server-side copy: a hard link locally) and re-verify its
    SHA-256 and signature there. Returns (key, "") or ("", the reason it failed)."""
    key = model_version_key(project_id=project.pk, model_id=version.registered_model_id, version=version.number)
    try:
        artifact_store().copy(run.artifact_key, key, overwrite=False)
    except (StorageError, OSError) as error:
        return "", f"The run's artifact could not be copied into the registry: {error}."
    check = gates.artifact_check(key=key, sha256=version.artifact_sha256, signature=version.artifact_signature)
    if not check.verified:
        return "", f"The copied artifact does not verify: {check.detail}"
    return key, ""


def _finish_registration(version: ModelVersion, project: Project, actor, *, key: str, reason: str) -> ModelVersion:
    with transaction.atomic():
        locked = ModelVersion.objects.select_for_update().get(pk=version.pk)
        locked.status = VersionStatus.READY if key else VersionStatus.FAILED
        locked.artifact_key = key
        locked.status_reason = reason
        locked.save(update_fields=["status", "artifact_key", "status_reason", "updated_at"])
        audit_record(
            actor=actor,
            action="registry.version_ready" if key else "registry.version_failed",
            obj=locked,
            project=project,
            before={"status": VersionStatus.PENDING},
            after={"status": locked.status, "artifact_key": key, "reason": reason},
        )
        locked.registered_model = version.registered_model
        notify(
            event=EVENT_VERSION_CREATED,
            project=project,
            recipients=[],
            title=f"{locked} registered ({locked.get_status_display().lower()})",
            body=reason or f"Registered by {actor.get_username()} from run {version.run_id}.",
            link=reverse("registry:version", args=[locked.pk]),
            payload={**_version_payload(locked), "run": str(version.run_id), "reason": reason},
        )
    return locked


def model_version_register(
    *,
    run: Run,
    actor,
    registered_model: RegisteredModel | None = None,
    model_name: str = "",
    description: str = "",
    tags=None,
) -> ModelVersion:
    """Register a succeeded run of the project as the next version of `registered_model` (or of the project's model
    named `model_name`, created if needed). The version is committed `pending_registration` with the run's record
    and its generated model card, then the artifact is copied to the registry's key and verified in this request
    (a server-side copy), and the version becomes `ready`, or `failed_registration` with the reason."""
    project = Project.objects.select_related("definition").get(pk=run.experiment.project_id)
    require(actor, Action.MODEL_REGISTER, project)
    _require_open_project(project)
    run = _require_registrable_run(run, project)
    tags = _clean_tags(tags)
    version = _create_pending_version(
        run=run,
        project=project,
        actor=actor,
        registered_model=registered_model,
        model_name=model_name,
        description=str(description or "").strip(),
        tags=tags,
    )
    key, reason = _copy_and_verify(version, run, project)
    return _finish_registration(version, project, actor, key=key, reason=reason)


def model_version_update(*, version: ModelVersion, actor, description: str | None = None, tags=None) -> ModelVersion:
    """Change a version's description and tags (None leaves one as it is). Nothing else of a version changes."""
    project = _project_of(version)
    require(actor, Action.MODEL_REGISTER, project)
    cleaned_tags = None if tags is None else _clean_tags(tags)
    with transaction.atomic():
        locked = ModelVersion.objects.select_for_update().get(pk=version.pk)
        before = {"description": locked.description, "tags": locked.tags}
        if description is not None:
            locked.description = str(description).strip()
        if cleaned_tags is not None:
            locked.tags = cleaned_tags
        after = {"description": locked.description, "tags": locked.tags}
        if after != before:
            locked.save(update_fields=["description", "tags", "updated_at"])
            audit_record(
                actor=actor, action="registry.version_update", obj=locked, project=project, before=before, after=after
            )
    return locked


def model_card_update(*, version: ModelVersion, actor, written: dict) -> ModelCard:
    """Write some of the card's human sections (cards.WRITTEN_SECTIONS); the sections given replace their text, the
    others stay. Generated sections cannot be written."""
    project = _project_of(version)
    require(actor, Action.MODEL_REGISTER, project)
    if not isinstance(written, dict):
        raise field_error("written", "Give the sections as {section: text}.")
    errors: dict[str, list[str]] = {}
    for key, text in written.items():
        if key not in cards.WRITTEN_KEYS:
            errors[str(key)] = ["This section is generated from the version's record and cannot be written."]
        elif not isinstance(text, str):
            errors[key] = ["Write the section as text."]
        elif len(text) > cards.MAX_WRITTEN_CHARS:
            errors[key] = [f"Keep the section to {cards.MAX_WRITTEN_CHARS} characters."]
    if errors:
        raise ApplicationError("Some sections cannot be written: correct the fields marked.", errors=errors)
    with transaction.atomic():
        card, _ = ModelCard.objects.select_for_update().get_or_create(version_id=version.pk)
        before = dict(card.written)
        card.written = {**card.written, **{key: text.strip() for key, text in written.items()}}
        if card.written != before:
            card.updated_by = actor
            card.save(update_fields=["written", "updated_by", "updated_at"])
            changed = sorted(key for key in card.written if card.written.get(key) != before.get(key))
            audit_record(
                actor=actor,
                action="registry.card_update",
                obj=card,
                project=project,
                before={key: before.get(key, "") for key in changed},
                after={key: card.written[key] for key in changed},
            )
    return card


# --- Stages ---------------------------------------------------------------------------------------------------------
def _move(version: ModelVersion, to_stage: str, actor, *, reason: str, request=None, rollback=False) -> StageTransition:
    """Change a locked version's stage and write the transition (the stage history)."""
    from_stage = version.stage
    version.stage = to_stage
    version.save(update_fields=["stage", "updated_at"])
    return StageTransition.objects.create(
        version=version,
        from_stage=from_stage,
        to_stage=to_stage,
        actor=actor,
        reason=reason,
        promotion_request=request,
        is_rollback=rollback,
    )


def _audit_stage(actor, version, project, transition: StageTransition, action: str = "registry.stage_change") -> None:
    audit_record(
        actor=actor,
        action=action,
        obj=version,
        project=project,
        before={"stage": transition.from_stage},
        after={
            "stage": transition.to_stage,
            "number": version.number,
            "registered_model": str(version.registered_model_id),
            "reason": transition.reason,
            "promotion_request": str(transition.promotion_request_id or ""),
            "rollback": transition.is_rollback,
        },
    )


def version_move_to_staging(*, version: ModelVersion, actor, reason: str = "") -> ModelVersion:
    """A ready version (in no stage, or archived) goes to staging: a data scientist's call, audited."""
    project = _project_of(version)
    require(actor, Action.MODEL_REGISTER, project)
    with transaction.atomic():
        locked = ModelVersion.objects.select_for_update().select_related("registered_model").get(pk=version.pk)
        if locked.status != VersionStatus.READY:
            raise field_error(
                "stage", f"Only a ready version can be staged; this one is {locked.get_status_display()}."
            )
        if locked.stage not in (Stage.NONE, Stage.ARCHIVED):
            raise field_error("stage", f"The version is already in {locked.get_stage_display().lower()}.", status=409)
        transition = _move(locked, Stage.STAGING, actor, reason=str(reason or "").strip())
        _audit_stage(actor, locked, project, transition)
        _notify_stage_change(locked, project, actor, from_stage=transition.from_stage, reason=transition.reason)
    return locked


def version_archive(*, version: ModelVersion, actor, reason: str = "") -> ModelVersion:
    """Archive a version that is not in production (production changes only by promotion or rollback)."""
    project = _project_of(version)
    require(actor, Action.MODEL_REGISTER, project)
    with transaction.atomic():
        locked = ModelVersion.objects.select_for_update().select_related("registered_model").get(pk=version.pk)
        if locked.stage == Stage.PRODUCTION:
            message = "A production version leaves production by a rollback or when another version is promoted."
            raise field_error("stage", message, status=409)
        if locked.stage == Stage.ARCHIVED:
            raise field_error("stage", "The version is already archived.", status=409)
        if locked.promotion_requests.filter(status=RequestStatus.OPEN).exists():
            raise field_error("stage", "A promotion request for this version is open: withdraw it first.", status=409)
        transition = _move(locked, Stage.ARCHIVED, actor, reason=str(reason or "").strip())
        _audit_stage(actor, locked, project, transition)
        _notify_stage_change(locked, project, actor, from_stage=transition.from_stage, reason=transition.reason)
    return locked


# --- Promotion requests ---------------------------------------------------------------------------------------------
def required_approvals(definition) -> int:
    """The project's own number, raised to two when GDPR, HIPAA or high-risk use applies."""
    if definition is None:
        return 1
    regulated = any(getattr(definition, flag) for flag in REGULATED_FLAGS)
    return max(definition.required_approvals, REGULATED_MIN_APPROVALS if regulated else 1)


def _production_version(registered_model_id, *, excluding=None) -> ModelVersion | None:
    versions = ModelVersion.objects.filter(registered_model_id=registered_model_id, stage=Stage.PRODUCTION)
    if excluding is not None:
        versions = versions.exclude(pk=excluding)
    return versions.first()


def _check_version_artifact(version: ModelVersion) -> gates.ArtifactCheck:
    return gates.artifact_check(
        key=version.artifact_key, sha256=version.artifact_sha256, signature=version.artifact_signature
    )


def evaluate_version_gates(*, version: ModelVersion, check: gates.ArtifactCheck | None = None) -> list[gates.Gate]:
    """The gates of `version` as they stand now (against the current production version of its model)."""
    project = _project_of(version)
    run = Run.objects.select_related("experiment__dataset_version").get(pk=version.run_id)
    card = ModelCard.objects.filter(version_id=version.pk).first()
    return gates.evaluate_gates(
        version=version,
        definition=project.definition,
        champion=_production_version(version.registered_model_id, excluding=version.pk),
        dataset_version=run.experiment.dataset_version,
        written=card.written if card else {},
        check=check or _check_version_artifact(version),
    )


def promotion_request_open(*, version: ModelVersion, actor, justification: str) -> PromotionRequest:
    """Ask for a ready staging version to go to production. The gates are evaluated and stored with the request
    (failing ones do not stop it: they block approvals); the project's reviewers are notified."""
    project = _project_of(version)
    require(actor, Action.MODEL_REGISTER, project)
    justification = _required_text("justification", justification, "Say why this version should go to production.")
    check = _check_version_artifact(version)
    with transaction.atomic():
        locked = ModelVersion.objects.select_for_update().select_related("registered_model", "run").get(pk=version.pk)
        if locked.status != VersionStatus.READY or locked.stage != Stage.STAGING:
            message = "Only a ready version in staging can be proposed for production."
            raise field_error("version", message, status=409)
        if locked.promotion_requests.filter(status=RequestStatus.OPEN).exists():
            raise field_error("version", "A promotion request for this version is already open.", status=409)
        evaluated = evaluate_version_gates(version=locked, check=check)
        request = PromotionRequest.objects.create(
            version=locked,
            requester=actor,
            justification=justification,
            required_approvals=required_approvals(project.definition),
            artifact_sha256=locked.artifact_sha256,
            metrics_sha256=locked.metrics_sha256,
            gates=evaluated,
            champion=_production_version(locked.registered_model_id, excluding=locked.pk),
        )
        audit_record(
            actor=actor,
            action="registry.request_open",
            obj=request,
            project=project,
            after={
                "version": str(locked.pk),
                "number": locked.number,
                "registered_model": locked.registered_model.name,
                "justification": justification,
                "required_approvals": request.required_approvals,
                "artifact_sha256": request.artifact_sha256,
                "metrics_sha256": request.metrics_sha256,
                "gates": evaluated,
            },
        )
        trained_by = locked.run.experiment.created_by_id if locked.run_id else None
        notify(
            event=EVENT_REQUEST_OPENED,
            project=project,
            recipients=_project_reviewers(project, excluding={actor.pk, trained_by}),
            title=f"Promotion requested: {locked} to production",
            body=f"{actor.get_username()}: {justification}\nGates failing: "
            + (", ".join(gate["label"] for gate in gates.failing(evaluated)) or "none"),
            link=reverse("registry:promotion", args=[request.pk]),
            payload={
                **_version_payload(locked),
                "request": {"id": str(request.pk), "status": request.status},
                "requester": actor.get_username(),
                "required_approvals": request.required_approvals,
                "gates": evaluated,
            },
        )
    return request


def decision_refusal(request: PromotionRequest, actor) -> str:
    """Why `actor` may not decide `request` now ("" when they may): the role, the request's state and separation of
    duties (not the requester, not who trained the version, not twice)."""
    project = Project(pk=request.version.registered_model.project_id)
    if not can(actor, Action.PROMOTION_DECIDE, project):
        return "Only the project's reviewers (or an admin) decide promotion requests."
    if request.status != RequestStatus.OPEN:
        return f"The request is {request.get_status_display().lower()}: it takes no more decisions."
    if request.requester_id == actor.pk:
        return "You opened this request: another reviewer must decide it."
    if request.version.run.experiment.created_by_id == actor.pk:
        return "You trained this version: another reviewer must decide it."
    if request.approvals.filter(reviewer_id=actor.pk).exists():
        return "You already decided this request."
    return ""


def _lock_request(request: PromotionRequest, actor) -> PromotionRequest:
    locked = (
        PromotionRequest.objects.select_for_update(of=("self",))
        .select_related("version__registered_model", "version__run__experiment", "requester")
        .get(pk=request.pk)
    )
    refusal = decision_refusal(locked, actor)
    if refusal:
        status = 409 if locked.status != RequestStatus.OPEN else 403
        raise field_error("reviewer", refusal, status=status)
    return locked


def _binding_broken(request: PromotionRequest, version: ModelVersion, check: gates.ArtifactCheck) -> str:
    """Why the request no longer binds to the version as it is ("" when it does)."""
    if check.sha256 and check.sha256 != request.artifact_sha256:
        return "the stored artifact's bytes changed since the request was opened"
    if version.artifact_sha256 != request.artifact_sha256:
        return "the version's artifact hash changed since the request was opened"
    if version.metrics_sha256 != request.metrics_sha256 or metrics_digest(version.metrics) != request.metrics_sha256:
        return "the version's metrics changed since the request was opened"
    return ""


def _void(request: PromotionRequest, actor, project: Project, why: str) -> None:
    request.status = RequestStatus.VOID
    request.decided_at = timezone.now()
    request.decision_reason = f"Void: {why}."
    request.save(update_fields=["status", "decided_at", "decision_reason", "updated_at"])
    audit_record(
        actor=actor,
        action="registry.request_void",
        obj=request,
        project=project,
        before={"status": RequestStatus.OPEN},
        after={"status": request.status, "reason": request.decision_reason},
    )
    _notify_decision(request, project, actor, comment=request.decision_reason)


def _lock_model_versions(registered_model_id) -> dict:
    """Every version of the model, locked in a fixed order: a promotion or rollback of the same model waits here."""
    versions = ModelVersion.objects.select_for_update().filter(registered_model_id=registered_model_id)
    return {version.pk: version for version in versions.order_by("number")}


def _override_reason(actor, failing: list, override: str) -> str:
    """The override an approval records: "" when no gate fails; refused unless an admin wrote a reason."""
    override = str(override or "").strip()
    if not failing:
        return ""
    names = ", ".join(gate["label"] for gate in failing)
    if not _is_admin(actor):
        raise ApplicationError(
            f"Failing gates block the approval: {names}. Only an admin can override them.",
            errors={"gates": [f"Failing: {names}."]},
            status=409,
        )
    if not override:
        raise field_error("gate_override_reason", f"Gates fail ({names}): write why you approve anyway.")
    return override


def _promote(request, version, versions: dict, actor, project) -> None:
    """In the caller's transaction, with every version of the model locked: the previous production version is
    archived, then this one goes to production (the constraint is checked per statement, so in that order)."""
    for other in versions.values():
        if other.stage == Stage.PRODUCTION and other.pk != version.pk:
            archived = _move(
                other, Stage.ARCHIVED, actor, reason=f"Replaced by version {version.number}.", request=request
            )
            _audit_stage(actor, other, project, archived)
    promoted = _move(version, Stage.PRODUCTION, actor, reason=request.justification, request=request)
    _audit_stage(actor, version, project, promoted)
    request.status = RequestStatus.APPROVED
    request.decided_at = timezone.now()
    request.save(update_fields=["status", "decided_at", "updated_at"])


def promotion_approve(
    *, request: PromotionRequest, actor, comment: str, gate_override_reason: str = ""
) -> PromotionRequest:
    """A reviewer's approval. Refused to the requester, to whoever trained the version and to a second decision by
    the same reviewer; refused over failing gates unless an admin writes an override reason. A request whose version's
    artifact or metrics changed becomes void (and the approval is refused). The approval that reaches the required
    number puts the version in production and archives the previous one, in this transaction."""
    project = Project.objects.get(pk=request.version.registered_model.project_id)
    require(actor, Action.PROMOTION_DECIDE, project)
    comment = _required_text("comment", comment, "Write a comment with your approval.")
    version = ModelVersion.objects.get(pk=request.version_id)
    check = _check_version_artifact(version)
    voided = ""
    with transaction.atomic():
        locked = _lock_request(request, actor)
        versions = _lock_model_versions(locked.version.registered_model_id)
        version = versions[locked.version_id]
        version.registered_model = locked.version.registered_model
        voided = _binding_broken(locked, version, check)
        if voided:
            _void(locked, actor, project, voided)
        else:
            if version.status != VersionStatus.READY or version.stage != Stage.STAGING:
                raise field_error(
                    "version", f"The version is in {version.get_stage_display().lower()}, not staging.", status=409
                )
            evaluated = evaluate_version_gates(version=version, check=check)
            override = _override_reason(actor, gates.failing(evaluated), gate_override_reason)
            approval = Approval.objects.create(
                request=locked,
                reviewer=actor,
                decision=Decision.APPROVE,
                comment=comment,
                gates=evaluated,
                artifact_sha256=check.sha256,
                metrics_sha256=version.metrics_sha256,
                gate_override_reason=override,
            )
            approvals = locked.approvals.filter(decision=Decision.APPROVE).count()
            audit_record(
                actor=actor,
                action="registry.request_approve",
                obj=locked,
                project=project,
                after={
                    "approval": str(approval.pk),
                    "comment": comment,
                    "gates": evaluated,
                    "gate_override_reason": override,
                    "artifact_sha256": approval.artifact_sha256,
                    "metrics_sha256": approval.metrics_sha256,
                    "approvals": approvals,
                    "required_approvals": locked.required_approvals,
                },
            )
            if approvals >= locked.required_approvals:
                _promote(locked, version, versions, actor, project)
                _notify_decision(locked, project, actor, comment=comment)
    if voided:
        message = f"The request is void: {voided}. Open a new request for the version as it is now."
        raise field_error("request", message, status=409)
    return locked


def promotion_reject(*, request: PromotionRequest, actor, reason: str) -> PromotionRequest:
    """A reviewer's rejection, with a reason: the request is closed (the same separation-of-duties rules apply)."""
    project = Project.objects.get(pk=request.version.registered_model.project_id)
    require(actor, Action.PROMOTION_DECIDE, project)
    reason = _required_text("reason", reason, "Say why you reject the request.")
    check = _check_version_artifact(ModelVersion.objects.get(pk=request.version_id))
    with transaction.atomic():
        locked = _lock_request(request, actor)
        evaluated = evaluate_version_gates(version=locked.version, check=check)
        Approval.objects.create(
            request=locked,
            reviewer=actor,
            decision=Decision.REJECT,
            comment=reason,
            gates=evaluated,
            artifact_sha256=check.sha256,
            metrics_sha256=locked.version.metrics_sha256,
        )
        locked.status = RequestStatus.REJECTED
        locked.decided_at = timezone.now()
        locked.decision_reason = reason
        locked.save(update_fields=["status", "decided_at", "decision_reason", "updated_at"])
        audit_record(
            actor=actor,
            action="registry.request_reject",
            obj=locked,
            project=project,
            before={"status": RequestStatus.OPEN},
            after={"status": locked.status, "reason": reason, "gates": evaluated},
        )
        _notify_decision(locked, project, actor, comment=reason)
    return locked


def promotion_withdraw(*, request: PromotionRequest, actor) -> PromotionRequest:
    """The requester takes their open request back."""
    project = Project.objects.get(pk=request.version.registered_model.project_id)
    require(actor, Action.MODEL_VIEW, project)
    with transaction.atomic():
        locked = (
            PromotionRequest.objects.select_for_update(of=("self",))
            .select_related("version__registered_model", "requester")
            .get(pk=request.pk)
        )
        if locked.requester_id != actor.pk:
            raise PermissionDenied("Only the requester can withdraw a promotion request.")
        if locked.status != RequestStatus.OPEN:
            raise field_error("request", f"The request is already {locked.get_status_display().lower()}.", status=409)
        locked.status = RequestStatus.WITHDRAWN
        locked.decided_at = timezone.now()
        locked.save(update_fields=["status", "decided_at", "updated_at"])
        audit_record(
            actor=actor,
            action="registry.request_withdraw",
            obj=locked,
            project=project,
            before={"status": RequestStatus.OPEN},
            after={"status": locked.status},
        )
        _notify_decision(locked, project, actor, comment="")
    return locked


# --- Rollback -------------------------------------------------------------------------------------------------------
def _previous_production(versions: dict, current: ModelVersion) -> ModelVersion | None:
    """The version most recently moved to production before `current`, if it is archived and ready now."""
    transitions = (
        StageTransition.objects.filter(version_id__in=list(versions), to_stage=Stage.PRODUCTION)
        .exclude(version_id=current.pk)
        .order_by("-created_at")
        .values_list("version_id", flat=True)
    )
    for version_id in transitions:
        candidate = versions[version_id]
        if candidate.stage == Stage.ARCHIVED and candidate.status == VersionStatus.READY:
            return candidate
    return None


def model_rollback(*, registered_model: RegisteredModel, actor, reason: str) -> ModelVersion:
    """Restore the previous production version (now archived) and archive the current one, with a reason. The same
    separation of duties as an approval: whoever trained the restored version cannot restore it. Its artifact must
    still verify. Returns the restored version."""
    project = Project.objects.get(pk=registered_model.project_id)
    require(actor, Action.MODEL_ROLLBACK, project)
    reason = _required_text("reason", reason, "Say why you roll back.")
    with transaction.atomic():
        versions = _lock_model_versions(registered_model.pk)
        current = next((v for v in versions.values() if v.stage == Stage.PRODUCTION), None)
        if current is None:
            raise field_error("registered_model", "No version of this model is in production.", status=409)
        restored = _previous_production(versions, current)
        if restored is None:
            raise field_error("registered_model", "No earlier production version to go back to.", status=409)
        trained_by = Run.objects.filter(pk=restored.run_id).values_list("experiment__created_by_id", flat=True).first()
        if trained_by == actor.pk:
            message = f"You trained version {restored.number}: another reviewer must restore it."
            raise field_error("reviewer", message, status=403)
        check = _check_version_artifact(restored)
        if not check.verified:
            raise field_error(
                "registered_model", f"Version {restored.number} cannot be restored: {check.detail}", status=409
            )
        archived = _move(current, Stage.ARCHIVED, actor, reason=reason, rollback=True)
        promoted = _move(restored, Stage.PRODUCTION, actor, reason=reason, rollback=True)
        for version, transition in ((current, archived), (restored, promoted)):
            version.registered_model = registered_model
            _audit_stage(actor, version, project, transition, action="registry.rollback")
            _notify_stage_change(version, project, actor, from_stage=transition.from_stage, reason=reason)
    return restored
