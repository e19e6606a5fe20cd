"""The search: each method's budget, seeded reproducibility, scoring, progress and cancellation."""

import pytest

from tests.workers.ml.training.conftest import make_spec
from workers.ml.training.algorithms import ALGORITHMS
from workers.ml.training.data import trainable_rows
from workers.ml.training.errors import RunCancelled, TrainingDataError
from workers.ml.training.search import run_search, score_pipeline
from workers.ml.training.spec import Search, Split
from workers.ml.training.splits import split_rows

FEATURES = ["income", "age", "region", "member"]


def search(frame, spec, *, on_trial=lambda *args: None, should_stop=lambda: False):
    rows = trainable_rows(frame, spec)
    parts = split_rows(rows, spec)
    train, valid = rows.iloc[parts.train], rows.iloc[parts.validation]
    return run_search(
        spec,
        X_train=train[list(spec.features)],
        y_train=train[spec.target] if spec.target else None,
        X_valid=valid[list(spec.features)],
        y_valid=valid[spec.target] if spec.target else None,
        on_trial=on_trial,
        should_stop=should_stop,
    ), valid


def lightgbm_spec(method: str, **kwargs):
    return make_spec(
        features=tuple(FEATURES), search=Search(method=method, max_trials=kwargs.pop("trials", 3)), **kwargs
    )


def test_none_fits_the_registry_defaults_once_and_keeps_that_model(frame):
    spec = lightgbm_spec("none")
    outcome, valid = search(frame, spec)
    assert outcome.params == {} and len(outcome.trials) == 1 and outcome.cv is None
    assert outcome.trials[0]["state"] == "complete"
    # The kept pipeline is the one that was scored: its validation score is the search score.
    assert score_pipeline(outcome.pipeline, spec, valid[FEATURES], valid["churned"]) == outcome.score


@pytest.mark.parametrize("method", ["random", "bayesian"])
def test_sampled_searches_respect_the_trial_budget_and_repeat_exactly(frame, method):
    spec = lightgbm_spec(method, trials=4)
    first, _ = search(frame, spec)
    second, _ = search(frame, spec)
    assert len(first.trials) == 4
    assert [(t["params"], t["score"]) for t in first.trials] == [(t["params"], t["score"]) for t in second.trials]
    assert set(first.params) == set(ALGORITHMS["lightgbm"].search_space)
    assert first.score == max(t["score"] for t in first.trials)  # roc_auc: higher is better


def test_grid_search_stops_when_the_grid_is_exhausted(frame):
    spec = make_spec("regression", algorithm="linear_regression", features=("income", "age"), search=Search("grid", 50))
    outcome, _ = search(frame, spec)
    grid = ALGORITHMS["linear_regression"].search_space["alpha"]["grid"]
    assert sorted(t["params"]["alpha"] for t in outcome.trials) == sorted(grid)
    assert outcome.score == min(t["score"] for t in outcome.trials)  # rmse: lower is better


def test_grid_search_takes_at_most_max_trials_points(frame):
    outcome, _ = search(frame, lightgbm_spec("grid", trials=2))
    assert len(outcome.trials) == 2


def test_time_budget_stops_starting_trials(frame):
    spec = make_spec(features=tuple(FEATURES), algorithm="random_forest", search=Search("random", 500, 1))
    outcome, _ = search(frame, spec)
    assert 1 <= len(outcome.trials) < 500


def test_cross_validation_scores_trials_and_leaves_the_refit_to_the_run(frame):
    spec = lightgbm_spec("random", trials=2, split=Split(cv_folds=3))
    outcome, _ = search(frame, spec)
    assert outcome.pipeline is None
    assert len(outcome.cv["scores"]) == 3 and outcome.cv["mean"] == pytest.approx(outcome.score)


def test_on_trial_reports_progress_and_the_best_so_far(frame):
    calls = []
    outcome, _ = search(frame, lightgbm_spec("random", trials=3), on_trial=lambda *args: calls.append(args))
    assert [call[:2] for call in calls] == [(1, 3), (2, 3), (3, 3)]
    assert calls[-1][2] == outcome.score
    assert calls[1][2] == max(t["score"] for t in outcome.trials[:2])


def test_should_stop_cancels_between_trials(frame):
    calls = []
    with pytest.raises(RunCancelled):
        search(
            frame,
            lightgbm_spec("random", trials=5),
            on_trial=lambda *args: calls.append(args),
            should_stop=lambda: len(calls) >= 2,
        )
    assert len(calls) == 2


def test_clustering_trials_are_scored_on_the_prepared_matrix(frame):
    spec = make_spec(
        "clustering",
        algorithm="kmeans",
        features=("income", "age", "region"),
        split=Split(strategy="random", train=0.8, validation=0.2, test=0.0, cv_folds=0),
        search=Search("grid", 3),
    )
    outcome, _ = search(frame, spec)
    grid = ALGORITHMS["kmeans"].search_space["n_clusters"]["grid"]
    assert len(outcome.trials) == 3 and all(t["params"]["n_clusters"] in grid for t in outcome.trials)
    assert all(-1 <= t["score"] <= 1 for t in outcome.trials)


def test_a_search_without_validation_rows_or_folds_is_refused(frame):
    spec = lightgbm_spec("random", split=Split(train=0.8, validation=0.0, test=0.2, cv_folds=0))
    with pytest.raises(TrainingDataError) as caught:
        search(frame, spec)
    assert caught.value.field == "split.validation"
