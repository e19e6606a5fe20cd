import importlib
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction

from apps.audit.chain import GENESIS_HASH, event_hash, fields_of
from apps.audit.models import AuditEvent
from apps.audit.services import audit_record
from apps.audit.verify import verify_chain
from apps.core.context import request_context
from tests.apps.audit.chain_helpers import append_only_trigger_disabled, build_chain, chain_head, raw_sql


def _verify_output() -> str:
    out = StringIO()
    call_command("audit_verify", stdout=out)
    return out.getvalue()


def _verify_failure() -> CommandError:
    with pytest.raises(CommandError) as caught:
        call_command("audit_verify", stdout=StringIO())
    return caught.value


def _skip_unless_postgresql():
    if connection.vendor != "postgresql":
        pytest.skip("the append-only trigger exists on PostgreSQL only; SQLite relies on the hash chain alone")


def _assert_refused(operation: str, statement) -> None:
    """The statement fails with the trigger's message; the savepoint keeps the test's transaction usable."""
    message = f"audit events are append-only: {operation} refused on audit_auditevent"
    with pytest.raises(DatabaseError, match=message), transaction.atomic():
        statement()


# --- Appending ---------------------------------------------------------------------------------------------------
def test_audit_record_appends_linked_events_with_recomputable_hashes(user, project):
    with request_context(request_id="req-1", client_ip="192.0.2.7"):
        first = audit_record(actor=user, action="project.edit", obj=project, project=project, before={"a": 1})
        second = audit_record(actor=None, action="system.tick", object_type="worker", after={"b": 2})

    assert (first.seq, second.seq) == (1, 2)
    assert first.prev_hash == GENESIS_HASH
    assert second.prev_hash == first.hash
    stored = AuditEvent.objects.get(seq=1)
    assert stored.hash == event_hash(GENESIS_HASH, fields_of(stored))
    assert (stored.actor_username, stored.object_type, stored.object_id) == (
        user.username,
        "projects.project",
        str(project.pk),
    )
    assert (stored.request_id, stored.client_ip, stored.project_id) == ("req-1", "192.0.2.7", project.pk)
    assert AuditEvent.objects.get(seq=2).hash == event_hash(first.hash, fields_of(AuditEvent.objects.get(seq=2)))


def test_audit_record_continues_a_bulk_built_chain(db):
    build_chain(3)
    event = audit_record(actor=None, action="system.tick")
    assert event.seq == 4
    assert event.prev_hash == AuditEvent.objects.get(seq=3).hash


# --- Verifying an intact chain -----------------------------------------------------------------------------------
def test_audit_verify_reports_ok_with_count_and_head(user):
    audit_record(actor=user, action="auth.login", obj=user)
    build_chain(5)
    head_seq, head_hash = chain_head()

    assert _verify_output() == f"Audit chain OK: 6 events, head {head_hash}\n"
    assert head_seq == 6


def test_audit_verify_accepts_an_empty_chain(db):
    assert _verify_output() == f"Audit chain OK: 0 events, head {GENESIS_HASH}\n"


def test_verify_chain_reads_in_small_chunks_without_changing_the_answer(db):
    build_chain(7)
    out = StringIO()
    call_command("audit_verify", "--chunk-size", "2", stdout=out)
    assert out.getvalue().startswith("Audit chain OK: 7 events, head ")


def test_audit_verify_exits_1_on_the_command_line_and_writes_the_problem_to_stderr(db, capsys, monkeypatch):
    from django.core.management import base

    # run_from_argv closes every connection when it ends, which would end the test's transaction too.
    monkeypatch.setattr(base.connections, "close_all", lambda: None)
    build_chain(3)
    with append_only_trigger_disabled():
        raw_sql("UPDATE audit_auditevent SET action = %s WHERE seq = %s", ["test.forged", 2])
    from apps.audit.management.commands.audit_verify import Command

    with pytest.raises(SystemExit) as exited:
        Command().run_from_argv(["manage.py", "audit_verify"])

    assert exited.value.code == 1
    id_of_2 = AuditEvent.objects.get(seq=2).pk
    err = capsys.readouterr().err
    assert f"event #2 (id {id_of_2}) was altered: its content no longer matches its hash" in err


