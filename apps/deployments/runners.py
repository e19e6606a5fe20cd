"""The runner a deployment uses (settings.SERVING_RUNNER when it was created): one instance per worker process, so
the local runner keeps the exit codes of the processes it started."""

from functools import lru_cache

from django.conf import settings

from workers.serving.runners.base import Runner


@lru_cache(maxsize=4)
def runner_named(name: str) -> Runner:
    if name == "local":
        from workers.serving.runners.local import LocalRunner

        return LocalRunner(settings.SERVING_STATE_DIR, ready_timeout=float(settings.SERVING_READY_TIMEOUT))
    raise ValueError(f"SERVING_RUNNER: unknown runner {name!r}; use local, docker or kubernetes.")
