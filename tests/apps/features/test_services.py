"""The catalog's rules: versioning, marks, materialisation ranges, training sets and the personal-feature gate."""

from datetime import UTC, datetime

import pandas as pd
import pytest

from apps.audit.models import AuditEvent
from apps.core.exceptions import ApplicationError
from apps.experiments.services import experiment_launch
from apps.features import services
from apps.features.choices import JobStatus
from apps.features.models import FeatureVersion
from tests.apps.features.helpers import materialise, run_task, state

pytestmark = pytest.mark.django_db

MEAN_7D = {"kind": "window", "column": "amount", "function": "mean", "window": "7d"}


def test_a_changed_definition_is_a_new_version_and_the_old_one_stays_usable(define, sent_tasks):
    first = define("amount_7d", MEAN_7D)
    same = define("amount_7d", MEAN_7D)
    second = define("amount_7d", {**MEAN_7D, "function": "sum"})

    assert same.pk == first.pk
    assert (first.number, second.number) == (1, 2)
    assert first.feature_id == second.feature_id
    assert FeatureVersion.objects.get(pk=first.pk).transformation["function"] == "mean"
    job = services.materialisation_request(actor=first.created_by, feature_version=first)
    assert materialise(job).rows == 6


def test_marks_of_the_source_columns_are_copied_onto_the_version(define):
    amount = define("amount")
    email = define("email", {"kind": "passthrough", "column": "email"})

    assert (amount.personal, amount.sensitive) == (False, True)
    assert (email.personal, email.sensitive) == (True, False)


def test_an_expression_is_parsed_into_a_tree_and_never_evaluated(define):
    version = define("double", {"kind": "expression", "expression": "amount * 2"})

    assert version.expression_tree["type"] == "binary"
    assert version.source_columns == ["amount"]


@pytest.mark.parametrize(
    ("transformation", "field"),
    [
        ({"kind": "expression", "expression": "__import__('os').system('id')"}, "transformation.expression"),
        ({"kind": "expression", "expression": "amount.real"}, "transformation.expression"),
        ({"kind": "passthrough", "column": "nope"}, "transformation.column"),
        ({"kind": "window", "column": "amount", "function": "median", "window": "7d"}, "transformation.function"),
        ({"kind": "magic"}, "transformation.kind"),
    ],
)
def test_a_bad_transformation_is_refused_with_a_field_error_and_nothing_changes(define, transformation, field):
    before = state()
    with pytest.raises(ApplicationError) as error:
        define("bad", transformation)
    assert field in error.value.errors
    assert state() == before


def test_source_columns_are_checked_field_by_field(define):
    with pytest.raises(ApplicationError) as error:
        define("amount", timestamp_column="amount", entity_columns=["customer_id", "email"])
    assert set(error.value.errors) == {"timestamp_column", "entity_columns"}


def test_materialisation_is_incremental_by_time_range(define, sent_tasks):
    version = define("amount_7d", MEAN_7D)
    actor = version.created_by
    middle = datetime(2026, 1, 4, tzinfo=UTC)

    first = materialise(services.materialisation_request(actor=actor, feature_version=version, end=middle))
    second = materialise(services.materialisation_request(actor=actor, feature_version=version))

    assert (first.range_start, first.range_end) == (None, middle)
    assert second.range_start == middle
    assert (first.rows, second.rows) == (3, 3)
    assert first.artifact_keys[0].startswith(f"features/{version.pk}/min_20260104T")
    assert first.max_event_timestamp == datetime(2026, 1, 2, 10, tzinfo=UTC)
    assert second.statistics["count"] == 3
    # Jan 5, customer 1: (10 + 30 + 50) / 3; Jan 6, customer 2: (5 + 7) / 2; Jan 9, customer 3: 100
    assert (second.statistics["min"], second.statistics["max"]) == (6.0, 100.0)
    assert second.statistics["mean"] == pytest.approx(136 / 3)
    with pytest.raises(ApplicationError):
        services.materialisation_request(actor=actor, feature_version=version, end=middle)


def _built(define, scientist, project, spine_version, sent_tasks, **item):
    version = define("amount_7d", MEAN_7D)
    materialise(services.materialisation_request(actor=scientist, feature_version=version))
    return services.training_set_build(
        actor=scientist,
        project=project,
        spine_version=spine_version,
        spine_key_columns=["cust"],
        spine_timestamp_column="as_of",
        label_column="churned",
        features=[{"feature_version": version, "output_name": "spend_7d", **item}],
        output_dataset_name="churn_training",
    )


