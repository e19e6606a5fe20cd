"""ValidationRules in and out, rule_errors for bad rule input, compare_schemas."""

import pytest

from workers.ml.data.specs import PII_KINDS, SEMANTIC_TYPES, RulesError, ValidationRules, compare_schemas, rule_errors

FULL_RULES = {
    "expected_columns": {"age": "int64", "income": "float64", "segment": "string"},
    "max_missing_share": 0.1,
    "max_missing_share_by_column": {"income": 0.5},
    "ranges": {"age": {"min": 0, "max": 120}, "income": {"min": 0.0, "max": None}},
    "allowed_categories": {"segment": ["gold", "silver"]},
    "unique_columns": ["customer_id"],
    "min_rows": 1000,
}


def test_vocabularies_are_the_documented_ones():
    assert SEMANTIC_TYPES == ("numeric", "categorical", "datetime", "text", "id", "boolean")
    assert PII_KINDS == (
        "email", "phone", "ssn", "cpf", "card_number", "iban", "ip_address", "name", "address", "date_of_birth",
    )  # fmt: skip


def test_rules_round_trip_through_as_dict():
    rules = ValidationRules.from_dict(FULL_RULES)
    assert rules.as_dict() == FULL_RULES
    assert ValidationRules.from_dict(rules.as_dict()) == rules


def test_empty_rules_are_the_defaults():
    assert ValidationRules.from_dict({}) == ValidationRules()
    assert ValidationRules.from_dict({}).is_empty
    assert ValidationRules().as_dict() == {
        "expected_columns": None,
        "max_missing_share": None,
        "max_missing_share_by_column": {},
        "ranges": {},
        "allowed_categories": {},
        "unique_columns": [],
        "min_rows": None,
    }


def test_type_aliases_are_stored_canonically():
    rules = ValidationRules.from_dict({"expected_columns": {"a": "int", "b": "Double", "c": "text", "d": "timestamp"}})
    assert rules.expected_columns == {"a": "int64", "b": "float64", "c": "string", "d": "datetime"}


def test_category_numbers_become_text_and_duplicates_go():
    rules = ValidationRules.from_dict({"allowed_categories": {"tier": [1, "2", 1]}, "unique_columns": ["a", "a"]})
    assert rules.allowed_categories == {"tier": ["1", "2"]}
    assert rules.unique_columns == ["a"]


def test_valid_rules_have_no_errors():
    assert rule_errors(FULL_RULES) == {}
    assert rule_errors({}) == {}


@pytest.mark.parametrize(
    ("rules", "errors"),
    [
        ("min_rows=5", {"rules": ["Rules must be an object with any of: expected_columns, max_missing_share, "
                                  "max_missing_share_by_column, ranges, allowed_categories, unique_columns, "
                                  "min_rows."]}),
        ({"max_rows": 5}, {"max_rows": ["Unknown rule 'max_rows'. Known rules: expected_columns, max_missing_share, "
                                        "max_missing_share_by_column, ranges, allowed_categories, unique_columns, "
                                        "min_rows."]}),
        ({"min_rows": -1}, {"min_rows": ["Minimum rows must be a whole number of 0 or more, not -1."]}),
        ({"min_rows": 2.5}, {"min_rows": ["Minimum rows must be a whole number of 0 or more, not 2.5."]}),
        ({"min_rows": True}, {"min_rows": ["Minimum rows must be a whole number of 0 or more, not True."]}),
        ({"max_missing_share": 1.5}, {"max_missing_share": [
            "Maximum missing share must be a number from 0 to 1, not 1.5."]}),
        ({"max_missing_share": "10%"}, {"max_missing_share": [
            "Maximum missing share must be a number from 0 to 1, not '10%'."]}),
        ({"max_missing_share_by_column": {"a": -0.1}}, {"max_missing_share_by_column": [
            "Column 'a': the maximum missing share must be a number from 0 to 1, not -0.1."]}),
        ({"expected_columns": ["a", "b"]}, {"expected_columns": [
            "Expected columns must map each column name to a type."]}),
        ({"expected_columns": {"a": "integer64"}}, {"expected_columns": [
            "Column 'a': unknown type 'integer64'. Choose one of: int64, float64, bool, string, date, datetime, "
            "binary, other."]}),
        ({"expected_columns": {" ": "int64"}}, {"expected_columns": ["Column names must be non-empty text."]}),
        ({"ranges": {"age": {"min": 10, "max": 5}}}, {"ranges": [
            "Column 'age': the minimum 10 is above the maximum 5."]}),
        ({"ranges": {"age": {}}}, {"ranges": ["Column 'age': give a minimum, a maximum or both."]}),
        ({"ranges": {"age": {"min": "a", "max": float("inf")}}}, {"ranges": [
            "Column 'age': the minimum and maximum must be a finite number."]}),
        ({"ranges": {"age": {"low": 1}}}, {"ranges": ['Column \'age\': a range is {"min": number, "max": number}.']}),
        ({"allowed_categories": {"tier": []}}, {"allowed_categories": [
            "Column 'tier': list at least one allowed value."]}),
        ({"allowed_categories": {"tier": [None]}}, {"allowed_categories": [
            "Column 'tier': allowed values must be text or numbers."]}),
        ({"unique_columns": "id"}, {"unique_columns": ["Unique columns must be a list of column names."]}),
        ({"unique_columns": ["id", ""]}, {"unique_columns": ["Column names must be non-empty text."]}),
    ],
)  # fmt: skip
def test_rule_errors_name_the_field_and_the_problem(rules, errors):
    assert rule_errors(rules) == errors


def test_from_dict_raises_a_value_error_naming_each_bad_field():
    with pytest.raises(ValueError, match="min_rows: Minimum rows must be a whole number") as caught:
        ValidationRules.from_dict({"min_rows": -1, "max_missing_share": 2})
    assert isinstance(caught.value, RulesError)
    assert set(caught.value.errors) == {"min_rows", "max_missing_share"}


def test_compare_schemas_lists_added_removed_and_retyped_columns():
    old = [
        {"name": "id", "dtype": "int64"},
        {"name": "age", "dtype": "int64"},
        {"name": "city", "dtype": "string"},
        {"name": "score", "dtype": "float64"},
    ]
    new = [
        {"name": "id", "dtype": "int64"},
        {"name": "age", "dtype": "float64"},
        {"name": "score", "dtype": "float64"},
        {"name": "country", "dtype": "string"},
        {"name": "zip", "dtype": "string"},
    ]
    assert compare_schemas(old, new) == {
        "added": ["country", "zip"],
        "removed": ["city"],
        "type_changed": [{"name": "age", "old": "int64", "new": "float64"}],
        "unchanged": 2,
    }


def test_compare_schemas_of_identical_and_missing_schemas():
    schema = [{"name": "a", "dtype": "int64", "nullable": False, "semantic_type": "numeric"}]
    assert compare_schemas(schema, schema) == {"added": [], "removed": [], "type_changed": [], "unchanged": 1}
    assert compare_schemas(None, schema) == {"added": ["a"], "removed": [], "type_changed": [], "unchanged": 0}
