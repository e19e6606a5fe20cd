"""Datasets use cases: datasets and their rules and column marks, read-only database connections, ingestion jobs
(started by people, finished by the worker), and the validation override.

Every change is one transaction that records its audit event. People's actions check the policy (`require`); the
functions the worker calls (`ingestion_job_*`, `dataset_version_record`) are bookkeeping of a job a permitted person
started, and check the job's state instead. Tasks are dispatched by name after commit, so this module never imports
workers.tasks (nor workers.ml, except the stdlib-only specs module).
"""

import logging
import re
import unicodedata
import uuid
from datetime import timedelta
from typing import Any, BinaryIO

import sqlparse
from celery import current_app
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone
from sqlparse import tokens as sql_tokens

from apps.accounts.permissions import Action, require
from apps.audit.services import audit_record
from apps.core.crypto import encrypt_text
from apps.core.exceptions import ApplicationError
from apps.datasets.choices import FINISHED_JOB_STATUSES, JobStatus, SourceKind, ValidationStatus
from apps.datasets.models import DataConnection, Dataset, DatasetVersion, IngestionJob
from apps.datasets.uploads import UploadTooLarge, max_upload_bytes
from apps.projects.choices import ProjectStatus
from workers.storage.base import StorageError, UnsafeKey
from workers.storage.keys import upload_staging_key, validate_key

logger = logging.getLogger(__name__)

INGEST_TASK = "datasets.ingest"
INGEST_QUEUE = "default"
MARK_KINDS = ("personal", "sensitive", "excluded")
MIN_OVERRIDE_REASON_CHARS = 20
MAX_QUERY_CHARS = 100_000
DISPLAY_NAME_CHARS = 255


def _artifact_store():
    from apps.core.artifacts import artifact_store  # written by the storage helper; imported late on purpose

    return artifact_store()


def _specs():
    from workers.ml.data import specs  # stdlib only: the one workers.ml module the portal may import

    return specs


def _dispatch_ingestion(job: IngestionJob) -> None:
    job_id = str(job.pk)
    transaction.on_commit(lambda: current_app.send_task(INGEST_TASK, args=[job_id], queue=INGEST_QUEUE))


# --- Datasets ---------------------------------------------------------------------------------------------------
def _dataset_snapshot(dataset: Dataset) -> dict[str, Any]:
    return {"name": dataset.name, "description": dataset.description}


def _require_open_project(project) -> None:
    if project.status == ProjectStatus.RETIRED:
        raise ApplicationError("The project is retired: it takes no new datasets or versions.", status=409)


def dataset_create(*, project, actor, name: str, description: str = "") -> Dataset:
    require(actor, Action.DATASET_INGEST, project)
    _require_open_project(project)
    name = (name or "").strip()
    description = (description or "").strip()
    if not name:
        raise ApplicationError("Give the dataset a name.", errors={"name": ["This field is required."]})
    if len(name) > 200:
        raise ApplicationError("The name is too long.", errors={"name": ["Use at most 200 characters."]})
    duplicate = ApplicationError(
        "A dataset with this name already exists in the project.",
        errors={"name": ["A dataset with this name already exists in the project."]},
    )
    if Dataset.objects.filter(project=project, name=name).exists():
        raise duplicate
    try:
        with transaction.atomic():
            dataset = Dataset.objects.create(project=project, name=name, description=description, created_by=actor)
            audit_record(
                actor=actor, action="dataset.create", obj=dataset, project=project, after=_dataset_snapshot(dataset)
            )
    except IntegrityError as exc:  # a concurrent create won the unique name
        raise duplicate from exc
    return dataset


def dataset_update(*, dataset: Dataset, actor, description: str) -> Dataset:
    require(actor, Action.DATASET_EDIT, dataset.project)
    with transaction.atomic():
        locked = Dataset.objects.select_for_update(of=("self",)).select_related("project").get(pk=dataset.pk)
        before = _dataset_snapshot(locked)
        locked.description = (description or "").strip()
        locked.save(update_fields=["description", "updated_at"])
        audit_record(
            actor=actor,
            action="dataset.update",
            obj=locked,
            project=locked.project,
            before=before,
            after=_dataset_snapshot(locked),
        )
    return locked


