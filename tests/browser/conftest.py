"""Browser tests: Debian's Chromium driven by Playwright's sync API against pytest-django's live server.

Every test in tests/browser is marked `browser`. Users must be created inside the test (the live server runs in
another thread and sees only committed rows), so the `page` fixture brings `transactional_db` with it.
"""

import os
from pathlib import Path

import pytest
from django.db import connections

from config.celery import app as celery_app

# Playwright's sync API runs an asyncio event loop in this thread; Django refuses ORM calls from a thread with a
# running loop unless told this is deliberate. The tests call the ORM only between page actions, never concurrently.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
BROWSER_DIR = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config, items):
    for item in items:
        if BROWSER_DIR in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium package to run the browser tests")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser, live_server, transactional_db):
    """A fresh browser context (no cookies, no storage) per test."""
    context = browser.new_context(base_url=live_server.url)
    context.set_default_timeout(10_000)
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()
        # Connections opened by the live server's threads while Playwright ran would outlive the test, and
        # PostgreSQL refuses to drop a test database that still has connections.
        connections.close_all()


@pytest.fixture
def new_context(browser, live_server, transactional_db):
    """new_context(**options) -> a browser context on the live server, for tests with several users at once."""
    contexts = []

    def make(**options):
        context = browser.new_context(base_url=live_server.url, **options)
        context.set_default_timeout(10_000)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()
    connections.close_all()


@pytest.fixture
def login(live_server):
    """login(page, live_server, user, password=TEST_PASSWORD): sign in through the real login form."""
    from tests.factories import TEST_PASSWORD

    def sign_in(page, server, user, password: str = TEST_PASSWORD):
        page.goto(f"{server.url}/accounts/login/")
        page.get_by_label("Username").fill(user.get_username())
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_load_state()
        return page

    return sign_in


# --- Background work: a real worker process (tests/support/celery_worker.py) ---------------------------------------
@pytest.fixture
def artifacts(tmp_path, settings):
    folder = tmp_path / "artifacts"
    folder.mkdir()
    settings.ARTIFACT_STORE = f"file://{folder}"
    return folder


@pytest.fixture
def celery_worker_env(artifacts, settings):
    return {"ARTIFACT_STORE": settings.ARTIFACT_STORE}


@pytest.fixture
def task_worker(request, artifacts, transactional_db, monkeypatch):
    """The real worker process where it can reach the test database; else run dispatched tasks in the web process."""
    from tests.support.celery_worker import test_database_url

    if test_database_url() is not None:
        return request.getfixturevalue("celery_worker_process")

    # In-memory SQLite (the default local run): a worker process cannot open this database, so — like
    # CELERY_TASK_ALWAYS_EAGER, which services' dispatch by name (`send_task`) does not honour — the task named in
    # the dispatch runs right away in the web process, inside the upload request.
    def send_task_eagerly(name, args=None, kwargs=None, **options):
        return celery_app.tasks[name].apply(args=args or [], kwargs=kwargs or {})

    monkeypatch.setattr(celery_app.conf, "task_always_eager", True)
    monkeypatch.setattr(celery_app, "send_task", send_task_eagerly)
    return None
