"""The portal's reconciler imports a few model-server modules in the web and worker processes: they must pull in
nothing heavy (no pandas, NumPy, scikit-learn, SHAP) and nothing of Django."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
LIGHT = [
    "workers.serving.runners.base",
    "workers.serving.config",
    "workers.serving.scrape",
    "workers.serving.buckets",
    "workers.serving.runners.kubernetes",
    "workers.serving.runners.local",
]


@pytest.mark.parametrize("module", LIGHT)
def test_module_the_portal_imports_loads_nothing_heavy(module):
    heavy = "{'pyarrow','numpy','pandas','sklearn','shap','lightgbm','django','kubernetes','docker'}"
    code = f"import sys, {module}; print(sorted(m for m in sys.modules if m.split('.')[0] in {heavy}))"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
