"""End to end on real worker processes and the real broker: a launch through the API is trained by a worker; a run
cancelled while it trains stops; a worker killed with SIGKILL mid-run leaves the run neither "running" forever nor
with two results (the sweep fails it with the reason, or the redelivered message trains it again)."""

import os
import signal
import subprocess
import sys
import time
import uuid

import pytest

from apps.accounts.choices import Role
from apps.audit.models import AuditEvent
from apps.experiments import services
from apps.experiments.choices import FINISHED_RUN_STATUSES, RunStatus
from apps.experiments.models import Run
from tests.apps.experiments.experiment_helpers import FEATURES, QUICK, churn_frame, ingest
from tests.support.celery_worker import BASE_DIR, WorkerProcess, test_database_url, uses_filesystem_broker

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

# A search long enough to kill or cancel mid-run, bounded by its time budget.
LONG = {
    "target": "churned",
    "features": FEATURES,
    "algorithms": ["lightgbm"],
    "split": {"cv_folds": 0},
    "search": {"method": "bayesian", "max_trials": 500, "timeout_seconds": 6},
}
STALE_SECONDS = 4


def wait_for(predicate, timeout: float = 60, interval: float = 0.2):
    from tests.support.celery_worker import wait_for as wait

    return wait(predicate, timeout=timeout, interval=interval)


@pytest.fixture
def artifacts(tmp_path, settings):
    folder = tmp_path / "artifacts"
    folder.mkdir()
    settings.ARTIFACT_STORE = f"file://{folder}"
    from apps.core.artifacts import artifact_store

    return artifact_store()


@pytest.fixture
def celery_worker_env(artifacts, settings):
    return {"ARTIFACT_STORE": settings.ARTIFACT_STORE}


@pytest.fixture
def scientist(member):
    return member(Role.SCIENTIST)


@pytest.fixture
def trained_version(project, scientist, artifacts):
    from apps.datasets import services as dataset_services

    dataset = dataset_services.dataset_create(project=project, actor=scientist, name="churn")
    return ingest(dataset, scientist, churn_frame(rows=3000))


def finished(run_id) -> Run | None:
    return Run.objects.filter(pk=run_id, status__in=FINISHED_RUN_STATUSES).first()


def training(run_id) -> Run | None:
    return Run.objects.filter(pk=run_id, status=RunStatus.RUNNING, trials_done__gte=1).first()


def model_keys(store) -> list[str]:
    return [key for key in store.list_keys("projects/") if "/experiments/" in key]


# --- On the shared integration worker ---------------------------------------------------------------------------
def test_a_launch_through_the_api_is_trained_on_a_real_worker(
    celery_worker_process, artifacts, project, scientist, trained_version, api_client_as
):
    from workers.tasks.training import load_run_model

    response = api_client_as(scientist).post(
        f"/api/v1/projects/{project.pk}/experiments/",
        {**QUICK, "dataset_version": str(trained_version.pk)},
        format="json",
    )
    assert response.status_code == 201, response.json()
    run_id = response.json()["runs"][0]["id"]

    run = wait_for(lambda: finished(run_id), timeout=90)

    assert run is not None, celery_worker_process.log()
    assert run.status == RunStatus.SUCCEEDED, (run.error_code, run.error, celery_worker_process.log())
    assert run.metrics["test"]["f1"] == pytest.approx(run.test_score)
    assert model_keys(artifacts) == [run.artifact_key]
    assert load_run_model(run_id=run_id).predict(churn_frame(rows=5)[FEATURES]).shape == (5,)
    event = AuditEvent.objects.get(action="experiment.run_succeeded")
    assert event.request_id == run.task_id  # written by the worker, under the task's id
    assert f"Task experiments.train_run[{run.task_id}] succeeded" in celery_worker_process.log(10**6)


def test_a_run_cancelled_while_it_trains_stops_and_keeps_nothing(
    celery_worker_process, artifacts, project, scientist, trained_version
):
    experiment = services.experiment_launch(
        project=project,
        actor=scientist,
        dataset_version=trained_version,
        data={**LONG, "search": {**LONG["search"], "timeout_seconds": 60}},
    )
    run = experiment.runs.get()
    assert wait_for(lambda: training(run.pk), timeout=60), celery_worker_process.log()

    services.run_cancel(run=run, actor=scientist)

    returned = f"Task experiments.train_run[{Run.objects.get(pk=run.pk).task_id}] succeeded"
    assert wait_for(lambda: returned in celery_worker_process.log(10**6), timeout=30), celery_worker_process.log()
    assert "'cancelled'" in celery_worker_process.log(10**6).split(returned, 1)[1].splitlines()[0]
    run.refresh_from_db()
    assert (run.status, run.artifact_key, model_keys(artifacts)) == (RunStatus.CANCELLED, "", [])