def dataset_rules_set(*, dataset: Dataset, actor, rules: dict) -> Dataset:
    """Replace the validation rules new versions are checked against ({} = the previous version's schema)."""
    require(actor, Action.DATASET_EDIT, dataset.project)
    specs = _specs()
    if not isinstance(rules, dict):
        raise ApplicationError("The validation rules are not valid.", errors={"rules": ["Expected an object."]})
    errors = specs.rule_errors(rules)
    if errors:
        raise ApplicationError("The validation rules are not valid: correct the fields marked.", errors=errors)
    try:
        normalised = specs.ValidationRules.from_dict(rules).as_dict()
    except ValueError as exc:  # rule_errors should have named it; keep the field-level shape anyway
        raise ApplicationError("The validation rules are not valid.", errors={"rules": [str(exc)]}) from exc
    with transaction.atomic():
        locked = Dataset.objects.select_for_update(of=("self",)).select_related("project").get(pk=dataset.pk)
        before = locked.validation_rules
        locked.validation_rules = normalised
        locked.save(update_fields=["validation_rules", "updated_at"])
        audit_record(
            actor=actor,
            action="dataset.rules_set",
            obj=locked,
            project=locked.project,
            before={"validation_rules": before},
            after={"validation_rules": normalised},
        )
    return locked


def _newest_version(dataset: Dataset) -> DatasetVersion | None:
    return DatasetVersion.objects.filter(dataset=dataset).order_by("-number").first()


def _clean_marks(marks: Any, known_columns: set[str]) -> dict[str, dict[str, bool]]:
    if not isinstance(marks, dict):
        raise ApplicationError("The column marks are not valid.", errors={"marks": ["Expected an object."]})
    errors: dict[str, list[str]] = {}
    cleaned: dict[str, dict[str, bool]] = {}
    for column, value in marks.items():
        if column not in known_columns:
            errors[str(column)] = ["The newest version has no column with this name."]
            continue
        if not isinstance(value, dict):
            errors[column] = ["Expected an object with personal, sensitive and excluded."]
            continue
        unknown = sorted(set(value) - set(MARK_KINDS))
        if unknown:
            errors[column] = [f"Unknown mark: {', '.join(map(str, unknown))} (use personal, sensitive, excluded)."]
            continue
        if any(not isinstance(value[kind], bool) for kind in value):
            errors[column] = ["Each mark is true or false."]
            continue
        cleaned[column] = {kind: bool(value.get(kind, False)) for kind in MARK_KINDS}
    if errors:
        raise ApplicationError("Some column marks are not valid: correct the columns marked.", errors=errors)
    return cleaned


def dataset_column_marks_set(*, dataset: Dataset, actor, marks: dict[str, dict]) -> Dataset:
    """Set the marks of the columns given (others keep theirs). Marks apply to every version from now on
    (selectors.version_effective_columns); each new version also keeps a copy of the marks it was made with."""
    require(actor, Action.DATASET_MARK_COLUMNS, dataset.project)
    newest = _newest_version(dataset)
    if newest is None:
        raise ApplicationError(
            "The dataset has no version yet: there are no columns to mark.",
            errors={"marks": ["Ingest a version first."]},
            status=409,
        )
    cleaned = _clean_marks(marks, {column["name"] for column in newest.schema})
    with transaction.atomic():
        locked = Dataset.objects.select_for_update(of=("self",)).select_related("project").get(pk=dataset.pk)
        before = dict(locked.column_marks)
        merged = {**before, **cleaned}
        merged = {column: value for column, value in merged.items() if any(value.get(k) for k in MARK_KINDS)}
        locked.column_marks = dict(sorted(merged.items()))
        locked.save(update_fields=["column_marks", "updated_at"])
        audit_record(
            actor=actor,
            action="dataset.column_marks_set",
            obj=locked,
            project=locked.project,
            before={"column_marks": before},
            after={"column_marks": locked.column_marks},
        )
    return locked


# --- Connections ------------------------------------------------------------------------------------------------
_HOST = re.compile(r"^[A-Za-z0-9._:-]{1,255}$")


def _connection_snapshot(connection: DataConnection) -> dict[str, Any]:
    """What the audit trail records of a connection: everything but the password."""
    return {
        "name": connection.name,
        "engine": connection.engine,
        "host": connection.host,
        "port": connection.port,
        "database": connection.database,
        "username": connection.username,
        "password_set": bool(connection.encrypted_password),
    }


