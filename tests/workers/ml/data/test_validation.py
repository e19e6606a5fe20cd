"""Each validation rule passes and fails with a message a person understands; schema drift fails by default."""

import datetime as dt

import pyarrow as pa

from workers.ml.data.validation import validate_table

TABLE = pa.table(
    {
        "customer_id": pa.array([1, 2, 3, 4, 5, 5, 7, 8, 17, 17], pa.int64()),
        "income": pa.array([1000.0, 250000.0, 5000.0, None, -5.0, 3000.0, 210000.0, 100.0, 50.0, 60.0]),
        "segment": pa.array(["gold", "silver", "gold", "vip", None, "gold", "platinum", "vip", "gold", "silver"]),
        "email": pa.array(["a@x.io"] * 8 + [None, None]),
        "day": pa.array([dt.date(2024, 1, d) for d in range(1, 11)], pa.date32()),
    }
)
SCHEMA = [
    {"name": "customer_id", "dtype": "int64"},
    {"name": "income", "dtype": "float64"},
    {"name": "segment", "dtype": "string"},
    {"name": "email", "dtype": "string"},
    {"name": "day", "dtype": "date"},
]


def checks(rules, previous_schema=None, table=TABLE):
    report = validate_table(table, rules, previous_schema)
    return report["passed"], [(c["rule"], c["column"], c["passed"], c["message"]) for c in report["checks"]]


def test_no_rules_pass_with_no_checks():
    assert validate_table(TABLE, {}) == {"passed": True, "checks": []}


def test_min_rows():
    assert checks({"min_rows": 10}) == (
        True,
        [("min_rows", None, True, "The dataset has 10 rows (at least 10 required).")],
    )
    assert checks({"min_rows": 1000}) == (
        False,
        [("min_rows", None, False, "The dataset has 10 rows; at least 1,000 are required.")],
    )


def test_max_missing_share_applies_to_every_column_unless_overridden():
    passed, found = checks({"max_missing_share": 0.1, "max_missing_share_by_column": {"email": 0.25}})
    assert passed is True
    assert found == [
        ("max_missing_share", "customer_id", True, "customer_id: 0.0% missing (limit 10.0%)."),
        ("max_missing_share", "income", True, "income: 10.0% missing (limit 10.0%)."),
        ("max_missing_share", "segment", True, "segment: 10.0% missing (limit 10.0%)."),
        ("max_missing_share", "email", True, "email: 20.0% missing (limit 25.0%)."),
        ("max_missing_share", "day", True, "day: 0.0% missing (limit 10.0%)."),
    ]
    passed, found = checks({"max_missing_share_by_column": {"email": 0.05}})
    assert (passed, found) == (
        False,
        [("max_missing_share", "email", False, "email: 20.0% missing, above the limit of 5.0%.")],
    )


def test_range_failures_count_and_show_what_was_seen():
    report = validate_table(TABLE, {"ranges": {"income": {"min": 0, "max": 200000}}})
    check = report["checks"][0]
    assert report["passed"] is False
    assert check["message"] == (
        "income: 1 value below the minimum 0 (min seen -5) and 2 values above the maximum 200000 (max seen 250000)."
    )
    assert check["details"] == {
        "below": 1, "above": 2, "min": 0, "max": 200000, "min_seen": -5.0, "max_seen": 250000.0,
    }  # fmt: skip


def test_range_passes_and_one_sided_ranges():
    assert checks({"ranges": {"customer_id": {"min": 1, "max": 17}}})[1] == [
        ("range", "customer_id", True, "customer_id: all values within [1, 17].")
    ]
    assert checks({"ranges": {"income": {"max": 300000.5}}})[1] == [
        ("range", "income", True, "income: all values at most 300000.5.")
    ]
    assert checks({"ranges": {"income": {"min": 0}}})[1] == [
        ("range", "income", False, "income: 1 value below the minimum 0 (min seen -5).")
    ]


def test_a_range_on_a_text_column_fails_clearly():
    assert checks({"ranges": {"segment": {"min": 0}}}) == (
        False,
        [("range", "segment", False, "segment: a range needs a numeric column; this one is string.")],
    )


def test_allowed_categories():
    passed, found = checks({"allowed_categories": {"segment": ["gold", "silver"]}})
    assert (passed, found) == (
        False,
        [("allowed_categories", "segment", False,
          "segment: 3 rows hold values outside the allowed categories: 'vip', 'platinum'.")],
    )  # fmt: skip
    assert checks({"allowed_categories": {"segment": ["gold", "silver", "vip", "platinum"]}})[1] == [
        ("allowed_categories", "segment", True, "segment: all values are among the 4 allowed categories.")
    ]


