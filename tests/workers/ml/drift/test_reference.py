"""build_reference: computed once per model version, stored as one Parquet file."""

import numpy as np
import pandas as pd
import pytest
from evidently.legacy.calculations.stattests.registry import _get_default_stattest
from evidently.legacy.core import ColumnType

from tests.workers.ml.drift.conftest import make_frame, make_predictions
from workers.ml.drift.reference import Reference, build_reference, evidently_default_method


def test_reference_keeps_a_seeded_sample_of_the_signature_columns_with_the_predictions(signature):
    frame = make_frame(5_000, seed=1).assign(unused=1)
    predictions = make_predictions(5_000, seed=1)

    reference = build_reference(frame, signature=signature, predictions=predictions, max_rows=1_000, seed=4)

    assert list(reference.frame.columns) == ["income", "age", "region", "member", "signup", "prediction"]
    assert len(reference.frame) == 1_000 and reference.sampled and reference.source_rows == 5_000
    again = build_reference(frame, signature=signature, predictions=predictions, max_rows=1_000, seed=4)
    pd.testing.assert_frame_equal(reference.frame, again.frame)
    # Each kept row keeps its own prediction: the sample picks the same positions from both.
    merged = frame.assign(prediction=predictions).dropna(subset=["income"])
    kept = reference.frame.dropna(subset=["income"]).merge(merged[["income", "prediction"]], on="income")
    assert len(kept) == reference.frame["income"].notna().sum()
    assert np.allclose(kept["prediction_x"], kept["prediction_y"])


def test_reference_types_columns_by_their_signature_kind(signature):
    reference = build_reference(make_frame(500, seed=2), signature=signature, predictions=None)

    frame = reference.frame
    assert frame["income"].dtype == np.float64 and frame["age"].dtype == np.float64
    assert set(frame["region"].dropna()) == {"north", "south", "east"}
    assert set(frame["member"]) == {"true", "false"}
    assert str(frame["signup"].dtype) == "datetime64[ns, UTC]"
    assert reference.prediction_column is None and not reference.sampled


def test_reference_round_trips_through_parquet_exactly(signature, tmp_path):
    reference = build_reference(
        make_frame(3_000, seed=3), signature=signature, predictions=make_predictions(3_000, seed=3), max_rows=2_000
    )

    reference.to_parquet(tmp_path / "reference.parquet")
    loaded = Reference.from_parquet(tmp_path / "reference.parquet")

    pd.testing.assert_frame_equal(loaded.frame, reference.frame, check_exact=True)
    assert loaded.frame["region"].isna().sum() == reference.frame["region"].isna().sum() > 0
    assert loaded.frame["region"][reference.frame["region"].isna()].map(type).eq(float).all()  # NaN, not None
    assert loaded.columns == reference.columns
    assert loaded.metadata() == reference.metadata()


def test_a_parquet_file_without_reference_metadata_is_refused(tmp_path):
    pd.DataFrame({"a": [1.0]}).to_parquet(tmp_path / "plain.parquet")

    with pytest.raises(ValueError, match="not a drift reference"):
        Reference.from_parquet(tmp_path / "plain.parquet")


def test_reference_precomputes_histograms_and_category_counts(signature):
    reference = build_reference(make_frame(2_000, seed=5), signature=signature, predictions=None)

    income = reference.column("income")
    assert len(income.summary["edges"]) == 21
    assert sum(income.summary["counts"]) + income.summary["missing"] == 2_000
    assert income.few_values is None and income.present_rows == 2_000 - income.summary["missing"]
    member = reference.column("member")
    assert member.few_values == ["false", "true"]
    assert sorted(member.summary["categories"]) == ["false", "true"] and sum(member.summary["counts"]) == 2_000
    assert reference.column("signup").summary["type"] == "range"


def test_binary_reference_predictions_must_be_probabilities(signature):
    frame = make_frame(100, seed=6)

    with pytest.raises(ValueError, match="probabilities"):
        build_reference(frame, signature=signature, predictions=pd.Series(np.arange(100) % 3))


@pytest.mark.parametrize(
    ("kind", "reference", "current"),
    [
        ("numeric", np.arange(2_000) % 50, np.arange(300) % 50),  # large reference, many values
        ("numeric", np.arange(2_000) % 4, np.arange(300) % 4),  # large reference, few values
        ("numeric", np.arange(900) % 50, np.arange(300) % 50),  # small reference, many values
        ("numeric", np.arange(900) % 4, np.arange(300) % 4),  # small, 3 < values <= 5
        ("numeric", np.arange(900) % 2, np.arange(300) % 2),  # small, two values
        ("numeric", np.arange(900) % 3, np.arange(300) % 6),  # small: the current window adds values
        ("categorical", np.array(list("abc") * 700), np.array(list("abcd") * 50)),
        ("categorical", np.array(list("ab") * 400), np.array(list("ab") * 50)),
        ("categorical", np.array(list("abc") * 300), np.array(list("ab") * 50)),
    ],
)
def test_the_method_choice_is_evidentlys_own(kind, reference, current):
    reference, current = pd.Series(reference), pd.Series(current)
    if kind == "numeric":
        reference, current = reference.astype(float), current.astype(float)
    distinct = len(set(reference) | set(current))
    column_type = ColumnType.Numerical if kind == "numeric" else ColumnType.Categorical

    assert evidently_default_method(kind, len(reference), distinct) == (
        _get_default_stattest(reference, current, column_type).name
    )
