"""Schema inference (dtype, nullable, semantic type) and per-column profile numbers on small frames."""

import datetime as dt
import json
import math
import uuid

import numpy as np
import pyarrow as pa
import pytest

from workers.ml.data.profile import summarise_column


def summary(values, arrow_type=None, name="x"):
    return summarise_column(name, pa.chunked_array([pa.array(values, arrow_type)]))


def test_numeric_profile_numbers_are_exact():
    profile = summary([1, 2, 3, 4, 10, None], pa.int64(), name="visits").profile
    assert {k: profile[k] for k in ("name", "dtype", "semantic_type", "count", "missing", "distinct")} == {
        "name": "visits", "dtype": "int64", "semantic_type": "numeric", "count": 5, "missing": 1, "distinct": 5,
    }  # fmt: skip
    assert profile["missing_share"] == 1 / 6
    assert (profile["min"], profile["max"], profile["mean"]) == (1, 10, 4.0)
    assert profile["std"] == math.sqrt(50 / 4)
    expected = np.percentile([1, 2, 3, 4, 10], [5, 25, 50, 75, 95])
    assert list(profile["quantiles"]) == ["p05", "p25", "p50", "p75", "p95"]
    assert list(profile["quantiles"].values()) == pytest.approx(expected.tolist(), abs=1e-12)
    assert list(profile["quantiles"].values()) == pytest.approx([1.2, 2.0, 3.0, 4.0, 8.8], abs=1e-12)
    assert profile["histogram"]["counts"] == [1, 0, 1, 0, 1, 0, 1] + [0] * 12 + [1]
    assert profile["histogram"]["edges"] == pytest.approx(np.linspace(1, 10, 21).tolist(), abs=1e-12)
    assert profile["top_values"] is None


def test_float_profile_is_json_safe_with_infinities():
    profile = summary([1.5, float("inf"), 2.5, None]).profile
    assert profile["min"] == 1.5
    assert profile["max"] is None  # infinity has no JSON form
    assert profile["mean"] is None
    assert sum(profile["histogram"]["counts"]) == 2  # finite values only
    json.dumps(profile, allow_nan=False)


def test_categorical_profile_has_top_values_most_frequent_first():
    profile = summary(["b", "a", "b", "c", "a", "b", None], name="segment").profile
    assert profile["semantic_type"] == "categorical"
    assert (profile["count"], profile["missing"], profile["distinct"]) == (6, 1, 3)
    assert profile["top_values"] == [{"value": "b", "count": 3}, {"value": "a", "count": 2}, {"value": "c", "count": 1}]
    assert profile["quantiles"] is None
    assert profile["histogram"] is None
    assert profile["mean"] is None


def test_top_value_ties_keep_the_order_of_first_appearance():
    profile = summary(["y", "x", "x", "y", "z"]).profile
    assert profile["top_values"] == [{"value": "y", "count": 2}, {"value": "x", "count": 2}, {"value": "z", "count": 1}]


def test_top_values_stop_at_ten():
    profile = summary([f"v{i}" for i in range(30)] * 2).profile
    assert len(profile["top_values"]) == 10
    assert profile["top_values"][0] == {"value": "v0", "count": 2}


def test_boolean_profile():
    profile = summary([True, False, True, None], name="active").profile
    assert profile["semantic_type"] == "boolean"
    assert (profile["count"], profile["distinct"], profile["mean"]) == (3, 2, 2 / 3)
    assert profile["top_values"] == [{"value": True, "count": 2}, {"value": False, "count": 1}]


def test_datetime_profile_uses_iso_strings():
    values = [dt.datetime(2024, 1, 1), dt.datetime(2024, 1, 11), None, dt.datetime(2024, 1, 21)]
    profile = summary(values, pa.timestamp("us"), name="seen_at").profile
    assert profile["semantic_type"] == "datetime"
    assert (profile["min"], profile["max"]) == ("2024-01-01T00:00:00", "2024-01-21T00:00:00")
    assert profile["distinct"] == 3
    assert profile["histogram"]["edges"][0] == "2024-01-01T00:00:00"
    assert profile["histogram"]["edges"][10] == "2024-01-11T00:00:00"
    assert profile["histogram"]["edges"][-1] == "2024-01-21T00:00:00"
    assert profile["histogram"]["counts"] == [1] + [0] * 9 + [1] + [0] * 8 + [1]
    json.dumps(profile, allow_nan=False)


def test_date_profile_min_and_max_are_dates():
    profile = summary([dt.date(2024, 3, 1), dt.date(2023, 12, 31)], pa.date32(), name="day").profile
    assert (profile["dtype"], profile["min"], profile["max"]) == ("date", "2023-12-31", "2024-03-01")


def test_text_holding_iso_dates_is_a_datetime_column():
    values = [f"2024-01-{day:02d}" for day in range(1, 29)] * 4 + ["not a date"]
    result = summary(values, name="signup")
    assert result.schema == {"name": "signup", "dtype": "string", "nullable": False, "semantic_type": "datetime"}
    assert (result.profile["min"], result.profile["max"]) == ("2024-01-01T00:00:00", "2024-01-28T00:00:00")


@pytest.mark.parametrize(
    ("name", "values", "arrow_type", "semantic"),
    [
        ("customer_id", list(range(100)), pa.int64(), "id"),
        ("customerId", list(range(100)), pa.int64(), "id"),
        ("user_id", [1, 2] * 50, pa.int64(), "numeric"),  # repeats: not an identifier
        ("age", list(range(100)), pa.int64(), "numeric"),
        ("order_id", [f"o-{i}" for i in range(100)], None, "id"),
        ("token", [str(uuid.UUID(int=i)) for i in range(40)], None, "id"),  # unique values of one shape
        ("city", ["rio", "oslo", "lima"] * 40, None, "categorical"),
        ("comment", [f"this is a long free text comment number {i} about a thing" for i in range(100)], None, "text"),
        ("active", [True, False] * 5, pa.bool_(), "boolean"),
        ("day", [dt.date(2024, 1, 1)] * 3, pa.date32(), "datetime"),
        ("empty", [None, None], pa.string(), "categorical"),
    ],
)
def test_semantic_types_are_inferred(name, values, arrow_type, semantic):
    assert summary(values, arrow_type, name=name).schema["semantic_type"] == semantic


def test_schema_entry_reports_nullability():
    assert summary([1, None], pa.int64(), name="a").schema == {
        "name": "a", "dtype": "int64", "nullable": True, "semantic_type": "numeric",
    }  # fmt: skip
    assert summary([1.5, 2.5], pa.float64(), name="b").schema["nullable"] is False


def test_an_all_missing_column_profiles_without_numbers():
    profile = summary([None, None, None], pa.float64()).profile
    assert (profile["count"], profile["missing"], profile["missing_share"], profile["distinct"]) == (0, 3, 1.0, 0)
    assert (profile["min"], profile["mean"], profile["histogram"]) == (None, None, None)


def test_pipeline_profile_is_json_serialisable(ingest):
    data = b"id,score,when,flag,label\n1,1.5,2024-01-01 10:00:00,true,a\n2,,2024-01-02 10:00:00,false,b\n3,inf,,true,\n"
    processed = ingest(data, "a.csv")
    json.dumps([processed.schema, processed.profile, processed.pii_findings, processed.validation], allow_nan=False)
    assert [p["name"] for p in processed.profile] == ["id", "score", "when", "flag", "label"]
