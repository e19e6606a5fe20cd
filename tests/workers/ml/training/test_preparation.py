"""Preparation: each option, statistics learned from training rows only, picklable, raw-feature mapping."""

import pickle

import numpy as np
import pandas as pd
import pytest

from tests.workers.ml.training.conftest import make_spec
from workers.ml.training.preparation import build_pipeline, build_preprocessor, prepared_feature_sources
from workers.ml.training.spec import Preparation

TRAIN = pd.DataFrame(
    {
        "income": [1.0, 2.0, 2.0, 3.0, np.nan, 100.0],
        "region": ["north", "south", "south", None, "east", "north"],
        "joined": pd.to_datetime(["2020-01-31", "2021-06-15", None, "2022-12-01", "2019-03-03", "2020-07-04"]),
        "member": [True, False, True, True, False, True],
    }
)
Y = pd.Series(["yes", "no", "yes", "no", "yes", "no"])
# Test rows with values and categories never seen in training; their statistics must not matter.
TEST = pd.DataFrame(
    {
        "income": [np.nan, 1000.0, -50.0],
        "region": ["moon", None, "south"],
        "joined": pd.to_datetime(["2030-02-02 10:30", None, "2020-01-01 00:00"]),
        "member": [False, True, False],
    }
)


def prepared(preparation: Preparation, features=("income",), problem_type="binary", y=Y):
    spec = make_spec(problem_type, features=features, preparation=preparation)
    preprocessor = build_preprocessor(spec).fit(TRAIN[list(features)], y)
    return preprocessor, preprocessor.transform(TEST[list(features)])


@pytest.mark.parametrize(
    ("missing", "expected"),
    [("mean", np.mean([1, 2, 2, 3, 100])), ("median", 2.0), ("mode", 2.0), ("constant", -1.0), ("drop", 2.0)],
)
def test_missing_numeric_values_get_the_training_statistic(missing, expected):
    _, out = prepared(Preparation(missing=missing, missing_constant=-1.0, scaling="none"))
    assert out[:, 0].tolist() == [expected, 1000.0, -50.0]


def test_indicator_adds_a_missing_flag_next_to_the_median():
    preprocessor, out = prepared(Preparation(missing="indicator", scaling="none"))
    assert out.tolist() == [[2.0, 1.0], [1000.0, 0.0], [-50.0, 0.0]]
    assert list(preprocessor.get_feature_names_out()) == ["numeric__income", "missing__missingindicator_income"]


def test_clip_quantiles_uses_bounds_learned_on_training_rows():
    _, out = prepared(Preparation(outliers="clip_quantiles", outlier_quantiles=(0.25, 0.75), scaling="none"))
    low, high = np.nanquantile(TRAIN["income"], [0.25, 0.75])
    assert out[:, 0].tolist() == [2.0, high, low]  # the missing value is imputed with the clipped median


def test_iqr_clips_beyond_one_and_a_half_interquartile_ranges():
    _, out = prepared(Preparation(outliers="iqr", scaling="none"))
    first, third = np.nanquantile(TRAIN["income"], [0.25, 0.75])
    assert out[1:, 0].tolist() == [third + 1.5 * (third - first), first - 1.5 * (third - first)]


@pytest.mark.parametrize("scaling", ["standard", "robust", "minmax"])
def test_scaling_is_fitted_on_training_rows(scaling):
    _, out = prepared(Preparation(missing="median", scaling=scaling))
    train_values = TRAIN["income"].fillna(2.0).to_numpy()
    if scaling == "standard":
        centre, spread = train_values.mean(), train_values.std()
    elif scaling == "robust":
        centre, spread = np.median(train_values), np.subtract(*np.quantile(train_values, [0.75, 0.25]))
    else:
        centre, spread = train_values.min(), train_values.max() - train_values.min()
    assert out[:, 0] == pytest.approx((np.array([2.0, 1000.0, -50.0]) - centre) / spread)


def test_onehot_ignores_unseen_categories_and_fills_missing_with_the_mode():
    preprocessor, out = prepared(Preparation(encoding="onehot"), features=("region",))
    assert list(preprocessor.get_feature_names_out()) == [
        "categorical__region_east",
        "categorical__region_north",
        "categorical__region_south",
    ]
    # "moon" is unseen: all zeros. Missing: the training mode ("north" and "south" tie at 2: the smaller wins).
    assert out.tolist() == [[0, 0, 0], [0, 1, 0], [0, 0, 1]]


def test_ordinal_gives_unseen_categories_minus_one():
    _, out = prepared(Preparation(encoding="ordinal"), features=("region",))
    assert out[:, 0].tolist() == [-1.0, 1.0, 2.0]


