"""Hyperparameter search: one engine (Optuna) for every method, scoring each trial by the primary metric.

- "none": the registry's defaults, one fit (no study: there is nothing to sample);
- "grid": Optuna's GridSampler over the registry's "grid" lists; the study stops when the grid is exhausted;
- "random": RandomSampler(seed); "bayesian": TPESampler(seed), over the registry's ranges.
The budget is search.max_trials and search.timeout_seconds (a running trial is never cut; the study stops starting
new ones). A trial is scored by the cross-validation mean on the training rows when cv_folds >= 2, else on the
validation rows. Samplers and estimators are seeded with spec.seed, so the same spec gives the same trials.

When trials are scored on the validation rows, the best trial's pipeline (fitted on the training rows) is kept and is
the run's model: refitting it would give the same model again. With cross-validation the run refits the best
parameters on all training rows.
"""

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna
import pandas as pd
from sklearn.pipeline import Pipeline

from workers.ml.evaluation.metrics import PROBABILITY_METRICS, score
from workers.ml.training.algorithms import ALGORITHMS
from workers.ml.training.errors import RunCancelled, TrainingDataError
from workers.ml.training.preparation import build_pipeline
from workers.ml.training.spec import ExperimentSpec
from workers.ml.training.splits import cv_splitter

OnTrial = Callable[[int, int, float | None], None]
ShouldStop = Callable[[], bool]


@dataclass
class SearchOutcome:
    params: dict[str, Any]
    score: float | None  # the best trial's: CV mean or validation score; None with nothing to score on
    trials: list[dict[str, Any]]  # [{number, params, score, seconds, state}]
    cv: dict[str, Any] | None = None  # the best trial's folds: {"mean", "std", "scores"}
    pipeline: Pipeline | None = field(default=None, repr=False)  # see the module docstring


def score_pipeline(pipeline: Pipeline, spec: ExperimentSpec, X: pd.DataFrame, y: pd.Series | None) -> float:
    """The primary metric of a fitted pipeline on some rows (clustering: on the prepared matrix)."""
    metric = spec.primary_metric
    if spec.problem_type == "clustering":
        prepared = pipeline[:-1].transform(X)
        return score(metric, X=prepared, cluster_labels=pipeline[-1].predict(prepared))
    if spec.problem_type == "regression":
        return score(metric, y, y_pred=pipeline.predict(X))
    proba = pipeline.predict_proba(X) if metric in PROBABILITY_METRICS else None
    return score(metric, y, y_pred=pipeline.predict(X), y_proba=proba, classes=list(pipeline.classes_))


def check_search_possible(spec: ExperimentSpec) -> None:
    if spec.search.method != "none" and spec.split.validation <= 0 and spec.split.cv_folds < 2:
        raise TrainingDataError(
            "split.validation", "A search needs validation rows or cross-validation (2 folds or more)."
        )


@dataclass
class _Shares:
    X_train: pd.DataFrame
    y_train: pd.Series | None
    X_valid: pd.DataFrame
    y_valid: pd.Series | None


def _evaluate_params(
    spec: ExperimentSpec, params: dict[str, Any], shares: _Shares, should_stop: ShouldStop
) -> tuple[float | None, dict | None, Pipeline | None]:
    """(score, cv folds, pipeline fitted on the training rows when scored on validation rows)."""
    splitter = cv_splitter(spec)
    if splitter is not None:
        scores = []
        for fold_train, fold_valid in splitter.split(shares.X_train, shares.y_train):
            _stop_if_asked(should_stop)
            y_fit = shares.y_train.iloc[fold_train] if shares.y_train is not None else None
            y_check = shares.y_train.iloc[fold_valid] if shares.y_train is not None else None
            pipeline = build_pipeline(spec, params).fit(shares.X_train.iloc[fold_train], y_fit)
            scores.append(_finite(score_pipeline(pipeline, spec, shares.X_train.iloc[fold_valid], y_check), spec))
        folds = {"mean": float(np.mean(scores)), "std": float(np.std(scores)), "scores": scores}
        return folds["mean"], folds, None
    pipeline = build_pipeline(spec, params).fit(shares.X_train, shares.y_train)
    if len(shares.X_valid) == 0:
        return None, None, pipeline
    return _finite(score_pipeline(pipeline, spec, shares.X_valid, shares.y_valid), spec), None, pipeline


def _finite(value: float, spec: ExperimentSpec) -> float:
    if not math.isfinite(value):
        raise TrainingDataError(
            "primary_metric", f"{spec.primary_metric} cannot be computed on these rows (it came out as {value})."
        )
    return value


def _stop_if_asked(should_stop: ShouldStop) -> None:
    if should_stop():
        raise RunCancelled("The run was cancelled.")


