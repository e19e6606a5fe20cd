"""Settings come from the environment only. Production refuses to start unsafe and passes `check --deploy` clean.

Each case starts a fresh Python process, because settings are read once, at import.
"""

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parents[3]
PRINT_SETTINGS = (
    "import json, django; django.setup(); from django.conf import settings as s; print(json.dumps({"
    "'debug': s.DEBUG, 'engine': s.DATABASES['default']['ENGINE'], 'db_name': str(s.DATABASES['default']['NAME']), "
    "'broker': s.CELERY_BROKER_URL, 'queue': s.CELERY_BROKER_TRANSPORT_OPTIONS.get('data_folder_in'), "
    "'artifacts': s.ARTIFACT_STORE, 'cache': s.CACHES['default']['BACKEND'], 'hosts': s.ALLOWED_HOSTS}))"
)


def strong_secret_key() -> str:
    return secrets.token_urlsafe(64)  # 86 characters, many distinct: what check --deploy asks for


def run(args: list[str], env: dict[str, str], tmp_path) -> subprocess.CompletedProcess:
    """Run in a clean environment: only what the case sets, plus what a process needs to start."""
    base = {key: os.environ[key] for key in ("PATH", "HOME", "LANG", "SYSTEMROOT") if key in os.environ}
    base["MLPLATFORM_VAR_DIR"] = str(tmp_path / "var")
    base["DJANGO_SETTINGS_MODULE"] = "config.settings"
    return subprocess.run(
        [sys.executable, *args], cwd=BASE_DIR, env={**base, **env}, capture_output=True, text=True, timeout=120
    )


def production_env(**overrides: str) -> dict[str, str]:
    env = {
        "MLPLATFORM_ENV": "production",
        "SECRET_KEY": strong_secret_key(),
        "MODEL_SIGNING_KEY": strong_secret_key(),
        "ALLOWED_HOSTS": "portal.example.com",
    }
    if os.environ.get("DATABASE_URL"):
        env["DATABASE_URL"] = os.environ["DATABASE_URL"]
    env.update(overrides)
    return {key: value for key, value in env.items() if value is not None}


def check_deploy(env: dict[str, str], tmp_path) -> subprocess.CompletedProcess:
    return run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], env, tmp_path)


def test_production_check_deploy_passes_with_no_issues(tmp_path):
    result = check_deploy(production_env(), tmp_path)

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "System check identified no issues (0 silenced)."


def test_production_refuses_to_start_without_secret_key(tmp_path):
    result = check_deploy(production_env(SECRET_KEY=None), tmp_path)

    assert result.returncode != 0
    assert "ImproperlyConfigured: SECRET_KEY must be set in production (MLPLATFORM_ENV=production)" in result.stderr


def test_production_refuses_to_start_with_an_empty_secret_key(tmp_path):
    result = check_deploy(production_env(SECRET_KEY=""), tmp_path)

    assert result.returncode != 0
    assert "SECRET_KEY must be set in production" in result.stderr


@pytest.mark.parametrize("debug", ["1", "true", "on"])
def test_production_refuses_to_start_with_debug_on(tmp_path, debug):
    result = check_deploy(production_env(DEBUG=debug), tmp_path)

    assert result.returncode != 0
    assert "ImproperlyConfigured: DEBUG must be off in production (MLPLATFORM_ENV=production)" in result.stderr


def test_production_check_deploy_fails_on_a_weak_secret_key(tmp_path):
    result = check_deploy(production_env(SECRET_KEY="too-short"), tmp_path)

    assert result.returncode != 0
    assert "security.W009" in result.stderr


def test_an_unknown_environment_name_is_refused(tmp_path):
    result = check_deploy({"MLPLATFORM_ENV": "staging"}, tmp_path)

    assert result.returncode != 0
    assert "MLPLATFORM_ENV must be 'development' or 'production'" in result.stderr


def test_development_defaults_are_embedded_sqlite_filesystem_broker_and_local_artifacts(tmp_path):
    result = run(["-c", PRINT_SETTINGS], {}, tmp_path)

    assert result.returncode == 0, result.stderr
    var = tmp_path / "var"
    assert json.loads(result.stdout) == {
        "debug": True,
        "engine": "django.db.backends.sqlite3",
        "db_name": str(var / "db.sqlite3"),
        "broker": "filesystem://",
        "queue": str(var / "celery" / "queue"),
        "artifacts": f"file://{var / 'artifacts'}",
        "cache": "django.core.cache.backends.locmem.LocMemCache",
        "hosts": ["127.0.0.1", "localhost", "testserver"],
    }


def test_database_and_broker_urls_switch_to_postgresql_and_redis(tmp_path):
    env = {
        "DATABASE_URL": "postgres://app@db.internal:5432/portal",
        "CELERY_BROKER_URL": "redis://redis.internal:6379/0",
        "REDIS_URL": "redis://redis.internal:6379/1",
    }

    result = run(["-c", PRINT_SETTINGS], env, tmp_path)

    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout)
    assert (values["engine"], values["db_name"]) == ("django.db.backends.postgresql", "portal")
    assert (values["broker"], values["queue"]) == ("redis://redis.internal:6379/0", None)
    assert values["cache"] == "django.core.cache.backends.redis.RedisCache"


def test_production_has_no_default_allowed_hosts_and_debug_is_off_by_default(tmp_path):
    env = production_env(ALLOWED_HOSTS=None)

    result = run(["-c", PRINT_SETTINGS], env, tmp_path)

    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout)
    assert (values["debug"], values["hosts"]) == (False, [])
