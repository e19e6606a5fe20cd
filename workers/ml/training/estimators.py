"""Build an estimator from the algorithm registry (workers.ml.training.algorithms)."""

import importlib
from typing import Any

from workers.ml.training.algorithms import ALGORITHMS


def make_estimator(algorithm: str, problem_type: str, params: dict[str, Any], seed: int):
    """An unfitted estimator: the registry's fixed parameters, overridden by `params` (searched ones), and the seed
    in the registry's seed parameter when the estimator is random."""
    entry = ALGORITHMS[algorithm]
    if problem_type not in entry.estimators:
        raise ValueError(f"{entry.label} does not do {problem_type}.")
    module_name, class_name = entry.estimators[problem_type].split(":")
    estimator_class = getattr(importlib.import_module(module_name), class_name)
    kwargs = {**entry.fixed_params.get(problem_type, {}), **params}
    if entry.seed_param:
        kwargs[entry.seed_param] = seed
    return estimator_class(**kwargs)
