"""Every transformation kind on tiny frames, against values computed by hand; validation names the field at fault."""

import pandas as pd
import pytest

from workers.ml.features.transforms import TransformationError, compute_feature_values, validate_transformation

SOURCE_COLUMNS = {"user": "id", "at": "datetime", "amount": "numeric", "shop": "categorical", "born": "datetime"}


def at(text: str) -> pd.Timestamp:
    return pd.Timestamp(f"2026-03-02 {text}")


# user 1: four events (two at 10:30), user 2: one; a row without a timestamp is skipped.
SOURCE = pd.DataFrame(
    {
        "user": [1, 1, 1, 2, 1, 1, 1],
        "at": [at("10:00"), at("10:30"), at("10:30"), at("10:00"), at("11:00"), at("12:00"), None],
        "amount": [4.0, None, 2.0, 8.0, 1.0, 5.0, 100.0],
        "shop": ["a", "b", "b", "a", "c", "a", "z"],
        "born": pd.to_datetime(
            ["2000-02-29", "1990-12-31", "1990-12-31", "2001-01-01", "2024-07-15", "1980-01-01", None]
        ),
    }
)


def values(spec: dict, **bounds) -> list:
    spec = validate_transformation(spec, source_columns=SOURCE_COLUMNS)
    result = compute_feature_values(SOURCE, entity_keys=["user"], timestamp="at", spec=spec, name="v", **bounds)
    assert list(result.columns) == ["user", "event_timestamp", "v"]
    return [None if pd.isna(value) else value for value in result["v"]]


def test_row_wise_kinds():
    assert values({"kind": "passthrough", "column": "shop"}) == ["a", "b", "b", "a", "c", "a"]
    assert values({"kind": "expression", "expression": "amount * 2 + 1"}) == [9.0, None, 5.0, 17.0, 3.0, 11.0]
    assert values({"kind": "log", "column": "amount"}) == pytest.approx(
        [1.3862944, None, 0.6931472, 2.0794415, 0.0, 1.6094379]
    )
    assert values({"kind": "clip", "column": "amount", "lower": 2, "upper": 5}) == [4.0, None, 2.0, 5.0, 2.0, 5.0]
    assert values({"kind": "clip", "column": "amount", "lower": None, "upper": 3}) == [3.0, None, 2.0, 3.0, 1.0, 3.0]
    # [-inf, 2) -> 0, [2, 5) -> 1, [5, inf) -> 2
    assert values({"kind": "bucketize", "column": "amount", "boundaries": [2, 5]}) == [1, None, 1, 2, 0, 2]


@pytest.mark.parametrize(
    ("part", "expected"),
    [
        ("year", [2000, 1990, 1990, 2001, 2024, 1980]),
        ("month", [2, 12, 12, 1, 7, 1]),
        ("day", [29, 31, 31, 1, 15, 1]),
        ("weekday", [1, 0, 0, 0, 0, 1]),  # Monday = 0: 2000-02-29 was a Tuesday, 1990-12-31 a Monday
        ("hour", [0, 0, 0, 0, 0, 0]),
        ("dayofyear", [60, 365, 365, 1, 197, 1]),
    ],
)
def test_date_parts(part, expected):
    assert values({"kind": "date_part", "column": "born", "part": part}) == expected


def test_the_event_timestamp_is_utc():
    source = SOURCE.assign(at=SOURCE["at"].dt.tz_localize("Europe/Berlin"))
    spec = {"kind": "passthrough", "column": "amount"}
    result = compute_feature_values(source, entity_keys=["user"], timestamp="at", spec=spec, name="v")
    assert result["event_timestamp"].iloc[0] == pd.Timestamp("2026-03-02 09:00")


WINDOW_CASES = {
    # user 1 events: 10:00 (4, a), 10:30 (None, b), 10:30 (2, b), 11:00 (1, c), 12:00 (5, a); a window of 1 hour
    # is (t - 1h, t]: at 10:30 both 10:30 events and the 10:00 one are in, at 11:00 and 12:00 the event exactly an
    # hour earlier is out.
    ("count", "amount"): [1, 2, 2, 1, 2, 1],
    ("count", "*"): [1, 3, 3, 1, 3, 1],
    ("sum", "amount"): [4.0, 6.0, 6.0, 8.0, 3.0, 5.0],
    ("mean", "amount"): [4.0, 3.0, 3.0, 8.0, 1.5, 5.0],
    ("min", "amount"): [4.0, 2.0, 2.0, 8.0, 1.0, 5.0],
    ("max", "amount"): [4.0, 4.0, 4.0, 8.0, 2.0, 5.0],
    ("last", "amount"): [4.0, 2.0, 2.0, 8.0, 1.0, 5.0],  # the latest non-missing value
    ("last", "shop"): ["a", "b", "b", "a", "c", "a"],
    ("distinct_count", "shop"): [1, 2, 2, 1, 2, 1],
}


