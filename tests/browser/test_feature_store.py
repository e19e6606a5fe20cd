"""A data scientist defines a feature in the browser (a bad window is refused next to its field), materialises it
and watches the job finish without reloading, builds a point-in-time correct training set, and launches an
experiment on the resulting dataset version from the training set's page; a real worker does the background work.
"""

import io
import random

import pandas as pd
from playwright.sync_api import expect

from apps.accounts.choices import Role
from apps.datasets import services as dataset_services
from apps.datasets.choices import JobStatus
from apps.datasets.models import IngestionJob
from apps.experiments.models import Experiment
from apps.features import services
from apps.features.models import Feature, TrainingSet
from tests.factories import MembershipFactory, ProblemDefinitionFactory, UserFactory
from tests.support.celery_worker import wait_for

CUSTOMERS = 60
JOB_SECONDS = 90
RUN_SECONDS = 150


def purchases(seed: int = 5) -> pd.DataFrame:
    """Purchases over January; big spenders are the ones who stay."""
    rng = random.Random(seed)
    rows = []
    for customer in range(1, CUSTOMERS + 1):
        level = rng.uniform(5, 100)
        for _ in range(rng.randint(2, 6)):
            moment = pd.Timestamp("2026-01-01") + pd.Timedelta(hours=rng.randint(0, 24 * 25))
            rows.append((customer, moment, round(level + rng.gauss(0, 5), 2)))
    return pd.DataFrame(rows, columns=["customer_id", "event_time", "amount"])


def spine(events: pd.DataFrame) -> pd.DataFrame:
    mean = events.groupby("customer_id")["amount"].mean()
    rows = [
        (customer, pd.Timestamp("2026-01-27") + pd.Timedelta(days=day), "no" if mean[customer] > 50 else "yes")
        for customer in range(1, CUSTOMERS + 1)
        for day in (0, 2)
    ]
    return pd.DataFrame(rows, columns=["customer_id", "as_of", "churned"])


def ingest(dataset, actor, frame: pd.DataFrame, name: str):
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    data = buffer.getvalue()
    job = dataset_services.ingestion_start_upload(
        dataset=dataset, actor=actor, stream=io.BytesIO(data), display_name=name, size=len(data)
    )
    finished = wait_for(
        lambda: IngestionJob.objects.filter(pk=job.pk, status=JobStatus.SUCCEEDED).select_related("version").first(),
        timeout=JOB_SECONDS,
    )
    assert finished is not None, IngestionJob.objects.get(pk=job.pk).error
    return finished.version


def test_scientist_defines_materialises_builds_a_training_set_and_launches_an_experiment(
    page, live_server, login, task_worker
):
    project = ProblemDefinitionFactory(project__name="Churn", problem_type="binary", primary_metric="roc_auc").project
    scientist = UserFactory(role=Role.SCIENTIST, username="dana")
    MembershipFactory(user=scientist, project=project, role=Role.SCIENTIST)
    events = purchases()
    purchases_dataset = dataset_services.dataset_create(project=project, actor=scientist, name="purchases")
    ingest(purchases_dataset, scientist, events, "purchases.parquet")
    spine_dataset = dataset_services.dataset_create(project=project, actor=scientist, name="prediction_times")
    spine_version = ingest(spine_dataset, scientist, spine(events), "spine.parquet")
    entity = services.entity_create(actor=scientist, name="customer", join_keys=["customer_id"])
    services.feature_view_create(actor=scientist, name="customer_spend", entity=entity)

    login(page, live_server, scientist)
    page.goto(f"{live_server.url}/features/")
    page.get_by_role("link", name="Define a feature").click()
    page.get_by_label("Feature view").select_option(label="customer_spend")
    page.get_by_label("Name").fill("spend_mean_30d")
    page.get_by_label("Dataset").select_option(label="Churn / purchases")
    page.get_by_label("Timestamp column").fill("event_time")
    page.get_by_label("Entity columns").fill("customer_id")
    page.get_by_label("Transformation").select_option("window")
    page.get_by_label("Column", exact=True).fill("amount")
    page.get_by_label("Function").select_option("mean")
    page.get_by_label("Window").fill("30 days")
    page.get_by_role("button", name="Define").click()
    expect(page.locator("#id_window_error")).to_be_visible()
    assert not Feature.objects.exists()

    page.get_by_label("Window").fill("30d")
    page.get_by_role("button", name="Define").click()
    expect(page.get_by_role("heading", name="customer_spend:spend_mean_30d")).to_be_visible()

    page.evaluate("window.__samePage = true")
    page.get_by_role("button", name="Materialise new events").click()
    version_section = page.locator("#version-1")
    expect(version_section.locator(".job-status")).to_have_attribute(
        "data-status", "succeeded", timeout=JOB_SECONDS * 1000
    )
    assert page.evaluate("window.__samePage") is True
    expect(version_section.locator(".job-status")).to_contain_text(f"{len(events)} rows")

    page.goto(f"{live_server.url}/features/training-sets/new/?project={project.pk}")
    page.get_by_label("Spine version").select_option(str(spine_version.pk))
    page.get_by_label("Spine key columns").fill("customer_id")
    page.get_by_label("Spine timestamp column").fill("as_of")
    page.get_by_label("Label column").fill("churned")
    page.get_by_role("checkbox", name="customer_spend:spend_mean_30d v1").check()
    page.get_by_label("Output dataset").fill("churn_training")
    page.get_by_role("button", name="Build").click()
    expect(page.locator("#training-set-status")).to_have_attribute(
        "data-status", "succeeded", timeout=JOB_SECONDS * 1000
    )
    training_set = TrainingSet.objects.get()
    assert training_set.result_version.row_count == 2 * CUSTOMERS

    page.locator("#launch-experiment").click()
    expect(page.locator("#launch-form")).to_be_visible()
    page.get_by_label("Target column").select_option("churned")
    features = page.locator("#features-fieldset")
    features.get_by_role("checkbox", name="spend_mean_30d").check()
    page.get_by_role("button", name="Launch").click()
    expect(page.get_by_role("heading", name="Leaderboard")).to_be_visible()
    experiment = Experiment.objects.get()
    assert experiment.dataset_version_id == training_set.result_version_id
    expect(page.locator("#experiment-status")).to_have_text("Succeeded", timeout=RUN_SECONDS * 1000)
