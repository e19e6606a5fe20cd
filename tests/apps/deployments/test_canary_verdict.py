"""How a canary is judged from what it and the stable version served over the same window."""

from apps.deployments.services.reconcile import Window, canary_verdict
from workers.serving.buckets import LATENCY_BUCKETS


def window(requests: int, errors: int = 0, *, bucket: int = 1) -> Window:
    buckets = [0] * (len(LATENCY_BUCKETS) + 1)
    buckets[bucket] = requests
    return Window(requests=requests, errors=errors, buckets=buckets)


def judge(canary: Window, stable: Window, *, elapsed: bool = False, p99: float | None = None):
    return canary_verdict(
        canary=canary, stable=stable, max_error_rate=0.02, max_p99_ms=p99, min_requests=20, step_elapsed=elapsed
    )


def test_nothing_is_judged_on_too_few_requests():
    assert judge(window(19, 19), window(100)).action == "wait"


def test_errors_above_the_stable_rate_plus_the_limit_roll_back():
    verdict = judge(window(100, 5), window(100, 1))
    assert verdict.action == "rollback" and "5.0%" in verdict.reason and "3.0%" in verdict.reason


def test_errors_both_versions_make_are_not_held_against_the_canary():
    assert judge(window(100, 10), window(900, 90), elapsed=True).action == "advance"


def test_a_p99_above_the_limit_rolls_back():
    slow = window(100, bucket=6)  # <= 50 ms
    verdict = judge(slow, window(100), p99=20)
    assert verdict.action == "rollback" and "50 ms" in verdict.reason


def test_within_limits_it_advances_once_the_step_elapsed():
    assert judge(window(50), window(500)).action == "wait"
    assert judge(window(50), window(500), elapsed=True).action == "advance"