def test_target_encoding_learns_from_the_training_target_and_is_seeded():
    # TargetEncoder cross-fits on 5 folds: it needs 5 rows of each class.
    train, y = pd.concat([TRAIN] * 5, ignore_index=True), pd.concat([Y] * 5, ignore_index=True)
    spec = make_spec(features=("region",), preparation=Preparation(encoding="target"))
    first = build_preprocessor(spec).fit(train[["region"]], y)
    again = build_preprocessor(spec).fit(train[["region"]], y)
    out = first.transform(TEST[["region"]])
    assert np.array_equal(out, again.transform(TEST[["region"]]))
    assert first.named_transformers_["categorical"]["encode"].random_state == 11
    assert out[0, 0] == pytest.approx(0.5)  # unseen "moon": the training target mean (half the rows are "yes")


def test_datetime_parts_are_numbers_and_missing_dates_get_the_median_part():
    spec_prep = Preparation(datetime_parts=("year", "month", "dayofweek", "hour"), scaling="none")
    preprocessor, out = prepared(spec_prep, features=("joined",))
    assert out[0].tolist() == [2030.0, 2.0, 5.0, 10.0]
    assert out[1].tolist() == [2020.0, 6.0, 4.0, 0.0]  # the training medians of each part
    assert preprocessor.get_feature_names_out()[0] == "datetime__joined_year"


def test_datetime_parts_read_iso_text_as_a_prediction_request_sends_it():
    spec = make_spec(features=("joined",), preparation=Preparation(datetime_parts=("year", "day"), scaling="none"))
    preprocessor = build_preprocessor(spec).fit(TRAIN[["joined"]], Y)
    out = preprocessor.transform(pd.DataFrame({"joined": ["2024-03-09T08:00:00", "not a date"]}))
    assert out.tolist() == [[2024.0, 9.0], [2020.0, 4.0]]


def test_booleans_become_zero_or_one_from_bools_or_text():
    spec = make_spec(features=("member",))
    preprocessor = build_preprocessor(spec).fit(TRAIN[["member"]], Y)
    out = preprocessor.transform(pd.DataFrame({"member": ["yes", "No", None, "TRUE"]}))
    assert out[:, 0].tolist() == [1.0, 0.0, 1.0, 1.0]  # missing -> the most frequent training value (True)


def test_output_is_a_dense_float_matrix():
    spec = make_spec(features=("income", "region", "joined", "member"), preparation=Preparation(missing="indicator"))
    out = build_preprocessor(spec).fit(TRAIN, Y).transform(TEST)
    assert isinstance(out, np.ndarray) and out.dtype == np.float64 and np.isfinite(out).all()


def test_clipping_comes_before_imputation_and_scaling_sees_the_clipped_training_values():
    spec = make_spec(features=("income",), preparation=Preparation(outliers="iqr", scaling="standard"))
    numeric = build_preprocessor(spec).fit(TRAIN[["income"]], Y).named_transformers_["numeric"]
    # Quartiles 2 and 3: bounds 0.5 and 4.5, so 100 becomes 4.5; the missing value gets the median, 2.
    assert numeric["outliers"].upper_.tolist() == [4.5]
    assert numeric["scale"].mean_ == pytest.approx([np.mean([1, 2, 2, 3, 2, 4.5])])


def test_pipeline_pickles_and_predicts_the_same(frame):
    spec = make_spec(preparation=Preparation(missing="indicator", outliers="iqr", encoding="target"))
    features = list(spec.features)
    pipeline = build_pipeline(spec, {"n_estimators": 20}).fit(frame[features], frame["churned"])
    restored = pickle.loads(pickle.dumps(pipeline))  # noqa: S301 - bytes this test just made
    assert np.array_equal(restored.predict_proba(frame[features]), pipeline.predict_proba(frame[features]))


@pytest.mark.parametrize(
    ("preparation", "problem_type", "expected"),
    [
        (
            Preparation(missing="indicator", encoding="onehot", datetime_parts=("year", "month")),
            "binary",
            ["income", "income", "member", "joined", "joined", "region", "region", "region"],
        ),
        (
            Preparation(encoding="target", datetime_parts=("year",)),
            "multiclass",
            ["income", "member", "joined", "region", "region", "region"],
        ),
        (Preparation(encoding="ordinal", datetime_parts=()), "regression", ["income", "member", "region"]),
    ],
)
def test_prepared_feature_sources_map_every_prepared_column_to_its_raw_feature(preparation, problem_type, expected):
    features = ("income", "region", "joined", "member")
    spec = make_spec(problem_type, features=features, preparation=preparation)
    y = {"binary": Y, "multiclass": pd.Series(["a", "b", "c", "a", "b", "c"]), "regression": pd.Series(range(6))}
    train, y = pd.concat([TRAIN] * 5, ignore_index=True), pd.concat([y[problem_type]] * 5, ignore_index=True)
    pipeline = build_pipeline(spec, {"n_estimators": 5, "min_child_samples": 1}).fit(train, y)
    sources = prepared_feature_sources(pipeline)
    assert sources == expected
    assert len(sources) == pipeline[:-1].transform(TEST).shape[1]
