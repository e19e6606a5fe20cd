"""Which version answers a request: the deployment's traffic policy (workers.serving.config.Traffic), applied per
request that names no version, and never to a version that is not ready.

A decision is a point in [0, 1) laid over the routes' weights: weighted random for direct, blue-green, canary and
the live routes of shadow (the RNG is injectable so tests can seed it), a stable hash of the sticky key for A/B (the
same key lands on the same variant in every process and after every restart). When the chosen route's version is
not loaded, the same point is laid over the ready routes only: that traffic is re-spread over the ready versions in
proportion to their weights (or equally when only zero-weight routes are ready, e.g. a blue-green whose live side
failed), and a key whose variant is ready never moves. `states()` tells /metrics and the readiness endpoints where
traffic really goes.

Shadow copies run in one background thread (ShadowRunner): the live answer is sent without waiting for them, and
their results come back to the event loop to be counted and logged, never returned.
"""

import asyncio
import hashlib
import random
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from workers.serving.config import Route, Traffic
from workers.serving.registry import LoadedVersion, ModelRegistry

LIVE, SHADOW = "live", "shadow"


class NoReadyVersion(Exception):
    """No version the policy routes to is loaded."""


@dataclass(frozen=True)
class Choice:
    loaded: LoadedVersion
    variant: str | None  # the route that chose it; None when the request named the version


@dataclass(frozen=True)
class RouteState:
    version: str
    variant: str
    role: str  # LIVE or SHADOW
    weight: int  # as configured
    effective_weight: float  # after re-spreading the traffic of versions that are not ready
    ready: bool
    reason: str | None  # why it is not ready


def sticky_point(model: str, key: str) -> float:
    """A stable point in [0, 1) for a sticky key (Python's hash() is salted per process: not usable here)."""
    digest = hashlib.blake2b(f"{model}\0{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def _lay(point: float, routes: list[tuple[Route, LoadedVersion | None]]) -> tuple[Route, LoadedVersion | None]:
    weights = [route.weight for route, _ in routes]
    if not any(weights):
        weights = [1] * len(routes)
    target, cumulative = point * sum(weights), 0
    for candidate, weight in zip(routes, weights, strict=True):
        cumulative += weight
        if target < cumulative:
            return candidate
    return next(candidate for candidate, weight in zip(routes, weights, strict=True) if weight)  # float rounding


class Router:
    def __init__(self, traffic: Traffic, registry: ModelRegistry, *, rng: random.Random | None = None):
        self.traffic = traffic
        self.registry = registry
        self.rng = rng or random.Random()

    def _loaded_routes(self) -> list[tuple[Route, LoadedVersion | None]]:
        return [(route, self.registry.get(self.traffic.model, route.version)) for route in self.traffic.routes]

    def choose(self, sticky_key: str | None = None) -> Choice:
        """The live version for one request; `sticky_key` is the request's value of traffic.sticky_key (A/B)."""
        routes = self._loaded_routes()
        point = sticky_point(self.traffic.model, sticky_key) if sticky_key is not None else self.rng.random()
        route, loaded = _lay(point, routes)
        if loaded is None:
            ready = [(route, loaded) for route, loaded in routes if loaded is not None]
            if not ready:
                raise NoReadyVersion(self._not_ready_message())
            route, loaded = _lay(point, ready)
        return Choice(loaded=loaded, variant=route.variant)

    def shadow(self) -> Choice | None:
        """The version that gets a copy of the live traffic, when there is one and it is loaded."""
        if not self.traffic.shadow:
            return None
        loaded = self.registry.get(self.traffic.model, self.traffic.shadow)
        return Choice(loaded=loaded, variant=self.traffic.shadow) if loaded is not None else None

    @property
    def ready(self) -> bool:
        return any(loaded is not None for _, loaded in self._loaded_routes())

    def _not_ready_message(self) -> str:
        reasons = [
            f"version {route.version}: {self.registry.failure(self.traffic.model, route.version) or 'not loaded'}"
            for route in self.traffic.routes
        ]
        return f"No routed version of {self.traffic.model!r} is ready ({'; '.join(reasons)})."

    def states(self) -> list[RouteState]:
        routes = self._loaded_routes()
        ready_weights = [route.weight if loaded is not None else 0 for route, loaded in routes]
        ready_count = sum(loaded is not None for _, loaded in routes)
        states = []
        for (route, loaded), ready_weight in zip(routes, ready_weights, strict=True):
            if loaded is None or not ready_count:
                effective = 0.0
            elif sum(ready_weights):
                effective = 100 * ready_weight / sum(ready_weights)
            else:
                effective = 100 / ready_count
            states.append(self._state(route.version, route.variant, LIVE, route.weight, effective, loaded))
        if self.traffic.shadow:
            loaded = self.registry.get(self.traffic.model, self.traffic.shadow)
            states.append(self._state(self.traffic.shadow, self.traffic.shadow, SHADOW, 0, 0.0, loaded))
        return states

    def _state(self, version, variant, role, weight, effective, loaded) -> RouteState:
        reason = None if loaded else self.registry.failure(self.traffic.model, version) or "not loaded"
        return RouteState(version, variant, role, weight, effective, loaded is not None, reason)


class ShadowRunner:
    """Shadow predictions in one background thread, off the live request's path.

    `submit(work, done)` runs `work()` in the thread and then `done(result, seconds, error)` on the event loop (so
    metrics and the prediction log are only touched from the loop). Over `max_pending` waiting copies, a new copy
    is dropped and counted rather than queued: a slow shadow must not grow memory."""

    def __init__(self, *, max_pending: int = 1000):
        self.max_pending = max_pending
        self.dropped = 0
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shadow")
        self._pending: set[asyncio.Future] = set()

    def submit(self, work: Callable[[], Any], done: Callable[[Any, float, Exception | None], None]) -> None:
        if len(self._pending) >= self.max_pending:
            self.dropped += 1
            return
        future = asyncio.get_running_loop().run_in_executor(self._executor, _timed, work)
        self._pending.add(future)
        future.add_done_callback(lambda finished: self._finish(finished, done))

    def _finish(self, future: asyncio.Future, done: Callable[[Any, float, Exception | None], None]) -> None:
        self._pending.discard(future)
        result, seconds, error = future.result()
        done(result, seconds, error)

    async def wait(self) -> None:
        """Until every submitted copy has finished and been recorded."""
        while self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
            await asyncio.sleep(0)  # let the done callbacks run


def _timed(work: Callable[[], Any]) -> tuple[Any, float, Exception | None]:
    started = time.perf_counter()
    try:
        result = work()
    except Exception as exc:  # a shadow's failure is counted, never raised into the live request
        return None, time.perf_counter() - started, exc
    return result, time.perf_counter() - started, None
