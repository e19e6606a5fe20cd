"""Registry services: registering a run (copy + verification, record, card), stages, promotion requests with their
gates, separation of duties, N approvals, void approvals after a hash change, rollback and the stage history."""

import pytest
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction

from apps.accounts.choices import Role
from apps.audit.models import AuditEvent
from apps.core.artifacts import artifact_store
from apps.core.exceptions import ApplicationError
from apps.notifications.models import Notification
from apps.registry import services
from apps.registry.choices import RequestStatus, Stage, VersionStatus
from apps.registry.models import Approval, ModelVersion, StageTransition
from tests.apps.experiments.experiment_helpers import train
from tests.apps.registry.registry_helpers import staged_version, state

pytestmark = pytest.mark.django_db


def refused(call, **kwargs) -> ApplicationError:
    before = state()
    with pytest.raises(ApplicationError) as error:
        call(**kwargs)
    assert state() == before
    return error.value


def open_request(version, scientist, justification="Better recall for the retention team."):
    return services.promotion_request_open(version=version, actor=scientist, justification=justification)


def production_numbers(model_id) -> list[int]:
    return list(
        ModelVersion.objects.filter(registered_model_id=model_id, stage=Stage.PRODUCTION).values_list(
            "number", flat=True
        )
    )


# --- Registering ----------------------------------------------------------------------------------------------------
def test_registering_a_trained_run_copies_verifies_and_records_it(launch, scientist, file_store, project, version):
    run = launch().runs.get()
    train(run)
    run.refresh_from_db()

    registered = services.model_version_register(
        run=run, actor=scientist, model_name="churn", description="first", tags=["baseline", "baseline", " lr "]
    )

    assert (registered.number, registered.status, registered.stage) == (1, VersionStatus.READY, Stage.NONE)
    model = registered.registered_model
    assert registered.artifact_key == f"projects/{project.pk}/models/{model.pk}/v1/model.joblib"
    assert file_store.get_bytes(registered.artifact_key) == file_store.get_bytes(run.artifact_key)
    assert (registered.artifact_sha256, registered.artifact_signature) == (run.artifact_sha256, run.artifact_signature)
    assert registered.tags == ["baseline", "lr"]
    assert registered.metrics["test"] == run.metrics["test"]
    assert registered.metrics["test_score"] == run.test_score
    assert registered.metrics["operational"] == run.metrics["operational"]
    assert "curve" not in registered.metrics["project"]["business"]["threshold"]
    assert registered.metrics_sha256 == services.metrics_digest(ModelVersion.objects.get(pk=registered.pk).metrics)
    lineage = registered.lineage
    assert lineage["dataset"]["sha256"] == version.sha256 == run.dataset_sha256
    assert (lineage["trained_by"], lineage["seed"], lineage["features"]) == (
        scientist.username,
        42,
        run.spec["features"],
    )
    assert lineage["definition"]["primary_threshold"] == 0.8
    assert lineage["definition"]["value_per_correct_decision"] == 40.0
    assert lineage["environment"] == run.environment
    assert lineage["data"]["pii_columns"] == ["email"]
    card = registered.card.generated
    assert card["explanations"]["items"][0].startswith(run.metrics["explanations"]["global_importance"][0]["feature"])
    assert [e.action for e in AuditEvent.objects.order_by("seq")][-3:] == [
        "registry.model_create",
        "registry.version_create",
        "registry.version_ready",
    ]


def test_a_copy_that_does_not_verify_fails_the_registration_with_the_reason(run_of, scientist):
    run = run_of()
    type(run).objects.filter(pk=run.pk).update(artifact_signature="0" * 64)
    run.refresh_from_db()

    registered = services.model_version_register(run=run, actor=scientist, model_name="churn")

    assert registered.status == VersionStatus.FAILED
    assert "signature does not verify" in registered.status_reason
    assert AuditEvent.objects.order_by("-seq").first().action == "registry.version_failed"


def test_versions_are_numbered_per_model_and_a_run_is_registered_once(run_of, scientist):
    first, second = run_of(), run_of()
    v1 = services.model_version_register(run=first, actor=scientist, model_name="churn")
    v2 = services.model_version_register(run=second, actor=scientist, registered_model=v1.registered_model)
    other = services.model_version_register(run=first, actor=scientist, model_name="other")

    assert (v1.number, v2.number, other.number) == (1, 2, 1)
    error = refused(services.model_version_register, run=first, actor=scientist, model_name="churn")
    assert error.errors == {"run": ["This run is already version 1 of “churn”."]}


