"""Helpers shared by the datasets backend tests (services, selectors, API, task); fixtures are in dataset_fixtures."""

import hashlib
import io
import uuid

from apps.audit.models import AuditEvent
from apps.datasets import services
from apps.datasets.choices import JobStatus, SourceKind, ValidationStatus
from apps.datasets.models import DataConnection, Dataset, DatasetVersion, IngestionJob

SCHEMA = [
    {"name": "customer_id", "dtype": "int64", "nullable": False, "semantic_type": "id"},
    {"name": "email", "dtype": "string", "nullable": True, "semantic_type": "text"},
    {"name": "age", "dtype": "int64", "nullable": True, "semantic_type": "numeric"},
]


def store_keys(store) -> list[str]:
    return sorted(store.list_keys("projects/"))


def make_version(dataset: Dataset, number: int = 1, *, schema=None, rows: int = 3, passed: bool = True, **fields):
    """A version row written directly (for tests of what reads versions; the task's own tests make real ones)."""
    schema = SCHEMA if schema is None else schema
    sha = fields.pop("sha256", hashlib.sha256(f"{dataset.pk}-{number}-{uuid.uuid4()}".encode()).hexdigest())
    prefix = f"projects/{dataset.project_id}/datasets/{dataset.pk}/v{number}"
    values = {
        "dataset": dataset,
        "number": number,
        "sha256": sha,
        "source_kind": SourceKind.UPLOAD,
        "source_display": "customers.csv",
        "file_format": "csv",
        "original_key": f"{prefix}/original.csv",
        "original_size": 100,
        "parquet_key": f"{prefix}/data.parquet",
        "parquet_sha256": "0" * 64,
        "parquet_size": 200,
        "row_count": rows,
        "column_count": len(schema),
        "schema": schema,
        "profile": [],
        "pii_findings": [
            {"column": "email", "kind": "email", "share": 1.0, "reason": "100% of sampled values look like e-mails"}
        ],
        "validation_status": ValidationStatus.PASSED if passed else ValidationStatus.FAILED,
        "validation_report": {"passed": passed, "checks": []},
        "created_by": dataset.created_by,
    }
    values.update(fields)
    return DatasetVersion.objects.create(**values)


def state() -> tuple:
    """Everything a datasets call could change, to prove a refused call changed nothing."""
    return (
        sorted(Dataset.objects.values_list("pk", "name", "description", "validation_rules", "column_marks")),
        sorted(DatasetVersion.objects.values_list("pk", "override_reason")),
        sorted(IngestionJob.objects.values_list("pk", "status")),
        sorted(DataConnection.objects.values_list("pk", "name", "host", "encrypted_password")),
        AuditEvent.objects.count(),
    )


def upload_job(dataset, actor, data: bytes, name: str = "customers.csv") -> IngestionJob:
    return services.ingestion_start_upload(
        dataset=dataset, actor=actor, stream=io.BytesIO(data), display_name=name, size=len(data)
    )


def queued_job(dataset, actor, **fields) -> IngestionJob:
    values = {
        "project": dataset.project,
        "dataset": dataset,
        "source_kind": SourceKind.S3,
        "source_display": "s3://bucket/x.csv",
        "s3_uri": "s3://bucket/x.csv",
        "status": JobStatus.QUEUED,
        "created_by": actor,
    }
    values.update(fields)
    return IngestionJob.objects.create(**values)
