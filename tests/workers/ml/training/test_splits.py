"""Train/validation/test shares, stratification, time order, and the cross-validation folds."""

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import KFold, StratifiedKFold, TimeSeriesSplit, train_test_split

from tests.workers.ml.training.conftest import make_spec
from workers.ml.training.spec import Split
from workers.ml.training.splits import cv_splitter, split_rows


def test_shares_partition_the_rows(frame):
    parts = split_rows(frame, make_spec(split=Split(train=0.6, validation=0.2, test=0.2)))
    assert (len(parts.train), len(parts.validation), len(parts.test)) == (240, 80, 80)
    assert sorted(np.concatenate([parts.train, parts.validation, parts.test]).tolist()) == list(range(400))


def test_stratified_split_keeps_the_class_balance_in_every_share(frame):
    parts = split_rows(frame, make_spec("multiclass"))
    overall = frame["segment"].value_counts(normalize=True)
    for positions in (parts.train, parts.validation, parts.test):
        share = frame["segment"].iloc[positions].value_counts(normalize=True)
        assert (share - overall).abs().max() < 0.02


def test_random_split_is_what_two_train_test_split_calls_give(frame):
    spec = make_spec("regression")
    parts = split_rows(frame, spec)
    rest, test = train_test_split(np.arange(400), test_size=0.15, random_state=11)
    train, validation = train_test_split(rest, test_size=0.15 / 0.85, random_state=11)
    assert parts.test.tolist() == test.tolist()
    assert parts.train.tolist() == train.tolist() and parts.validation.tolist() == validation.tolist()


def test_same_seed_same_split_other_seed_other_split(frame):
    spec = make_spec()
    assert split_rows(frame, spec).test.tolist() == split_rows(frame, spec).test.tolist()
    other = make_spec(seed=12)
    assert split_rows(frame, spec).test.tolist() != split_rows(frame, other).test.tolist()


def test_time_split_trains_on_the_oldest_and_tests_on_the_newest(frame):
    spec = make_spec(split=Split(strategy="time", time_column="joined", train=0.7, validation=0.1, test=0.2))
    parts = split_rows(frame, spec)
    joined = frame["joined"]
    assert (len(parts.train), len(parts.validation), len(parts.test)) == (280, 40, 80)
    assert joined.iloc[parts.train].max() <= joined.iloc[parts.validation].min()
    assert joined.iloc[parts.validation].max() <= joined.iloc[parts.test].min()
    assert joined.iloc[parts.train].is_monotonic_increasing  # so time-series folds stay in order


def test_validation_share_zero_gives_no_validation_rows(frame):
    parts = split_rows(frame, make_spec(split=Split(train=0.8, validation=0.0, test=0.2)))
    assert (len(parts.train), len(parts.validation), len(parts.test)) == (320, 0, 80)


@pytest.mark.parametrize(
    ("problem_type", "split", "expected"),
    [
        ("binary", Split(cv_folds=4), StratifiedKFold),
        ("regression", Split(strategy="random", cv_folds=3), KFold),
        ("regression", Split(strategy="time", time_column="joined", cv_folds=3), TimeSeriesSplit),
    ],
)
def test_cv_splitter_by_split_strategy(problem_type, split, expected):
    splitter = cv_splitter(make_spec(problem_type, split=split))
    assert type(splitter) is expected and splitter.n_splits == split.cv_folds
    if expected is not TimeSeriesSplit:
        assert splitter.shuffle and splitter.random_state == 11


def test_no_cv_splitter_without_folds():
    assert cv_splitter(make_spec(split=Split(cv_folds=0))) is None


def test_time_folds_validate_on_newer_rows_than_they_train_on():
    splitter = cv_splitter(make_spec(split=Split(strategy="time", time_column="joined", cv_folds=3)))
    for train, valid in splitter.split(pd.DataFrame({"x": range(40)})):
        assert train.max() < valid.min()