def _connection_errors(fields: dict[str, Any]) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    limits = {"name": 100, "host": 255, "database": 100, "username": 100}
    for name, limit in limits.items():
        if name not in fields:
            continue
        value = fields[name]
        if not isinstance(value, str) or not value.strip():
            errors[name] = ["This field is required."]
        elif len(value) > limit:
            errors[name] = [f"Use at most {limit} characters."]
        elif any(unicodedata.category(ch)[0] == "C" for ch in value):
            errors[name] = ["Control characters are not allowed."]
    if "host" in fields and "host" not in errors and not _HOST.match(fields["host"].strip()):
        errors["host"] = ["A host name or IP address: letters, digits, '.', '-', ':' only."]
    if "port" in fields:
        port = fields["port"]
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            errors["port"] = ["A port number between 1 and 65535."]
    if "password" in fields and fields["password"] is not None:
        password = fields["password"]
        if not isinstance(password, str) or len(password) > 1000:
            errors["password"] = ["A password of at most 1000 characters."]
    return errors


def _connection_duplicate() -> ApplicationError:
    message = "A connection with this name already exists in the project."
    return ApplicationError(message, errors={"name": [message]})


def connection_create(
    *, project, actor, name: str, host: str, port: int, database: str, username: str, password: str
) -> DataConnection:
    """Register a read-only database. The password is stored encrypted and never returned, logged or audited."""
    require(actor, Action.CONNECTION_MANAGE, project)
    fields = {"name": name, "host": host, "port": port, "database": database, "username": username}
    errors = _connection_errors({**fields, "password": password})
    if errors:
        raise ApplicationError("The connection is not valid: correct the fields marked.", errors=errors)
    fields = {key: value.strip() if isinstance(value, str) else value for key, value in fields.items()}
    if DataConnection.objects.filter(project=project, name=fields["name"]).exists():
        raise _connection_duplicate()
    try:
        with transaction.atomic():
            connection = DataConnection.objects.create(
                project=project,
                created_by=actor,
                encrypted_password=encrypt_text(password) if password else "",
                **fields,
            )
            audit_record(
                actor=actor,
                action="connection.create",
                obj=connection,
                project=project,
                after=_connection_snapshot(connection),
            )
    except IntegrityError as exc:
        raise _connection_duplicate() from exc
    return connection


def connection_update(
    *,
    connection: DataConnection,
    actor,
    name: str | None = None,
    host: str | None = None,
    port: int | None = None,
    database: str | None = None,
    username: str | None = None,
    password: str | None = None,
) -> DataConnection:
    """Change the fields given (None = keep). `password=None` keeps the stored password; "" removes it."""
    require(actor, Action.CONNECTION_MANAGE, connection.project)
    given = {
        key: value
        for key, value in {"name": name, "host": host, "port": port, "database": database, "username": username}.items()
        if value is not None
    }
    errors = _connection_errors({**given, "password": password})
    if errors:
        raise ApplicationError("The connection is not valid: correct the fields marked.", errors=errors)
    given = {key: value.strip() if isinstance(value, str) else value for key, value in given.items()}
    if (
        "name" in given
        and DataConnection.objects.filter(project_id=connection.project_id, name=given["name"])
        .exclude(pk=connection.pk)
        .exists()
    ):
        raise _connection_duplicate()
    try:
        with transaction.atomic():
            locked = (
                DataConnection.objects.select_for_update(of=("self",)).select_related("project").get(pk=connection.pk)
            )
            before = _connection_snapshot(locked)
            for key, value in given.items():
                setattr(locked, key, value)
            if password is not None:
                locked.encrypted_password = encrypt_text(password) if password else ""
            locked.save()
            after = _connection_snapshot(locked)
            if password is not None:
                after["password_changed"] = True
            audit_record(
                actor=actor,
                action="connection.update",
                obj=locked,
                project=locked.project,
                before=before,
                after=after,
            )
    except IntegrityError as exc:
        raise _connection_duplicate() from exc
    return locked


