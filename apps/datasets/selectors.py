"""Reading datasets, versions, ingestion jobs and connections. Visibility lives here.

Who sees a dataset follows Action.DATASET_VIEW in the policy: members of its project, and the platform-wide roles
the rule names (compliance officers, admins). Something not visible does not exist for the reader (404, never 403).
"""

from typing import Any
from urllib.parse import quote

from django.db.models import Count, Max, QuerySet
from django.http import Http404

from apps.accounts.permissions import Action, can
from apps.core.crypto import decrypt_text
from apps.datasets.models import DataConnection, Dataset, DatasetVersion, IngestionJob
from apps.projects.models import Project
from apps.projects.selectors import project_ids_granting, row_by_pk

MARK_KINDS = ("personal", "sensitive", "excluded")


def dataset_visible_queryset(*, actor) -> QuerySet[Dataset]:
    datasets = Dataset.objects.select_related("project", "created_by")
    project_ids = project_ids_granting(actor=actor, action=Action.DATASET_VIEW)
    return datasets if project_ids is None else datasets.filter(project_id__in=project_ids)


def dataset_list(*, actor, project: Project | None = None, filters: dict[str, Any] | None = None) -> QuerySet[Dataset]:
    """Visible datasets with `latest_version_number` (None before the first version) and `version_count`.

    Filters: project (a project id), search (in the name).
    """
    filters = filters or {}
    datasets = dataset_visible_queryset(actor=actor)
    if project is not None:
        datasets = datasets.filter(project=project)
    if filters.get("project"):
        datasets = datasets.filter(project_id=filters["project"])
    if filters.get("search"):
        datasets = datasets.filter(name__icontains=str(filters["search"]).strip())
    return datasets.annotate(
        latest_version_number=Max("versions__number"), version_count=Count("versions", distinct=True)
    ).order_by("name", "project__name", "pk")


def dataset_get(*, actor, pk, project: Project | None = None) -> Dataset:
    """One visible dataset (optionally: of this project); 404 otherwise."""
    datasets = dataset_visible_queryset(actor=actor)
    if project is not None:
        datasets = datasets.filter(project=project)
    dataset = row_by_pk(datasets, pk)
    if dataset is None:
        raise Http404("No such dataset.")
    return dataset


def project_list_for_dataset_ingest(*, actor) -> list[Project]:
    """The projects in which `actor` may create datasets and ingest versions (for a project select)."""
    project_ids = project_ids_granting(actor=actor, action=Action.DATASET_INGEST)
    projects = Project.objects.exclude(status="retired").order_by("name")
    if project_ids is not None:
        projects = projects.filter(pk__in=project_ids)
    return list(projects)


def dataset_version_list(*, dataset: Dataset) -> QuerySet[DatasetVersion]:
    """The versions of a dataset, newest first."""
    return (
        DatasetVersion.objects.filter(dataset=dataset)
        .select_related("dataset__project", "created_by", "overridden_by")
        .order_by("-number")
    )


def dataset_version_get(*, dataset: Dataset, number) -> DatasetVersion:
    try:
        number = int(number)
    except (TypeError, ValueError):
        raise Http404("No such version.") from None
    version = dataset_version_list(dataset=dataset).filter(number=number).first()
    if version is None:
        raise Http404("No such version.")
    return version


def dataset_version_latest(*, dataset: Dataset) -> DatasetVersion | None:
    return dataset_version_list(dataset=dataset).first()


def ingestion_job_visible_queryset(*, actor) -> QuerySet[IngestionJob]:
    jobs = IngestionJob.objects.select_related("dataset", "project", "version", "created_by", "connection")
    project_ids = project_ids_granting(actor=actor, action=Action.DATASET_VIEW)
    return jobs if project_ids is None else jobs.filter(project_id__in=project_ids)


def ingestion_job_list(*, actor, dataset: Dataset | None = None, project: Project | None = None):
    """Visible ingestion jobs, newest first (optionally of one dataset or project)."""
    jobs = ingestion_job_visible_queryset(actor=actor)
    if dataset is not None:
        jobs = jobs.filter(dataset=dataset)
    if project is not None:
        jobs = jobs.filter(project=project)
    return jobs.order_by("-queued_at", "-pk")


