"""train_run end to end: outcome, progress, no leakage, reproducibility, cancellation, clustering, bad data."""

import json

import numpy as np
import pytest

from tests.workers.ml.training.conftest import customer_frame, make_spec
from workers.ml.training.errors import RunCancelled, TrainingDataError
from workers.ml.training.run import RunCallbacks, train_run
from workers.ml.training.spec import Preparation, Search, Split


class Recorder:
    def __init__(self, stop_after_progress: int | None = None):
        self.progress, self.trials, self.logs = [], [], []
        self.stop_after_progress = stop_after_progress

    def callbacks(self) -> RunCallbacks:
        return RunCallbacks(
            on_progress=lambda fraction, message: self.progress.append((fraction, message)),
            on_trial=lambda *args: self.trials.append(args),
            on_log=lambda level, message: self.logs.append((level, message)),
            should_stop=lambda: self.stop_after_progress is not None and len(self.progress) >= self.stop_after_progress,
        )


def test_a_binary_run_reports_everything_the_run_records(frame):
    recorder = Recorder()
    spec = make_spec(search=Search("random", 2), split=Split(cv_folds=3), sensitive_columns=("gender",))
    outcome = train_run(frame, spec, callbacks=recorder.callbacks(), shap_rows=50)

    assert set(outcome.params) == {"n_estimators", "learning_rate", "num_leaves", "min_child_samples"}
    assert [trial["number"] for trial in outcome.trials] == [0, 1]
    assert len(outcome.cv["scores"]) == 3
    # primary = the final model's validation score (it has validation rows), test = its test score.
    assert outcome.primary_score == pytest.approx(outcome.evaluation["validation"]["roc_auc"], abs=1e-12)
    assert outcome.test_score == pytest.approx(outcome.evaluation["test"]["roc_auc"], abs=1e-12)
    assert outcome.evaluation["fairness"] is not None
    json.dumps(outcome.evaluation, allow_nan=False)
    assert [column["name"] for column in outcome.input_signature["columns"]] == list(spec.features)
    assert outcome.input_signature["target"] == {"name": "churned", "classes": ["no", "yes"]}
    assert outcome.environment["lightgbm"] and outcome.environment["python"]
    assert set(outcome.timings) == {"check", "split", "search", "refit", "evaluate", "record", "total"}

    fractions = [fraction for fraction, _ in recorder.progress]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert [trial[:2] for trial in recorder.trials] == [(1, 2), (2, 2)]
    assert ("info", "400 of 400 rows can be trained on.") in recorder.logs


def test_the_model_is_fitted_on_the_training_rows_only(frame):
    spec = make_spec(features=("income", "age"), preparation=Preparation(missing="mean", scaling="standard"))
    outcome = train_run(frame, spec, shap_rows=0)
    numeric = outcome.pipeline.named_steps["prepare"].named_transformers_["numeric"]
    train_rows = frame.iloc[_train_positions(frame, spec)]
    assert numeric["impute"].statistics_[0] == pytest.approx(train_rows["income"].mean())
    assert numeric["impute"].statistics_[0] != pytest.approx(frame["income"].mean())
    assert numeric["scale"].n_samples_seen_ == len(train_rows)


def _train_positions(frame, spec):
    from workers.ml.training.splits import split_rows

    return split_rows(frame, spec).train


def test_the_same_spec_gives_identical_metrics():
    spec = make_spec(
        "multiclass",
        algorithm="random_forest",
        preparation=Preparation(encoding="target", outliers="iqr"),
        search=Search("bayesian", 3),
    )
    first = train_run(customer_frame(), spec, shap_rows=20)
    second = train_run(customer_frame(), spec, shap_rows=20)
    assert [(t["params"], t["score"]) for t in first.trials] == [(t["params"], t["score"]) for t in second.trials]
    assert (first.primary_score, first.test_score) == (second.primary_score, second.test_score)
    for section in ("validation", "test", "confusion_matrix", "robustness"):
        assert first.evaluation[section] == second.evaluation[section]
    assert (
        first.evaluation["explanations"]["global_importance"] == second.evaluation["explanations"]["global_importance"]
    )


def test_without_validation_rows_the_primary_score_is_the_cv_mean(frame):
    spec = make_spec("regression", split=Split(strategy="random", train=0.8, validation=0.0, test=0.2, cv_folds=3))
    outcome = train_run(frame, spec, shap_rows=0)
    assert outcome.evaluation["validation"] is None
    assert outcome.primary_score == outcome.cv["mean"]
    assert outcome.test_score == pytest.approx(outcome.evaluation["test"]["rmse"], abs=1e-9)


def test_a_clustering_run_scores_clusters_on_the_prepared_matrix(frame):
    spec = make_spec(
        "clustering",
        algorithm="kmeans",
        features=("income", "age", "region"),
        split=Split(strategy="random", cv_folds=0),
        search=Search("grid", 2),
    )
    outcome = train_run(frame, spec)
    assert outcome.input_signature["target"] is None
    assert outcome.test_score == pytest.approx(outcome.evaluation["test"]["silhouette"], abs=1e-9)
    assert sum(entry["size"] for entry in outcome.evaluation["test"]["cluster_sizes"]) == 60


def test_a_time_split_run_trains_on_the_past(frame):
    spec = make_spec(
        "regression",
        algorithm="linear_regression",
        features=("income", "age", "region", "member"),
        split=Split(strategy="time", time_column="joined", cv_folds=3),
        search=Search("grid", 4),
    )
    outcome = train_run(frame, spec, shap_rows=20)
    assert len(outcome.trials) == 4 and np.isfinite(outcome.test_score)


def test_cancelling_stops_the_run(frame):
    recorder = Recorder(stop_after_progress=3)
    with pytest.raises(RunCancelled):
        train_run(frame, make_spec(search=Search("random", 20)), callbacks=recorder.callbacks())
    assert len(recorder.trials) <= 1


def test_bad_data_fails_before_training(frame):
    frame["churned"] = "no"
    recorder = Recorder()
    with pytest.raises(TrainingDataError) as caught:
        train_run(frame, make_spec(), callbacks=recorder.callbacks())
    assert caught.value.errors == {"target": ["'churned' is constant: there is nothing to learn."]}
    assert recorder.trials == []
