"""Feature store use cases: the catalog (entities, views, feature definitions and their versions), materialisation
jobs, training sets, personal-feature exceptions and online syncs, plus the bookkeeping the worker finishes its
jobs through.

Every change is one transaction that records its audit event. People's actions check the policy (`require`); the
worker's functions (`*_claim`, `*_succeed`, `*_fail`, `*_heartbeat`) check the job's state instead. Tasks are
dispatched by name after commit, so this module never imports workers.tasks.
"""

import re
from datetime import datetime, timedelta
from typing import Any

from celery import current_app
from django.db import IntegrityError, transaction
from django.db.models import Max, Q
from django.utils import timezone

from apps.accounts.permissions import Action, can, require
from apps.audit.services import audit_record
from apps.core.exceptions import ApplicationError
from apps.datasets.models import Dataset, DatasetVersion
from apps.features import engine
from apps.features.choices import ACTIVE_STATUSES, FINISHED_STATUSES, JobStatus, ValueType
from apps.features.models import (
    Entity,
    Feature,
    FeatureVersion,
    FeatureView,
    MaterialisationJob,
    OnlineSync,
    PersonalFeatureException,
    TrainingSet,
    TrainingSetFeature,
)
from apps.projects.choices import ProjectStatus

MATERIALISE_TASK = "features.materialise"
BUILD_TRAINING_SET_TASK = "features.build_training_set"
SYNC_ONLINE_TASK = "features.sync_online"
FEATURES_QUEUE = "default"
NAME_PATTERN = re.compile(r"[a-z_][a-z0-9_]{0,62}")
NAME_RULE = "Use lower-case letters, digits and underscores, starting with a letter or underscore (at most 63)."
MIN_EXCEPTION_REASON_CHARS = 20
MAX_TAGS = 20


def _dispatch(task: str, pk) -> None:
    job_id = str(pk)
    transaction.on_commit(lambda: current_app.send_task(task, args=[job_id], queue=FEATURES_QUEUE))


def _invalid(field: str, message: str, *, summary: str = "") -> ApplicationError:
    return ApplicationError(summary or message, errors={field: [message]})


def _clean_name(value: Any, field: str = "name") -> str:
    name = str(value or "").strip()
    if not name:
        raise _invalid(field, "This field is required.", summary="Give a name.")
    if not NAME_PATTERN.fullmatch(name):
        raise _invalid(field, NAME_RULE)
    return name


def _clean_tags(tags: Any) -> list[str]:
    if tags is None:
        return []
    if isinstance(tags, str):
        tags = tags.split(",")
    if not isinstance(tags, list | tuple):
        raise _invalid("tags", "Give a list of tags.")
    cleaned = sorted({str(tag).strip().lower() for tag in tags if str(tag).strip()})
    if len(cleaned) > MAX_TAGS or any(len(tag) > 50 for tag in cleaned):
        raise _invalid("tags", f"Use at most {MAX_TAGS} tags of at most 50 characters.")
    return cleaned


def _require_open_project(project, field: str = "project") -> None:
    if project.status == ProjectStatus.RETIRED:
        raise ApplicationError("The project is retired.", errors={field: ["The project is retired."]}, status=409)


# --- Entities and views -----------------------------------------------------------------------------------------
def may_define_somewhere(actor) -> bool:
    """Entities and views are platform-wide: anyone who may define features in some project may add them."""
    if can(actor, Action.FEATURE_DEFINE):
        return True
    memberships = getattr(actor, "memberships", None)
    if memberships is None:
        return False
    return any(can(actor, Action.FEATURE_DEFINE, m.project) for m in memberships.select_related("project"))


def _require_define_somewhere(actor) -> None:
    if not may_define_somewhere(actor):
        require(actor, Action.FEATURE_DEFINE)  # raises with the policy's sentence