def _suggest(trial: optuna.Trial, name: str, space: dict[str, Any], method: str) -> Any:
    if method == "grid":
        return trial.suggest_categorical(name, _grid_values(space))
    if space["type"] == "int":
        return trial.suggest_int(name, space["low"], space["high"], log=space.get("log", False))
    if space["type"] == "float":
        return trial.suggest_float(name, space["low"], space["high"], log=space.get("log", False))
    return trial.suggest_categorical(name, space["choices"])


def _grid_values(space: dict[str, Any]) -> list:
    return list(space.get("grid") or space["choices"])


def _sampler(spec: ExperimentSpec, search_space: dict[str, dict]) -> optuna.samplers.BaseSampler:
    method = spec.search.method
    if method == "grid":
        grid = {name: _grid_values(space) for name, space in search_space.items()}
        return optuna.samplers.GridSampler(grid, seed=spec.seed)
    if method == "random":
        return optuna.samplers.RandomSampler(seed=spec.seed)
    if method == "bayesian":
        return optuna.samplers.TPESampler(seed=spec.seed)
    raise ValueError(f"Unknown search method {method!r}.")


def trial_budget(spec: ExperimentSpec) -> int:
    """How many trials the search runs at most (a grid smaller than max_trials caps it)."""
    if spec.search.method == "none":
        return 1
    if spec.search.method == "grid":
        space = ALGORITHMS[spec.algorithms[0]].search_space
        return min(spec.search.max_trials, math.prod(len(_grid_values(entry)) for entry in space.values()))
    return spec.search.max_trials


def _trial_record(number: int, params: dict, value: float | None, seconds: float, state: str) -> dict[str, Any]:
    return {"number": number, "params": params, "score": value, "seconds": round(seconds, 4), "state": state}


def run_search(
    spec: ExperimentSpec,
    *,
    X_train: pd.DataFrame,
    y_train: pd.Series | None,
    X_valid: pd.DataFrame,
    y_valid: pd.Series | None,
    on_trial: OnTrial,
    should_stop: ShouldStop,
) -> SearchOutcome:
    """Search spec.algorithms[0]'s hyperparameters (see the module docstring). Raises RunCancelled when asked."""
    check_search_possible(spec)
    shares = _Shares(X_train, y_train, X_valid, y_valid)
    if spec.search.method == "none":
        return _single_fit(spec, shares, on_trial, should_stop)
    return _study(spec, shares, on_trial, should_stop)


def _single_fit(spec: ExperimentSpec, shares: _Shares, on_trial: OnTrial, should_stop: ShouldStop) -> SearchOutcome:
    _stop_if_asked(should_stop)
    started = time.perf_counter()
    value, folds, pipeline = _evaluate_params(spec, {}, shares, should_stop)
    trial = _trial_record(0, {}, value, time.perf_counter() - started, "complete")
    on_trial(1, 1, value)
    return SearchOutcome(params={}, score=value, trials=[trial], cv=folds, pipeline=pipeline)


def _study(spec: ExperimentSpec, shares: _Shares, on_trial: OnTrial, should_stop: ShouldStop) -> SearchOutcome:
    search_space = ALGORITHMS[spec.algorithms[0]].search_space
    higher_is_better = spec.higher_is_better
    budget = trial_budget(spec)
    best: dict[str, Any] = {"score": None, "pipeline": None}

    def objective(trial: optuna.Trial) -> float:
        _stop_if_asked(should_stop)
        params = {name: _suggest(trial, name, space, spec.search.method) for name, space in search_space.items()}
        value, folds, pipeline = _evaluate_params(spec, params, shares, should_stop)
        trial.set_user_attr("cv", folds)
        if best["score"] is None or (value > best["score"] if higher_is_better else value < best["score"]):
            best.update(score=value, pipeline=pipeline)
        return value

    def after_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        on_trial(len(study.trials), budget, best["score"])
        _stop_if_asked(should_stop)

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # trials are reported through on_trial, not Optuna's log
    study = optuna.create_study(
        direction="maximize" if higher_is_better else "minimize", sampler=_sampler(spec, search_space)
    )
    study.optimize(objective, n_trials=budget, timeout=spec.search.timeout_seconds or None, callbacks=[after_trial])
    best_trial = study.best_trial
    trials = [
        _trial_record(
            trial.number,
            trial.params,
            trial.value,
            trial.duration.total_seconds() if trial.duration else 0.0,
            trial.state.name.lower(),
        )
        for trial in study.trials
    ]
    return SearchOutcome(
        params=dict(best_trial.params),
        score=best_trial.value,
        trials=trials,
        cv=best_trial.user_attrs.get("cv"),
        pipeline=best["pipeline"],
    )
