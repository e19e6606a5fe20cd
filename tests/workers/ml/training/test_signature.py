"""The input signature serving validates against, and the recorded library versions."""

from dataclasses import replace

import pandas as pd

from tests.workers.ml.training.conftest import make_spec
from workers.ml.training.environment import LIBRARIES, library_versions
from workers.ml.training.signature import MAX_CATEGORIES, input_signature


def test_signature_describes_each_feature_from_the_training_rows():
    train = pd.DataFrame(
        {
            "income": [10.0, None, 30.5],
            "age": [20.0, 30.0, 40.0],
            "region": ["north", "south", "north"],
            "joined": pd.to_datetime(["2020-01-01", "2021-05-06", None]),
            "member": [True, False, True],
            "churned": ["yes", "no", "yes"],
        }
    )
    signature = input_signature(train, make_spec())
    assert signature == {
        "columns": [
            {"name": "income", "kind": "numeric", "dtype": "float64", "nullable": True, "min": 10.0, "max": 30.5},
            {"name": "age", "kind": "numeric", "dtype": "float64", "nullable": False, "min": 20.0, "max": 40.0},
            {
                "name": "region",
                "kind": "categorical",
                "dtype": "string",
                "nullable": False,
                "categories": ["north", "south"],
                "categories_truncated": False,
            },
            {
                "name": "joined",
                "kind": "datetime",
                "dtype": "datetime",
                "nullable": True,
                "min": "2020-01-01T00:00:00+00:00",
                "max": "2021-05-06T00:00:00+00:00",
            },
            {"name": "member", "kind": "boolean", "dtype": "bool", "nullable": False},
        ],
        "target": {"name": "churned", "classes": ["no", "yes"]},
    }


def test_integer_categories_read_the_same_with_or_without_gaps():
    train = pd.DataFrame({"region": pd.array([3, None, 4], dtype="Int64"), "churned": ["a", "b", "a"]})
    spec = replace(make_spec(features=("region",)), feature_kinds={"region": "categorical"})
    column = input_signature(train, spec)["columns"][0]
    assert column["categories"] == ["3", "4"] and column["dtype"] == "int64"


def test_categories_are_capped_most_frequent_first():
    values = [f"c{index}" for index in range(MAX_CATEGORIES + 5)] + ["c7"]
    train = pd.DataFrame({"region": values, "churned": ["a", "b"] * (len(values) // 2)})
    column = input_signature(train, make_spec(features=("region",)))["columns"][0]
    assert len(column["categories"]) == MAX_CATEGORIES and column["categories"][0] == "c7"
    assert column["categories_truncated"] is True


def test_library_versions_name_python_and_every_ml_library():
    versions = library_versions()
    assert set(versions) == {"python", "platform", *LIBRARIES}
    assert versions["scikit-learn"].startswith("1.") and versions["python"].startswith("3.")
