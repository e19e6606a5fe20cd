"""The experiments settings: the model signing key (required in production, derived in development), the training
time limits and the run sweep's thresholds. Each case starts a fresh Python process: settings are read at import."""

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[3]
PRINT = (
    "import json, django; django.setup(); from django.conf import settings as s; print(json.dumps({"
    "'key': s.MODEL_SIGNING_KEY, 'soft': s.TRAINING_SOFT_TIME_LIMIT, 'hard': s.TRAINING_HARD_TIME_LIMIT, "
    "'visibility': s.CELERY_BROKER_TRANSPORT_OPTIONS.get('visibility_timeout'), "
    "'annotations': s.CELERY_TASK_ANNOTATIONS['experiments.train_run']}))"
)


def run(tmp_path, **env: str) -> subprocess.CompletedProcess:
    base = {key: os.environ[key] for key in ("PATH", "HOME", "LANG") if key in os.environ}
    base.update(MLPLATFORM_VAR_DIR=str(tmp_path / "var"), DJANGO_SETTINGS_MODULE="config.settings")
    return subprocess.run(
        [sys.executable, "-c", PRINT], cwd=BASE_DIR, env={**base, **env}, capture_output=True, text=True, timeout=120
    )


def production(**env: str) -> dict[str, str]:
    values = {
        "MLPLATFORM_ENV": "production",
        "SECRET_KEY": secrets.token_urlsafe(64),
        "ALLOWED_HOSTS": "portal.example.com",
        "MODEL_SIGNING_KEY": secrets.token_urlsafe(48),
    }
    return {key: value for key, value in {**values, **env}.items() if value is not None}


def test_production_refuses_to_start_without_a_model_signing_key(tmp_path):
    result = run(tmp_path, **production(MODEL_SIGNING_KEY=None))

    assert result.returncode != 0
    assert "ImproperlyConfigured: MODEL_SIGNING_KEY must be set in production (MLPLATFORM_ENV=production)" in (
        result.stderr
    )


def test_production_uses_the_key_it_is_given(tmp_path):
    env = production()

    result = run(tmp_path, **env)

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["key"] == env["MODEL_SIGNING_KEY"]


def test_development_derives_a_stable_key_from_secret_key_under_its_own_label(tmp_path):
    first = json.loads(run(tmp_path, SECRET_KEY="one").stdout)["key"]
    again = json.loads(run(tmp_path, SECRET_KEY="one").stdout)["key"]
    other = json.loads(run(tmp_path, SECRET_KEY="two").stdout)["key"]

    assert first == again != other
    assert first not in ("one", "") and len(first) == 64


def test_training_limits_reach_the_task_and_the_redelivery_delay_outlasts_them(tmp_path):
    result = run(tmp_path, CELERY_BROKER_URL="redis://127.0.0.1:6379/0", TRAINING_HARD_TIME_LIMIT="7200")

    settings = json.loads(result.stdout)
    assert (settings["soft"], settings["hard"]) == (6900, 7200)
    assert settings["annotations"] == {"soft_time_limit": 6900, "time_limit": 7200}
    assert settings["visibility"] == 7800


def test_inconsistent_limits_are_refused_at_start(tmp_path):
    limits = run(tmp_path, TRAINING_SOFT_TIME_LIMIT="100", TRAINING_HARD_TIME_LIMIT="100")
    sweep = run(tmp_path, RUN_HEARTBEAT_SECONDS="30", RUN_STALE_SECONDS="60")

    assert "TRAINING_SOFT_TIME_LIMIT must be positive and below TRAINING_HARD_TIME_LIMIT" in limits.stderr
    assert "RUN_STALE_SECONDS must be at least three heartbeats" in sweep.stderr
