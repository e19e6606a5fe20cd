"""A data scientist launches an experiment from the browser, sees a bad split refused next to its field, watches the
run finish on a real worker without reloading, and finds the leaderboard, the metrics, the charts and the SHAP
explanations; then compares two runs side by side.

The dataset version is made the real way (an upload ingested by the worker), so training reads real artifacts.
"""

import csv
import io
import random

from playwright.sync_api import expect

from apps.accounts.choices import Role
from apps.datasets import services as dataset_services
from apps.datasets.choices import JobStatus
from apps.datasets.models import IngestionJob
from apps.experiments.choices import RunStatus
from apps.experiments.models import Experiment
from tests.factories import MembershipFactory, ProblemDefinitionFactory, UserFactory
from tests.support.celery_worker import wait_for

ROWS = 400
RUN_SECONDS = 150


def churn_csv(rows: int = ROWS, seed: int = 7) -> bytes:
    """Churn depends on tenure, spend and plan, with noise: learnable, not trivial."""
    rng = random.Random(seed)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["customer_id", "tenure_months", "monthly_spend", "support_calls", "plan", "region", "churned"])
    for index in range(1, rows + 1):
        tenure = rng.randint(1, 72)
        spend = round(rng.uniform(10, 120), 2)
        calls = rng.randint(0, 9)
        plan = rng.choice(["basic", "pro", "enterprise"])
        region = rng.choice(["north", "south"])
        risk = 0.04 * calls - 0.02 * tenure + (0.5 if plan == "basic" else 0) + rng.gauss(0, 0.4)
        writer.writerow([index, tenure, spend, calls, plan, region, "yes" if risk > 0 else "no"])
    return out.getvalue().encode()


def ingest_version(dataset, actor):
    data = churn_csv()
    job = dataset_services.ingestion_start_upload(
        dataset=dataset, actor=actor, stream=io.BytesIO(data), display_name="churn.csv", size=len(data)
    )
    finished = wait_for(
        lambda: IngestionJob.objects.filter(pk=job.pk, status=JobStatus.SUCCEEDED).select_related("version").first(),
        timeout=90,
    )
    assert finished is not None, IngestionJob.objects.get(pk=job.pk).error
    return finished.version


def test_scientist_launches_an_experiment_and_reads_its_results(page, live_server, login, task_worker):
    project = ProblemDefinitionFactory(
        project__name="Churn reduction", problem_type="binary", primary_metric="roc_auc", primary_threshold=0.6
    ).project
    scientist = UserFactory(role=Role.SCIENTIST, username="dana")
    MembershipFactory(user=scientist, project=project, role=Role.SCIENTIST)
    dataset = dataset_services.dataset_create(project=project, actor=scientist, name="customers")
    version = ingest_version(dataset, scientist)
    dataset_services.dataset_column_marks_set(dataset=dataset, actor=scientist, marks={"region": {"sensitive": True}})

    login(page, live_server, scientist)
    page.goto(f"{live_server.url}/experiments/")
    page.get_by_role("button", name="New experiment").click()
    page.get_by_label("Dataset version").select_option(str(version.pk))
    expect(page.locator("#launch-form")).to_be_visible()
    # Defaults: the id column is left out, the sensitive column is preselected for fairness.
    features = page.locator("#features-fieldset")
    expect(features.get_by_role("checkbox", name="customer_id")).not_to_be_checked()
    expect(features.get_by_role("checkbox", name="tenure_months")).to_be_checked()
    page.get_by_label("Target column").select_option("churned")
    features.get_by_role("checkbox", name="region").uncheck()  # a sensitive attribute, not a feature

    # A split that does not add up is refused next to its field, and nothing is queued.
    page.get_by_label("Train share").fill("0.9")
    page.get_by_role("button", name="Launch").click()
    expect(page.locator("#id_split_train_error")).to_contain_text("add up to 1")
    assert not Experiment.objects.exists()

    page.get_by_label("Train share").fill("0.7")
    for name in ("Logistic regression", "LightGBM"):
        page.get_by_role("checkbox", name=name, exact=True).check()
    page.get_by_label("Cross-validation folds").fill("3")
    page.get_by_role("button", name="Launch").click()
    expect(page.get_by_role("heading", name="Leaderboard")).to_be_visible()
    page.evaluate("window.__samePage = true")  # gone if anything reloads the page

    # The leaderboard updates itself until both runs have finished.
    expect(page.locator("#experiment-status")).to_have_text("Succeeded", timeout=RUN_SECONDS * 1000)
    assert page.evaluate("window.__samePage") is True
    experiment = Experiment.objects.get()
    assert sorted(experiment.runs.values_list("algorithm", flat=True)) == ["lightgbm", "logistic_regression"]
    assert set(experiment.runs.values_list("status", flat=True)) == {RunStatus.SUCCEEDED}
    rows = page.locator("#leaderboard-table tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.first.locator("td").nth(1)).to_have_text("1")

    best = experiment.runs.order_by("-primary_score").first()
    rows.first.get_by_role("link").click()
    expect(page.get_by_role("heading", name="Metrics")).to_be_visible()
    expect(page.locator("#metrics-table")).to_contain_text("roc_auc (primary)")
    for chart in ("roc", "pr", "confusion", "importance", "shap_summary"):
        expect(page.locator(f"[data-chart='{chart}'] svg")).to_be_visible()
    expect(page.get_by_role("heading", name="Fairness")).to_be_visible()
    expect(page.get_by_role("heading", name="region")).to_be_visible()
    expect(page.locator("body")).to_contain_text(best.artifact_sha256)

    # Compare both runs side by side.
    page.go_back()
    for checkbox in page.locator("#leaderboard-table input[type=checkbox]").all():
        checkbox.check()
    page.get_by_role("button", name="Compare the checked runs").click()
    expect(page.get_by_role("heading", name="Compare runs")).to_be_visible()
    expect(page.locator("#compare-table thead th")).to_have_count(3)
