"""Prometheus text exposition, written by hand: requests, errors and a latency histogram per model version and role
(live: the answer returned; shadow: a copy whose answer is only logged), and where the traffic policy sends
requests (configured and effective weight, readiness per routed version)."""

from collections import defaultdict
from collections.abc import Sequence

from workers.serving.buckets import LATENCY_BUCKETS
from workers.serving.routing import LIVE, RouteState


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class _Histogram:
    __slots__ = ("count", "counts", "total")

    def __init__(self):
        self.counts = [0] * len(LATENCY_BUCKETS)
        self.total = 0.0
        self.count = 0

    def observe(self, seconds: float) -> None:
        for index, bound in enumerate(LATENCY_BUCKETS):
            if seconds <= bound:
                self.counts[index] += 1
                break
        self.total += seconds
        self.count += 1


class Metrics:
    def __init__(self):
        # Keyed by (model, version, role).
        self.requests: dict[tuple[str, str, str], int] = defaultdict(int)
        self.errors: dict[tuple[str, str, str], int] = defaultdict(int)
        self.latency: dict[tuple[str, str, str], _Histogram] = defaultdict(_Histogram)
        self.unrouted_errors = 0  # refused before a model version was chosen (unknown model, bad route)

    def record(self, ref: tuple[str, str], seconds: float, *, error: bool, role: str = LIVE) -> None:
        key = (*ref, role)
        self.requests[key] += 1
        if error:
            self.errors[key] += 1
        self.latency[key].observe(seconds)

    def render(
        self,
        *,
        dropped_log_records: int,
        model: str = "",
        routes: Sequence[RouteState] = (),
        dropped_shadow_copies: int = 0,
    ) -> str:
        lines = [
            "# HELP mlp_serving_requests_total Prediction and explanation requests per model version and role.",
            "# TYPE mlp_serving_requests_total counter",
        ]
        lines += [
            f"mlp_serving_requests_total{{{_labels(ref)}}} {count}" for ref, count in sorted(self.requests.items())
        ]
        lines += [
            "# HELP mlp_serving_errors_total Requests per model version answered with an error status.",
            "# TYPE mlp_serving_errors_total counter",
        ]
        lines += [f"mlp_serving_errors_total{{{_labels(ref)}}} {count}" for ref, count in sorted(self.errors.items())]
        lines += [
            "# HELP mlp_serving_request_duration_seconds Time from the request's arrival to its answer.",
            "# TYPE mlp_serving_request_duration_seconds histogram",
        ]
        for ref, histogram in sorted(self.latency.items()):
            labels, cumulative = _labels(ref), 0
            for bound, count in zip(LATENCY_BUCKETS, histogram.counts, strict=True):
                cumulative += count
                lines.append(f'mlp_serving_request_duration_seconds_bucket{{{labels},le="{bound}"}} {cumulative}')
            lines.append(f'mlp_serving_request_duration_seconds_bucket{{{labels},le="+Inf"}} {histogram.count}')
            lines.append(f"mlp_serving_request_duration_seconds_sum{{{labels}}} {histogram.total!r}")
            lines.append(f"mlp_serving_request_duration_seconds_count{{{labels}}} {histogram.count}")
        lines += [
            "# HELP mlp_serving_unrouted_errors_total Requests refused before a model version was chosen.",
            "# TYPE mlp_serving_unrouted_errors_total counter",
            f"mlp_serving_unrouted_errors_total {self.unrouted_errors}",
            "# HELP mlp_serving_prediction_log_dropped_total Prediction log records dropped on a full queue.",
            "# TYPE mlp_serving_prediction_log_dropped_total counter",
            f"mlp_serving_prediction_log_dropped_total {dropped_log_records}",
            "# HELP mlp_serving_shadow_dropped_total Shadow copies dropped because the shadow fell behind.",
            "# TYPE mlp_serving_shadow_dropped_total counter",
            f"mlp_serving_shadow_dropped_total {dropped_shadow_copies}",
        ]
        return "\n".join(lines + _route_lines(model, routes)) + "\n"


def _route_lines(model: str, routes: Sequence[RouteState]) -> list[str]:
    gauges = (
        ("mlp_serving_route_weight", "Traffic weight (percent) the deployment file gives a version.", "weight"),
        (
            "mlp_serving_route_effective_weight",
            "Traffic weight (percent) a version really gets: a version that is not ready gets none.",
            "effective_weight",
        ),
        ("mlp_serving_route_ready", "1 when a routed version is loaded and serving, 0 when not.", "ready"),
    )
    lines = []
    for name, help_text, attribute in gauges:
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
        for route in routes:
            labels = _labels((model, route.version, route.role)) + f',variant="{_escape(route.variant)}"'
            lines.append(f"{name}{{{labels}}} {float(getattr(route, attribute))!r}")
    return lines


def _labels(key: tuple[str, str, str]) -> str:
    return f'model="{_escape(key[0])}",version="{_escape(key[1])}",role="{_escape(key[2])}"'
