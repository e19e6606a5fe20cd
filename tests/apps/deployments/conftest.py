from tests.apps.deployments.deployment_fixtures import (  # noqa: F401
    deployer,
    local_runner,
    production_of,
    production_version,
    staged_of,
)
from tests.apps.experiments.experiment_fixtures import launch, version  # noqa: F401
