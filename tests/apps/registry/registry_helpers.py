"""Helpers for the registry tests: runs that succeeded with a real stored, signed artifact (recorded through the
experiments services as a worker records them, without spending seconds on training), versions ready in staging with
their model card written, and a snapshot of everything a registry call could change."""

import hashlib
import hmac
import uuid

from django.conf import settings

from apps.audit.models import AuditEvent
from apps.core.artifacts import artifact_store
from apps.experiments import services as experiment_services
from apps.registry import cards, services
from apps.registry.models import Approval, ModelCard, ModelVersion, PromotionRequest, RegisteredModel, StageTransition
from workers.storage.keys import run_model_key

WRITTEN = {key: f"What people know about {key}." for key in cards.REQUIRED_SECTIONS}


def evaluation(*, test_f1: float = 0.9, p99_ms: float = 2.0, fairness: dict | None = None) -> dict:
    """An evaluation as workers.ml.evaluation records it (the parts the registry reads)."""
    return {
        "problem_type": "binary",
        "test": {"f1": test_f1, "accuracy": 0.9},
        "validation": {"f1": test_f1 - 0.01, "accuracy": 0.88},
        "curves": {"roc": {"fpr": [0, 1], "tpr": [0, 1]}},
        "project": {"primary_metric": "f1", "threshold": 0.8, "value": test_f1, "passed": test_f1 >= 0.8},
        "operational": {"latency_single_row_ms": {"p50": p99_ms / 2, "p99": p99_ms}, "model_size_bytes": 100},
        "fairness": fairness or {"computed": False, "columns": []},
        "robustness": {"noise": [], "unseen_categories": []},
        "explanations": {
            "computed": True,
            "explainer": "linear",
            "rows": 50,
            "global_importance": [{"feature": "age", "mean_abs_shap": 1.5}],
            "local": [{"row": 0}],
        },
    }


def succeeded_run(launch, *, test_f1: float = 0.9, p99_ms: float = 2.0, fairness: dict | None = None, actor=None):
    """A run of a new experiment, succeeded with a real signed artifact in the configured store."""
    run = launch(actor=actor).runs.get()
    experiment = run.experiment
    data = f"model bytes {uuid.uuid4()}".encode()
    key = run_model_key(project_id=experiment.project_id, experiment_id=experiment.pk, run_id=run.pk)
    stored = artifact_store().put_bytes(key, data, overwrite=False)
    experiment_services.run_claim(run_id=run.pk, task_id=f"t-{run.pk}")
    return experiment_services.run_succeed(
        run_id=run.pk,
        params={"C": 1.0},
        trials=[],
        metrics=evaluation(test_f1=test_f1, p99_ms=p99_ms, fairness=fairness),
        primary_score=test_f1 - 0.01,
        test_score=test_f1,
        cv={},
        input_signature={"columns": [{"name": "age", "kind": "numeric"}]},
        environment={"python": "3.11", "scikit-learn": "1.8.0"},
        timings={"total": 1.0},
        artifact_key=key,
        artifact_sha256=stored.sha256,
        artifact_signature=hmac.new(settings.MODEL_SIGNING_KEY.encode(), data, hashlib.sha256).hexdigest(),
        artifact_size=stored.size,
    )


def staged_version(run, scientist, *, model_name: str = "churn", written: dict | None = None) -> ModelVersion:
    """`run` registered (ready), its card's required sections written, moved to staging."""
    version = services.model_version_register(run=run, actor=scientist, model_name=model_name)
    services.model_card_update(version=version, actor=scientist, written=WRITTEN if written is None else written)
    return services.version_move_to_staging(version=version, actor=scientist)


def state() -> tuple:
    """Everything a registry call could change, to prove a refused call changed nothing."""
    return (
        sorted(RegisteredModel.objects.values_list("pk", "name", "description")),
        sorted(ModelVersion.objects.values_list("pk", "status", "stage", "description")),
        sorted((str(pk), str(written)) for pk, written in ModelCard.objects.values_list("pk", "written")),
        sorted(PromotionRequest.objects.values_list("pk", "status")),
        Approval.objects.count(),
        StageTransition.objects.count(),
        AuditEvent.objects.count(),
    )
