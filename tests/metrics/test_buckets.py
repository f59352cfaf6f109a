"""The round-trip buckets keep ``histogram_quantile`` close to the true quantile where
round trips and timeouts of a struggling CSMS land.

``quantile`` below is Prometheus' histogram_quantile (promql/quantile.go: find the
bucket holding rank q * count, interpolate linearly inside it), applied to the
cumulative buckets the exporter publishes.
"""

from __future__ import annotations

import random

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from fleet.metrics.exporter import FleetCollector
from fleet.metrics.stats import BUCKETS, FleetStats


def quantile(q: float, buckets: list[tuple[float, float]]) -> float:
    """histogram_quantile(q, ...) over (upper bound, cumulative count), +Inf last."""
    count = buckets[-1][1]
    rank = q * count
    lower, below = 0.0, 0.0
    for upper, cumulative in buckets:
        if cumulative >= rank:
            if upper == float("inf"):
                return lower  # Prometheus returns the highest finite bound
            return lower + (upper - lower) * (rank - below) / (cumulative - below)
        lower, below = upper, cumulative
    raise AssertionError("unreachable")


def published(stats: FleetStats, action: str) -> list[tuple[float, float]]:
    """The action's cumulative buckets as a scraper reads them from /metrics."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FleetCollector(stats))
    out = []
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            if sample.name.endswith("_bucket") and sample.labels.get("action") == action:
                out.append((float(sample.labels["le"]), sample.value))
    return sorted(out)


def exact(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, int(q * len(ordered) + 0.5) - 1)]


@pytest.mark.parametrize("timeout", [5, 6, 7, 8, 9, 10])
def test_timed_out_calls_read_as_the_timeout(timeout: int) -> None:
    """The issue's case: 6 % of the calls time out (observed a few ms after the
    timeout), the rest are answered within 3 s. The p95 is in the timed-out mass: it
    must read between the timeout and the next bound (<= 1 s above), not 26.6 s."""
    rng = random.Random(timeout)
    values = [rng.uniform(0.05, 3.0) for _ in range(940)]
    values += [timeout + rng.uniform(0.0, 0.05) for _ in range(60)]
    stats = FleetStats()
    for v in values:
        stats.round_trip["StatusNotification"].observe(v)
    p95 = quantile(0.95, published(stats, "StatusNotification"))
    assert timeout <= p95 <= timeout + 1.0
    assert abs(p95 - exact(values, 0.95)) <= 1.0


def test_slow_answers_read_within_the_bucket_width() -> None:
    """Answers spread over 1-10 s: every quantile is within its bucket's width of the
    exact one (the bound docs/metrics.md states), at most 1 s in this range."""
    rng = random.Random(7)
    values = [rng.uniform(1.0, 10.0) for _ in range(2000)]
    stats = FleetStats()
    for v in values:
        stats.round_trip["MeterValues"].observe(v)
    buckets = published(stats, "MeterValues")
    for q in (0.5, 0.9, 0.95, 0.99):
        assert abs(quantile(q, buckets) - exact(values, q)) <= 1.0, q


def test_the_bounds_cover_every_timeout_a_station_can_have() -> None:
    """WebsocketRequestTimeout is at least 5 s; 5..10 s each have a bound and the next
    one within 1 s, and the buckets reach past a minute (the slowest CSMS answers)."""
    for timeout in range(5, 11):
        assert float(timeout) in BUCKETS
        above = BUCKETS[BUCKETS.index(float(timeout)) + 1]
        assert above - timeout <= 1.0
    assert BUCKETS[-1] >= 60.0
    assert list(BUCKETS) == sorted(set(BUCKETS))
