"""Data for the dataset page tests: datasets through the service, versions and jobs written directly (the worker's
part is tested by the backend's task tests; the pages only read what it records)."""

import hashlib

from apps.datasets.choices import JobStatus, SourceKind, ValidationStatus
from apps.datasets.models import DataConnection, Dataset, DatasetVersion, IngestionJob

SCHEMA = [
    {"name": "customer_id", "dtype": "int64", "nullable": False, "semantic_type": "id"},
    {"name": "email", "dtype": "string", "nullable": False, "semantic_type": "text"},
    {"name": "age", "dtype": "int64", "nullable": True, "semantic_type": "numeric"},
    {"name": "plan", "dtype": "string", "nullable": False, "semantic_type": "categorical"},
]
PROFILE = [
    {
        "name": "customer_id",
        "dtype": "int64",
        "semantic_type": "id",
        "count": 3,
        "missing": 0,
        "missing_share": 0.0,
        "distinct": 3,
        "min": 1,
        "max": 3,
        "mean": 2.0,
        "std": 1.0,
        "quantiles": {"p05": 1.1, "p25": 1.5, "p50": 2.0, "p75": 2.5, "p95": 2.9},
        "top_values": [{"value": "1", "count": 1}],
        "histogram": {"edges": [1, 2, 3], "counts": [1, 2]},
    },
    {
        "name": "email",
        "dtype": "string",
        "semantic_type": "text",
        "count": 3,
        "missing": 0,
        "missing_share": 0.0,
        "distinct": 3,
        "top_values": [{"value": "ada@example.com", "count": 1}, {"value": "bob@example.com", "count": 1}],
    },
    {
        "name": "age",
        "dtype": "int64",
        "semantic_type": "numeric",
        "count": 3,
        "missing": 1,
        "missing_share": 0.25,
        "distinct": 2,
        "min": 18,
        "max": 90,
        "mean": 41.5,
        "std": 12.25,
        "quantiles": {"p05": 19.0, "p25": 25.0, "p50": 40.0, "p75": 60.0, "p95": 88.0},
        "histogram": {"edges": [18, 36, 54, 72, 90], "counts": [2, 0, 0, 1]},
    },
    {
        "name": "plan",
        "dtype": "string",
        "semantic_type": "categorical",
        "count": 3,
        "missing": 0,
        "missing_share": 0.0,
        "distinct": 2,
        "top_values": [{"value": "basic", "count": 2}, {"value": "pro", "count": 1}],
    },
]
PII = [
    {"column": "email", "kind": "email", "share": 1.0, "reason": "100% of sampled values look like e-mail addresses."}
]
FAILED_REPORT = {
    "passed": False,
    "checks": [
        {
            "rule": "min_rows",
            "column": None,
            "passed": False,
            "message": "The version has 3 rows; at least 1000 are required.",
            "details": {"rows": 3, "min_rows": 1000},
        },
        {
            "rule": "expected_columns",
            "column": None,
            "passed": True,
            "message": "All 4 expected columns are present with their types.",
            "details": {},
        },
    ],
}
PASSED_REPORT = {"passed": True, "checks": [FAILED_REPORT["checks"][1]]}


def make_dataset(project, *, name="churn", creator=None, **fields) -> Dataset:
    return Dataset.objects.create(project=project, name=name, created_by=creator or project.created_by, **fields)


def make_version(dataset, *, number=1, passed=False, schema=None, profile=None, rows=3, creator=None, **fields):
    schema = SCHEMA if schema is None else schema
    sha = hashlib.sha256(f"{dataset.pk}-{number}".encode()).hexdigest()
    prefix = f"projects/{dataset.project_id}/datasets/{dataset.pk}/v{number}"
    values = {
        "dataset": dataset,
        "number": number,
        "sha256": sha,
        "source_kind": SourceKind.UPLOAD,
        "source_display": "customers.csv",
        "file_format": "csv",
        "original_key": f"{prefix}/original.csv",
        "original_size": 2048,
        "parquet_key": f"{prefix}/data.parquet",
        "parquet_sha256": sha[::-1],
        "parquet_size": 1024,
        "row_count": rows,
        "column_count": len(schema),
        "schema": schema,
        "profile": PROFILE if profile is None else profile,
        "pii_findings": PII,
        "validation_status": ValidationStatus.PASSED if passed else ValidationStatus.FAILED,
        "validation_report": PASSED_REPORT if passed else FAILED_REPORT,
        "created_by": creator or dataset.created_by,
    }
    values.update(fields)
    return DatasetVersion.objects.create(**values)


def make_job(dataset, *, status=JobStatus.QUEUED, creator=None, **fields) -> IngestionJob:
    values = {
        "project": dataset.project,
        "dataset": dataset,
        "source_kind": SourceKind.UPLOAD,
        "source_display": "customers.csv",
        "status": status,
        "created_by": creator or dataset.created_by,
    }
    values.update(fields)
    return IngestionJob.objects.create(**values)


def make_connection(project, *, name="warehouse", creator=None) -> DataConnection:
    return DataConnection.objects.create(
        project=project,
        name=name,
        host="db.internal",
        port=5432,
        database="sales",
        username="reader",
        encrypted_password="",
        created_by=creator or project.created_by,
    )