def test_only_a_succeeded_run_can_be_registered(launch, scientist, file_store):
    run = launch().runs.get()

    error = refused(services.model_version_register, run=run, actor=scientist, model_name="churn")

    assert list(error.errors) == ["run"]


def test_a_model_name_or_a_model_is_required_and_tags_are_checked(run_of, scientist):
    run = run_of()
    assert list(refused(services.model_version_register, run=run, actor=scientist).errors) == ["model_name"]
    error = refused(services.model_version_register, run=run, actor=scientist, model_name="m", tags="a,b")
    assert list(error.errors) == ["tags"]


@pytest.mark.parametrize("role", [Role.STAKEHOLDER, Role.REVIEWER, Role.COMPLIANCE])
def test_only_scientists_register(run_of, member, role):
    run = run_of()
    before = state()
    with pytest.raises(PermissionDenied):
        services.model_version_register(run=run, actor=member(role), model_name="churn")
    assert state() == before


# --- Model cards and stages -----------------------------------------------------------------------------------------
def test_the_card_takes_written_sections_only(run_of, scientist):
    registered = services.model_version_register(run=run_of(), actor=scientist, model_name="churn")

    error = refused(
        services.model_card_update, version=registered, actor=scientist, written={"metrics": "x", "limitations": "y"}
    )
    assert list(error.errors) == ["metrics"]

    card = services.model_card_update(version=registered, actor=scientist, written={"limitations": "  Small data. "})
    assert card.written == {"limitations": "Small data."}
    assert card.updated_by == scientist


def test_stages_staging_then_archive_with_history(run_of, scientist):
    registered = services.model_version_register(run=run_of(), actor=scientist, model_name="churn")

    services.version_move_to_staging(version=registered, actor=scientist, reason="try it")
    error = refused(services.version_move_to_staging, version=registered, actor=scientist)
    assert error.status == 409
    services.version_archive(version=registered, actor=scientist, reason="superseded")

    history = list(StageTransition.objects.filter(version=registered).order_by("created_at"))
    assert [(t.from_stage, t.to_stage, t.reason, t.actor) for t in history] == [
        (Stage.NONE, Stage.STAGING, "try it", scientist),
        (Stage.STAGING, Stage.ARCHIVED, "superseded", scientist),
    ]


# --- Promotion requests ---------------------------------------------------------------------------------------------
def test_opening_a_request_evaluates_the_gates_and_notifies_reviewers(
    run_of, scientist, reviewer, django_capture_on_commit_callbacks
):
    staged = staged_version(run_of(), scientist)

    with django_capture_on_commit_callbacks(execute=True):
        request = open_request(staged, scientist)

    assert (request.status, request.required_approvals, request.requester) == (RequestStatus.OPEN, 1, scientist)
    assert (request.artifact_sha256, request.metrics_sha256) == (staged.artifact_sha256, staged.metrics_sha256)
    assert [(gate["name"], gate["passed"]) for gate in request.gates] == [
        ("success_threshold", True),
        ("beats_champion", True),
        ("fairness", True),
        ("latency", True),
        ("data_validated", True),
        ("model_card", True),
        ("signature", True),
    ]
    assert request.gates[0]["value"] == 0.9 and request.gates[0]["threshold"] == 0.8
    notification = Notification.objects.get(recipient=reviewer)
    assert notification.event == "registry.request_opened"
    assert str(request.pk) in notification.link


def test_only_a_ready_staging_version_can_be_proposed_once(run_of, scientist):
    registered = services.model_version_register(run=run_of(), actor=scientist, model_name="churn")
    assert refused(open_request, version=registered, scientist=scientist).status == 409
    services.version_move_to_staging(version=registered, actor=scientist)
    open_request(registered, scientist)
    assert refused(open_request, version=registered, scientist=scientist).errors == {
        "version": ["A promotion request for this version is already open."]
    }
    assert list(refused(open_request, version=registered, scientist=scientist, justification=" ").errors) == [
        "justification"
    ]


def test_regulatory_flags_raise_the_required_approvals_to_two(run_of, scientist, project):
    project.definition.personal_data = project.definition.gdpr = True
    project.definition.save()

    request = open_request(staged_version(run_of(), scientist), scientist)

    assert request.required_approvals == 2


def test_the_project_can_require_more_approvals(run_of, scientist, project):
    project.definition.required_approvals = 3
    project.definition.save()

    assert open_request(staged_version(run_of(), scientist), scientist).required_approvals == 3


