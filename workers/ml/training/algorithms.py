"""The candidate algorithms an experiment may train: one registry, plain data, so the portal can list and validate them.

STANDARD LIBRARY ONLY (the portal imports this through workers.ml.training.spec). Estimators are named by dotted path
and imported by workers.ml.training.estimators when a worker builds one.

To add an algorithm: add one `Algorithm` entry below (its estimator path, the problem types it serves, fixed
parameters, and its search space). Nothing else changes: the form, the API, validation and the search read this.

Search space entries (one per hyperparameter):
    {"type": "int" | "float", "low": x, "high": y, "log": bool, "grid": [values for grid search]}
    {"type": "categorical", "choices": [...], "grid": [...]}     ("grid" defaults to all choices)
Grid search takes the product of the "grid" lists; random search samples uniformly (log-uniformly when "log");
Bayesian search hands the same ranges to Optuna's TPE sampler.
"""

from dataclasses import dataclass, field
from typing import Any

CLASSIFICATION = ("binary", "multiclass")


@dataclass(frozen=True)
class Algorithm:
    name: str
    label: str
    problem_types: tuple[str, ...]
    # Estimator class per problem type, "module:Class".
    estimators: dict[str, str]
    # Fixed constructor parameters per problem type (merged under the searched ones).
    fixed_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    # The constructor parameter that takes the seed, when the estimator is random.
    seed_param: str | None = "random_state"
    search_space: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Whether SHAP's TreeExplainer applies (else a model-agnostic explainer is used).
    tree_based: bool = False
    # Whether the estimator needs scaled inputs to behave (used for the default scaling).
    needs_scaling: bool = False


ALGORITHMS: dict[str, Algorithm] = {
    algorithm.name: algorithm
    for algorithm in (
        Algorithm(
            name="logistic_regression",
            label="Logistic regression",
            problem_types=CLASSIFICATION,
            estimators={kind: "sklearn.linear_model:LogisticRegression" for kind in CLASSIFICATION},
            fixed_params={kind: {"max_iter": 1000} for kind in CLASSIFICATION},
            search_space={
                "C": {"type": "float", "low": 1e-3, "high": 100.0, "log": True, "grid": [0.01, 0.1, 1.0, 10.0]}
            },
            needs_scaling=True,
        ),
        Algorithm(
            name="linear_regression",
            label="Linear regression (ridge)",
            problem_types=("regression",),
            estimators={"regression": "sklearn.linear_model:Ridge"},
            seed_param=None,
            search_space={
                "alpha": {"type": "float", "low": 1e-4, "high": 100.0, "log": True, "grid": [0.01, 0.1, 1.0, 10.0]}
            },
            needs_scaling=True,
        ),
        Algorithm(
            name="random_forest",
            label="Random forest",
            problem_types=(*CLASSIFICATION, "regression"),
            estimators={
                "binary": "sklearn.ensemble:RandomForestClassifier",
                "multiclass": "sklearn.ensemble:RandomForestClassifier",
                "regression": "sklearn.ensemble:RandomForestRegressor",
            },
            fixed_params={kind: {"n_jobs": 1} for kind in (*CLASSIFICATION, "regression")},
            search_space={
                "n_estimators": {"type": "int", "low": 50, "high": 400, "log": True, "grid": [100, 200]},
                "max_depth": {"type": "int", "low": 3, "high": 20, "log": False, "grid": [6, 12]},
                "min_samples_leaf": {"type": "int", "low": 1, "high": 20, "log": True, "grid": [1, 5]},
            },
            tree_based=True,
        ),
        Algorithm(
            name="lightgbm",
            label="LightGBM",
            problem_types=(*CLASSIFICATION, "regression"),
            estimators={
                "binary": "lightgbm:LGBMClassifier",
                "multiclass": "lightgbm:LGBMClassifier",
                "regression": "lightgbm:LGBMRegressor",
            },
            # One thread and deterministic mode: the same spec gives the same model (reproducibility test).
            fixed_params={
                kind: {"n_jobs": 1, "verbose": -1, "deterministic": True, "force_row_wise": True}
                for kind in (*CLASSIFICATION, "regression")
            },
            search_space={
                "n_estimators": {"type": "int", "low": 50, "high": 500, "log": True, "grid": [100, 300]},
                "learning_rate": {"type": "float", "low": 0.01, "high": 0.3, "log": True, "grid": [0.05, 0.1]},
                "num_leaves": {"type": "int", "low": 8, "high": 128, "log": True, "grid": [15, 31, 63]},
                "min_child_samples": {"type": "int", "low": 5, "high": 100, "log": True, "grid": [20]},
            },
            tree_based=True,
        ),
        Algorithm(
            name="kmeans",
            label="k-means",
            problem_types=("clustering",),
            estimators={"clustering": "sklearn.cluster:KMeans"},
            fixed_params={"clustering": {"n_init": 10}},
            search_space={
                "n_clusters": {"type": "int", "low": 2, "high": 12, "log": False, "grid": [2, 3, 4, 5, 6, 8]}
            },
            needs_scaling=True,
        ),
    )
}


def algorithms_for(problem_type: str) -> list[Algorithm]:
    return [algorithm for algorithm in ALGORITHMS.values() if problem_type in algorithm.problem_types]


def default_algorithms(problem_type: str) -> list[str]:
    """What "just launch" trains: every algorithm that serves the problem type."""
    return [algorithm.name for algorithm in algorithms_for(problem_type)]
