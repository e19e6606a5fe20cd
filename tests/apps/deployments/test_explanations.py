"""Explaining a logged prediction months later with the exact version that made it: the worker's explanation equals
(to 1e-9) the one the model server's /explain computes for the same inputs; requests queue one row and dispatch it
after commit; a tampered artifact fails the explanation instead of being loaded."""

import pytest
from django.conf import settings

from apps.accounts.choices import Role
from apps.deployments.choices import ExplanationStatus
from apps.deployments.models import DeploymentRoute, Prediction, PredictionExplanation
from apps.deployments.runtime import prediction_log_dir
from apps.deployments.services.predictions import EXPLAIN_TASK, explanation_request, predictions_import
from apps.deployments.serving_config import deployment_config
from tests.apps.deployments.deployment_fixtures import ROW
from tests.apps.deployments.prediction_helpers import make_deployment, prediction_row
from tests.support.async_run import run_async
from tests.workers.serving.conftest import Running
from workers.serving.app import create_app
from workers.serving.config import Limits, Settings, parse_deployment
from workers.serving.log_files import read_log_folder
from workers.tasks.explanations import explain_prediction_task

pytestmark = pytest.mark.django_db
TOLERANCE = 1e-9


@pytest.fixture
def log_root(settings, tmp_path):
    settings.SERVING_LOG_ROOT = tmp_path / "predictions"
    return settings.SERVING_LOG_ROOT


@pytest.fixture
def explainer_user(member):
    return member(Role.COMPLIANCE)


def explain_tasks(sent: list) -> list:
    return [task for task in sent if task[0] == EXPLAIN_TASK]


def v2_body(row: dict) -> dict:
    def datatype(value):
        return "BYTES" if isinstance(value, str) else "INT64" if isinstance(value, int) else "FP64"

    return {"inputs": [{"name": k, "shape": [1], "datatype": datatype(v), "data": [v]} for k, v in row.items()]}


def serve_and_explain(deployment, row: dict) -> tuple[dict, dict]:
    """Run the deployment's model server in process: infer once (logged), explain the same inputs, shut down (the
    log file is finished). Returns the infer and explain answers."""
    routes = list(DeploymentRoute.objects.filter(deployment=deployment).select_related("version__run"))
    server = create_app(
        Settings(
            deployment=parse_deployment(deployment_config(deployment, routes)),
            signing_key=settings.MODEL_SIGNING_KEY.encode(),
            log_dir=prediction_log_dir(deployment.name),
            limits=Limits(),
        )
    )
    version = routes[0].version.number

    async def scenario():
        async with Running(server) as client:
            inferred = await client.post(f"/v2/models/{deployment.name}/infer", v2_body(row))
            explained = await client.post(f"/v2/models/{deployment.name}/versions/{version}/explain", v2_body(row))
            await server.logger.drain()
        return inferred, explained

    inferred, explained = run_async(scenario())
    assert (inferred.status, explained.status) == (200, 200), (inferred.body, explained.body)
    return inferred.json(), explained.json()


def test_the_explanation_of_a_logged_prediction_equals_the_servers(
    production_version, log_root, explainer_user, sent_tasks, django_capture_on_commit_callbacks
):
    deployment = make_deployment(production_version)
    inferred, explained = serve_and_explain(deployment, ROW)
    with django_capture_on_commit_callbacks(execute=True):
        imported = predictions_import(deployment=deployment, reader=read_log_folder)
    (prediction_id,) = inferred["parameters"]["prediction_ids"]
    assert imported.created == 1 and imported.files_finished  # the server's file was finished at shutdown
    prediction = Prediction.objects.get(pk=prediction_id)

    with django_capture_on_commit_callbacks(execute=True):
        explanation = explanation_request(prediction=prediction, actor=explainer_user)
    assert explain_tasks(sent_tasks) == [(EXPLAIN_TASK, [str(explanation.pk)], None)]
    assert explain_prediction_task.apply(args=[str(explanation.pk)]).get() == "succeeded"

    explanation.refresh_from_db()
    result, server = explanation.result, explained["explanations"][0]
    assert explanation.status == ExplanationStatus.SUCCEEDED and explanation.finished_at is not None
    assert (result["version"], result["output"], result["class"]) == (
        production_version.number,
        server["output"],
        server["class"],
    )
    assert abs(result["base_value"] - server["base_value"]) <= TOLERANCE
    assert abs(result["prediction"] - server["prediction"]) <= TOLERANCE
    assert set(result["contributions"]) == set(server["contributions"])  # (jsonb keeps no key order)
    for feature, value in server["contributions"].items():
        assert abs(result["contributions"][feature] - value) <= TOLERANCE, feature
    # and it explains what was predicted: the log-odds of the logged probability of the positive class
    import math

    probability = prediction.outputs["predict_proba"][1]
    assert abs(result["prediction"] - math.log(probability / (1 - probability))) <= 1e-6