def connection_delete(*, connection: DataConnection, actor) -> None:
    """Remove a connection no ingestion job used (jobs keep a reference to where their data came from)."""
    require(actor, Action.CONNECTION_MANAGE, connection.project)
    with transaction.atomic():
        locked = DataConnection.objects.select_for_update(of=("self",)).select_related("project").get(pk=connection.pk)
        used = IngestionJob.objects.filter(connection=locked).count()
        if used:
            raise ApplicationError(
                f"This connection was used by {used} ingestion job{'s' if used != 1 else ''}; it is kept so their "
                "record stays complete.",
                status=409,
            )
        before = _connection_snapshot(locked)
        pk = locked.pk
        project = locked.project
        locked.delete()
        audit_record(
            actor=actor,
            action="connection.delete",
            object_type=DataConnection._meta.label_lower,
            object_id=str(pk),
            project=project,
            before=before,
        )


# --- Starting ingestion -----------------------------------------------------------------------------------------
def clean_display_name(name: Any) -> str:
    """A file name as the user gave it, safe to show: no control or format characters, at most 255 characters.

    It is never used as a path or key (keys come from workers/storage/keys.py), so "../../etc/passwd.csv" stays
    exactly that, as text.
    """
    text = "".join(ch for ch in str(name or "") if unicodedata.category(ch)[0] != "C").strip()
    return text[:DISPLAY_NAME_CHARS] or "upload"


def _job_snapshot(job: IngestionJob) -> dict[str, Any]:
    data: dict[str, Any] = {
        "dataset": str(job.dataset_id),
        "source_kind": job.source_kind,
        "source_display": job.source_display,
        "status": job.status,
    }
    if job.connection_id:
        data["connection"] = str(job.connection_id)
    if job.query:
        data["query"] = job.query
    return data


def _create_job(*, dataset: Dataset, actor, pk=None, **fields) -> IngestionJob:
    job = IngestionJob.objects.create(
        pk=pk or uuid.uuid4(),
        project=dataset.project,
        dataset=dataset,
        created_by=actor,
        progress_message="Waiting for a worker.",
        **fields,
    )
    audit_record(actor=actor, action="dataset.ingest_start", obj=job, project=dataset.project, after=_job_snapshot(job))
    _dispatch_ingestion(job)
    return job


class _LimitedReader:
    """Reads a stream for the artifact store, raising UploadTooLarge as soon as it passes the limit."""

    def __init__(self, stream: BinaryIO, limit: int):
        self.stream = stream
        self.limit = limit
        self.read_bytes = 0

    def read(self, size: int = -1) -> bytes:
        chunk = self.stream.read(size)
        self.read_bytes += len(chunk)
        if self.read_bytes > self.limit:
            raise UploadTooLarge(self.limit)
        return chunk


def ingestion_start_upload(
    *, dataset: Dataset, actor, stream: BinaryIO, display_name: str, size: int | None
) -> IngestionJob:
    """Stage an uploaded file in the artifact store and queue its ingestion.

    The job id is chosen first so the staging key carries it; the bytes are streamed to the store (with the size
    limit counted as they go) before the job row is written, so no transaction stays open during the copy. If
    anything fails, the staged object is removed and no job exists.
    """
    require(actor, Action.DATASET_INGEST, dataset.project)
    _require_open_project(dataset.project)
    limit = max_upload_bytes()
    if size is not None and size > limit:
        raise UploadTooLarge(limit)
    job_id = uuid.uuid4()
    staging_key = upload_staging_key(project_id=dataset.project_id, job_id=job_id)
    store = _artifact_store()
    try:
        store.put(staging_key, _LimitedReader(stream, limit), overwrite=False)
    except UploadTooLarge:
        _delete_quietly(staging_key)  # a failed put leaves nothing; this is belt and braces
        raise
    except StorageError as exc:
        logger.exception("could not stage an upload for dataset %s", dataset.pk)
        _delete_quietly(staging_key)
        message = "The file could not be stored; try again in a moment."
        raise ApplicationError(message, errors={"file": [message]}, status=503) from exc
    try:
        with transaction.atomic():
            job = _create_job(
                dataset=dataset,
                actor=actor,
                pk=job_id,
                source_kind=SourceKind.UPLOAD,
                source_display=clean_display_name(display_name),
                staging_key=staging_key,
            )
    except BaseException:
        _delete_quietly(staging_key)
        raise
    return job