def entity_create(*, actor, name: str, join_keys: list[str], description: str = "") -> Entity:
    _require_define_somewhere(actor)
    name = _clean_name(name)
    if isinstance(join_keys, str):
        join_keys = [key.strip() for key in join_keys.split(",") if key.strip()]
    keys = [_clean_name(key, "join_keys") for key in (join_keys or [])]
    if not keys or len(set(keys)) != len(keys):
        raise _invalid("join_keys", "Give one or more distinct key names, e.g. customer_id.")
    if Entity.objects.filter(name=name).exists():
        raise _invalid("name", "An entity with this name already exists.")
    try:
        with transaction.atomic():
            entity = Entity.objects.create(
                name=name, join_keys=keys, description=(description or "").strip(), created_by=actor
            )
            audit_record(actor=actor, action="feature.entity_create", obj=entity, after={"name": name, "keys": keys})
    except IntegrityError as exc:
        raise _invalid("name", "An entity with this name already exists.") from exc
    return entity


def feature_view_create(
    *, actor, name: str, entity: Entity, description: str = "", tags: Any = None, owner=None
) -> FeatureView:
    _require_define_somewhere(actor)
    name = _clean_name(name)
    tags = _clean_tags(tags)
    if FeatureView.objects.filter(name=name).exists():
        raise _invalid("name", "A feature view with this name already exists.")
    try:
        with transaction.atomic():
            view = FeatureView.objects.create(
                name=name,
                entity=entity,
                description=(description or "").strip(),
                tags=tags,
                owner=owner or actor,
                created_by=actor,
            )
            audit_record(
                actor=actor,
                action="feature.view_create",
                obj=view,
                after={"name": name, "entity": entity.name, "tags": tags, "owner": view.owner.get_username()},
            )
    except IntegrityError as exc:
        raise _invalid("name", "A feature view with this name already exists.") from exc
    return view


# --- Feature definitions ------------------------------------------------------------------------------------------
def source_version(dataset: Dataset) -> DatasetVersion | None:
    """The dataset's newest version usable for training: the one definitions are checked against and
    materialisations read."""
    usable = Q(validation_status="passed") | ~Q(override_reason="")
    return dataset.versions.filter(usable).order_by("-number").first()


def _column_kinds(version: DatasetVersion) -> dict[str, str]:
    return {column["name"]: column.get("semantic_type") or column.get("dtype") or "" for column in version.schema}


def _transformation_errors(spec: dict, kinds: dict[str, str]) -> tuple[dict, dict | None]:
    """The engine's normalised spec and, for an expression, its parsed tree; field errors as `transformation.*`."""
    if not isinstance(spec, dict) or not spec.get("kind"):
        raise _invalid("transformation", "Choose a transformation.")
    try:
        normalised = engine.validate_transformation(dict(spec), source_columns=kinds)
    except engine.transformation_error_type() as exc:
        field = getattr(exc, "field", "") or "kind"
        message = getattr(exc, "message", None) or str(exc)
        summary = f"The transformation is not valid: {message}"
        raise _invalid(f"transformation.{field}", message, summary=summary) from exc
    tree = None
    if normalised.get("kind") == "expression":
        try:
            tree = engine.parse_expression(str(normalised["expression"]), columns=set(kinds)).to_dict()
        except engine.expression_error_type() as exc:
            message = getattr(exc, "message", None) or str(exc)
            summary = f"The expression is refused: {message}"
            raise _invalid("transformation.expression", message, summary=summary) from exc
    return normalised, tree


def _used_columns(spec: dict, tree: dict | None, kinds: dict[str, str]) -> list[str]:
    """The source columns a value is computed from (the entity keys and timestamp are not values)."""
    if tree is not None:
        from_tree = _tree_columns(tree)
        return sorted(from_tree & set(kinds))
    column = spec.get("column")
    return [column] if column and column != "*" else []


