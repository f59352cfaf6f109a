"""Worker snapshots of FleetStats and the master's sum (fleet.metrics.stats).

A snapshot travels in a Locust worker report (msgpack, as Locust packs it), so every
test here round-trips it through msgpack before merging.
"""

from __future__ import annotations

import threading
from collections import defaultdict

import msgpack

from fleet.metrics.stats import BUCKETS, GAUGES, FleetStats, Histogram, merge, snapshot


def _wire(snap: dict) -> dict:
    """What the master gets: Locust's Message.serialize / unserialize options."""
    return msgpack.loads(msgpack.dumps(snap), raw=False, strict_map_key=False)


def _worker(scale: int) -> FleetStats:
    s = FleetStats()
    s.messages[("Heartbeat", "sent", "station")] += 3 * scale
    s.messages[("BootNotification", "sent", "station")] += scale
    s.round_trip["Heartbeat"].observe(0.004)
    s.round_trip["Heartbeat"].observe(0.2 * scale)
    s.callerrors[("Authorize", "InternalError")] += scale
    s.connectors[(1, "Charging")] += 2 * scale
    s.stations_connected = 5 * scale
    s.energy_wh = 1.5 * scale
    s.schema_violations[("GetConfiguration", "received")] += scale
    return s


def test_merge_sums_every_kind_of_field() -> None:
    a, b = _worker(1), _worker(2)
    total = merge([_wire(snapshot(a)), _wire(snapshot(b))])
    assert total.messages[("Heartbeat", "sent", "station")] == 9
    assert total.messages[("BootNotification", "sent", "station")] == 3
    assert total.callerrors == {("Authorize", "InternalError"): 3}
    assert total.connectors == {(1, "Charging"): 6}
    assert total.stations_connected == 15
    assert total.energy_wh == 4.5
    assert total.schema_violations == {("GetConfiguration", "received"): 3}
    hist = total.round_trip["Heartbeat"]
    assert hist.count == 4
    assert abs(hist.sum - (0.004 * 2 + 0.2 + 0.4)) < 1e-9
    expected = Histogram()
    for v in (0.004, 0.2, 0.004, 0.4):
        expected.observe(v)
    assert hist.counts == expected.counts
    assert len(hist.counts) == len(BUCKETS) + 1


def test_merged_stats_are_a_working_fleetstats() -> None:
    """Keys come back as tuples and the dicts stay defaultdicts (the exporter and
    fleet_totals index them like the loop thread's own)."""
    total = merge([_wire(snapshot(_worker(1)))])
    total.messages[("Authorize", "sent", "station")] += 1
    total.round_trip["Authorize"].observe(0.1)
    assert all(isinstance(k, tuple) for k in total.messages)
    assert total.round_trip["Authorize"].count == 1


def test_fields_added_later_are_shipped_and_summed() -> None:
    """Another module adds counters to FleetStats: they aggregate with no change."""
    snaps = []
    for n in (1, 4):
        s = FleetStats()
        s.future_answers = defaultdict(int)  # type: ignore[attr-defined]
        s.future_answers[("kind", "answer")] += n  # type: ignore[attr-defined]
        s.future_sent = n  # type: ignore[attr-defined]
        s.latency_by_kind = defaultdict(Histogram)  # type: ignore[attr-defined]
        s.latency_by_kind["slow"].observe(n)  # type: ignore[attr-defined]
        snaps.append(_wire(snapshot(s)))
    total = merge(snaps)
    assert total.future_answers == {("kind", "answer"): 5}  # type: ignore[attr-defined]
    assert total.future_sent == 5  # type: ignore[attr-defined]
    assert total.latency_by_kind["slow"].count == 2  # type: ignore[attr-defined]
    assert total.latency_by_kind["slow"].sum == 5  # type: ignore[attr-defined]


def test_fields_the_master_does_not_know_are_summed_too() -> None:
    """A worker on newer code: its extra fields still reach the master's sum."""
    snap = _wire(snapshot(_worker(1)))
    snap["brand_new"] = ["d", [[["x", "y"], 2]]]
    snap["brand_new_total"] = ["n", 7]
    total = merge([snap, snap])
    assert total.brand_new == {("x", "y"): 4}  # type: ignore[attr-defined]
    assert total.brand_new_total == 14  # type: ignore[attr-defined]


def test_gauges_are_named_and_real_fields() -> None:
    names = set(vars(FleetStats()))
    assert names >= GAUGES
    assert "messages" not in GAUGES and "energy_wh" not in GAUGES


def test_snapshot_while_another_thread_writes() -> None:
    """The loop thread keeps adding keys while the gevent side snapshots: no
    'dictionary changed size during iteration', and counts never go backwards."""
    stats = FleetStats()
    stop = threading.Event()

    def writer() -> None:
        i = 0
        while not stop.is_set():
            i += 1
            stats.messages[(f"A{i % 1000}", "sent", "station")] += 1
            stats.round_trip[f"A{i % 300}"].observe(0.01)
            stats.boot_status[f"S{i % 700}"] += 1

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        last = 0
        for _ in range(60):
            total = merge([snapshot(stats)])
            n = sum(total.messages.values())
            assert n >= last
            last = n
    finally:
        stop.set()
        thread.join(timeout=5)
    assert last > 0