def _s3_uri_error(uri: str) -> str | None:
    prefixes = [prefix for prefix in settings.DATASET_IMPORT_S3_PREFIXES if prefix]
    if not prefixes:
        return "Importing from S3 is not enabled: an administrator sets DATASET_IMPORT_S3_PREFIXES."
    if not uri.startswith("s3://"):
        return "Give an S3 URI: s3://bucket/path/to/file.csv."
    bucket, _, key = uri[len("s3://") :].partition("/")
    if not bucket or not key:
        return "Give an S3 URI: s3://bucket/path/to/file.csv."
    try:
        validate_key(key)
    except UnsafeKey:
        return "The object key is not allowed: use letters, digits, '.', '_', '-' and '/' between path segments."
    for prefix in prefixes:
        normalised = prefix if prefix.endswith("/") else prefix + "/"
        if uri.startswith(normalised):
            return None
    return "Objects can be imported only from: " + ", ".join(prefixes) + "."


def ingestion_start_s3(*, dataset: Dataset, actor, uri: str) -> IngestionJob:
    """Queue the ingestion of an object already in S3, under one of the allowed prefixes."""
    require(actor, Action.DATASET_INGEST, dataset.project)
    _require_open_project(dataset.project)
    uri = (uri or "").strip()
    error = _s3_uri_error(uri)
    if error:
        raise ApplicationError(error, errors={"uri": [error]})
    with transaction.atomic():
        return _create_job(dataset=dataset, actor=actor, source_kind=SourceKind.S3, source_display=uri, s3_uri=uri)


_WRITE_KEYWORDS = {
    "INSERT",
    "UPDATE",
    "DELETE",
    "MERGE",
    "UPSERT",
    "REPLACE",
    "CREATE",
    "DROP",
    "ALTER",
    "TRUNCATE",
    "GRANT",
    "REVOKE",
    "COPY",
    "INTO",
    "CALL",
    "EXECUTE",
    "LOCK",
    "VACUUM",
    "COMMENT",
    "REINDEX",
    "CLUSTER",
    "REFRESH",
}


def sql_query_error(query: str) -> str | None:
    """A quick check for the form and the API: one SELECT (or WITH ... SELECT) that names no writing keyword.

    Not the safeguard: the worker checks again and runs the query in a READ ONLY transaction with a timeout.
    """
    text = (query or "").strip()
    if not text:
        return "Write a SELECT query."
    if len(text) > MAX_QUERY_CHARS:
        return f"The query is too long (at most {MAX_QUERY_CHARS} characters)."
    statements = [stmt for stmt in sqlparse.parse(text) if stmt.token_first(skip_cm=True, skip_ws=True) is not None]
    if len(statements) != 1:
        return "Write exactly one statement: a single SELECT query."
    statement = statements[0]
    if statement.get_type() != "SELECT":
        return "Only a read-only SELECT query is allowed: this statement would change data or the database."
    for token in statement.flatten():
        if token.ttype in sql_tokens.Keyword and token.normalized.upper() in _WRITE_KEYWORDS:
            return f"Only a read-only SELECT query is allowed: {token.normalized.upper()} changes data."
    return None


def ingestion_start_sql(*, dataset: Dataset, actor, connection: DataConnection, query: str) -> IngestionJob:
    """Queue the ingestion of a query's result from one of the project's read-only connections."""
    require(actor, Action.DATASET_INGEST, dataset.project)
    _require_open_project(dataset.project)
    if connection is None or connection.project_id != dataset.project_id:
        message = "Choose a connection of this project."
        raise ApplicationError(message, errors={"connection": [message]})
    error = sql_query_error(query)
    if error:
        raise ApplicationError(error, errors={"query": [error]})
    with transaction.atomic():
        return _create_job(
            dataset=dataset,
            actor=actor,
            source_kind=SourceKind.SQL,
            source_display=connection.name,
            connection=connection,
            query=query.strip(),
        )