# --- Separation of duties -------------------------------------------------------------------------------------------
def test_nobody_approves_a_request_they_opened(run_of, admin_user, scientist):
    request = open_request(staged_version(run_of(), scientist), admin_user)

    error = refused(services.promotion_approve, request=request, actor=admin_user, comment="fine")

    assert error.status == 403
    assert error.errors == {"reviewer": ["You opened this request: another reviewer must decide it."]}
    assert refused(services.promotion_reject, request=request, actor=admin_user, reason="no").status == 403


def test_nobody_approves_a_version_they_trained(run_of, admin_user, scientist):
    request = open_request(staged_version(run_of(actor=admin_user), scientist), scientist)

    error = refused(services.promotion_approve, request=request, actor=admin_user, comment="fine")

    assert error.errors == {"reviewer": ["You trained this version: another reviewer must decide it."]}


def test_scientists_and_stakeholders_cannot_decide(run_of, scientist, member):
    request = open_request(staged_version(run_of(), scientist), scientist)
    for actor in (scientist, member(Role.STAKEHOLDER), member(Role.SCIENTIST)):
        before = state()
        with pytest.raises(PermissionDenied):
            services.promotion_approve(request=request, actor=actor, comment="ok")
        assert state() == before


def test_a_comment_is_required_to_approve_and_a_reason_to_reject(run_of, scientist, reviewer):
    request = open_request(staged_version(run_of(), scientist), scientist)

    assert list(refused(services.promotion_approve, request=request, actor=reviewer, comment=" ").errors) == ["comment"]
    assert list(refused(services.promotion_reject, request=request, actor=reviewer, reason="").errors) == ["reason"]


# --- Approvals ------------------------------------------------------------------------------------------------------
def test_one_approval_puts_the_version_in_production(run_of, scientist, reviewer, django_capture_on_commit_callbacks):
    staged = staged_version(run_of(), scientist)
    request = open_request(staged, scientist)

    with django_capture_on_commit_callbacks(execute=True):
        decided = services.promotion_approve(request=request, actor=reviewer, comment="Gates pass, card complete.")

    staged.refresh_from_db()
    assert (decided.status, staged.stage) == (RequestStatus.APPROVED, Stage.PRODUCTION)
    approval = Approval.objects.get(request=request)
    assert (approval.reviewer, approval.comment, approval.gate_override_reason) == (
        reviewer,
        "Gates pass, card complete.",
        "",
    )
    assert approval.artifact_sha256 == staged.artifact_sha256 and len(approval.gates) == 7
    transition = StageTransition.objects.filter(version=staged).latest("created_at")
    assert (transition.to_stage, transition.promotion_request_id, transition.actor) == (
        Stage.PRODUCTION,
        request.pk,
        reviewer,
    )
    assert Notification.objects.filter(recipient=scientist, event="registry.request_decided").exists()


def test_n_of_m_approvals_and_never_twice_by_one_reviewer(run_of, scientist, reviewer, second_reviewer, project):
    project.definition.required_approvals = 2
    project.definition.save()
    staged = staged_version(run_of(), scientist)
    request = open_request(staged, scientist)

    first = services.promotion_approve(request=request, actor=reviewer, comment="one")
    assert first.status == RequestStatus.OPEN
    staged.refresh_from_db()
    assert staged.stage == Stage.STAGING
    error = refused(services.promotion_approve, request=request, actor=reviewer, comment="again")
    assert error.errors == {"reviewer": ["You already decided this request."]}

    second = services.promotion_approve(request=request, actor=second_reviewer, comment="two")

    staged.refresh_from_db()
    assert (second.status, staged.stage) == (RequestStatus.APPROVED, Stage.PRODUCTION)
    assert Approval.objects.filter(request=request).count() == 2


def test_approving_a_new_version_archives_the_previous_one(run_of, scientist, reviewer):
    v1 = staged_version(run_of(), scientist)
    services.promotion_approve(request=open_request(v1, scientist), actor=reviewer, comment="v1")
    v2 = staged_version(run_of(), scientist)
    request = open_request(v2, scientist)
    assert request.champion == v1

    services.promotion_approve(request=request, actor=reviewer, comment="v2")

    v1.refresh_from_db()
    v2.refresh_from_db()
    assert (v1.stage, v2.stage) == (Stage.ARCHIVED, Stage.PRODUCTION)
    assert production_numbers(v1.registered_model_id) == [2]


def test_the_database_refuses_two_production_versions(run_of, scientist, reviewer):
    v1 = staged_version(run_of(), scientist)
    services.promotion_approve(request=open_request(v1, scientist), actor=reviewer, comment="v1")
    v2 = staged_version(run_of(), scientist)

    with pytest.raises(IntegrityError), transaction.atomic():
        ModelVersion.objects.filter(pk=v2.pk).update(stage=Stage.PRODUCTION)


