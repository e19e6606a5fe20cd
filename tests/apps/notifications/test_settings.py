"""WEBHOOK_ALLOW_PRIVATE_ADDRESSES is a test/development switch: production refuses to start with it (a fresh
process per case, since settings are read once)."""

from tests.apps.core.test_settings import production_env, run

IMPORT_SETTINGS = [
    "-c",
    "import django; django.setup(); from django.conf import settings as s; print(s.WEBHOOK_ALLOW_PRIVATE_ADDRESSES)",
]


def test_production_refuses_to_start_with_private_webhook_addresses_allowed(tmp_path):
    result = run(IMPORT_SETTINGS, production_env(WEBHOOK_ALLOW_PRIVATE_ADDRESSES="1"), tmp_path)

    assert result.returncode != 0
    assert "WEBHOOK_ALLOW_PRIVATE_ADDRESSES must be off in production" in result.stderr


def test_production_starts_with_the_switch_off_and_development_may_turn_it_on(tmp_path):
    production = run(IMPORT_SETTINGS, production_env(), tmp_path)
    development = run(IMPORT_SETTINGS, {"WEBHOOK_ALLOW_PRIVATE_ADDRESSES": "1"}, tmp_path)

    assert (production.returncode, production.stdout.strip()) == (0, "False"), production.stderr
    assert (development.returncode, development.stdout.strip()) == (0, "True"), development.stderr
