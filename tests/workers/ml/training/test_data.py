"""Loading the needed columns, and each reason the data cannot be trained on (field + message)."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.workers.ml.training.conftest import make_spec
from workers.ml.training.data import check_training_data, load_frame, trainable_rows
from workers.ml.training.errors import TrainingDataError
from workers.ml.training.spec import Preparation, Split


def refusal(frame: pd.DataFrame, spec) -> tuple[str, str]:
    with pytest.raises(TrainingDataError) as caught:
        check_training_data(frame, spec)
    return caught.value.field, caught.value.message


def test_good_data_passes_and_rows_without_a_target_are_dropped(frame):
    frame.loc[[0, 5], "churned"] = None
    check_training_data(frame, make_spec())
    rows = trainable_rows(frame, make_spec())
    assert len(rows) == len(frame) - 2 and rows.index.tolist() == list(range(len(frame) - 2))


def test_missing_target_column(frame):
    assert refusal(frame.drop(columns="churned"), make_spec()) == (
        "target",
        "No column named 'churned' in this dataset version.",
    )


def test_target_with_no_values(frame):
    frame["churned"] = None
    assert refusal(frame, make_spec()) == ("target", "'churned' has no values: every row is missing.")


def test_constant_target(frame):
    frame["churned"] = "no"
    assert refusal(frame, make_spec()) == ("target", "'churned' is constant: there is nothing to learn.")


def test_binary_needs_exactly_two_classes(frame):
    assert refusal(frame, make_spec(target="segment")) == (
        "target",
        "'segment' has 3 classes; binary classification needs exactly 2.",
    )


def test_multiclass_with_two_classes(frame):
    assert refusal(frame, make_spec("multiclass", target="churned")) == (
        "target",
        "'churned' has 2 classes; choose binary classification instead.",
    )


def test_regression_needs_a_numeric_target(frame):
    assert refusal(frame, make_spec("regression", target="region")) == (
        "target",
        "'region' is not numeric; regression needs a numeric target.",
    )


def test_all_missing_feature(frame):
    frame["age"] = np.nan
    assert refusal(frame, make_spec()) == ("features", "'age' has no values: every row is missing. Leave it out.")


def test_class_of_one_row_under_stratification(frame):
    frame.loc[3, "segment"] = "vip"
    field, message = refusal(frame, make_spec("multiclass"))
    assert field == "split.strategy"
    assert message.startswith("Class 'vip' of 'segment' has a single row: it cannot be stratified")


def test_class_of_one_row_is_fine_with_a_random_split(frame):
    frame.loc[3, "segment"] = "vip"
    check_training_data(frame, make_spec("multiclass", split=Split(strategy="random", cv_folds=0)))


def test_datetime_column_used_as_a_numeric_feature(frame):
    spec = make_spec(features=("joined",))
    spec = replace(spec, feature_kinds={"joined": "numeric"})
    assert refusal(frame, spec) == (
        "feature_kinds",
        "'joined' holds datetime values; it cannot be used as a numeric feature.",
    )


def test_text_column_used_as_a_boolean_feature(frame):
    spec = replace(make_spec(features=("region",)), feature_kinds={"region": "boolean"})
    assert refusal(frame, spec) == (
        "feature_kinds",
        "'region' holds values that are not true/false ('east', 'north', 'south'); treat it as categorical.",
    )


def test_empty_feature_list(frame):
    assert refusal(frame, make_spec(features=())) == ("features", "Choose at least one feature column.")


def test_too_few_rows_after_dropping_incomplete_ones(frame):
    frame.loc[frame.index[:-5], "age"] = np.nan
    frame.loc[frame.index[-5:], ["income", "region"]] = [40_000.0, "north"]
    assert refusal(frame, make_spec(preparation=Preparation(missing="drop"))) == (
        "preparation.missing",
        "Only 5 rows have every feature; training needs at least 10. Fill missing values instead of dropping rows.",
    )


def test_too_few_rows():
    frame = pd.DataFrame({"age": [1.0, 2, 3, 4], "churned": ["a", "b", "a", "b"]})
    assert refusal(frame, make_spec(features=("age",))) == (
        "dataset_version",
        "The version has 4 usable rows; training needs at least 10.",
    )


def test_target_encoding_needs_enough_rows_per_class(frame):
    frame["churned"] = np.where(frame.index < 8, "rare", "common")
    spec = make_spec(preparation=Preparation(encoding="target"), split=Split(cv_folds=5))
    assert refusal(frame, spec) == (
        "preparation.encoding",
        "Class 'rare' of 'churned' has 8 rows; target encoding needs at least 10 with these shares. "
        "Choose one-hot or ordinal encoding.",
    )


def test_time_split_needs_every_row_to_have_a_time(frame):
    frame.loc[2, "joined"] = pd.NaT
    spec = make_spec(features=("age",), split=Split(strategy="time", time_column="joined", cv_folds=0))
    assert refusal(frame, spec) == (
        "split.time_column",
        "'joined' has missing values: every row needs one to be ordered.",
    )


def test_load_frame_reads_only_the_needed_columns_and_keeps_types(tmp_path):
    table = pa.table(
        {
            "age": pa.array([30, None, 41], pa.int64()),
            "code": pa.array([7, None, 7], pa.int64()),
            "day": pa.array([0, 1, 2], pa.date32()),
            "churned": pa.array(["yes", "no", "yes"]),
            "gender": pa.array(["f", "m", "f"]),
            "unused": pa.array([1.5, 2.5, 3.5]),
        }
    )
    pq.write_table(table, tmp_path / "data.parquet")
    spec = replace(
        make_spec(features=("age",)),
        features=("age", "code", "day"),
        feature_kinds={"age": "numeric", "code": "categorical", "day": "datetime"},
        sensitive_columns=("gender",),
    )
    frame = load_frame(tmp_path / "data.parquet", spec)
    assert list(frame.columns) == ["age", "code", "day", "churned", "gender"]
    assert str(frame["code"].dtype) == "Int64" and frame["code"].tolist()[0] == 7
    assert frame["day"].dtype.kind == "M"
    check_training_data(
        pd.concat([frame] * 5, ignore_index=True), replace(spec, split=Split(strategy="random", cv_folds=0))
    )