def test_a_shadow_prediction_is_explained_with_its_own_version(
    production_version, staged_of, log_root, explainer_user, sent_tasks, django_capture_on_commit_callbacks
):
    deployment = make_deployment(production_version)
    shadow_version = staged_of(seed=4)
    assert shadow_version.number == production_version.number + 1
    prediction = prediction_row(deployment, shadow_version, shadow=True, inputs=dict(ROW))

    with django_capture_on_commit_callbacks(execute=True):
        explanation = explanation_request(prediction=prediction, actor=explainer_user)
    explain_prediction_task.apply(args=[str(explanation.pk)])

    explanation.refresh_from_db()
    assert explanation.status == ExplanationStatus.SUCCEEDED
    assert explanation.result["version"] == shadow_version.number


def test_a_second_request_while_one_is_queued_returns_it_and_a_second_delivery_is_skipped(
    production_version, log_root, explainer_user, sent_tasks, django_capture_on_commit_callbacks
):
    prediction = prediction_row(make_deployment(production_version), production_version)
    with django_capture_on_commit_callbacks(execute=True):
        first = explanation_request(prediction=prediction, actor=explainer_user)
        again = explanation_request(prediction=prediction, actor=explainer_user)

    assert first.pk == again.pk and len(explain_tasks(sent_tasks)) == 1
    assert explain_prediction_task.apply(args=[str(first.pk)]).get() == "succeeded"
    assert explain_prediction_task.apply(args=[str(first.pk)]).get() == "skipped"


def test_a_tampered_artifact_fails_the_explanation(
    production_version, log_root, explainer_user, sent_tasks, django_capture_on_commit_callbacks
):
    from apps.core.artifacts import artifact_store

    prediction = prediction_row(make_deployment(production_version), production_version)
    store = artifact_store()
    data = bytearray(store.get_bytes(production_version.artifact_key))
    data[-10] ^= 0xFF
    store.delete(production_version.artifact_key)
    store.put_bytes(production_version.artifact_key, bytes(data))
    with django_capture_on_commit_callbacks(execute=True):
        explanation = explanation_request(prediction=prediction, actor=explainer_user)

    assert explain_prediction_task.apply(args=[str(explanation.pk)]).get() == "failed"

    explanation.refresh_from_db()
    assert explanation.status == ExplanationStatus.FAILED and "signature" in explanation.error
    assert explanation.result == {}


def test_a_stakeholder_may_not_request_an_explanation(production_version, member, sent_tasks):
    from django.core.exceptions import PermissionDenied

    prediction = prediction_row(make_deployment(production_version), production_version)

    with pytest.raises(PermissionDenied):
        explanation_request(prediction=prediction, actor=member(Role.STAKEHOLDER))

    assert PredictionExplanation.objects.count() == 0 and explain_tasks(sent_tasks) == []


def test_the_sweep_fails_an_explanation_whose_worker_died_and_resends_a_lost_one(
    production_version, log_root, explainer_user, sent_tasks, django_capture_on_commit_callbacks
):
    from datetime import timedelta

    from django.utils import timezone

    from apps.deployments.services.predictions import explanation_claim, explanations_sweep

    deployment = make_deployment(production_version)
    with django_capture_on_commit_callbacks(execute=True):
        died = explanation_request(prediction=prediction_row(deployment, production_version), actor=explainer_user)
        lost = explanation_request(prediction=prediction_row(deployment, production_version), actor=explainer_user)
        fresh = explanation_request(prediction=prediction_row(deployment, production_version), actor=explainer_user)
    explanation_claim(explanation_id=died.pk)
    long_ago = timezone.now() - timedelta(minutes=30)
    PredictionExplanation.objects.filter(pk__in=[died.pk, lost.pk]).update(updated_at=long_ago)
    sent_tasks.clear()

    outcome = explanations_sweep(stale_after_minutes=15)

    assert outcome == {"failed": 1, "requeued": 1}
    died.refresh_from_db()
    assert died.status == ExplanationStatus.FAILED and "Ask again" in died.error
    assert explain_tasks(sent_tasks) == [(EXPLAIN_TASK, [str(lost.pk)], None)]
    fresh.refresh_from_db()
    assert fresh.status == ExplanationStatus.QUEUED
