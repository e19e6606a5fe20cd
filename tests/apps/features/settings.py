"""The project's settings with the features app wired in, until the lead adds it to config/ (INSTALLED_APPS, the
URLs and the Celery imports). Run the features tests with `--ds tests.apps.features.settings`."""

from config.settings import *  # noqa: F403

if "apps.features" not in INSTALLED_APPS:  # noqa: F405
    INSTALLED_APPS = [*INSTALLED_APPS, "apps.features"]  # noqa: F405
    ROOT_URLCONF = "tests.apps.features.urls"
    CELERY_IMPORTS = ["workers.tasks.features"]
