"""Importing the prediction log into the portal's store: rows mapped to their versions, complete lines only, a
re-import (or an import after a restart, cursors read back from the database) duplicates nothing, unknown versions
and bad lines are counted, finished files are deleted once recorded, the periodic task isolates deployments."""

import pytest

from apps.audit.models import AuditEvent
from apps.deployments.models import Prediction, PredictionLogCursor
from apps.deployments.runtime import prediction_log_dir
from apps.deployments.services.predictions import predictions_import
from tests.apps.deployments.prediction_helpers import make_deployment, record, write_log
from workers.serving.log_files import read_log_folder
from workers.tasks.predictions import import_lock_key, import_prediction_logs

pytestmark = pytest.mark.django_db


@pytest.fixture
def log_root(settings, tmp_path):
    settings.SERVING_LOG_ROOT = tmp_path / "predictions"
    return settings.SERVING_LOG_ROOT


@pytest.fixture
def deployment(production_version, log_root):
    return make_deployment(production_version)


def run_import(deployment, capture):
    with capture(execute=True):
        return predictions_import(deployment=deployment, reader=read_log_folder)


def test_records_become_rows_of_the_version_that_made_them(
    deployment, production_version, django_capture_on_commit_callbacks
):
    folder = prediction_log_dir(deployment.name)
    live = record(production_version.number)
    shadow = record(production_version.number, shadow=True, shadow_of=live["prediction_id"], variant=None)
    write_log(folder, "predictions-a.jsonl.part", [live, shadow])
    events = AuditEvent.objects.count()

    result = run_import(deployment, django_capture_on_commit_callbacks)

    assert (result.created, result.duplicates, result.unknown_version, result.bad_records) == (2, 0, 0, 0)
    row = Prediction.objects.get(pk=live["prediction_id"])
    assert (row.deployment, row.version, row.variant, row.shadow) == (deployment, production_version, "v1", False)
    assert row.inputs == live["inputs"] and row.outputs == live["outputs"] and row.latency_ms == 0.42
    assert abs(row.predicted_at.timestamp() - live["time"]) < 1e-5
    copy = Prediction.objects.get(pk=shadow["prediction_id"])
    assert (copy.shadow, copy.shadow_of, copy.variant) == (True, live["prediction_id"], "")
    assert AuditEvent.objects.count() == events  # system data: no audit event per import


def test_a_partial_last_line_waits_and_a_reimport_duplicates_nothing(
    deployment, production_version, django_capture_on_commit_callbacks
):
    folder = prediction_log_dir(deployment.name)
    first, second = record(production_version.number), record(production_version.number)
    write_log(folder, "predictions-a.jsonl.part", [first], tail='{"prediction_id": "')

    assert run_import(deployment, django_capture_on_commit_callbacks).created == 1
    assert run_import(deployment, django_capture_on_commit_callbacks).created == 0
    (folder / "predictions-a.jsonl.part").write_text("")  # the server rewrote nothing; simulate the line completing
    write_log(folder, "predictions-a.jsonl.part", [first, second])
    PredictionLogCursor.objects.filter(deployment=deployment).update(offset=0)  # a cursor lost: re-read everything

    result = run_import(deployment, django_capture_on_commit_callbacks)

    assert (result.created, result.duplicates) == (1, 1)
    assert sorted(Prediction.objects.values_list("pk", flat=True)) == sorted(
        [first["prediction_id"], second["prediction_id"]]
    )


def test_a_renamed_file_keeps_its_offset_and_is_deleted_once_read_to_its_end(
    deployment, production_version, django_capture_on_commit_callbacks
):
    folder = prediction_log_dir(deployment.name)
    write_log(folder, "predictions-a.jsonl.part", [record(production_version.number)])
    run_import(deployment, django_capture_on_commit_callbacks)
    write_log(folder, "predictions-a.jsonl.part", [record(production_version.number)])
    (folder / "predictions-a.jsonl.part").rename(folder / "predictions-a.jsonl")

    result = run_import(deployment, django_capture_on_commit_callbacks)

    assert (result.created, result.duplicates, result.files_finished) == (1, 0, ["predictions-a.jsonl"])
    assert Prediction.objects.count() == 2
    assert not (folder / "predictions-a.jsonl").exists()
    cursor = PredictionLogCursor.objects.get(deployment=deployment, file_name="predictions-a.jsonl")
    assert cursor.finished


