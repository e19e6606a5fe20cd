"""Which runner serves the portal's endpoints: `runner_for(settings.SERVING_RUNNER, **options)`.

Each runner's module (and its SDK: docker, kubernetes) is imported only when it is chosen."""

from typing import Any

from workers.serving.runners.base import Runner

RUNNERS = ("local", "docker", "kubernetes")


def runner_for(name: str, **options: Any) -> Runner:
    """The runner called `name`, built with `options` (its constructor's keyword arguments):
    local: state_dir, ready_timeout, stop_grace, max_restarts, restart_window;
    docker: image, state_dir, log_dir_host, network, publish_host, max_restarts, ready_timeout, user, memory, cpus;
    kubernetes: image, namespace, max_replicas, cpu_target, resources, secret_name, log_claim, ready_timeout."""
    if name == "local":
        from workers.serving.runners.local import LocalRunner

        return LocalRunner(**options)
    if name == "docker":
        from workers.serving.runners.docker import DockerRunner

        return DockerRunner(**options)
    if name == "kubernetes":
        from workers.serving.runners.kubernetes import KubernetesRunner

        return KubernetesRunner(**options)
    raise ValueError(f"SERVING_RUNNER: one of {', '.join(RUNNERS)} is required, got {name!r}.")
