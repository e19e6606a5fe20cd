"""Fixtures for the deployments tests: a production version whose artifact is a real fitted pipeline (LightGBM on the
churn data, signed with the platform's key, in the configured store), reached the way a real one is: a succeeded run,
registered, card written, staged, promotion requested by the scientist and approved by a reviewer.
tests/apps/deployments/conftest.py re-exports them; the browser and task tests import the ones they use."""

import uuid

import pytest
from django.conf import settings

from apps.accounts.choices import Role
from apps.experiments import services as experiment_services
from apps.registry import services as registry_services
from tests.apps.experiments.experiment_helpers import QUICK, churn_frame
from tests.apps.registry.registry_helpers import evaluation, staged_version
from workers.ml.training.artifacts import dump_model, sign
from workers.ml.training.preparation import build_pipeline
from workers.ml.training.signature import input_signature
from workers.ml.training.spec import spec_from_dict
from workers.storage.keys import run_model_key

LIGHTGBM = {**QUICK, "algorithms": ["lightgbm"]}
# A churn row the versions accept (the signature's columns: QUICK's features).
ROW = {"age": 30, "plan": "basic", "tenure_months": 5, "monthly_fee": 21.5, "signup": "2024-03-01"}


def fitted_run(launch, *, n_estimators: int = 20, seed: int = 3, features: list | None = None, actor=None):
    """A run of a new LightGBM experiment, succeeded with a real fitted, signed pipeline in the configured store
    (fitted here in well under a second instead of going through the training task)."""
    from apps.core.artifacts import artifact_store

    data = {**LIGHTGBM, "features": features} if features else dict(LIGHTGBM)
    run = launch(data, actor=actor).runs.get()
    spec = spec_from_dict(run.spec)
    frame = churn_frame(seed=seed)
    pipeline = build_pipeline(spec, {"n_estimators": n_estimators})
    pipeline.fit(frame[list(spec.features)], frame[spec.target])
    data = dump_model(pipeline)
    experiment = run.experiment
    key = run_model_key(project_id=experiment.project_id, experiment_id=experiment.pk, run_id=run.pk)
    stored = artifact_store().put_bytes(key, data, overwrite=False)
    experiment_services.run_claim(run_id=run.pk, task_id=f"t-{uuid.uuid4()}")
    return experiment_services.run_succeed(
        run_id=run.pk,
        params={"n_estimators": n_estimators},
        trials=[],
        metrics=evaluation(),
        primary_score=0.89,
        test_score=0.9,
        cv={},
        input_signature=input_signature(frame, spec),
        environment={"python": "3.11"},
        timings={"total": 1.0},
        artifact_key=key,
        artifact_sha256=stored.sha256,
        artifact_signature=sign(data, settings.MODEL_SIGNING_KEY.encode()),
        artifact_size=stored.size,
    )


def promote(version, scientist, reviewer):
    request = registry_services.promotion_request_open(
        version=version, actor=scientist, justification="Beats the baseline on the test set."
    )
    registry_services.promotion_approve(request=request, actor=reviewer, comment="Gates pass.")
    version.refresh_from_db()
    return version


@pytest.fixture
def deployer(member):
    """The project's reviewer: approves promotions and deploys (a scientist may deploy too)."""
    return member(Role.REVIEWER)


@pytest.fixture
def staged_of(launch, scientist):
    """staged_of(model_name="churn", n_estimators=20, seed=3) -> a new version in staging with a real pipeline."""

    def make(*, model_name: str = "churn", **kwargs):
        return staged_version(fitted_run(launch, **kwargs), scientist, model_name=model_name)

    return make


@pytest.fixture
def production_of(staged_of, scientist, deployer):
    """production_of(...) -> a new version promoted to production (approved by the project's reviewer)."""

    def make(**kwargs):
        return promote(staged_of(**kwargs), scientist, deployer)

    return make


@pytest.fixture
def production_version(production_of):
    return production_of()


@pytest.fixture
def local_runner(tmp_path, settings):
    """A real local runner in a tmp folder (model-server processes on loopback ports), prediction logs under tmp;
    every endpoint it started is stopped after the test."""
    from workers.serving.runners.local import LocalRunner

    settings.SERVING_STATE_DIR = tmp_path / "serving"
    settings.SERVING_LOG_ROOT = tmp_path / "predictions"
    settings.SERVING_LOG_ROTATE_SECONDS = 1
    runner = LocalRunner(tmp_path / "serving", ready_timeout=60, stop_grace=5, max_restarts=3, restart_window=60)
    yield runner
    for folder in (tmp_path / "serving").glob("*"):
        runner.stop(folder.name)


def post_json(url: str, path: str, body: dict, headers: dict | None = None) -> tuple[int, dict]:
    import http.client
    import json

    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.request(
            "POST", path, body=json.dumps(body), headers={"content-type": "application/json", **(headers or {})}
        )
        answer = connection.getresponse()
        return answer.status, json.loads(answer.read())
    finally:
        connection.close()


def predict(url: str, row: dict | None = None, headers: dict | None = None) -> tuple[int, dict]:
    """One MLflow /invocations request of one row."""
    return post_json(url, "/invocations", {"dataframe_records": [row or ROW]}, headers)