# --- Tampering ---------------------------------------------------------------------------------------------------
def test_audit_verify_names_the_event_updated_behind_the_triggers_back(db):
    build_chain(10)
    with append_only_trigger_disabled():
        changed = raw_sql("UPDATE audit_auditevent SET after = %s WHERE seq = %s", ['{"n": 999}', 6])
    assert changed == 1

    error = _verify_failure()
    event = AuditEvent.objects.get(seq=6)
    assert error.returncode == 1
    assert str(error) == (
        f"Audit chain BROKEN after 6 events checked: event #6 (id {event.pk}) was altered: "
        "its content no longer matches its hash"
    )
    assert verify_chain().first_bad_seq == 6


def test_audit_verify_names_an_event_altered_and_rehashed_by_its_broken_link(db):
    build_chain(5)
    event = AuditEvent.objects.get(seq=3)
    event.action = "test.forged"
    forged_hash = event_hash(event.prev_hash, fields_of(event))
    with append_only_trigger_disabled():
        raw_sql("UPDATE audit_auditevent SET action = %s, hash = %s WHERE seq = 3", ["test.forged", forged_hash])

    result = verify_chain()
    fourth = AuditEvent.objects.get(seq=4)
    assert (result.ok, result.first_bad_seq, result.checked) == (False, 4, 4)
    assert result.problem.startswith(f"event #4 (id {fourth.pk}) does not link to #3: its prev_hash ")
    assert "or #3 was altered and re-hashed" in result.problem


def test_audit_verify_names_the_gap_left_by_a_deleted_event(db):
    build_chain(10)
    with append_only_trigger_disabled():
        deleted = raw_sql("DELETE FROM audit_auditevent WHERE seq = %s", [5])
    assert deleted == 1

    error = _verify_failure()
    assert str(error) == "Audit chain BROKEN after 5 events checked: event #5 is missing: #4 is followed by #6"
    assert verify_chain().first_bad_seq == 5


def test_audit_verify_names_a_run_of_deleted_events(db):
    build_chain(10)
    with append_only_trigger_disabled():
        assert raw_sql("DELETE FROM audit_auditevent WHERE seq BETWEEN 3 AND 5") == 3

    assert str(_verify_failure()).endswith("event #3 to #5 are missing: #2 is followed by #6")


def test_audit_verify_names_a_deleted_first_event(db):
    build_chain(3)
    with append_only_trigger_disabled():
        raw_sql("DELETE FROM audit_auditevent WHERE seq = 1")

    assert str(_verify_failure()).endswith("event #1 is missing: the start of the chain is followed by #2")


def test_audit_verify_detects_an_appended_event_with_a_wrong_prev_hash(db):
    build_chain(4)
    forged = {
        "seq": 5,
        "occurred_at": AuditEvent.objects.get(seq=4).occurred_at,
        "actor_id": None,
        "actor_username": "mallory",
        "action": "project.approve",
        "object_type": "projects.project",
        "object_id": "x",
        "project_id": None,
        "before": None,
        "after": None,
        "request_id": "",
        "client_ip": "",
    }
    wrong_prev = AuditEvent.objects.get(seq=2).hash  # self-consistent, but linked to the wrong predecessor
    AuditEvent.objects.create(**forged, prev_hash=wrong_prev, hash=event_hash(wrong_prev, forged))

    result = verify_chain()
    inserted = AuditEvent.objects.get(seq=5)
    assert (result.ok, result.first_bad_seq) == (False, 5)
    assert result.problem.startswith(f"event #5 (id {inserted.pk}) does not link to #4: its prev_hash ")
    assert str(_verify_failure()).startswith("Audit chain BROKEN after 5 events checked: event #5 ")


def test_audit_verify_detects_a_forged_event_inserted_into_an_old_place(db):
    """The forger deletes #3 and writes a perfectly linked and hashed #3 in its place: its row comes too late."""
    build_chain(5)
    original = AuditEvent.objects.get(seq=3)
    forged = fields_of(original) | {"action": "project.approve", "actor_username": "mallory"}
    with append_only_trigger_disabled():
        raw_sql("DELETE FROM audit_auditevent WHERE seq = 3")
    AuditEvent.objects.create(**forged, prev_hash=original.prev_hash, hash=event_hash(original.prev_hash, forged))

    result = verify_chain()
    inserted = AuditEvent.objects.get(seq=3)
    fourth = AuditEvent.objects.get(seq=4)
    assert (result.ok, result.first_bad_seq) == (False, 3)
    assert result.problem == (
        f"event #3 (id {inserted.pk}) was inserted out of order: its row was written after that of "
        f"event #4 (id {fourth.pk})"
    )