# --- The worker's side of a job ---------------------------------------------------------------------------------
def ingestion_job_claim(*, job_id, task_id: str) -> IngestionJob | None:
    """queued -> running, once. The same task delivered again (acks_late after a lost worker) may take its running
    job back; anything else gets None and must stop."""
    now = timezone.now()
    task_id = str(task_id or "")[:64]
    claimable = Q(status=JobStatus.QUEUED)
    if task_id:
        claimable |= Q(status=JobStatus.RUNNING, task_id=task_id)
    with transaction.atomic():
        updated = (
            IngestionJob.objects.filter(claimable, pk=job_id)
            .exclude(status__in=FINISHED_JOB_STATUSES)
            .update(
                status=JobStatus.RUNNING,
                task_id=task_id,
                started_at=now,
                heartbeat_at=now,
                attempts=F("attempts") + 1,
                progress=0.0,
                progress_message="Started.",
                updated_at=now,
            )
        )
        if updated != 1:
            return None
        return IngestionJob.objects.select_related("dataset", "project", "connection", "created_by").get(pk=job_id)


def _delete_quietly(key: str) -> None:
    """Remove a staged upload; a store that is down now leaves it for an operator (it is never read again)."""
    try:
        _artifact_store().delete(key)
    except StorageError:
        logger.warning("Could not delete the staged upload %s", key, exc_info=True)


def ingestion_job_heartbeat(*, job_id) -> bool:
    """The worker is alive (sent every few seconds by the task, whatever the pipeline is doing)."""
    now = timezone.now()
    return IngestionJob.objects.filter(pk=job_id, status=JobStatus.RUNNING).update(heartbeat_at=now) == 1


def ingestion_job_progress(*, job_id, fraction: float, message: str) -> bool:
    """Record progress and a heartbeat. Returns False when the job is no longer running (cancelled): stop then."""
    now = timezone.now()
    fraction = min(max(float(fraction), 0.0), 1.0)
    updated = IngestionJob.objects.filter(pk=job_id, status=JobStatus.RUNNING).update(
        progress=fraction, progress_message=str(message or "")[:200], heartbeat_at=now, updated_at=now
    )
    return updated == 1


def _finish(job: IngestionJob, **fields) -> None:
    now = timezone.now()
    for key, value in {"finished_at": now, "heartbeat_at": now, **fields}.items():
        setattr(job, key, value)
    job.save()


def ingestion_job_fail(*, job_id, code: str, message: str) -> IngestionJob:
    """Finish a queued or running job as failed with a machine code and a sentence for the user (no-op once
    finished)."""
    with transaction.atomic():
        job = IngestionJob.objects.select_for_update(of=("self",)).select_related("project").get(pk=job_id)
        if job.status in FINISHED_JOB_STATUSES:
            return job
        before = {"status": job.status}
        _finish(
            job,
            status=JobStatus.FAILED,
            error_code=str(code)[:50],
            error=str(message),
            progress_message="Failed.",
        )
        if job.staging_key:
            staging_key = job.staging_key
            transaction.on_commit(lambda: _delete_quietly(staging_key))
        audit_record(
            actor=None,
            action="dataset.ingest_failed",
            obj=job,
            project=job.project,
            before=before,
            after={"status": job.status, "error_code": job.error_code, "error": job.error},
        )
    return job


def _version_snapshot(version: DatasetVersion) -> dict[str, Any]:
    return {
        "dataset": str(version.dataset_id),
        "number": version.number,
        "sha256": version.sha256,
        "source_kind": version.source_kind,
        "source_display": version.source_display,
        "file_format": version.file_format,
        "row_count": version.row_count,
        "column_count": version.column_count,
        "original_key": version.original_key,
        "parquet_key": version.parquet_key,
        "parquet_sha256": version.parquet_sha256,
        "validation_status": version.validation_status,
        "pii_columns": sorted({finding.get("column") for finding in version.pii_findings if finding.get("column")}),
    }


class JobNotRunning(ApplicationError):
    def __init__(self, job: IngestionJob):
        super().__init__(f"The ingestion job is {job.status}, not running.", status=409)
        self.job = job


