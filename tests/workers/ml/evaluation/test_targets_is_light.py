"""The portal builds ProjectTargets in the web process: importing it must pull in nothing heavy."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[4]


def test_importing_targets_loads_no_numpy_pandas_sklearn_or_django():
    code = (
        "import sys, workers.ml.evaluation.targets; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in {'numpy','pandas','sklearn','shap','django'}))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_evaluation_package_init_stays_empty():
    assert (ROOT / "workers/ml/evaluation/__init__.py").read_text() == ""