def _tree_columns(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        if node.get("type") in {"column", "Column"} and isinstance(node.get("name"), str):
            found.add(node["name"])
        for value in node.values():
            found |= _tree_columns(value)
    elif isinstance(node, list):
        for value in node:
            found |= _tree_columns(value)
    return found


def _marks(dataset: Dataset, columns: list[str]) -> tuple[bool, bool]:
    marks = dataset.column_marks or {}
    personal = any((marks.get(column) or {}).get("personal") for column in columns)
    sensitive = any((marks.get(column) or {}).get("sensitive") for column in columns)
    return bool(personal), bool(sensitive)


def _definition(version: FeatureVersion | None) -> dict[str, Any] | None:
    if version is None:
        return None
    return {
        "dataset": str(version.dataset_id),
        "timestamp_column": version.timestamp_column,
        "entity_columns": list(version.entity_columns),
        "transformation": version.transformation,
    }


def _version_snapshot(version: FeatureVersion) -> dict[str, Any]:
    return {
        **(_definition(version) or {}),
        "feature": version.feature.name,
        "view": version.feature.view.name,
        "number": version.number,
        "source_columns": version.source_columns,
        "personal": version.personal,
        "sensitive": version.sensitive,
    }


def _check_source_columns(view: FeatureView, kinds: dict, timestamp_column: str, entity_columns: Any) -> list[str]:
    errors: dict[str, list[str]] = {}
    if timestamp_column not in kinds:
        errors["timestamp_column"] = ["Choose a column of the dataset."]
    elif kinds[timestamp_column] not in {"datetime", "timestamp", ""} and "date" not in kinds[timestamp_column]:
        errors["timestamp_column"] = ["Choose a date/time column."]
    if isinstance(entity_columns, str):
        entity_columns = [column.strip() for column in entity_columns.split(",") if column.strip()]
    entity_columns = list(entity_columns or [])
    keys = list(view.entity.join_keys)
    if len(entity_columns) != len(keys):
        errors["entity_columns"] = [
            f"Give {len(keys)} column(s), one per key of {view.entity.name}: {', '.join(keys)}."
        ]
    elif missing := [column for column in entity_columns if column not in kinds]:
        errors["entity_columns"] = [f"Not columns of the dataset: {', '.join(missing)}."]
    if errors:
        raise ApplicationError("The source columns are not valid.", errors=errors)
    return entity_columns


def feature_define(
    *,
    actor,
    view: FeatureView,
    name: str,
    dataset: Dataset,
    timestamp_column: str,
    entity_columns: list[str],
    transformation: dict,
    description: str = "",
    value_type: str = ValueType.FLOAT,
    tags: Any = None,
) -> FeatureVersion:
    """Define a feature of `view`: its version 1, or a new version when the definition (source, columns or
    transformation) differs from its newest one; an unchanged definition returns the newest version as it is.

    The source must be a dataset of a project where the actor may define features; the transformation is validated
    (and an expression parsed, never evaluated) by the engine against the dataset's newest usable version. Personal
    and sensitive marks of the source columns are copied onto the version.
    """
    require(actor, Action.FEATURE_DEFINE, dataset.project)
    _require_open_project(dataset.project, "dataset")
    name = _clean_name(name)
    tags = _clean_tags(tags)
    if value_type not in ValueType.values:
        raise _invalid("value_type", "Choose a value type.")
    version = source_version(dataset)
    if version is None:
        raise _invalid("dataset", "The dataset has no version usable for training yet.")
    kinds = _column_kinds(version)
    entity_columns = _check_source_columns(view, kinds, timestamp_column, entity_columns)
    spec, tree = _transformation_errors(transformation, kinds)
    columns = _used_columns(spec, tree, kinds)
    personal, sensitive = _marks(dataset, columns)
    definition = {
        "dataset": str(dataset.pk),
        "timestamp_column": timestamp_column,
        "entity_columns": entity_columns,
        "transformation": spec,
    }
    with transaction.atomic():
        feature, created = Feature.objects.select_for_update().get_or_create(
            view=view,
            name=name,
            defaults={
                "description": (description or "").strip(),
                "owner": actor,
                "tags": tags,
                "value_type": value_type,
            },
        )
        newest = feature.versions.order_by("-number").first()
        if not created:
            _update_feature_metadata(feature, actor=actor, description=description, tags=tags, value_type=value_type)
        if newest is not None and _definition(newest) == definition:
            return newest
        number = (feature.versions.aggregate(latest=Max("number"))["latest"] or 0) + 1
        feature_version = FeatureVersion.objects.create(
            feature=feature,
            number=number,
            dataset=dataset,
            source_columns=columns,
            timestamp_column=timestamp_column,
            entity_columns=entity_columns,
            transformation=spec,
            expression_tree=tree,
            personal=personal,
            sensitive=sensitive,
            created_by=actor,
        )
        audit_record(
            actor=actor,
            action="feature.define",
            obj=feature_version,
            project=dataset.project,
            before=_definition(newest),
            after=_version_snapshot(feature_version),
        )
    return feature_version


def _update_feature_metadata(feature: Feature, *, actor, description: str, tags: list[str], value_type: str) -> None:
    changes = {}
    if description and description.strip() != feature.description:
        changes["description"] = description.strip()
    if tags and tags != feature.tags:
        changes["tags"] = tags
    if value_type != feature.value_type:
        changes["value_type"] = value_type
    if not changes:
        return
    before = {key: getattr(feature, key) for key in changes}
    for key, value in changes.items():
        setattr(feature, key, value)
    feature.save(update_fields=[*changes, "updated_at"])
    audit_record(actor=actor, action="feature.update", obj=feature, before=before, after=changes)


# --- Materialisation --------------------------------------------------------------------------------------------
def _job_snapshot(job: MaterialisationJob) -> dict[str, Any]:
    return {
        "feature_version": str(job.feature_version_id),
        "dataset_version": str(job.dataset_version_id),
        "range_start": job.range_start.isoformat() if job.range_start else None,
        "range_end": job.range_end.isoformat(),
        "status": job.status,
    }


def next_range_start(feature_version: FeatureVersion) -> datetime | None:
    """Where the next materialisation starts: the end of the last succeeded one (None: from the first event)."""
    last = (
        feature_version.materialisations.filter(status=JobStatus.SUCCEEDED).aggregate(end=Max("range_end")).get("end")
    )
    return last


def materialisation_request(
    *, actor, feature_version: FeatureVersion, end: datetime | None = None
) -> MaterialisationJob:
    """Queue the computation of a feature version's values from the end of its last succeeded materialisation (or
    its first event) up to `end` (now when not given), from the source dataset's newest usable version."""
    project = feature_version.dataset.project
    require(actor, Action.FEATURE_DEFINE, project)
    _require_open_project(project)
    end = end or timezone.now()
    if timezone.is_naive(end):
        end = timezone.make_aware(end, timezone.utc)
    version = source_version(feature_version.dataset)
    if version is None:
        raise _invalid("dataset", "The source dataset has no version usable for training.")
    with transaction.atomic():
        FeatureVersion.objects.select_for_update().filter(pk=feature_version.pk).first()  # one request at a time
        if feature_version.materialisations.filter(status__in=ACTIVE_STATUSES).exists():
            raise ApplicationError("A materialisation of this version is already queued or running.", status=409)
        start = next_range_start(feature_version)
        if start is not None and start >= end:
            raise _invalid("end", "The version is already materialised up to this time.")
        job = MaterialisationJob.objects.create(
            feature_version=feature_version,
            dataset_version=version,
            range_start=start,
            range_end=end,
            created_by=actor,
        )
        audit_record(
            actor=actor, action="feature.materialise_request", obj=job, project=project, after=_job_snapshot(job)
        )
        _dispatch(MATERIALISE_TASK, job.pk)
    return job


def _claim(model, *, job_id, task_id: str):
    """queued -> running, once; a redelivery of the same task may take its running row back. None: stop."""
    now = timezone.now()
    task_id = str(task_id or "")[:64]
    claimable = Q(status=JobStatus.QUEUED)
    if task_id:
        claimable |= Q(status=JobStatus.RUNNING, task_id=task_id)
    updated = model.objects.filter(claimable, pk=job_id).update(
        status=JobStatus.RUNNING, task_id=task_id, started_at=now, heartbeat_at=now, updated_at=now
    )
    return model.objects.get(pk=job_id) if updated == 1 else None


def _heartbeat(model, *, job_id) -> bool:
    return model.objects.filter(pk=job_id, status=JobStatus.RUNNING).update(heartbeat_at=timezone.now()) == 1


def _finish_locked(model, job_id):
    job = model.objects.select_for_update().get(pk=job_id)
    if job.status != JobStatus.RUNNING:
        raise ApplicationError(f"The job is {job.status}, not running.", status=409)
    return job


def _fail(model, *, job_id, message: str, action: str, project_of):
    with transaction.atomic():
        job = model.objects.select_for_update().get(pk=job_id)
        if job.status in FINISHED_STATUSES:
            return job
        before = {"status": job.status}
        job.status, job.error, job.finished_at = JobStatus.FAILED, str(message), timezone.now()
        job.save(update_fields=["status", "error", "finished_at", "updated_at"])
        audit_record(
            actor=None,
            action=action,
            obj=job,
            project=project_of(job),
            before=before,
            after={"status": job.status, "error": job.error},
        )
    return job


def materialisation_job_claim(*, job_id, task_id: str) -> MaterialisationJob | None:
    job = _claim(MaterialisationJob, job_id=job_id, task_id=task_id)
    if job is None:
        return None
    return MaterialisationJob.objects.select_related(
        "feature_version__feature__view__entity", "feature_version__dataset", "dataset_version"
    ).get(pk=job.pk)


def materialisation_job_heartbeat(*, job_id) -> bool:
    return _heartbeat(MaterialisationJob, job_id=job_id)


def materialisation_job_succeed(
    *, job_id, rows: int, artifact_keys: list[str], statistics: dict, max_event_timestamp: datetime | None
) -> MaterialisationJob:
    with transaction.atomic():
        job = _finish_locked(MaterialisationJob, job_id)
        job.status, job.finished_at = JobStatus.SUCCEEDED, timezone.now()
        job.rows, job.artifact_keys, job.statistics = int(rows), list(artifact_keys), statistics
        job.max_event_timestamp = max_event_timestamp
        job.save()
        audit_record(
            actor=None,
            action="feature.materialise_succeeded",
            obj=job,
            project=job.feature_version.dataset.project,
            before={"status": JobStatus.RUNNING},
            after={**_job_snapshot(job), "rows": job.rows, "artifact_keys": job.artifact_keys},
        )
    return job


def materialisation_job_fail(*, job_id, message: str) -> MaterialisationJob:
    return _fail(
        MaterialisationJob,
        job_id=job_id,
        message=message,
        action="feature.materialise_failed",
        project_of=lambda job: job.feature_version.dataset.project,
    )


# --- Personal-feature exceptions --------------------------------------------------------------------------------
def personal_feature_exception_grant(
    *, actor, project, feature_version: FeatureVersion, reason: str
) -> PersonalFeatureException:
    """A compliance officer allows a personal feature version into the project's training sets, with a reason."""
    require(actor, Action.PERSONAL_FEATURE_EXCEPTION, project)
    reason = (reason or "").strip()
    if len(reason) < MIN_EXCEPTION_REASON_CHARS:
        raise _invalid("reason", f"Explain why, in at least {MIN_EXCEPTION_REASON_CHARS} characters.")
    if not feature_version.personal:
        raise _invalid("feature_version", "This feature version is not personal: it needs no exception.")
    if PersonalFeatureException.objects.filter(project=project, feature_version=feature_version).exists():
        raise _invalid("feature_version", "An exception for this feature version already exists in the project.")
    with transaction.atomic():
        exception = PersonalFeatureException.objects.create(
            project=project, feature_version=feature_version, reason=reason, granted_by=actor
        )
        audit_record(
            actor=actor,
            action="feature.personal_exception_grant",
            obj=exception,
            project=project,
            after={"feature_version": str(feature_version.pk), "feature": str(feature_version), "reason": reason},
        )
    return exception


# --- Training sets ----------------------------------------------------------------------------------------------
def _spine_errors(spine_version, project, key_columns, timestamp_column, label_column) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    if spine_version.dataset.project_id != project.pk:
        return {"spine_version": ["Choose a dataset version of this project."]}
    columns = {column["name"] for column in spine_version.schema}
    if not key_columns:
        errors["spine_key_columns"] = ["Give the spine's entity key column(s)."]
    elif missing := [column for column in key_columns if column not in columns]:
        errors["spine_key_columns"] = [f"Not columns of the spine: {', '.join(missing)}."]
    if timestamp_column not in columns:
        errors["spine_timestamp_column"] = ["Choose a column of the spine."]
    if label_column and label_column not in columns:
        errors["label_column"] = ["Choose a column of the spine (or none)."]
    return errors


def _feature_item_errors(project, items: list[dict], key_count: int, spine_columns: set[str]) -> list[str]:
    messages: list[str] = []
    names: set[str] = set()
    for item in items:
        version: FeatureVersion = item["feature_version"]
        output = item["output_name"]
        if output in names or output in spine_columns:
            messages.append(f"{output}: the output name is used twice (or is a spine column).")
        names.add(output)
        if not NAME_PATTERN.fullmatch(output):
            messages.append(f"{output}: {NAME_RULE}")
        if len(version.feature.view.entity.join_keys) != key_count:
            messages.append(f"{version}: its entity has {len(version.feature.view.entity.join_keys)} key(s).")
        if not version.materialisations.filter(status=JobStatus.SUCCEEDED).exists():
            messages.append(f"{version}: materialise it first.")
        if (
            version.personal
            and not PersonalFeatureException.objects.filter(project=project, feature_version=version).exists()
        ):
            messages.append(
                f"{version} is personal: a compliance officer must grant an exception for it in this project first."
            )
    return messages


def _clean_items(features: list[dict]) -> list[dict]:
    items = []
    for raw in features or []:
        version = raw.get("feature_version")
        if not isinstance(version, FeatureVersion):
            raise _invalid("features", "Choose feature versions.")
        max_age = raw.get("max_age")
        if max_age is not None and not isinstance(max_age, timedelta):
            max_age = timedelta(seconds=int(max_age))
        if max_age is not None and max_age.total_seconds() <= 0:
            raise _invalid("features", "A maximum age must be positive.")
        items.append(
            {
                "feature_version": version,
                "output_name": str(raw.get("output_name") or version.feature.name).strip(),
                "max_age": max_age,
            }
        )
    if not items:
        raise _invalid("features", "Choose at least one feature.")
    return items


def _output_dataset(*, project, actor, name: str) -> Dataset:
    name = (name or "").strip()
    if not name:
        raise _invalid("output_dataset", "Name the dataset the training set becomes a version of.")
    existing = Dataset.objects.filter(project=project, name=name).first()
    if existing is not None:
        return existing
    from apps.datasets.services import dataset_create

    try:
        return dataset_create(project=project, actor=actor, name=name, description="Training sets built from features.")
    except ApplicationError as exc:
        messages = [message for values in exc.errors.values() for message in values] or [exc.message]
        raise ApplicationError(exc.message, errors={"output_dataset": messages}, status=exc.status) from exc


def _training_set_snapshot(training_set: TrainingSet) -> dict[str, Any]:
    return {
        "name": training_set.name,
        "spine_version": str(training_set.spine_version_id),
        "spine_key_columns": training_set.spine_key_columns,
        "spine_timestamp_column": training_set.spine_timestamp_column,
        "label_column": training_set.label_column,
        "output_dataset": str(training_set.output_dataset_id),
        "features": [
            {
                "feature_version": str(item.feature_version_id),
                "output_name": item.output_name,
                "max_age_seconds": item.max_age_seconds,
            }
            for item in training_set.items.all()
        ],
        "status": training_set.status,
    }


def training_set_build(
    *,
    actor,
    project,
    spine_version: DatasetVersion,
    spine_key_columns: list[str],
    spine_timestamp_column: str,
    features: list[dict],
    output_dataset_name: str,
    label_column: str = "",
    name: str = "",
) -> TrainingSet:
    """Queue a point-in-time join of the spine with the feature versions (`features`: [{feature_version,
    output_name, max_age (timedelta or seconds, optional)}]). The result becomes a new version of the project's
    dataset `output_dataset_name` (created when missing). A personal feature needs an exception in this project."""
    require(actor, Action.TRAINING_SET_BUILD, project)
    _require_open_project(project)
    if isinstance(spine_key_columns, str):
        spine_key_columns = [column.strip() for column in spine_key_columns.split(",") if column.strip()]
    spine_key_columns = list(spine_key_columns or [])
    errors = _spine_errors(spine_version, project, spine_key_columns, spine_timestamp_column, label_column)
    if errors:
        raise ApplicationError("The spine is not valid.", errors=errors)
    items = _clean_items(features)
    spine_columns = {column["name"] for column in spine_version.schema}
    if messages := _feature_item_errors(project, items, len(spine_key_columns), spine_columns):
        raise ApplicationError(messages[0], errors={"features": messages})
    with transaction.atomic():
        output_dataset = _output_dataset(project=project, actor=actor, name=output_dataset_name)
        training_set = TrainingSet.objects.create(
            project=project,
            name=(name or "").strip()[:200] or f"Training set of {spine_version}",
            spine_version=spine_version,
            spine_key_columns=spine_key_columns,
            spine_timestamp_column=spine_timestamp_column,
            label_column=label_column or "",
            output_dataset=output_dataset,
            created_by=actor,
        )
        TrainingSetFeature.objects.bulk_create(
            TrainingSetFeature(
                training_set=training_set,
                feature_version=item["feature_version"],
                output_name=item["output_name"],
                max_age_seconds=int(item["max_age"].total_seconds()) if item["max_age"] else None,
            )
            for item in items
        )
        audit_record(
            actor=actor,
            action="feature.training_set_build",
            obj=training_set,
            project=project,
            after=_training_set_snapshot(training_set),
        )
        _dispatch(BUILD_TRAINING_SET_TASK, training_set.pk)
    return training_set


def training_set_claim(*, training_set_id, task_id: str) -> TrainingSet | None:
    training_set = _claim(TrainingSet, job_id=training_set_id, task_id=task_id)
    if training_set is None:
        return None
    return TrainingSet.objects.select_related("project", "spine_version__dataset", "output_dataset", "created_by").get(
        pk=training_set.pk
    )


def training_set_heartbeat(*, training_set_id) -> bool:
    return _heartbeat(TrainingSet, job_id=training_set_id)


def training_set_ingestion_started(*, training_set_id, ingestion_job) -> TrainingSet:
    """The joined rows were handed to the datasets ingestion pipeline as this job."""
    with transaction.atomic():
        training_set = _finish_locked(TrainingSet, training_set_id)
        training_set.ingestion_job = ingestion_job
        training_set.save(update_fields=["ingestion_job", "updated_at"])
    return training_set


def training_set_succeed(*, training_set_id, lineage: dict) -> TrainingSet:
    """Finish from the ingestion job's outcome: its version becomes the training set's result (with lineage)."""
    with transaction.atomic():
        training_set = _finish_locked(TrainingSet, training_set_id)
        job = training_set.ingestion_job
        if job is None or job.version_id is None:
            raise ApplicationError("The training set's ingestion has no version.", status=409)
        training_set.status, training_set.finished_at = JobStatus.SUCCEEDED, timezone.now()
        training_set.result_version_id = job.version_id
        training_set.lineage = lineage
        training_set.save()
        audit_record(
            actor=None,
            action="feature.training_set_succeeded",
            obj=training_set,
            project=training_set.project,
            before={"status": JobStatus.RUNNING},
            after={"status": training_set.status, "result_version": str(job.version_id), "lineage": lineage},
        )
        _carry_marks(training_set)
    return training_set


def _carry_marks(training_set: TrainingSet) -> None:
    """The personal and sensitive marks of the feature versions become the marks of their columns in the result
    dataset, so the experiment form's defaults (no personal features, sensitive columns for fairness) see them."""
    marks = {
        item.output_name: {"personal": item.feature_version.personal, "sensitive": item.feature_version.sensitive}
        for item in training_set.items.select_related("feature_version")
        if item.feature_version.personal or item.feature_version.sensitive
    }
    if not marks:
        return
    dataset = Dataset.objects.select_for_update().get(pk=training_set.output_dataset_id)
    before = dict(dataset.column_marks)
    merged = {**before}
    for column, mark in marks.items():
        merged[column] = {**merged.get(column, {}), **{kind: True for kind, on in mark.items() if on}}
    dataset.column_marks = dict(sorted(merged.items()))
    dataset.save(update_fields=["column_marks", "updated_at"])
    audit_record(
        actor=None,
        action="dataset.column_marks_set",
        obj=dataset,
        project=dataset.project,
        before={"column_marks": before},
        after={"column_marks": dataset.column_marks, "from_training_set": str(training_set.pk)},
    )


def training_set_fail(*, training_set_id, message: str) -> TrainingSet:
    return _fail(
        TrainingSet,
        job_id=training_set_id,
        message=message,
        action="feature.training_set_failed",
        project_of=lambda training_set: training_set.project,
    )


# --- Online syncs -----------------------------------------------------------------------------------------------
def _view_projects(view: FeatureView) -> list:
    datasets = Dataset.objects.filter(feature_versions__feature__view=view).select_related("project").distinct()
    return list({dataset.project_id: dataset.project for dataset in datasets}.values())


def online_sync_request(*, actor, view: FeatureView) -> OnlineSync:
    """Queue writing the latest value per entity of the view's features into the online store. The actor must be
    allowed to define features in every project whose datasets the view's features come from."""
    projects = _view_projects(view)
    if not projects:
        raise _invalid("view", "The view has no features yet.")
    for project in projects:
        require(actor, Action.FEATURE_DEFINE, project)
    return _create_sync(view=view, actor=actor)


def _create_sync(*, view: FeatureView, actor) -> OnlineSync:
    with transaction.atomic():
        FeatureView.objects.select_for_update().filter(pk=view.pk).first()
        active = view.online_syncs.filter(status__in=ACTIVE_STATUSES).first()
        if active is not None:
            return active  # one sync at a time: the queued one will write the latest values anyway
        sync = OnlineSync.objects.create(view=view, requested_by=actor)
        audit_record(actor=actor, action="feature.online_sync_request", obj=sync, after={"view": view.name})
        _dispatch(SYNC_ONLINE_TASK, sync.pk)
    return sync


def online_sync_schedule_all() -> list[OnlineSync]:
    """The periodic sync: one (system) sync per view with a materialised feature."""
    views = FeatureView.objects.filter(features__versions__materialisations__status=JobStatus.SUCCEEDED).distinct()
    return [_create_sync(view=view, actor=None) for view in views]


def online_sync_claim(*, sync_id, task_id: str) -> OnlineSync | None:
    sync = _claim(OnlineSync, job_id=sync_id, task_id=task_id)
    return None if sync is None else OnlineSync.objects.select_related("view__entity").get(pk=sync.pk)


def online_sync_succeed(*, sync_id, rows: int, features: dict[str, str]) -> OnlineSync:
    with transaction.atomic():
        sync = _finish_locked(OnlineSync, sync_id)
        sync.status, sync.finished_at, sync.rows, sync.features = JobStatus.SUCCEEDED, timezone.now(), rows, features
        sync.save()
        audit_record(
            actor=None,
            action="feature.online_sync_succeeded",
            obj=sync,
            before={"status": JobStatus.RUNNING},
            after={"view": sync.view.name, "rows": rows, "features": features},
        )
    return sync


def online_sync_fail(*, sync_id, message: str) -> OnlineSync:
    return _fail(
        OnlineSync, job_id=sync_id, message=message, action="feature.online_sync_failed", project_of=lambda sync: None
    )


# --- The periodic sweep -----------------------------------------------------------------------------------------
SWEPT_MODELS = {
    MaterialisationJob: (
        MATERIALISE_TASK,
        "feature.materialise_failed",
        lambda job: job.feature_version.dataset.project,
    ),
    TrainingSet: (BUILD_TRAINING_SET_TASK, "feature.training_set_failed", lambda training_set: training_set.project),
    OnlineSync: (SYNC_ONLINE_TASK, "feature.online_sync_failed", lambda sync: None),
}


def feature_jobs_sweep(*, stale_after_minutes: int = 10, requeue_after_minutes: int = 5) -> dict[str, int]:
    """Fail running rows whose worker stopped sending heartbeats, and dispatch again queued rows whose dispatch was
    lost (the tasks claim once, so a duplicate message is skipped)."""
    now = timezone.now()
    counts = {"failed": 0, "requeued": 0}
    for model, (task, action, project_of) in SWEPT_MODELS.items():
        stale = model.objects.filter(
            status=JobStatus.RUNNING, heartbeat_at__lt=now - timedelta(minutes=stale_after_minutes)
        )
        for pk in stale.values_list("pk", flat=True):
            message = "The worker stopped responding (no heartbeat); start the job again."
            _fail(model, job_id=pk, message=message, action=action, project_of=project_of)
            counts["failed"] += 1
        lost = model.objects.filter(
            status=JobStatus.QUEUED, queued_at__lt=now - timedelta(minutes=requeue_after_minutes)
        )
        for pk in lost.values_list("pk", flat=True):
            with transaction.atomic():
                _dispatch(task, pk)
            counts["requeued"] += 1
    return counts
