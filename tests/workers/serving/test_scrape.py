"""Reading a server's /metrics back: what workers.serving.metrics writes parses into the same numbers, two scrapes
give what happened in between (a restarted replica's counters start again), and quantiles come from the buckets."""

from workers.serving.metrics import Metrics
from workers.serving.routing import LIVE, SHADOW, RouteState
from workers.serving.scrape import Series, interval_delta, parse_metrics, quantile_ms


def rendered(metrics: Metrics, *, ready: bool = True) -> str:
    routes = [RouteState("1", "v1", LIVE, 100, 100.0, ready, None), RouteState("2", "v2", SHADOW, 0, 0.0, False, "x")]
    return metrics.render(dropped_log_records=0, model="churn", routes=routes)


def test_the_written_exposition_parses_back_per_version_and_role():
    metrics = Metrics()
    for seconds in (0.0004, 0.0004, 0.003, 0.2):
        metrics.record(("churn", "1"), seconds, error=False)
    metrics.record(("churn", "1"), 0.0009, error=True)
    metrics.record(("churn", "2"), 0.002, error=False, role=SHADOW)

    scraped = parse_metrics(rendered(metrics))

    live = scraped.series[("1", LIVE)]
    assert (live.requests, live.errors) == (5, 1)
    assert abs(live.latency_sum - 0.2047) < 1e-9
    assert live.buckets[0] == 2 and live.buckets[-1] == 5  # cumulative: <= 0.5 ms, then +Inf
    assert scraped.series[("2", SHADOW)].requests == 1
    assert scraped.ready == {"1": True, "2": False}


def test_a_delta_is_what_was_served_between_two_scrapes():
    before = Series(requests=10, errors=1, latency_sum=0.5, buckets=[5, 8] + [10] * 11)
    after = Series(requests=14, errors=2, latency_sum=0.7, buckets=[6, 10] + [14] * 11)

    requests, errors, latency, buckets = interval_delta(before, after)

    assert (requests, errors) == (4, 1) and abs(latency - 0.2) < 1e-9
    assert buckets[:3] == [1, 1, 2] and sum(buckets) == 4


def test_a_counter_that_went_down_is_a_restart_whose_new_counts_are_the_delta():
    before = Series(requests=100, errors=5, latency_sum=3.0, buckets=[100] * 13)
    after = Series(requests=3, errors=0, latency_sum=0.01, buckets=[3] * 13)
    assert interval_delta(before, after)[:2] == (3, 0)


def test_quantiles_are_the_upper_bound_of_their_bucket():
    buckets = [90, 0, 9, 0, 0, 0, 1] + [0] * 6  # 90 <= 0.5 ms, 9 <= 2.5 ms, 1 <= 50 ms
    assert quantile_ms(buckets, 0.5) == 0.5
    assert quantile_ms(buckets, 0.99) == 2.5
    assert quantile_ms(buckets, 1.0) == 50
    assert quantile_ms([0] * 13, 0.5) is None
