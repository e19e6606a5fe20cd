"""Predictions under noise and unseen categories."""

from workers.ml.evaluation.robustness import robustness_report


def report(model):
    return robustness_report(model.pipeline, spec=model.spec, X_train=model.X_train, X_test=model.X_test)


def test_regression_changes_more_under_more_noise(fitted):
    result = report(fitted("regression", "linear_regression"))
    small, large = result["noise"]
    assert (small["level"], large["level"]) == (0.01, 0.05)
    assert 0 < small["mean_relative_change"] < large["mean_relative_change"]
    assert 0 < small["mean_absolute_change"] < large["mean_absolute_change"]
    assert result["numeric_features"] == ["age", "income"]
    assert result["rows"] == len(fitted("regression", "linear_regression").X_test)


def test_classification_changes_some_decisions_under_noise(fitted):
    result = report(fitted("binary", "logistic_regression"))
    small, large = result["noise"]
    assert 0 <= small["changed_share"] <= large["changed_share"]
    assert large["changed_share"] > 0  # rows near the boundary flip under 5% noise
    assert large["changed_share"] < 0.5


def test_unseen_categories_move_predictions_of_the_features_that_matter(fitted):
    result = report(fitted("regression", "linear_regression"))
    changes = {entry["feature"]: entry["mean_absolute_change"] for entry in result["unseen_categories"]}
    assert set(changes) == {"colour", "grade"}  # grade is integer-coded: its unseen value is an integer
    # colour moves the target by 4.5 for red rows; grade is noise.
    assert changes["colour"] > 1.0
    assert changes["colour"] > 5 * changes["grade"]


def test_robustness_is_seeded(fitted):
    model = fitted("binary", "lightgbm")
    assert report(model) == report(model)


def test_clustering_reports_changed_assignments(fitted):
    result = report(fitted("clustering", "kmeans"))
    entries = result["noise"] + result["unseen_categories"]
    assert all(set(entry) - {"level", "feature"} == {"changed_share"} for entry in entries)
    assert all(0 <= entry["changed_share"] <= 1 for entry in entries)
