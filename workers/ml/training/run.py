"""One training run, start to finish: the single entry point the Celery task calls.

train_run(frame, spec) checks the data, splits it, searches the hyperparameters, fits the final pipeline on the
training rows, evaluates it (workers.ml.evaluation.evaluate.evaluate_model) and records what serving and reproduction
need (input signature, library versions, seconds per stage). It does no I/O: the task loads the frame
(workers.ml.training.data.load_frame) and stores the outcome and the signed artifact (workers.ml.training.artifacts).

Choices, kept consistent with the plain-script accuracy test (tests/workers/ml/training/test_accuracy.py):
- the final model is fitted on the training rows only (not train + validation), so its validation score is an honest
  holdout score and the test rows are never seen before the test score;
- primary_score is the final model's validation score; with no validation rows, the cross-validation mean; with
  neither, the test score (a search is refused then, so the test rows never choose parameters).
"""

import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from sklearn.pipeline import Pipeline

from workers.ml.evaluation.evaluate import evaluate_model
from workers.ml.training.data import check_training_data, trainable_rows
from workers.ml.training.environment import library_versions
from workers.ml.training.errors import RunCancelled
from workers.ml.training.preparation import build_pipeline
from workers.ml.training.search import check_search_possible, run_search
from workers.ml.training.signature import input_signature
from workers.ml.training.spec import ExperimentSpec
from workers.ml.training.splits import split_rows

# Share of the progress bar each stage ends at (the search and the evaluation fill theirs as they go).
SEARCH_STARTS, SEARCH_ENDS, EVALUATION_STARTS, EVALUATION_ENDS = 0.05, 0.75, 0.8, 0.98
MAX_WARNINGS_LOGGED = 10


def noop(*args: Any) -> None:
    return None


def never() -> bool:
    return False


@dataclass(frozen=True)
class RunCallbacks:
    on_progress: Callable[[float, str], None] = noop  # fraction 0..1, message
    on_trial: Callable[[int, int, float | None], None] = noop  # trials_done, trials_total, best_score_so_far
    on_log: Callable[[str, str], None] = noop  # level ("info"/"warning"/"error"), message
    should_stop: Callable[[], bool] = never  # True -> RunCancelled


@dataclass
class RunOutcome:
    pipeline: Pipeline = field(repr=False)
    params: dict[str, Any]
    trials: list[dict[str, Any]]
    primary_score: float | None  # see the module docstring
    test_score: float | None
    cv: dict[str, Any] | None  # {"mean", "std", "scores"} of the chosen parameters
    evaluation: dict[str, Any]
    input_signature: dict[str, Any]
    environment: dict[str, Any]
    timings: dict[str, float]  # seconds per stage, and "total"


@dataclass
class _Share:
    X: pd.DataFrame
    y: pd.Series | None
    rows: pd.DataFrame


def _share(rows: pd.DataFrame, positions, spec: ExperimentSpec) -> _Share:
    part = rows.iloc[positions].reset_index(drop=True)
    return _Share(X=part[list(spec.features)], y=part[spec.target] if spec.target else None, rows=part)


@contextmanager
def _stage(timings: dict[str, float], name: str, callbacks: RunCallbacks) -> Iterator[None]:
    if callbacks.should_stop():
        raise RunCancelled("The run was cancelled.")
    started = time.perf_counter()
    yield
    timings[name] = round(time.perf_counter() - started, 4)