# --- Gates ----------------------------------------------------------------------------------------------------------
def test_a_failing_gate_blocks_reviewers_and_an_admin_override_is_recorded(run_of, scientist, reviewer, admin_user):
    staged = staged_version(run_of(test_f1=0.7, p99_ms=500.0), scientist)
    request = open_request(staged, scientist)
    assert [gate["name"] for gate in request.gates if not gate["passed"]] == ["success_threshold", "latency"]

    error = refused(services.promotion_approve, request=request, actor=reviewer, comment="ok")
    assert error.status == 409 and list(error.errors) == ["gates"]
    error = refused(services.promotion_approve, request=request, actor=admin_user, comment="ok")
    assert list(error.errors) == ["gate_override_reason"]

    decided = services.promotion_approve(
        request=request, actor=admin_user, comment="Accepted risk", gate_override_reason="Pilot with 1% of traffic."
    )

    assert decided.status == RequestStatus.APPROVED
    approval = Approval.objects.get(request=request)
    assert approval.gate_override_reason == "Pilot with 1% of traffic."
    event = AuditEvent.objects.filter(action="registry.request_approve").get()
    assert event.after["gate_override_reason"] == "Pilot with 1% of traffic."


def test_fairness_over_the_limit_and_missing_card_sections_fail_their_gates(run_of, scientist, project):
    fairness = {
        "computed": True,
        "columns": [{"column": "gender", "demographic_parity_difference": 0.25, "equalized_odds_difference": 0.05}],
    }
    staged = staged_version(run_of(fairness=fairness), scientist, written={"limitations": "Few rows."})

    gates = {gate["name"]: gate for gate in open_request(staged, scientist).gates}

    assert (gates["fairness"]["passed"], gates["fairness"]["value"], gates["fairness"]["threshold"]) == (
        False,
        0.25,
        0.1,
    )
    assert gates["model_card"]["passed"] is False
    assert "intended_use_notes" in gates["model_card"]["detail"]


def test_a_champion_must_be_beaten_by_the_margin(run_of, scientist, reviewer, settings):
    settings.REGISTRY_CHAMPION_MARGIN = 0.05
    v1 = staged_version(run_of(test_f1=0.9), scientist)
    services.promotion_approve(request=open_request(v1, scientist), actor=reviewer, comment="v1")

    gates = {g["name"]: g for g in open_request(staged_version(run_of(test_f1=0.92), scientist), scientist).gates}

    assert gates["beats_champion"]["passed"] is False
    assert gates["beats_champion"]["threshold"] == pytest.approx(0.95)


# --- Approvals bind to the hashes -----------------------------------------------------------------------------------
def test_an_approval_is_void_after_the_stored_artifact_changes(run_of, scientist, reviewer, settings):
    staged = staged_version(run_of(), scientist)
    request = open_request(staged, scientist)
    path = artifact_store().root / staged.artifact_key  # the registry's copy (a hard link of the run's)
    path.write_bytes(b"tampered" + path.read_bytes())

    with pytest.raises(ApplicationError) as error:
        services.promotion_approve(request=request, actor=reviewer, comment="ok")

    assert error.value.status == 409 and list(error.value.errors) == ["request"]
    request.refresh_from_db()
    staged.refresh_from_db()
    assert (request.status, staged.stage) == (RequestStatus.VOID, Stage.STAGING)
    assert "bytes changed" in request.decision_reason
    assert not Approval.objects.exists()
    assert AuditEvent.objects.order_by("-seq").first().action == "registry.request_void"


def test_an_approval_is_void_after_the_recorded_metrics_change(run_of, scientist, reviewer):
    staged = staged_version(run_of(), scientist)
    request = open_request(staged, scientist)
    ModelVersion.objects.filter(pk=staged.pk).update(metrics={**staged.metrics, "test_score": 0.99})

    with pytest.raises(ApplicationError):
        services.promotion_approve(request=request, actor=reviewer, comment="ok")

    request.refresh_from_db()
    assert request.status == RequestStatus.VOID and "metrics changed" in request.decision_reason


