"""Where the platform's side of a deployment lives on this host, from settings: one obvious place for the paths the
reconciler, the runners and the prediction-log importer share."""

from pathlib import Path

from django.conf import settings


def prediction_log_dir(deployment_name: str) -> Path:
    """The folder the endpoint's model servers write their prediction log to (SERVING_LOG_DIR)."""
    return Path(settings.SERVING_LOG_ROOT) / deployment_name
