"""The portal imports workers.ml.data.specs in the web process: it must pull in nothing heavy."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[4]


def test_importing_specs_loads_no_pyarrow_numpy_pandas_or_django():
    code = (
        "import sys, workers.ml.data.specs; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in {'pyarrow','numpy','pandas','django'}))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_ml_and_data_package_inits_stay_empty():
    assert (ROOT / "workers/ml/__init__.py").read_text() == ""
    assert (ROOT / "workers/ml/data/__init__.py").read_text() == ""