def test_an_import_after_a_restart_continues_from_the_cursors_in_the_database(
    deployment, production_version, django_capture_on_commit_callbacks
):
    folder = prediction_log_dir(deployment.name)
    write_log(folder, "predictions-a.jsonl.part", [record(production_version.number) for _ in range(3)])
    run_import(deployment, django_capture_on_commit_callbacks)
    write_log(folder, "predictions-a.jsonl.part", [record(production_version.number) for _ in range(2)])
    restarted = type(deployment).objects.get(pk=deployment.pk)  # nothing kept in memory between the two

    result = run_import(restarted, django_capture_on_commit_callbacks)

    assert (result.created, result.duplicates) == (2, 0)
    assert Prediction.objects.count() == 5


def test_unknown_versions_other_models_and_bad_lines_are_counted_and_skipped(
    deployment, production_version, django_capture_on_commit_callbacks
):
    folder = prediction_log_dir(deployment.name)
    good = record(production_version.number)
    records = [good, record(99), record(production_version.number, model="another"), {**good, "prediction_id": 7}]
    write_log(folder, "predictions-a.jsonl", records, tail="garbage\n")

    result = run_import(deployment, django_capture_on_commit_callbacks)

    assert (result.created, result.unknown_version, result.bad_records) == (1, 2, 2)
    assert list(Prediction.objects.values_list("pk", flat=True)) == [good["prediction_id"]]
    assert not (folder / "predictions-a.jsonl").exists()


def test_the_task_imports_every_deployment_and_skips_one_being_imported(
    production_version, log_root, django_capture_on_commit_callbacks
):
    from django.core.cache import cache

    first = make_deployment(production_version, name="churn-live")
    second = make_deployment(production_version, name="churn-eu")
    write_log(prediction_log_dir(first.name), "predictions-a.jsonl.part", [record(production_version.number)])
    write_log(
        prediction_log_dir(second.name),
        "predictions-a.jsonl.part",
        [record(production_version.number, model="churn-eu")],
    )
    cache.add(import_lock_key(second.pk), "another worker", timeout=60)

    with django_capture_on_commit_callbacks(execute=True):
        outcome = import_prediction_logs.apply().get()

    assert outcome == {
        "churn-live": {"created": 1, "duplicates": 0, "unknown_version": 0, "bad_records": 0, "files_finished": 0}
    }
    assert list(Prediction.objects.values_list("deployment__name", flat=True)) == ["churn-live"]
    cache.delete(import_lock_key(second.pk))
    with django_capture_on_commit_callbacks(execute=True):
        assert import_prediction_logs.apply().get()["churn-eu"]["created"] == 1


def test_one_failing_deployment_does_not_stop_the_others(
    production_version, log_root, django_capture_on_commit_callbacks, monkeypatch
):
    from apps.deployments.services import predictions as prediction_services

    broken = make_deployment(production_version, name="a-broken")
    working = make_deployment(production_version, name="b-working")
    for deployment in (broken, working):
        write_log(
            prediction_log_dir(deployment.name),
            "predictions-a.jsonl.part",
            [record(production_version.number, model=deployment.name)],
        )
    real_import = prediction_services.predictions_import

    def import_failing_for_broken(*, deployment, reader):
        if deployment.pk == broken.pk:
            raise OSError("the folder's disk is gone")
        return real_import(deployment=deployment, reader=reader)

    monkeypatch.setattr(prediction_services, "predictions_import", import_failing_for_broken)

    with django_capture_on_commit_callbacks(execute=True):
        outcome = import_prediction_logs.apply().get()

    assert outcome["a-broken"] == "error" and outcome["b-working"]["created"] == 1