def _format(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def train_run(
    frame: pd.DataFrame,
    spec: ExperimentSpec,
    *,
    targets=None,
    callbacks: RunCallbacks = RunCallbacks(),
    shap_rows: int = 1000,
) -> RunOutcome:
    """Train and evaluate spec's single algorithm on `frame` (raw columns). Raises TrainingDataError (field, message)
    for data that cannot be trained on and RunCancelled when callbacks.should_stop() turns true."""
    if len(spec.algorithms) != 1:
        raise ValueError(f"A run trains one algorithm (spec.for_algorithm); the spec lists {len(spec.algorithms)}.")
    started = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        outcome = _train(frame, spec, targets=targets, callbacks=callbacks, shap_rows=shap_rows)
    for message in list(dict.fromkeys(str(warning.message) for warning in caught))[:MAX_WARNINGS_LOGGED]:
        callbacks.on_log("warning", message)
    outcome.timings["total"] = round(time.perf_counter() - started, 4)
    callbacks.on_progress(1.0, "Finished")
    return outcome


def _train(frame: pd.DataFrame, spec: ExperimentSpec, *, targets, callbacks: RunCallbacks, shap_rows: int):
    timings: dict[str, float] = {}
    log, progress = callbacks.on_log, callbacks.on_progress

    with _stage(timings, "check", callbacks):
        progress(0.0, "Checking the data")
        check_training_data(frame, spec)
        check_search_possible(spec)
        rows = trainable_rows(frame, spec)
    log("info", f"{len(rows)} of {len(frame)} rows can be trained on.")

    with _stage(timings, "split", callbacks):
        positions = split_rows(rows, spec)
        train, valid, test = (
            _share(rows, part, spec) for part in (positions.train, positions.validation, positions.test)
        )
    log("info", f"Split ({spec.split.strategy}): {len(train.X)} train, {len(valid.X)} validation, {len(test.X)} test.")

    def trial_done(done: int, total: int, best: float | None) -> None:
        callbacks.on_trial(done, total, best)
        progress(SEARCH_STARTS + (SEARCH_ENDS - SEARCH_STARTS) * done / max(total, 1), f"Trial {done} of {total}")

    with _stage(timings, "search", callbacks):
        progress(SEARCH_STARTS, f"Search: {spec.search.method}")
        searched = run_search(
            spec,
            X_train=train.X,
            y_train=train.y,
            X_valid=valid.X,
            y_valid=valid.y,
            on_trial=trial_done,
            should_stop=callbacks.should_stop,
        )
    log("info", f"Search done: {len(searched.trials)} trial(s), best {spec.primary_metric} {_format(searched.score)}.")

    with _stage(timings, "refit", callbacks):
        pipeline = searched.pipeline
        if pipeline is None:
            progress(SEARCH_ENDS, "Fitting the chosen parameters on the training rows")
            pipeline = build_pipeline(spec, searched.params).fit(train.X, train.y)

    def evaluation_progress(fraction: float, message: str) -> None:
        if callbacks.should_stop():
            raise RunCancelled("The run was cancelled.")
        progress(EVALUATION_STARTS + (EVALUATION_ENDS - EVALUATION_STARTS) * fraction, message)

    with _stage(timings, "evaluate", callbacks):
        progress(EVALUATION_STARTS, "Evaluating")
        evaluation = evaluate_model(
            pipeline,
            spec=spec,
            X_train=train.X,
            y_train=train.y,
            X_valid=valid.X,
            y_valid=valid.y,
            X_test=test.X,
            y_test=test.y,
            sensitive_test=test.rows[list(spec.sensitive_columns)] if spec.sensitive_columns else None,
            targets=targets,
            shap_rows=shap_rows,
            on_progress=evaluation_progress,
        )

    # The evaluation scores the validation and test rows once; the run's scores are its primary-metric entries.
    validation_score = evaluation["validation"][spec.primary_metric] if evaluation["validation"] else None
    test_score = evaluation["test"][spec.primary_metric]
    primary_score = _primary_score(validation_score, searched.cv, test_score)
    log("info", f"{spec.primary_metric}: primary {_format(primary_score)}, test {_format(test_score)}.")

    with _stage(timings, "record", callbacks):
        signature = input_signature(train.rows, spec)
        environment = library_versions()
    return RunOutcome(
        pipeline=pipeline,
        params=searched.params,
        trials=searched.trials,
        primary_score=primary_score,
        test_score=test_score,
        cv=searched.cv,
        evaluation=evaluation,
        input_signature=signature,
        environment=environment,
        timings=timings,
    )


def _primary_score(validation: float | None, cv: dict | None, test: float | None) -> float | None:
    if validation is not None:
        return validation
    if cv is not None:
        return cv["mean"]
    return test