def dataset_version_record(
    *,
    job_id,
    processed: dict,
    original_key: str,
    original_size: int,
    parquet_key: str,
    parquet_sha256: str,
    parquet_size: int,
    number: int,
) -> DatasetVersion:
    """Create the immutable version the worker made and finish its job as succeeded.

    `processed` holds: original_sha256, file_format, row_count, column_count, schema, profile, pii_findings,
    validation ({"passed", "checks"}) and validation_rules (the rules that were applied). A lost race for the
    number or the content raises IntegrityError (the caller retries or deduplicates); a job that is no longer
    running (cancelled meanwhile) raises JobNotRunning, and the caller removes what it wrote.
    """
    with transaction.atomic():
        job = (
            IngestionJob.objects.select_for_update(of=("self",))
            .select_related("dataset", "project", "created_by")
            .get(pk=job_id)
        )
        if job.status != JobStatus.RUNNING:
            raise JobNotRunning(job)
        dataset = job.dataset
        validation = processed.get("validation") or {}
        columns = {column["name"] for column in processed["schema"]}
        version = DatasetVersion.objects.create(
            dataset=dataset,
            number=number,
            sha256=processed["original_sha256"],
            source_kind=job.source_kind,
            source_display=job.source_display,
            file_format=processed["file_format"],
            original_key=original_key,
            original_size=original_size,
            parquet_key=parquet_key,
            parquet_sha256=parquet_sha256,
            parquet_size=parquet_size,
            row_count=processed["row_count"],
            column_count=processed["column_count"],
            schema=processed["schema"],
            profile=processed["profile"],
            pii_findings=processed.get("pii_findings") or [],
            column_marks={k: v for k, v in dataset.column_marks.items() if k in columns},
            validation_rules=processed.get("validation_rules", dataset.validation_rules),
            validation_status=ValidationStatus.PASSED if validation.get("passed") else ValidationStatus.FAILED,
            validation_report=validation,
            created_by=job.created_by,
        )
        _finish(
            job,
            status=JobStatus.SUCCEEDED,
            version=version,
            progress=1.0,
            progress_message=f"Version {version.number} created.",
        )
        audit_record(
            actor=None,
            action="dataset.version_create",
            obj=version,
            project=job.project,
            after={**_version_snapshot(version), "job": str(job.pk), "requested_by": job.created_by.get_username()},
        )
    return version


def ingestion_job_deduplicate(*, job_id, version: DatasetVersion) -> IngestionJob:
    """Finish a running job whose content matched an existing version: no new version, the job points at it."""
    with transaction.atomic():
        job = (
            IngestionJob.objects.select_for_update(of=("self",)).select_related("project", "created_by").get(pk=job_id)
        )
        if job.status != JobStatus.RUNNING:
            raise JobNotRunning(job)
        if version.dataset_id != job.dataset_id:
            raise ApplicationError("The version belongs to another dataset.", status=409)
        _finish(
            job,
            status=JobStatus.SUCCEEDED,
            version=version,
            deduplicated=True,
            progress=1.0,
            progress_message=f"Identical to version {version.number}.",
        )
        audit_record(
            actor=None,
            action="dataset.ingest_deduplicated",
            obj=job,
            project=job.project,
            after={
                "status": job.status,
                "version": version.number,
                "sha256": version.sha256,
                "requested_by": job.created_by.get_username(),
            },
        )
    return job


def ingestion_job_cancel(*, job: IngestionJob, actor) -> IngestionJob:
    """Stop a queued or running job. A running task notices at its next progress report and cleans up."""
    require(actor, Action.DATASET_INGEST, job.project)
    with transaction.atomic():
        locked = IngestionJob.objects.select_for_update(of=("self",)).select_related("project").get(pk=job.pk)
        if locked.status not in (JobStatus.QUEUED, JobStatus.RUNNING):
            raise ApplicationError(f"The job is already {locked.get_status_display().lower()}.", status=409)
        before = {"status": locked.status}
        was_queued = locked.status == JobStatus.QUEUED
        _finish(locked, status=JobStatus.CANCELLED, progress_message="Cancelled.")
        audit_record(
            actor=actor,
            action="dataset.ingest_cancel",
            obj=locked,
            project=locked.project,
            before=before,
            after={"status": locked.status},
        )
        if was_queued and locked.staging_key:
            staging_key = locked.staging_key
            transaction.on_commit(lambda: _delete_quietly(staging_key))
    return locked


WORKER_LOST_MESSAGE = (
    "The worker stopped responding (no heartbeat for {minutes} minutes): it was probably restarted or ran out of "
    "memory. Nothing was saved; start the ingestion again."
)
NEVER_STARTED_MESSAGE = "No worker picked the job up within {hours} hours. Nothing was saved; start it again."