# --- Reject, withdraw -----------------------------------------------------------------------------------------------
def test_reject_closes_the_request_and_withdraw_is_the_requesters(run_of, scientist, reviewer, member):
    request = open_request(staged_version(run_of(), scientist), scientist)
    other_scientist = member(Role.SCIENTIST)
    with pytest.raises(PermissionDenied):
        services.promotion_withdraw(request=request, actor=other_scientist)

    rejected = services.promotion_reject(request=request, actor=reviewer, reason="Fairness not shown on age.")

    assert (rejected.status, rejected.decision_reason) == (RequestStatus.REJECTED, "Fairness not shown on age.")
    assert Approval.objects.get(request=request).decision == "reject"
    assert refused(services.promotion_withdraw, request=request, actor=scientist).status == 409


def test_withdraw(run_of, scientist):
    request = open_request(staged_version(run_of(), scientist), scientist)
    assert services.promotion_withdraw(request=request, actor=scientist).status == RequestStatus.WITHDRAWN


def test_archiving_waits_for_an_open_request_and_production_is_never_archived_directly(run_of, scientist, reviewer):
    staged = staged_version(run_of(), scientist)
    request = open_request(staged, scientist)
    assert refused(services.version_archive, version=staged, actor=scientist).status == 409
    services.promotion_approve(request=request, actor=reviewer, comment="ok")
    assert refused(services.version_archive, version=staged, actor=scientist).status == 409


# --- Rollback and the stage history ---------------------------------------------------------------------------------
def promote_two(run_of, scientist, reviewer, *, first_actor=None):
    v1 = staged_version(run_of(actor=first_actor), scientist)
    services.promotion_approve(request=open_request(v1, scientist), actor=reviewer, comment="v1 is good")
    v2 = staged_version(run_of(), scientist)
    services.promotion_approve(request=open_request(v2, scientist), actor=reviewer, comment="v2 is better")
    return v1, v2


def test_rollback_restores_the_previous_production_version(run_of, scientist, reviewer, second_reviewer):
    v1, v2 = promote_two(run_of, scientist, reviewer)

    restored = services.model_rollback(
        registered_model=v1.registered_model, actor=second_reviewer, reason="v2 misfires on new customers"
    )

    v1.refresh_from_db()
    v2.refresh_from_db()
    assert restored.pk == v1.pk
    assert (v1.stage, v2.stage) == (Stage.PRODUCTION, Stage.ARCHIVED)
    rollbacks = StageTransition.objects.filter(is_rollback=True).order_by("created_at")
    assert [(t.version.number, t.from_stage, t.to_stage, t.actor) for t in rollbacks] == [
        (2, Stage.PRODUCTION, Stage.ARCHIVED, second_reviewer),
        (1, Stage.ARCHIVED, Stage.PRODUCTION, second_reviewer),
    ]
    assert {t.reason for t in rollbacks} == {"v2 misfires on new customers"}
    assert AuditEvent.objects.filter(action="registry.rollback").count() == 2


def test_rollback_follows_separation_of_duties_and_needs_a_reason(run_of, scientist, reviewer, admin_user):
    v1, _ = promote_two(run_of, scientist, reviewer, first_actor=admin_user)

    error = refused(services.model_rollback, registered_model=v1.registered_model, actor=admin_user, reason="bad")
    assert error.status == 403 and list(error.errors) == ["reviewer"]
    assert list(
        refused(services.model_rollback, registered_model=v1.registered_model, actor=reviewer, reason="").errors
    ) == ["reason"]
    with pytest.raises(PermissionDenied):
        services.model_rollback(registered_model=v1.registered_model, actor=scientist, reason="bad")


def test_rollback_needs_an_earlier_production_version(run_of, scientist, reviewer):
    v1 = staged_version(run_of(), scientist)
    assert (
        refused(services.model_rollback, registered_model=v1.registered_model, actor=reviewer, reason="x").status == 409
    )
    services.promotion_approve(request=open_request(v1, scientist), actor=reviewer, comment="ok")
    error = refused(services.model_rollback, registered_model=v1.registered_model, actor=reviewer, reason="x")
    assert error.errors == {"registered_model": ["No earlier production version to go back to."]}


def test_the_stage_history_lists_every_transition_newest_first(run_of, scientist, reviewer, second_reviewer):
    from apps.registry.selectors import stage_history

    v1, _v2 = promote_two(run_of, scientist, reviewer)
    services.model_rollback(registered_model=v1.registered_model, actor=second_reviewer, reason="back")

    history = [
        (t.version.number, t.from_stage, t.to_stage) for t in stage_history(registered_model=v1.registered_model)
    ]

    assert history == [
        (1, "archived", "production"),
        (2, "production", "archived"),
        (2, "staging", "production"),
        (1, "production", "archived"),
        (2, "none", "staging"),
        (1, "staging", "production"),
        (1, "none", "staging"),
    ]
