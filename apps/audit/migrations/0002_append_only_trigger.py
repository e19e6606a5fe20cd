"""On PostgreSQL, a trigger makes the audit table append-only: UPDATE and DELETE of a row raise an exception.

TRUNCATE is left alone on purpose: row triggers do not fire for it, and Django's test flush relies on it. Removing
history with TRUNCATE (or with the trigger disabled by a superuser) is what `manage.py audit_verify` detects.
SQLite has no such trigger; there the hash chain alone makes tampering evident.
"""

from django.db import migrations

FUNCTION = "audit_event_append_only"
TRIGGER = "audit_event_append_only"

CREATE = [
    f"""
    CREATE OR REPLACE FUNCTION {FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION USING
            MESSAGE = 'audit events are append-only: ' || TG_OP || ' refused on ' || TG_TABLE_NAME,
            HINT = 'Audit events are never changed or removed; record a new event instead.';
    END;
    $$
    """,
    f"DROP TRIGGER IF EXISTS {TRIGGER} ON audit_auditevent",
    f"""
    CREATE TRIGGER {TRIGGER} BEFORE UPDATE OR DELETE ON audit_auditevent
        FOR EACH ROW EXECUTE FUNCTION {FUNCTION}()
    """,
]

DROP = [
    f"DROP TRIGGER IF EXISTS {TRIGGER} ON audit_auditevent",
    f"DROP FUNCTION IF EXISTS {FUNCTION}()",
]


def _run_on_postgresql(statements):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            for sql in statements:
                schema_editor.execute(sql, params=None)

    return run


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]

    operations = [migrations.RunPython(_run_on_postgresql(CREATE), _run_on_postgresql(DROP), elidable=False)]
