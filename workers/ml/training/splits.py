"""Train / validation / test rows, and the cross-validation folds of the training rows.

Random and stratified splits are two seeded calls of scikit-learn's train_test_split, so a plain script reproduces
them exactly: first the test share off all rows, then the validation share off the rest (its share of the rest is
validation / (train + validation)); stratified calls stratify by the target. Time splits order the rows by the time
column (stable, so ties keep their file order): the oldest rows train, the next validate, the newest test; share sizes
are rounded up for test and validation, as train_test_split does.

A validation share of 0 gives no validation rows: trials are then scored by cross-validation, and the run's primary
score is the cross-validation mean (with neither, the test score; a search is refused then, see
workers.ml.training.search.check_search_possible). The test share is never 0 (the evaluation needs held-out rows).
"""

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import KFold, StratifiedKFold, TimeSeriesSplit, train_test_split

from workers.ml.training.errors import TrainingDataError
from workers.ml.training.spec import ExperimentSpec


@dataclass(frozen=True)
class SplitRows:
    """Row positions (into the trainable rows) of each share."""

    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray


def _holdout(positions: np.ndarray, share: float, *, seed: int, stratify) -> tuple[np.ndarray, np.ndarray]:
    """(kept, held out): `share` of the positions held out, seeded, stratified by `stratify` when given."""
    if share <= 0:
        return positions, positions[:0]
    try:
        kept, held = train_test_split(positions, test_size=share, random_state=seed, stratify=stratify)
    except ValueError as error:  # too few rows, or a class too small for the share
        raise TrainingDataError("split.strategy", f"The rows cannot be split this way: {error}") from error
    return np.asarray(kept), np.asarray(held)


def split_rows(rows: pd.DataFrame, spec: ExperimentSpec) -> SplitRows:
    """Split the trainable rows (workers.ml.training.data.trainable_rows) by spec.split."""
    split = spec.split
    if split.strategy == "time":
        return _time_split(rows, spec)
    target = rows[spec.target].to_numpy() if split.strategy == "stratified" and spec.target else None
    positions = np.arange(len(rows))
    rest, test = _holdout(positions, split.test, seed=spec.seed, stratify=target)
    validation_share = split.validation / (split.train + split.validation)
    train, validation = _holdout(
        rest, validation_share, seed=spec.seed, stratify=target[rest] if target is not None else None
    )
    return SplitRows(train=train, validation=validation, test=test)


def _time_split(rows: pd.DataFrame, spec: ExperimentSpec) -> SplitRows:
    order = np.argsort(rows[spec.split.time_column].to_numpy(), kind="stable")
    total = len(order)
    n_test = math.ceil(spec.split.test * total)
    n_validation = math.ceil(spec.split.validation * total)
    n_train = total - n_test - n_validation
    if n_train < 2:
        raise TrainingDataError("split.train", f"{total} rows leave {max(n_train, 0)} for training; add rows.")
    return SplitRows(
        train=order[:n_train],
        validation=order[n_train : n_train + n_validation],
        test=order[n_train + n_validation :],
    )


def cv_splitter(spec: ExperimentSpec):
    """The folds of the training rows: in time order for time splits (each fold validates on rows newer than it
    trains on), stratified by class for classification, else shuffled k-fold; seeded. None without cross-validation."""
    folds = spec.split.cv_folds
    if folds < 2:
        return None
    if spec.split.strategy == "time":
        return TimeSeriesSplit(n_splits=folds)
    if spec.problem_type in ("binary", "multiclass"):
        return StratifiedKFold(n_splits=folds, shuffle=True, random_state=spec.seed)
    return KFold(n_splits=folds, shuffle=True, random_state=spec.seed)
