"""The experiment spec: request validation with field-level errors, profile checks, round trip, and a light import."""

import subprocess
import sys
from pathlib import Path

import pytest

from workers.ml.training.spec import SpecError, build_spec, profile_errors, spec_from_dict

ROOT = Path(__file__).resolve().parents[4]
COLUMNS = [
    {"name": "customer_id", "dtype": "int64", "semantic_type": "id"},
    {"name": "income", "dtype": "float64", "semantic_type": "numeric"},
    {"name": "region", "dtype": "string", "semantic_type": "categorical"},
    {"name": "joined", "dtype": "date", "semantic_type": "datetime"},
    {"name": "email", "dtype": "string", "semantic_type": "text", "pii": True},
    {"name": "gender", "dtype": "string", "semantic_type": "categorical", "sensitive": True},
    {"name": "churned", "dtype": "string", "semantic_type": "categorical"},
]
DEFAULTS = {"problem_type": "binary", "primary_metric": "f1"}


def errors_of(data: dict, columns=COLUMNS) -> dict[str, list[str]]:
    with pytest.raises(SpecError) as caught:
        build_spec(data, columns=columns, defaults=DEFAULTS)
    return caught.value.errors


def test_just_launch_fills_defaults_from_the_columns_and_the_project():
    spec = build_spec({"target": "churned"}, columns=COLUMNS, defaults=DEFAULTS)
    assert spec.problem_type == "binary"
    assert spec.features == ("income", "region", "joined")  # no id, no personal data, no protected attribute
    assert spec.feature_kinds == {"income": "numeric", "region": "categorical", "joined": "datetime"}
    assert spec.algorithms == ("logistic_regression", "random_forest", "lightgbm")
    assert spec.primary_metric == "f1"
    assert spec.sensitive_columns == ("gender",)
    assert spec.split.strategy == "stratified"
    assert spec.preparation.scaling == "standard"  # logistic regression needs scaled inputs


def test_recorded_spec_round_trips():
    spec = build_spec({"target": "churned", "search": {"method": "bayesian"}}, columns=COLUMNS, defaults=DEFAULTS)
    assert spec_from_dict(spec.as_dict()) == spec


def test_missing_target_is_a_target_error():
    assert errors_of({"target": "nope"}) == {"target": ["No column named 'nope' in this dataset version."]}


def test_datetime_column_chosen_as_numeric_feature_is_refused():
    errors = errors_of({"target": "churned", "features": ["joined"], "feature_kinds": {"joined": "numeric"}})
    assert errors == {"feature_kinds": ["'joined' holds date values; it cannot be used as a numeric feature."]}


def test_empty_feature_list_is_refused():
    assert errors_of({"target": "churned", "features": []}) == {"features": ["Choose at least one feature column."]}


def test_zero_trial_budget_is_refused():
    errors = errors_of({"target": "churned", "search": {"method": "random", "max_trials": 0}})
    assert errors == {"search.max_trials": ["A search needs a budget of at least one trial."]}


def test_shares_must_add_up():
    errors = errors_of({"target": "churned", "split": {"train": 0.5, "validation": 0.1, "test": 0.1}})
    assert errors == {"split.train": ["Train, validation and test shares must add up to 1."]}


def test_search_without_validation_rows_or_folds_is_refused():
    data = {
        "target": "churned",
        "split": {"train": 0.8, "validation": 0, "test": 0.2, "cv_folds": 0},
        "search": {"method": "grid"},
    }
    assert errors_of(data) == {
        "split.validation": ["A search needs validation rows or cross-validation (2 folds or more)."]
    }


def test_clustering_cannot_use_target_encoding():
    data = {
        "problem_type": "clustering",
        "features": ["income", "region"],
        "split": {"strategy": "random", "train": 0.7, "validation": 0.15, "test": 0.15},
        "preparation": {"encoding": "target"},
    }
    assert errors_of(data) == {"preparation.encoding": ["Target encoding needs a target; clustering has none."]}


def _spec():
    return build_spec({"target": "churned", "features": ["income", "region"]}, columns=COLUMNS, defaults=DEFAULTS)


def test_profile_errors_name_constant_target_and_all_missing_features():
    profile = [
        {"name": "churned", "distinct": 1, "missing_share": 0.0, "top_values": [{"value": "no", "count": 50}]},
        {"name": "income", "missing_share": 1.0},
    ]
    assert profile_errors(_spec(), profile=profile, row_count=50) == {
        "target": ["'churned' is constant: there is nothing to learn."],
        "features": ["'income' has no values: every row is missing. Leave it out."],
    }


def test_profile_errors_refuse_a_class_of_one_row_under_stratification():
    profile = [
        {
            "name": "churned",
            "distinct": 2,
            "missing_share": 0.0,
            "top_values": [{"value": "no", "count": 49}, {"value": "yes", "count": 1}],
        }
    ]
    assert list(profile_errors(_spec(), profile=profile, row_count=50)) == ["split.strategy"]


def test_profile_errors_refuse_too_few_rows_and_three_classes_for_binary():
    profile = [{"name": "churned", "distinct": 3, "missing_share": 0.0, "top_values": []}]
    assert profile_errors(_spec(), profile=profile, row_count=5) == {
        "dataset_version": ["The version has 5 rows; training needs at least 10."],
        "target": ["'churned' has 3 classes; binary classification needs exactly 2."],
    }


def test_importing_the_spec_loads_no_numpy_pandas_sklearn_or_django():
    code = (
        "import sys, workers.ml.training.spec; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'numpy', 'pandas', 'sklearn', 'django', 'pyarrow', 'lightgbm', 'optuna'}))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_training_package_init_stays_empty():
    assert (ROOT / "workers/ml/training/__init__.py").read_text() == ""


def test_sensitive_columns_stay_out_of_the_default_features_but_may_be_chosen():
    columns = [
        {"name": "age", "dtype": "int64", "semantic_type": "numeric"},
        {"name": "gender", "dtype": "string", "semantic_type": "categorical"},
        {"name": "region", "dtype": "string", "semantic_type": "categorical", "sensitive": True},
        {"name": "churned", "dtype": "string", "semantic_type": "categorical"},
    ]
    defaults = {"problem_type": "binary"}
    marked = build_spec({"target": "churned"}, columns=columns, defaults=defaults)
    assert (marked.features, marked.sensitive_columns) == (("age", "gender"), ("region",))
    named = build_spec({"target": "churned", "sensitive_columns": ["gender"]}, columns=columns, defaults=defaults)
    assert (named.features, named.sensitive_columns) == (("age",), ("gender",))  # region stays marked
    chosen = build_spec(
        {"target": "churned", "features": ["age", "gender"], "sensitive_columns": ["gender"]},
        columns=columns,
        defaults=defaults,
    )
    assert chosen.features == ("age", "gender")  # an explicit choice is the user's, recorded in the spec
