"""The software a run was trained with, recorded so the run can be reproduced."""

import platform
from importlib import metadata

LIBRARIES = (
    "scikit-learn",
    "lightgbm",
    "optuna",
    "shap",
    "fairlearn",
    "numpy",
    "pandas",
    "pyarrow",
    "scipy",
    "joblib",
)


def library_versions() -> dict[str, str | None]:
    """{"python", "platform", and each library's installed version (None if it is not installed)}."""
    versions: dict[str, str | None] = {"python": platform.python_version(), "platform": platform.platform()}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions
