#!/usr/bin/env bash
# The whole suite: lint, import contracts, Django checks, migrations check, pytest (unit, integration, browser).
# Uses PostgreSQL and Redis on loopback when they answer, else SQLite and the filesystem broker, and says which.
# With REQUIRE_SERVICES=1 (CI) missing services are an error, not a quiet fallback.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv

answers() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

if answers 127.0.0.1 5432; then
  export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/mlplatform}"
  echo "database: PostgreSQL at 127.0.0.1:5432"
elif [[ "${REQUIRE_SERVICES:-0}" == "1" ]]; then
  echo "REQUIRE_SERVICES=1 but PostgreSQL does not answer on 127.0.0.1:5432" >&2; exit 1
else
  unset DATABASE_URL; echo "database: SQLite (PostgreSQL did not answer)"
fi

if answers 127.0.0.1 6379; then
  export CELERY_BROKER_URL="${CELERY_BROKER_URL:-redis://127.0.0.1:6379/14}"
  export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/15}"
  echo "broker and cache: Redis at 127.0.0.1:6379"
elif [[ "${REQUIRE_SERVICES:-0}" == "1" ]]; then
  echo "REQUIRE_SERVICES=1 but Redis does not answer on 127.0.0.1:6379" >&2; exit 1
else
  unset CELERY_BROKER_URL REDIS_URL; echo "broker: Celery filesystem transport; cache: in-process (Redis did not answer)"
fi

if ! command -v chromium >/dev/null 2>&1; then
  if [[ "$(id -u)" == "0" ]]; then
    echo "installing Debian's chromium for the browser tests"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null
  else
    echo "chromium is missing and this is not root: browser tests will be skipped" >&2
  fi
fi

echo "--- ruff"; $VENV/bin/ruff check . ; $VENV/bin/ruff format --check .
echo "--- import contracts"; $VENV/bin/lint-imports
echo "--- django checks"; $VENV/bin/python manage.py check --fail-level WARNING
echo "--- migrations"; $VENV/bin/python manage.py makemigrations --check --dry-run
echo "--- pytest"; $VENV/bin/python -m pytest "$@"