def test_allowed_categories_compare_numbers_as_text():
    table = pa.table({"tier": pa.array([1, 2, 3])})
    assert checks({"allowed_categories": {"tier": [1, 2]}}, table=table)[1] == [
        ("allowed_categories", "tier", False, "tier: 1 row holds values outside the allowed categories: '3'.")
    ]


def test_unique_key_columns():
    assert checks({"unique_columns": ["customer_id"]}) == (
        False,
        [("unique", "customer_id", False, "customer_id: 2 values appear more than once (e.g. 5, 17).")],
    )
    assert checks({"unique_columns": ["day"]})[1] == [("unique", "day", True, "day: all 10 values are unique.")]
    assert checks({"unique_columns": ["email"]})[1] == [
        ("unique", "email", False, "email: 1 value appears more than once (e.g. 'a@x.io'); 2 missing values in a key "
         "column.")
    ]  # fmt: skip


def test_rules_naming_absent_columns_fail():
    passed, found = checks(
        {"ranges": {"age": {"min": 0}}, "allowed_categories": {"tier": ["a"]}, "unique_columns": ["uid"]}
    )
    assert passed is False
    assert found == [
        ("range", "age", False, "age: column not found in the data."),
        ("allowed_categories", "tier", False, "tier: column not found in the data."),
        ("unique", "uid", False, "uid: column not found in the data."),
    ]


def test_expected_columns_from_the_rules():
    rules = {"expected_columns": {"customer_id": "int64", "income": "int64", "segment": "string", "age": "int64",
                                  "day": "date"}}  # fmt: skip
    report = validate_table(TABLE, rules)
    assert report["passed"] is False
    check = report["checks"][0]
    assert check["message"] == (
        "The columns differ from the expected columns: missing age; unexpected email; income is float64, "
        "expected int64."
    )
    assert check["details"] == {
        "missing": ["age"],
        "unexpected": ["email"],
        "type_changed": [{"name": "income", "expected": "int64", "found": "float64"}],
        "source": "rules",
    }


def test_expected_columns_default_to_the_previous_schema_so_drift_is_caught():
    assert checks({}, previous_schema=SCHEMA) == (
        True,
        [("expected_columns", None, True,
          "All 5 expected columns are present with the expected types (from the previous version's schema).")],
    )  # fmt: skip
    drifted = [*SCHEMA[:3], {"name": "phone", "dtype": "string"}, {"name": "day", "dtype": "datetime"}]
    assert checks({}, previous_schema=drifted) == (
        False,
        [("expected_columns", None, False,
          "The columns differ from the expected columns (from the previous version's schema): missing phone; "
          "unexpected email; day is date, expected datetime.")],
    )  # fmt: skip


def test_rules_with_expected_columns_win_over_the_previous_schema():
    rules = {"expected_columns": {c["name"]: c["dtype"] for c in SCHEMA}}
    drifted = [{"name": "other", "dtype": "string"}]
    report = validate_table(TABLE, rules, drifted)
    assert report["passed"] is True
    assert report["checks"][0]["details"]["source"] == "rules"


def test_checks_come_in_a_fixed_order():
    rules = {
        "unique_columns": ["customer_id"],
        "allowed_categories": {"segment": ["gold"]},
        "ranges": {"income": {"min": 0}},
        "max_missing_share": 0.5,
        "min_rows": 1,
        "expected_columns": {c["name"]: c["dtype"] for c in SCHEMA},
    }
    assert [c[0] for c in checks(rules)[1]] == (
        ["min_rows", "expected_columns"] + ["max_missing_share"] * 5 + ["range", "allowed_categories", "unique"]
    )


def test_the_pipeline_validates_every_version_and_catches_drift(ingest):
    first = ingest(b"id,age\n1,30\n2,40\n", "v1.csv", rules={"min_rows": 2})
    assert first.validation["passed"] is True
    second = ingest(b"id,age,city\n1,30.5,rio\n", "v2.csv", rules={"min_rows": 2}, previous_schema=first.schema)
    assert second.validation["passed"] is False
    assert [c["message"] for c in second.validation["checks"] if not c["passed"]] == [
        "The dataset has 1 row; at least 2 are required.",
        "The columns differ from the expected columns (from the previous version's schema): unexpected city; age is "
        "float64, expected int64.",
    ]