@pytest.mark.parametrize(("function", "column"), WINDOW_CASES)
def test_window_aggregations_over_one_hour(function, column):
    spec = {"kind": "window", "column": column, "function": function, "window": "1h"}
    assert values(spec) == WINDOW_CASES[(function, column)]


def test_custom_window_lengths():
    assert values({"kind": "window", "column": "*", "function": "count", "window": "90m"}) == [1, 3, 3, 1, 4, 2]
    assert values({"kind": "window", "column": "amount", "function": "sum", "window": "1d"}) == [
        4.0, 6.0, 6.0, 8.0, 7.0, 12.0,
    ]  # fmt: skip


@pytest.mark.parametrize(
    "spec",
    [
        {"kind": "window", "column": "amount", "function": "sum", "window": "1h"},
        {"kind": "window", "column": "shop", "function": "distinct_count", "window": "90m"},
        {"kind": "expression", "expression": "amount - 1"},
    ],
)
def test_incremental_materialisation_equals_a_full_one(spec):
    spec = validate_transformation(spec, source_columns=SOURCE_COLUMNS)
    full = compute_feature_values(SOURCE, entity_keys=["user"], timestamp="at", spec=spec, name="v")
    parts = [
        compute_feature_values(SOURCE, entity_keys=["user"], timestamp="at", spec=spec, name="v", **bounds)
        for bounds in ({"end": at("10:30")}, {"start": at("10:30"), "end": at("11:30")}, {"start": at("11:30")})
    ]
    assert [len(part) for part in parts] == [2, 3, 1]
    combined = pd.concat(parts).sort_values(["event_timestamp", "user"], kind="stable").reset_index(drop=True)
    expected = full.sort_values(["event_timestamp", "user"], kind="stable").reset_index(drop=True)
    pd.testing.assert_frame_equal(combined, expected, check_dtype=False)


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"kind": "python", "column": "amount"}, "kind"),
        ({"kind": "log", "column": "price"}, "column"),
        ({"kind": "log", "column": "shop"}, "column"),
        ({"kind": "expression", "expression": "amount.real"}, "expression"),
        ({"kind": "expression", "expression": "shop + 1"}, "expression"),
        ({"kind": "clip", "column": "amount", "lower": 5, "upper": 1}, "upper"),
        ({"kind": "clip", "column": "amount", "lower": None, "upper": None}, "lower"),
        ({"kind": "bucketize", "column": "amount", "boundaries": [3, 1]}, "boundaries"),
        ({"kind": "bucketize", "column": "amount", "boundaries": []}, "boundaries"),
        ({"kind": "date_part", "column": "born", "part": "minute"}, "part"),
        ({"kind": "date_part", "column": "amount", "part": "year"}, "column"),
        ({"kind": "window", "column": "amount", "function": "median", "window": "1h"}, "function"),
        ({"kind": "window", "column": "amount", "function": "sum", "window": "1w"}, "window"),
        ({"kind": "window", "column": "amount", "function": "sum", "window": "0d"}, "window"),
        ({"kind": "window", "column": "*", "function": "sum", "window": "1d"}, "column"),
        ({"kind": "window", "column": "shop", "function": "mean", "window": "1d"}, "column"),
    ],
)
def test_validation_names_the_field_at_fault(spec, field):
    with pytest.raises(TransformationError) as refused:
        validate_transformation(spec, source_columns=SOURCE_COLUMNS)
    assert refused.value.field == field


def test_validation_normalises_the_spec():
    spec = {"kind": "expression", "expression": " log1p(amount) ", "ignored": 1}
    assert validate_transformation(spec, source_columns=SOURCE_COLUMNS) == {
        "kind": "expression", "expression": "log1p(amount)", "columns": ["amount"],
    }  # fmt: skip
