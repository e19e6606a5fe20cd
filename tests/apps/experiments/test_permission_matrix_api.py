"""Every experiments API endpoint for every kind of caller: the status code; a refused call changed nothing and queued
nothing, an allowed write changed something.

Callers: anonymous, a non-member data scientist, members of the project with each project role (whose platform-wide
role is the same), and an admin who is not a member.
"""

import pytest

from tests.apps.experiments.experiment_helpers import QUICK, state
from tests.support.placeholders import fill_placeholders

pytestmark = pytest.mark.django_db

CALLERS = ["anonymous", "non_member", "stakeholder", "scientist", "reviewer", "compliance", "admin"]


def _codes(*codes: int) -> dict[str, int]:
    return dict(zip(CALLERS, codes, strict=True))


VIEW = _codes(401, 404, 200, 200, 200, 200, 200)
LAUNCH = _codes(401, 404, 403, 201, 403, 403, 201)
CANCEL = _codes(401, 404, 403, 200, 403, 403, 200)

# name: (method, path template, body, expected code per caller, queues a training run when allowed)
CALLS = {
    "experiments_list": ("get", "experiments/", None, VIEW, False),
    "experiments_launch": ("post", "experiments/", {**QUICK, "dataset_version": "{version}"}, LAUNCH, True),
    "experiment_retrieve": ("get", "experiments/{experiment}/", None, VIEW, False),
    "experiment_cancel": ("post", "experiments/{experiment}/cancel/", None, CANCEL, False),
    "experiment_leaderboard": ("get", "experiments/{experiment}/leaderboard/", None, VIEW, False),
    "runs_list": ("get", "runs/", None, VIEW, False),
    "runs_compare": ("get", "runs/compare/?ids={run},{other_run}", None, VIEW, False),
    "run_retrieve": ("get", "runs/{run}/", None, VIEW, False),
    "run_cancel": ("post", "runs/{run}/cancel/", None, CANCEL, False),
    "run_log": ("get", "runs/{run}/log/", None, VIEW, False),
}
WRITES = {"post", "put", "patch", "delete"}


@pytest.fixture
def world(launch, version, sent_tasks):
    experiment = launch({**QUICK, "algorithms": ["logistic_regression", "random_forest"]})
    run, other_run = experiment.runs.order_by("number")
    sent_tasks.clear()
    return {"version": version.pk, "experiment": experiment.pk, "run": run.pk, "other_run": other_run.pk}


@pytest.mark.parametrize("kind", CALLERS)
@pytest.mark.parametrize("name", list(CALLS))
def test_api_permission_matrix(
    name, kind, world, project, caller, api_client_as, sent_tasks, django_capture_on_commit_callbacks
):
    method, template, body, expected, queues = CALLS[name]
    client = api_client_as(caller(kind))
    path = f"/api/v1/projects/{project.pk}/" + template.format(**world)
    data = fill_placeholders(body, {key: str(value) for key, value in world.items()})
    before = state()

    with django_capture_on_commit_callbacks(execute=True):
        response = getattr(client, method)(path, data, format="json") if data else getattr(client, method)(path)

    assert response.status_code == expected[kind], response.content[:300]
    allowed = response.status_code < 400
    if method in WRITES and not allowed:
        assert state() == before
        assert sent_tasks == []
    if method in WRITES and allowed:
        assert state() != before
        assert {task for task, _args, _queue in sent_tasks} == ({"experiments.train_run"} if queues else set())
    if method == "get":
        assert state() == before
        assert sent_tasks == []


def test_matrix_covers_every_experiments_api_route():
    from tests.test_route_inventory import SAMPLE_UUID, all_paths

    sample = dict.fromkeys(["version", "experiment", "run", "other_run"], SAMPLE_UUID)
    covered = {
        f"/api/v1/projects/{SAMPLE_UUID}/" + template.format(**sample).split("?")[0]
        for _method, template, *_rest in CALLS.values()
    }
    routes = {
        path
        for path in all_paths()
        if path.startswith("/api/v1/projects/") and any(part in path for part in ("/experiments/", "/runs/"))
    }
    assert routes == covered