def ingestion_job_get(*, actor, pk, project: Project | None = None) -> IngestionJob:
    jobs = ingestion_job_visible_queryset(actor=actor)
    if project is not None:
        jobs = jobs.filter(project=project)
    job = row_by_pk(jobs, pk)
    if job is None:
        raise Http404("No such ingestion job.")
    return job


def version_compare(*, old: DatasetVersion, new: DatasetVersion) -> dict[str, Any]:
    """Schema differences (added, removed, type_changed, unchanged) and the row-count change between two versions."""
    from workers.ml.data.specs import compare_schemas  # stdlib only

    return {
        "old": old.number,
        "new": new.number,
        **compare_schemas(old.schema, new.schema),
        "row_count": {"old": old.row_count, "new": new.row_count, "delta": new.row_count - old.row_count},
        "column_count": {
            "old": old.column_count,
            "new": new.column_count,
            "delta": new.column_count - old.column_count,
        },
    }


def version_effective_columns(*, version: DatasetVersion) -> list[dict[str, Any]]:
    """Per column of the version: its schema entry, the dataset's current marks and the PII flags found.

    This is what experiments and model cards read: `excluded` columns stay out of training, `sensitive` ones are the
    protected attributes for fairness checks, `personal` ones (or any with a PII flag) hold personal data.
    """
    marks = version.dataset.column_marks or {}
    findings: dict[str, list[dict]] = {}
    for finding in version.pii_findings or []:
        findings.setdefault(finding.get("column"), []).append(finding)
    columns = []
    for column in version.schema:
        name = column["name"]
        column_marks = marks.get(name, {})
        columns.append(
            {
                "name": name,
                "dtype": column.get("dtype"),
                "nullable": column.get("nullable"),
                "semantic_type": column.get("semantic_type"),
                **{kind: bool(column_marks.get(kind, False)) for kind in MARK_KINDS},
                "pii": findings.get(name, []),
            }
        )
    return columns


def connection_list(*, actor, project: Project) -> QuerySet[DataConnection]:
    """The project's connections, for those who may manage them (data scientists of the project, admins)."""
    connections = DataConnection.objects.filter(project=project).select_related("project", "created_by")
    if not can(actor, Action.CONNECTION_MANAGE, project):
        return connections.none()
    return connections.order_by("name", "pk")


def connection_get(*, actor, project: Project, pk) -> DataConnection:
    connection = row_by_pk(connection_list(actor=actor, project=project), pk)
    if connection is None:
        raise Http404("No such connection.")
    return connection


def connection_dsn(*, connection: DataConnection, connect_timeout: int = 10) -> str:
    """The libpq URL with the decrypted password. Only the ingestion task uses it; never log or show it."""
    credentials = quote(connection.username, safe="")
    if connection.encrypted_password:
        credentials += ":" + quote(decrypt_text(connection.encrypted_password), safe="")
    host = connection.host if ":" not in connection.host else f"[{connection.host}]"
    return (
        f"postgresql://{credentials}@{host}:{connection.port}/{quote(connection.database, safe='')}"
        f"?connect_timeout={int(connect_timeout)}&application_name=mlplatform-ingest"
    )


# --- For the ingestion task -------------------------------------------------------------------------------------
def dataset_version_by_sha256(*, dataset: Dataset, sha256: str) -> DatasetVersion | None:
    """The version of `dataset` with exactly these original bytes, if any (re-uploads deduplicate to it)."""
    return DatasetVersion.objects.filter(dataset=dataset, sha256=sha256).select_related("dataset").first()


def dataset_version_next_number(*, dataset: Dataset) -> int:
    latest = DatasetVersion.objects.filter(dataset=dataset).aggregate(latest=Max("number"))["latest"]
    return (latest or 0) + 1


def artifact_key_in_use(*, key: str) -> bool:
    """Whether a recorded version points at this artifact key (such an object must never be deleted)."""
    return (
        DatasetVersion.objects.filter(original_key=key).exists()
        or DatasetVersion.objects.filter(parquet_key=key).exists()
    )