def test_audit_verify_detects_an_event_inserted_before_the_start(db):
    build_chain(3)
    forged = fields_of(AuditEvent.objects.get(seq=1)) | {"seq": 0}
    AuditEvent.objects.create(**forged, prev_hash=GENESIS_HASH, hash=event_hash(GENESIS_HASH, forged))

    result = verify_chain()
    assert (result.ok, result.first_bad_seq) == (False, 0)
    assert result.problem.endswith("is out of order: it comes after the start of the chain, expected #1")


def test_verify_chain_rejects_events_given_out_of_seq_order(db):
    build_chain(3)
    events = list(AuditEvent.objects.order_by("seq"))
    result = verify_chain([events[0], events[1], events[1], events[2]])
    assert (result.ok, result.first_bad_seq) == (False, 2)
    assert result.problem == f"event #2 (id {events[1].pk}) is out of order: it comes after #2, expected #3"


# --- Anchors -----------------------------------------------------------------------------------------------------
def test_audit_verify_confirms_an_anchor_still_in_the_chain(db):
    build_chain(4)
    anchor = AuditEvent.objects.get(seq=3).hash
    out = StringIO()
    call_command("audit_verify", "--anchor", anchor, stdout=out)
    assert out.getvalue().splitlines()[1] == "Anchor found at event #3"


def test_audit_verify_with_an_anchor_detects_a_truncated_tail(db):
    build_chain(6)
    anchor = chain_head()[1]
    with append_only_trigger_disabled():
        raw_sql("DELETE FROM audit_auditevent WHERE seq > 4")
    assert _verify_output().startswith("Audit chain OK: 4 events, head ")  # without the anchor it cannot be seen

    with pytest.raises(CommandError) as caught:
        call_command("audit_verify", "--anchor", anchor)
    assert str(caught.value) == (
        f"Audit chain BROKEN after 4 events checked: the anchor {anchor} is not in the chain, which ends at #4: "
        "events after #4 were removed (the tail was truncated), or the anchor was taken from another database"
    )


# --- The append-only trigger -------------------------------------------------------------------------------------
def test_trigger_blocks_update_on_postgresql(db):
    _skip_unless_postgresql()
    build_chain(3)
    before = list(AuditEvent.objects.order_by("seq").values_list("seq", "action", "hash"))

    _assert_refused("UPDATE", lambda: raw_sql("UPDATE audit_auditevent SET action = 'x' WHERE seq = 2"))
    _assert_refused("UPDATE", lambda: AuditEvent.objects.filter(seq=3).update(action="x"))

    assert list(AuditEvent.objects.order_by("seq").values_list("seq", "action", "hash")) == before


def test_trigger_blocks_delete_on_postgresql(db):
    _skip_unless_postgresql()
    build_chain(3)

    _assert_refused("DELETE", lambda: raw_sql("DELETE FROM audit_auditevent WHERE seq = 2"))
    _assert_refused("DELETE", lambda: AuditEvent.objects.get(seq=1).delete())

    assert list(AuditEvent.objects.order_by("seq").values_list("seq", flat=True)) == [1, 2, 3]
    assert _verify_output().startswith("Audit chain OK: 3 events")


def test_trigger_leaves_inserts_and_truncate_alone_on_postgresql(db):
    """TRUNCATE stays possible because Django's test flush uses it; audit_verify --anchor catches it instead."""
    _skip_unless_postgresql()
    build_chain(2)
    audit_record(actor=None, action="system.tick")
    with transaction.atomic():
        raw_sql("TRUNCATE audit_auditevent")
    assert AuditEvent.objects.count() == 0


def test_trigger_migration_reverse_drops_it_and_forward_restores_it_on_postgresql(db):
    _skip_unless_postgresql()
    migration = importlib.import_module("apps.audit.migrations.0002_append_only_trigger")
    installed = (
        "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'audit_auditevent'::regclass AND tgname = %s "
        "AND NOT tgisinternal"
    )

    def count() -> int:
        with connection.cursor() as cursor:
            cursor.execute(installed, [migration.TRIGGER])
            return cursor.fetchone()[0]

    assert count() == 1
    with connection.schema_editor() as editor:
        migration._run_on_postgresql(migration.DROP)(None, editor)
    assert count() == 0
    build_chain(1)
    AuditEvent.objects.filter(seq=1).update(action="now allowed")
    with connection.schema_editor() as editor:
        migration._run_on_postgresql(migration.CREATE)(None, editor)
    assert count() == 1
