"""deployments.explain_prediction: SHAP contributions of a logged prediction, with the exact version that made it.

The task claims its PredictionExplanation row (queued -> running, once: a second delivery finds it claimed and
stops), fetches the version's artifact and verifies its SHA-256 and HMAC before unpickling
(workers.ml.training.artifacts.load_model), rebuilds the row from the logged inputs with the validator the model
server uses (workers.serving.validation.InputValidator) and explains it with the explainer the server builds
(workers.serving.registry.version_explainer), so the answer equals what the server's /explain would have said for
the same inputs. It finishes through the services; an explanation that cannot be computed fails with a sentence.
"""

import logging

from celery import shared_task
from django.conf import settings

from workers.tasks.base import ContextTask
from workers.tasks.datasets import artifact_store, is_transient

logger = logging.getLogger(__name__)

MAX_RETRIES = 3


def explain_logged_prediction(explanation) -> dict:
    """The result stored with the explanation: the server's explanation of the row plus the version that made it."""
    from workers.ml.training.artifacts import load_model
    from workers.serving.registry import version_explainer
    from workers.serving.validation import InputValidator

    prediction = explanation.prediction
    version = prediction.version
    data = artifact_store().get_bytes(version.artifact_key)
    pipeline = load_model(
        data,
        sha256=version.artifact_sha256,
        signature=version.artifact_signature,
        key=settings.MODEL_SIGNING_KEY.encode(),
    )
    frame = InputValidator(version.input_signature, max_rows=1).frame(
        {name: [value] for name, value in prediction.inputs.items()}
    )
    explainer = version_explainer(
        pipeline,
        input_signature=version.input_signature,
        algorithm=version.run.algorithm,
        problem_type=version.run.spec["problem_type"],
    )
    from workers.ml.evaluation.explain import explain_rows

    (row,) = explain_rows(explainer, frame)
    return {**row, "explainer": explainer.kind, "version": version.number, "prediction_id": prediction.pk}


@shared_task(
    name="deployments.explain_prediction",
    base=ContextTask,
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=MAX_RETRIES,
    soft_time_limit=600,
    time_limit=660,
)
def explain_prediction_task(self, explanation_id: str) -> str:
    """Explain one logged prediction; returns succeeded, failed, retrying or skipped."""
    from apps.deployments.services.predictions import explanation_claim, explanation_fail, explanation_succeed
    from workers.ml.evaluation.explain import ExplanationUnavailable
    from workers.ml.training.artifacts import ArtifactTampered
    from workers.serving.validation import InputError
    from workers.storage.base import ChecksumMismatch, ObjectNotFound

    explanation = explanation_claim(explanation_id=explanation_id)
    if explanation is None:
        return "skipped"
    try:
        result = explain_logged_prediction(explanation)
    except (ArtifactTampered, ChecksumMismatch, ObjectNotFound) as exc:
        logger.error("explanation %s: the version's artifact is missing or fails verification: %s", explanation_id, exc)
        explanation_fail(
            explanation_id=explanation_id,
            error="The version's stored model is missing or fails its signature check; it was not loaded. An "
            "operator must restore it from a backup.",
        )
        return "failed"
    except (InputError, ExplanationUnavailable) as exc:
        explanation_fail(explanation_id=explanation_id, error=f"The logged prediction cannot be explained: {exc}")
        return "failed"
    except Exception as exc:
        if is_transient(exc) and self.request.retries < self.max_retries and not self.request.is_eager:
            from apps.deployments.services.predictions import explanation_requeue

            explanation_requeue(explanation_id=explanation_id)  # the retried delivery claims it again
            raise self.retry(exc=exc, countdown=min(300, 10 * 2**self.request.retries)) from exc
        logger.exception("explanation %s failed unexpectedly", explanation_id)
        explanation_fail(
            explanation_id=explanation_id,
            error=f"The explanation failed unexpectedly ({type(exc).__name__}). Operators can find the details under "
            f"task id {self.request.id or '-'} in the worker log.",
        )
        return "failed"
    explanation_succeed(explanation_id=explanation_id, result=result)
    return "succeeded"
