"""Fixtures of the monitoring tests: a deployed production version (its monitor made by the deployment service) and
logged predictions made with the ORM as the importer would store them: inputs from the churn data (the training
distribution, or a shifted one), outputs from the real model."""

import json
import uuid
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from apps.core.artifacts import artifact_store
from apps.deployments.models import Prediction
from apps.deployments.services import deployments as deployment_services
from tests.apps.experiments.experiment_helpers import FEATURES, churn_frame
from workers.ml.training.artifacts import load_model


def shifted(frame):
    """Older customers on the top plan paying more: most inputs drift."""
    frame = frame.copy()
    frame["age"] = frame["age"] + 35
    frame["plan"] = "max"
    frame["monthly_fee"] = frame["monthly_fee"] * 3
    frame["tenure_months"] = frame["tenure_months"] + 60
    return frame


def log_predictions(deployment, version, frame, *, ago=timedelta(minutes=5)) -> list[Prediction]:
    """One Prediction row per frame row, with the real model's outputs, as the importer stores them."""
    pipeline = load_model(
        artifact_store().get_bytes(version.artifact_key),
        sha256=version.artifact_sha256,
        signature=version.artifact_signature,
        key=settings.MODEL_SIGNING_KEY.encode(),
    )
    inputs = frame[FEATURES]
    labels = pipeline.predict(inputs)
    probabilities = pipeline.predict_proba(inputs)
    when = timezone.now() - ago
    rows = [
        Prediction(
            id=uuid.uuid4().hex,
            deployment=deployment,
            version=version,
            variant=f"v{version.number}",
            inputs=row,
            outputs={"predict": str(label), "predict_proba": [float(p) for p in proba]},
            latency_ms=0.5,
            predicted_at=when,
        )
        for row, label, proba in zip(_json_records(inputs), labels, probabilities, strict=True)
    ]
    return Prediction.objects.bulk_create(rows)


def _json_records(frame) -> list[dict]:
    """Rows as a client sends them in JSON (dates as ISO text, missing as null)."""
    return json.loads(frame.to_json(orient="records", date_format="iso"))


@pytest.fixture
def deployed(production_version, deployer):
    return deployment_services.deployment_create(version=production_version, actor=deployer)


@pytest.fixture
def churn_rows():
    return churn_frame(rows=600, seed=11)
