from tests.apps.deployments.deployment_fixtures import (  # noqa: F401
    deployer,
    production_of,
    production_version,
    staged_of,
)
from tests.apps.experiments.experiment_fixtures import launch, version  # noqa: F401
from tests.apps.monitoring.monitoring_fixtures import churn_rows, deployed  # noqa: F401