# --- Killing a worker -------------------------------------------------------------------------------------------
@pytest.fixture
def training_workers(celery_broker, artifacts, settings, tmp_path):
    """start(name) -> a `celery worker -Q training` (prefork, one child) in its own process group, with a 1 s
    heartbeat and a redelivery within seconds (tests/apps/experiments/worker_settings.py); every worker started is
    stopped (or killed) at the end."""
    database_url = test_database_url()
    if database_url is None:
        pytest.skip("the test database is in-memory SQLite, which a worker process cannot open")
    started: list[tuple[WorkerProcess, object]] = []

    def start(name: str) -> WorkerProcess:
        env = {key: value for key, value in os.environ.items() if key != "CELERY_TASK_ALWAYS_EAGER"}
        env.update(
            DATABASE_URL=database_url,
            MLPLATFORM_VAR_DIR=str(celery_broker["var_dir"]),
            DJANGO_SETTINGS_MODULE="tests.apps.experiments.worker_settings",
            PYTHONUNBUFFERED="1",
            ARTIFACT_STORE=settings.ARTIFACT_STORE,
            RUN_HEARTBEAT_SECONDS="1",
            RUN_STALE_SECONDS=str(STALE_SECONDS),
        )
        log_path = tmp_path / f"{name}.log"
        log = log_path.open("w")
        command = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--pool",
            "prefork",
            "--concurrency",
            "1",
            "-Q",
            "training",
            "--loglevel",
            "INFO",
            "--hostname",
            f"{name}-{uuid.uuid4().hex[:8]}@%h",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ]
        process = subprocess.Popen(
            command, cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        worker = WorkerProcess(
            process=process, log_path=log_path, transport_options=celery_broker["transport_options"], var_dir=tmp_path
        )
        started.append((worker, log))
        if not wait_for(lambda: " ready." in worker.log(10**6) or not worker.alive(), timeout=30) or not worker.alive():
            pytest.fail(f"worker {name} did not start; log:\n{worker.log()}")
        return worker

    yield start
    for worker, log in started:
        if worker.alive():
            worker.stop()
        kill_group(worker)
        log.close()


def kill_group(worker: WorkerProcess) -> None:
    """SIGKILL the worker's whole process group: the main process and its pool child, no chance to clean up."""
    try:
        os.killpg(worker.process.pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    worker.process.wait(timeout=10)


def children_of(pid: int) -> list[int]:
    result = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True)
    return [int(line) for line in result.stdout.split()]


def dead(pid: int) -> bool:
    """Gone, or a zombie nobody reaped yet (its parent was killed with it)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def _assert_one_result(run: Run, artifacts) -> None:
    finishes = AuditEvent.objects.filter(
        object_id=str(run.pk), action__in=["experiment.run_succeeded", "experiment.run_failed"]
    )
    assert finishes.count() == 1
    if run.status == RunStatus.SUCCEEDED:
        assert model_keys(artifacts) == [run.artifact_key]
    else:
        assert (run.artifact_key, model_keys(artifacts)) == ("", [])


@pytest.mark.parametrize("outcome", ["failed_by_the_sweep", "retried_by_a_second_worker"])
def test_a_worker_killed_mid_run_leaves_one_outcome(
    outcome, training_workers, artifacts, project, scientist, trained_version
):
    if outcome == "retried_by_a_second_worker" and uses_filesystem_broker():
        pytest.skip("only Redis redelivers an unacknowledged message (the filesystem transport deletes it on receipt)")
    first = training_workers("first")
    run = services.experiment_launch(
        project=project, actor=scientist, dataset_version=trained_version, data=LONG
    ).runs.get()
    assert wait_for(lambda: training(run.pk), timeout=60), first.log()
    pool_children = children_of(first.process.pid)
    assert pool_children, "a prefork worker runs the task in a child process"

    kill_group(first)

    assert not first.alive()
    assert wait_for(lambda: all(dead(pid) for pid in pool_children), timeout=10)
    run.refresh_from_db()
    assert run.status == RunStatus.RUNNING  # nobody told the database: only the heartbeat stops

    # The sweep runs every minute from beat; here the test runs it, with the threshold of the case.
    def settled(stale_after: int):
        def check():
            services.runs_sweep(stale_after_seconds=stale_after, requeue_after_minutes=60)
            return finished(run.pk)

        return check

    if outcome == "failed_by_the_sweep":
        # No worker is left; the sweep notices the silence first. A worker started afterwards gets the redelivered
        # message (Redis) and must leave the failed run alone.
        final = wait_for(settled(STALE_SECONDS), timeout=60, interval=0.5)
        assert final is not None
        assert (final.status, final.error_code) == (RunStatus.FAILED, "worker_lost")
        assert final.error.startswith("The worker stopped responding (lost or killed)")
        if not uses_filesystem_broker():
            second = training_workers("second")
            returned = f"Task experiments.train_run[{final.task_id}] succeeded"
            assert wait_for(lambda: returned in second.log(10**6), timeout=90), second.log()
            assert "'skipped'" in second.log(10**6).split(returned, 1)[1].splitlines()[0]
    else:
        # A second worker is up before the sweep's threshold: the redelivered message takes the run back.
        second = training_workers("second")
        final = wait_for(settled(600), timeout=120, interval=0.5)
        assert final is not None, second.log()
        assert final.status == RunStatus.SUCCEEDED, (final.error_code, final.error, second.log())
        assert final.attempts == 2
        assert final.log_lines.filter(message__startswith="Started again (attempt 2)").exists()
        from workers.tasks.training import load_run_model

        load_run_model(run_id=run.pk)
    time.sleep(2)  # anything still in flight would land now
    final.refresh_from_db()
    _assert_one_result(final, artifacts)


def test_a_run_past_the_soft_time_limit_fails_with_the_reason(
    training_workers, artifacts, project, scientist, trained_version, settings
):
    # The limits travel with the message: the launching process's settings decide them.
    settings.TRAINING_SOFT_TIME_LIMIT, settings.TRAINING_HARD_TIME_LIMIT = 4, 60
    worker = training_workers("limited")
    data = {**LONG, "search": {**LONG["search"], "timeout_seconds": 3}}  # within 80% of the soft limit
    run = services.experiment_launch(project=project, actor=scientist, dataset_version=trained_version, data=data)
    run = run.runs.get()

    final = wait_for(lambda: finished(run.pk), timeout=60)

    assert final is not None, worker.log()
    assert (final.status, final.error_code) == (RunStatus.FAILED, "time_limit"), worker.log()
    assert final.error.startswith("The run took longer than 4 seconds and was stopped.")
    assert model_keys(artifacts) == []
