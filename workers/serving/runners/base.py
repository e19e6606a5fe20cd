"""What every runner (local processes, Docker, Kubernetes) is given and answers: the interface the portal's
reconcile task calls, whichever runner a deployment uses.

An endpoint is one deployment's model server: its deployment file (workers.serving.config), how many replicas, and
the environment the server reads (MODEL_SIGNING_KEY, SERVING_LOG_DIR, limits). The runner owns SERVING_CONFIG and
SERVING_ADMIN_TOKEN: it writes the file and calls /admin/reload with the token.
"""

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from workers.serving.config import ConfigError, parse_deployment

ENDPOINT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
RUNNER_OWNED_VARIABLES = ("SERVING_CONFIG", "SERVING_ADMIN_TOKEN")

READY = "ready"  # every replica answers /v2/health/ready with 200
DEGRADED = "degraded"  # some replicas ready, not all
NOT_READY = "not_ready"  # no replica ready (starting, a version that did not load, a dead process)
CRASH_LOOP = "crash_loop"  # a replica kept dying: the runner stopped restarting it
STOPPED = "stopped"  # nothing runs for this endpoint


class EndpointError(ValueError):
    """The endpoint cannot be run as given; the message starts with the field."""


@dataclass(frozen=True)
class Endpoint:
    id: str
    config: dict[str, Any]  # the server's deployment file
    replicas: int = 1
    environment: dict[str, str] = field(default_factory=dict)

    def __post_init__(self):
        if not isinstance(self.id, str) or not ENDPOINT_ID.fullmatch(self.id):
            raise EndpointError("id: 1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit.")
        if not isinstance(self.replicas, int) or isinstance(self.replicas, bool) or self.replicas < 1:
            raise EndpointError(f"replicas: a positive integer is required, got {self.replicas!r}.")
        try:
            parse_deployment(self.config)
        except ConfigError as exc:
            raise EndpointError(f"config.{exc}") from None
        for name, value in self.environment.items():
            if not isinstance(name, str) or not isinstance(value, str):
                raise EndpointError(f"environment.{name}: names and values must be strings.")
            if name in RUNNER_OWNED_VARIABLES:
                raise EndpointError(f"environment.{name}: set by the runner, not by the endpoint.")
        if not self.environment.get("MODEL_SIGNING_KEY"):
            raise EndpointError("environment.MODEL_SIGNING_KEY: required, the server verifies every artifact.")


@dataclass(frozen=True)
class ReplicaStatus:
    index: int
    url: str
    pid: int | None
    alive: bool
    ready: bool
    restarts: int
    last_exit_code: int | None  # None while it never exited, or when the runner could not learn it
    reason: str = ""  # why it is not ready, or why the last reload was refused
    reload_error: str = ""  # the last reload this replica refused: it keeps serving what it had


@dataclass(frozen=True)
class EndpointStatus:
    endpoint_id: str
    state: str  # READY, DEGRADED, NOT_READY, CRASH_LOOP or STOPPED
    replicas: tuple[ReplicaStatus, ...] = ()
    reason: str = ""

    @property
    def urls(self) -> list[str]:
        return [replica.url for replica in self.replicas]


def endpoint_state(replicas: list[ReplicaStatus], *, crash_loop: bool) -> str:
    if not replicas:
        return STOPPED
    if crash_loop:
        return CRASH_LOOP
    ready = sum(replica.ready for replica in replicas)
    if ready == len(replicas):
        return READY
    return DEGRADED if ready else NOT_READY


class Runner(ABC):
    @abstractmethod
    def ensure(self, endpoint: Endpoint) -> EndpointStatus:
        """Make the endpoint run as described (idempotent) and answer its status once the replicas are up."""

    @abstractmethod
    def status(self, endpoint_id: str) -> EndpointStatus:
        """What runs now, without changing anything."""

    @abstractmethod
    def stop(self, endpoint_id: str) -> None:
        """Stop every replica and forget them (idempotent)."""

    @abstractmethod
    def reload(self, endpoint: Endpoint) -> EndpointStatus:
        """Give the running replicas the endpoint's new deployment file without restarting them."""