def _fail_jobs(jobs, *, code: str, message: str) -> int:
    """Fail each job of `jobs` (each in its own audited transaction); how many this call failed (a job that finished
    meanwhile keeps its outcome)."""
    failed = 0
    for job_id in list(jobs.values_list("pk", flat=True)):
        failed += ingestion_job_fail(job_id=job_id, code=code, message=message).error_code == code
    return failed


def ingestion_jobs_sweep(*, stale_after_minutes: int, requeue_after_minutes: int, give_up_after_hours: int = 24):
    """Repair jobs a lost worker or a lost dispatch left behind (the periodic task datasets.sweep_stale_jobs).

    - running, no heartbeat for `stale_after_minutes` -> failed ("worker_lost") with a clear reason;
    - queued for more than `give_up_after_hours` -> failed ("never_started");
    - queued and not dispatched for `requeue_after_minutes` -> dispatched again (a second delivery is harmless:
      only one task can claim the job).
    Returns how many jobs each step touched.
    """
    now = timezone.now()
    failed = _fail_jobs(
        IngestionJob.objects.filter(
            status=JobStatus.RUNNING, heartbeat_at__lt=now - timedelta(minutes=stale_after_minutes)
        ),
        code="worker_lost",
        message=WORKER_LOST_MESSAGE.format(minutes=stale_after_minutes),
    )
    gave_up = _fail_jobs(
        IngestionJob.objects.filter(status=JobStatus.QUEUED, queued_at__lt=now - timedelta(hours=give_up_after_hours)),
        code="never_started",
        message=NEVER_STARTED_MESSAGE.format(hours=give_up_after_hours),
    )
    lost = IngestionJob.objects.filter(
        status=JobStatus.QUEUED, updated_at__lt=now - timedelta(minutes=requeue_after_minutes)
    ).values_list("pk", flat=True)
    requeued = 0
    for job_id in list(lost):
        with transaction.atomic():
            touched = IngestionJob.objects.filter(pk=job_id, status=JobStatus.QUEUED).update(updated_at=now)
            if touched:
                _dispatch_ingestion(IngestionJob(pk=job_id))
                requeued += 1
    return {"failed_stale": failed, "failed_never_started": gave_up, "requeued": requeued}


# --- Versions ---------------------------------------------------------------------------------------------------
def version_override_validation(*, version: DatasetVersion, actor, reason: str) -> DatasetVersion:
    """Let a version that failed validation be used for training, with a written reason."""
    require(actor, Action.DATASET_OVERRIDE_VALIDATION, version.dataset.project)
    reason = (reason or "").strip()
    if len(reason) < MIN_OVERRIDE_REASON_CHARS:
        message = f"Explain the override in at least {MIN_OVERRIDE_REASON_CHARS} characters."
        raise ApplicationError(message, errors={"reason": [message]})
    with transaction.atomic():
        locked = (
            DatasetVersion.objects.select_for_update(of=("self",)).select_related("dataset__project").get(pk=version.pk)
        )
        if locked.validation_status != ValidationStatus.FAILED:
            raise ApplicationError("Only a version that failed validation can be overridden.", status=409)
        if locked.override_reason:
            raise ApplicationError("This version is already overridden.", status=409)
        locked.override_reason = reason
        locked.overridden_by = actor
        locked.overridden_at = timezone.now()
        locked.save(update_fields=["override_reason", "overridden_by", "overridden_at", "updated_at"])
        audit_record(
            actor=actor,
            action="dataset.version_override",
            obj=locked,
            project=locked.dataset.project,
            before={"usable_for_training": False},
            after={"usable_for_training": True, "number": locked.number, "reason": reason},
        )
    return locked


def version_require_usable_for_training(*, version: DatasetVersion) -> None:
    """Raise unless the version passed validation or a data scientist overrode the failure."""
    if version.usable_for_training:
        return
    message = (
        f"Version {version.number} of {version.dataset.name} failed validation and has no override: "
        "it cannot be used for training."
    )
    raise ApplicationError(message, errors={"dataset_version": [message]})


def dataset_version_download_record(*, version: DatasetVersion, actor, artifact: str) -> None:
    """Record who downloaded a version's data (it may hold personal data): one audit event."""
    require(actor, Action.DATASET_VIEW, version.dataset.project)
    with transaction.atomic():
        audit_record(
            actor=actor,
            action="dataset.version_download",
            obj=version,
            project=version.dataset.project,
            after={"number": version.number, "artifact": artifact},
        )
