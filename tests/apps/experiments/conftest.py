from tests.apps.experiments.experiment_fixtures import launch, version  # noqa: F401
