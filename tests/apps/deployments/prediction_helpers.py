"""Helpers of the prediction-log tests: a deployment made with the ORM (the deployment services are the lead's),
log records as a model server writes them, and a snapshot of everything these services may change."""

import json
import time
import uuid

from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.deployments.choices import DeploymentStatus
from apps.deployments.models import (
    Deployment,
    DeploymentRoute,
    GroundTruth,
    Prediction,
    PredictionExplanation,
    PredictionLogCursor,
)
from tests.apps.deployments.deployment_fixtures import ROW


def make_deployment(version, *, name: str = "churn-live", created_by=None) -> Deployment:
    deployment = Deployment.objects.create(
        project=version.registered_model.project,
        registered_model=version.registered_model,
        name=name,
        created_by=created_by or version.created_by,
        status=DeploymentStatus.READY,
    )
    DeploymentRoute.objects.create(deployment=deployment, version=version, variant=f"v{version.number}")
    return deployment


def record(version_number, *, model: str = "churn-live", **overrides) -> dict:
    """A prediction-log record (workers.serving.prediction_log) of the churn model."""
    return {
        "prediction_id": uuid.uuid4().hex,
        "model": model,
        "version": str(version_number),
        "variant": f"v{version_number}",
        "shadow": False,
        "inputs": dict(ROW),
        "outputs": {"predict": "no", "predict_proba": [0.75, 0.25]},
        "latency_ms": 0.42,
        "time": time.time(),
        **overrides,
    }


def write_log(folder, name: str, records: list[dict], *, tail: str = "") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / name).open("a") as stream:
        stream.write("".join(json.dumps(item) + "\n" for item in records) + tail)


def prediction_row(deployment, version, **overrides) -> Prediction:
    values = record(version.number)
    fields = {
        "id": values["prediction_id"],
        "deployment": deployment,
        "version": version,
        "variant": values["variant"],
        "inputs": values["inputs"],
        "outputs": values["outputs"],
        "latency_ms": values["latency_ms"],
        "predicted_at": timezone.now(),
        **overrides,
    }
    return Prediction.objects.create(**fields)


def state() -> tuple:
    """Everything the prediction services could change, to prove a refused call changed nothing."""
    return (
        sorted(Prediction.objects.values_list("pk", flat=True)),
        sorted((pk, json.dumps(actual)) for pk, actual in GroundTruth.objects.values_list("prediction_id", "actual")),
        sorted((str(pk), status) for pk, status in PredictionExplanation.objects.values_list("pk", "status")),
        sorted(PredictionLogCursor.objects.values_list("file_name", "offset")),
        AuditEvent.objects.count(),
    )