def test_a_training_set_becomes_a_new_dataset_version_an_experiment_can_use(
    define, scientist, project, spine_version, sent_tasks
):
    from workers.tasks.features import build_training_set_task

    training_set = _built(define, scientist, project, spine_version, sent_tasks)
    assert run_task(build_training_set_task, training_set.pk) == "succeeded"

    training_set.refresh_from_db()
    assert training_set.status == JobStatus.SUCCEEDED
    result = training_set.result_version
    assert result.dataset.name == "churn_training" and result.row_count == 20
    assert {c["name"] for c in result.schema} == {"cust", "as_of", "churned", "spend_7d"}
    frame = pd.read_parquet(_local(result.parquet_key))
    # before any purchase; the value of Jan 2 (mean of Jan 1-2); customer 2's one purchase; customer 1 on Jan 10:
    # the value of the Jan 5 event (mean of Jan 1, 2, 5); customer 3 buys after the spine row (no leakage, even
    # though a later value exists); customer 4 is unknown.
    expected = [None, 20.0, 5.0, 30.0, None, None]
    assert [None if pd.isna(v) else v for v in frame["spend_7d"]][:6] == expected
    assert set(frame["spend_7d"][6:]) == {30.0, 6.0}
    assert training_set.lineage["features"][0]["feature_version_id"] == str(training_set.items.get().feature_version_id)
    experiment = experiment_launch(
        project=project,
        actor=scientist,
        dataset_version=result,
        data={"target": "churned", "features": ["spend_7d"], "algorithms": ["logistic_regression"]},
    )
    assert experiment.dataset_version == result


def _local(key: str):
    import io

    from apps.core.artifacts import artifact_store

    return io.BytesIO(artifact_store().get_bytes(key))


def test_max_age_drops_values_that_are_too_old(define, scientist, project, spine_version, sent_tasks):
    from workers.tasks.features import build_training_set_task

    training_set = _built(define, scientist, project, spine_version, sent_tasks, max_age=3600 * 24)
    run_task(build_training_set_task, training_set.pk)
    training_set.refresh_from_db()
    frame = pd.read_parquet(_local(training_set.result_version.parquet_key))
    assert [None if pd.isna(v) else v for v in frame["spend_7d"]][:6] == [None, 20.0, None, None, None, None]


def test_a_personal_feature_needs_an_audited_exception(
    define, scientist, compliance, project, spine_version, sent_tasks
):
    email = define("email_len", {"kind": "passthrough", "column": "email"})
    materialise(services.materialisation_request(actor=scientist, feature_version=email))
    build = {
        "actor": scientist,
        "project": project,
        "spine_version": spine_version,
        "spine_key_columns": ["cust"],
        "spine_timestamp_column": "as_of",
        "features": [{"feature_version": email}],
        "output_dataset_name": "with_email",
    }
    before = state()
    with pytest.raises(ApplicationError) as error:
        services.training_set_build(**build)
    assert "personal" in error.value.errors["features"][0]
    assert state() == before

    with pytest.raises(ApplicationError) as error:
        services.personal_feature_exception_grant(actor=compliance, project=project, feature_version=email, reason="x")
    assert "reason" in error.value.errors
    exception = services.personal_feature_exception_grant(
        actor=compliance, project=project, feature_version=email, reason="Contract 12 allows e-mail domains."
    )
    event = AuditEvent.objects.get(action="feature.personal_exception_grant")
    assert (event.object_id, event.actor_id) == (str(exception.pk), compliance.pk)
    training_set = services.training_set_build(**build)
    assert training_set.status == JobStatus.QUEUED

    from workers.tasks.features import build_training_set_task

    assert run_task(build_training_set_task, training_set.pk) == "succeeded"
    training_set.refresh_from_db()
    # The result's column carries the mark: the experiment form leaves it out by default, like any personal column.
    output = training_set.items.get().output_name
    assert training_set.output_dataset.column_marks[output]["personal"] is True


def test_the_sweep_fails_jobs_of_dead_workers_and_dispatches_lost_ones_again(define, scientist, sent_tasks):
    from datetime import timedelta

    from django.utils import timezone

    from apps.features.models import MaterialisationJob

    dead = services.materialisation_request(actor=scientist, feature_version=define("amount"))
    lost = services.materialisation_request(actor=scientist, feature_version=define("amount_7d", MEAN_7D))
    long_ago = timezone.now() - timedelta(hours=1)
    MaterialisationJob.objects.filter(pk=dead.pk).update(status=JobStatus.RUNNING, heartbeat_at=long_ago)
    MaterialisationJob.objects.filter(pk=lost.pk).update(queued_at=long_ago)

    assert services.feature_jobs_sweep() == {"failed": 1, "requeued": 1}
    dead.refresh_from_db()
    assert dead.status == JobStatus.FAILED and "heartbeat" in dead.error
    assert AuditEvent.objects.filter(action="feature.materialise_failed", object_id=str(dead.pk)).exists()


def test_the_scheduled_online_sync_queues_one_sync_per_materialised_view(define, scientist, sent_tasks):
    version = define("amount")
    assert services.online_sync_schedule_all() == []
    materialise(services.materialisation_request(actor=scientist, feature_version=version))
    first = services.online_sync_schedule_all()
    assert [sync.view_id for sync in first] == [version.feature.view_id]
    assert services.online_sync_schedule_all() == first  # one queued sync at a time


def test_a_materialisation_is_dispatched_after_commit_by_name(
    define, scientist, sent_tasks, django_capture_on_commit_callbacks
):
    version = define("amount")
    with django_capture_on_commit_callbacks(execute=True):
        job = services.materialisation_request(actor=scientist, feature_version=version)
    assert sent_tasks == [("features.materialise", [str(job.pk)], "default")]
