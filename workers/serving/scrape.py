"""Reading a model server's GET /metrics (workers.serving.metrics writes it) back into numbers: per version and role,
the request and error counters, the latency histogram, and whether each routed version is ready.

The portal's reconciler scrapes every replica each round and keeps the previous scrape, so `interval_delta` turns two
cumulative scrapes into what happened in between. A counter that went down means the replica restarted: the new
value is then the whole delta (what the restarted process served), as Prometheus' rate() treats a reset.
"""

import json
import re
import urllib.error
import urllib.request
from dataclasses import dataclass, field

from workers.serving.buckets import LATENCY_BUCKETS

BUCKET_COUNT = len(LATENCY_BUCKETS) + 1  # the finite bounds, then +Inf
_LINE = re.compile(r"^(?P<name>[a-z_]+)\{(?P<labels>[^}]*)\} (?P<value>\S+)$")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


class ScrapeError(Exception):
    """The replica did not answer /metrics, or answered something that is not our format."""


@dataclass
class Series:
    """Cumulative figures of one (version, role) on one replica."""

    requests: float = 0.0
    errors: float = 0.0
    latency_sum: float = 0.0
    buckets: list[float] = field(default_factory=lambda: [0.0] * BUCKET_COUNT)  # cumulative, as exposed


@dataclass
class Scrape:
    series: dict[tuple[str, str], Series]  # (version, role) -> figures
    ready: dict[str, bool]  # version -> its route's readiness (routed versions only)


@dataclass(frozen=True)
class Delta:
    version: str
    role: str
    requests: int
    errors: int
    latency_sum: float
    buckets: list[int]  # per bucket, not cumulative


def _bucket_index(bound: str) -> int:
    if bound == "+Inf":
        return len(LATENCY_BUCKETS)
    return LATENCY_BUCKETS.index(float(bound))


def parse_metrics(text: str) -> Scrape:
    series: dict[tuple[str, str], Series] = {}
    ready: dict[str, bool] = {}
    for line in text.splitlines():
        match = _LINE.match(line)
        if match is None:
            continue
        labels = dict(_LABEL.findall(match["labels"]))
        name, value = match["name"], float(match["value"])
        if name == "mlp_serving_route_ready":
            ready[labels["version"]] = value >= 1.0
            continue
        if "version" not in labels or "role" not in labels:
            continue
        entry = series.setdefault((labels["version"], labels["role"]), Series())
        if name == "mlp_serving_requests_total":
            entry.requests = value
        elif name == "mlp_serving_errors_total":
            entry.errors = value
        elif name == "mlp_serving_request_duration_seconds_sum":
            entry.latency_sum = value
        elif name == "mlp_serving_request_duration_seconds_bucket":
            entry.buckets[_bucket_index(labels["le"])] = value
    return Scrape(series=series, ready=ready)


def scrape(url: str, *, timeout: float = 2.0) -> Scrape:
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/metrics", timeout=timeout) as response:  # noqa: S310
            return parse_metrics(response.read().decode("utf-8"))
    except (OSError, ValueError, KeyError) as exc:
        raise ScrapeError(f"{url}/metrics: {exc}") from exc


def _per_bucket(cumulative: list[float]) -> list[float]:
    return [cumulative[0], *(cumulative[i] - cumulative[i - 1] for i in range(1, len(cumulative)))]


def interval_delta(previous: Series | None, current: Series) -> tuple[int, int, float, list[int]]:
    """(requests, errors, latency seconds, per-bucket counts) served between two scrapes of one replica."""
    reset = previous is None or current.requests < previous.requests
    base = Series() if reset else previous
    buckets = [
        max(0, round(now - before))
        for now, before in zip(_per_bucket(current.buckets), _per_bucket(base.buckets), strict=True)
    ]
    return (
        round(current.requests - base.requests),
        round(current.errors - base.errors),
        max(0.0, current.latency_sum - base.latency_sum),
        buckets,
    )


def quantile_ms(buckets: list[int], q: float) -> float | None:
    """The q-quantile of per-bucket counts, in milliseconds, as the upper bound of the bucket it falls in (the
    +Inf bucket answers the largest finite bound: 'at least that'). None without observations."""
    total = sum(buckets)
    if not total:
        return None
    rank, seen = q * total, 0
    for index, count in enumerate(buckets):
        seen += count
        if seen >= rank and count:
            bound = LATENCY_BUCKETS[min(index, len(LATENCY_BUCKETS) - 1)]
            return bound * 1000
    return LATENCY_BUCKETS[-1] * 1000


def load_failure(url: str, model: str, version: str, *, timeout: float = 2.0) -> str:
    """Why the replica at `url` did not load `version` of `model` (its readiness endpoint's reason); "" when it is
    loaded, still loading, or the replica did not answer."""
    address = f"{url.rstrip('/')}/v2/models/{model}/versions/{version}/ready"
    try:
        with urllib.request.urlopen(address, timeout=timeout):  # noqa: S310 - a loopback or in-cluster URL
            return ""
    except urllib.error.HTTPError as error:
        try:
            return str(json.loads(error.read()).get("reason") or "")
        except ValueError:
            return ""
    except OSError:
        return ""
