"""Fleet counters kept as plain numbers on the loop thread.

Prometheus' own metric objects guard every update with a ``threading.Lock``; in a
Locust process that lock is a gevent object, which must not be touched from the
asyncio thread, and it costs a lock per message anyway. So the loop thread writes
plain ints and floats here (no lock: one writer), and the exporter reads them at
scrape time. A reader sees each number whole (the GIL), which is all a scrape needs.

The same structure is what a worker ships to the master: :func:`snapshot` turns it
into plain lists (msgpack-able, for Locust's worker reports) and :func:`merge` sums
snapshots back into one FleetStats. Both are generic over the attributes a FleetStats
has (numbers, dicts of numbers, dicts of :class:`Histogram`), so a counter added to
``FleetStats.__init__`` is shipped and summed with no change here. Gauges are named in
:data:`GAUGES` (everything else is a counter): the master keeps the counters of a
worker that left, so they never go backwards, and drops its gauges.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict, deque
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0,
    5.0, 5.5, 6.0, 7.0, 8.0, 9.0, 10.0, 10.5, 12.0, 15.0, 20.0, 30.0, 60.0,
)  # fmt: skip
"""Round-trip histogram bounds, in seconds.

``histogram_quantile`` interpolates linearly inside the bucket that holds the quantile,
so its error is at most that bucket's width. The bounds are dense where round trips of
a struggling CSMS and its timeouts land: a CALL that times out is observed at
``WebsocketRequestTimeout`` (an integer of at least 5 s, 10 by default) plus a few
milliseconds, and every timeout from 5 to 10 s has a bound at it and the next one at
most 1 s above (0.5 s for 5 and 10). A run whose p95 is in the timed-out mass therefore
reads as 10-10.5 s, not 26.6 s as with a 10 -> 30 s gap. Error bounds per range are in
docs/metrics.md (Round-trip quantiles and their error)."""

LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
"""Event-loop lag bounds, in seconds. 0.05 is one on purpose: whether the p99 passed the
default 50 ms threshold is then read exactly from the counts, not interpolated."""

LAG_THRESHOLD = 0.05
"""Lag p99 above which the generator, not the CSMS, may explain the round trips."""

TRANSACTION_ACTIONS = ("StartTransaction", "StopTransaction", "MeterValues")
"""The transaction-related messages OCPP promises to deliver (the queue's actions)."""


class Histogram:
    """Per-bucket counts (not cumulative), sum and count, over ``bounds``."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...] = BUCKETS) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    @property
    def count(self) -> int:
        return sum(self.counts)

    def upper_bound(self, q: float) -> float | None:
        """The upper bound of the bucket holding the ``q`` quantile (inf for the last):
        the quantile is at most this. None when empty."""
        return upper_bound(self.bounds, list(self.counts), q)


def upper_bound(bounds: Sequence[float], counts: Sequence[int], q: float) -> float | None:
    """The upper bound of the bucket that holds the ``q`` quantile of per-bucket
    ``counts`` over ``bounds`` (inf for the last bucket), None without samples. Also
    what a window of a histogram (the difference of two copies of its counts) reads."""
    rank = q * sum(counts)
    if not rank:
        return None
    seen = 0
    for bound, n in zip((*bounds, float("inf")), counts, strict=True):
        seen += n
        if seen >= rank:
            return bound
    return float("inf")


class FleetStats:
    """Everything the fleet counts; written by the loop thread only."""

    def __init__(self) -> None:
        # (action, direction "sent"|"received", initiator "station"|"csms") -> count
        self.messages: defaultdict[tuple[str, str, str], int] = defaultdict(int)
        self.round_trip: defaultdict[str, Histogram] = defaultdict(Histogram)
        # (action, code) for CALLERRORs the CSMS sent us
        self.callerrors: defaultdict[tuple[str, str], int] = defaultdict(int)
        self.timeouts: defaultdict[str, int] = defaultdict(int)
        # (action, status or CALLERROR code we answered) for CSMS-initiated calls
        self.csms_calls: defaultdict[tuple[str, str], int] = defaultdict(int)
        # (action, code) for frames from the CSMS we had to reject or that broke the schema
        self.inbound_errors: defaultdict[tuple[str, str], int] = defaultdict(int)
        self.ignored: defaultdict[str, int] = defaultdict(int)
        self.connect_failures: defaultdict[str, int] = defaultdict(int)
        self.stations_connected = 0
        self.stations_started = 0
        # Stations that have not connected once since they started, after a failed
        # attempt or the connect grace period (a wrong URL or key, a CSMS refusing them).
        self.stations_never_connected = 0
        self.boot_status: defaultdict[str, int] = defaultdict(int)
        # (connector id, status) -> number of connectors in that status now
        self.connectors: defaultdict[tuple[int, str], int] = defaultdict(int)
        self.transactions_active = 0
        self.transactions_started = 0
        self.transactions_stopped = 0
        # Transactions whose end the CSMS was not told when their station stopped at the
        # end of the run (StationLink.end): a database-backed CSMS keeps them open.
        self.unfinished_transactions = 0
        self.energy_wh = 0.0
        self.reconnects = 0
        # Open connections lost without the station asking, by reason ("connection
        # lost", "closed by CSMS", "ping timeout", "message too big", "protocol error").
        self.disconnects: defaultdict[str, int] = defaultdict(int)
        # Zero for every transaction action from the start: a healthy run shows 0 dropped,
        # not "No data" (Prometheus has no series until a label value is first seen).
        self.transaction_messages_dropped: defaultdict[str, int] = defaultdict(
            int, dict.fromkeys(TRANSACTION_ACTIONS, 0)
        )
        # Transaction messages waiting in the stations' queues (summed once a second by
        # fleet.scenarios.network), and how many queued offline were delivered since.
        self.offline_queue_depth = 0
        self.offline_messages_delivered = 0
        # vendor error code ("0x30000B") -> faults a storm raised / has active now
        self.faults_raised: defaultdict[str, int] = defaultdict(int)
        self.faults_active: defaultdict[str, int] = defaultdict(int)
        # (action, direction) of payloads that broke the official schema: "received" is
        # the CSMS's mistake (a finding), "sent" one of ours (a bug, or a station told
        # to misbehave).
        self.schema_violations: defaultdict[tuple[str, str], int] = defaultdict(int)
        # The misbehaving-station mode (fleet.scenarios.misbehave): invalid CALLs sent by
        # kind, and (kind, how the CSMS answered: accepted, a CALLERROR code, timeout...).
        self.misbehave_sent: defaultdict[str, int] = defaultdict(int)
        self.misbehave_answers: defaultdict[tuple[str, str], int] = defaultdict(int)
        # The generator's own health (fleet.engine.loop.LagProbe): how late a periodic
        # timer runs on the stations' event loop, the latest, and the loop thread's CPU
        # share over the last second. A loop that lags adds its lag to every round trip.
        self.loop_lag = Histogram(LAG_BUCKETS)
        self.loop_lag_max = 0.0
        self.loop_cpu_ratio = 0.0
        # The same lateness for the gevent hub of the Locust process (written by a
        # greenlet, fleet.locust.generator.HubProbe: a second writer, of these two
        # attributes only). A hub that lags delays Locust's own work: spawning users,
        # the request events of the samples, heartbeats to the master.
        self.hub_lag = Histogram(LAG_BUCKETS)
        self.hub_lag_max = 0.0


GAUGES = frozenset(
    {
        "stations_connected",
        "stations_started",
        "stations_never_connected",
        "boot_status",
        "connectors",
        "transactions_active",
        "offline_queue_depth",
        "faults_active",
        "loop_cpu_ratio",
    }
)
"""FleetStats attributes that are levels now, not running totals."""

MAXIMA = frozenset({"loop_lag_max", "hub_lag_max", "loop_cpu_ratio"})
"""Attributes merged by taking the largest, not the sum: the worst lag of any process,
the busiest loop thread (a sum of CPU shares would read 1.7 for two busy workers and
hide which one is saturated)."""

Snapshot = dict[str, list[Any]]
"""``{attribute: [kind, value]}``; kind ``"n"`` a number, ``"d"`` a dict of numbers as
``[[key, n], ...]``, ``"h"`` a dict of histograms as ``[[key, counts, sum], ...]``,
``"H"`` one histogram as ``[bounds, counts, sum]``.
Tuple keys travel as lists (msgpack has no tuples) and come back as tuples."""


def snapshot(stats: FleetStats) -> Snapshot:
    """A copy of ``stats`` as plain lists, safe to take while the loop thread writes.

    Runs on the gevent side every few seconds. Every copy is a single C-level call
    (``list(d.items())``, ``list(counts)``) that cannot see a dict change size half way,
    and a number is read whole (the GIL). The snapshot is not one instant across
    attributes (a message may be counted in one and not yet in the next), which a
    scrape every few seconds does not notice.
    """
    out: Snapshot = {}
    for name, value in list(vars(stats).items()):
        if isinstance(value, int | float):
            out[name] = ["n", value]
        elif isinstance(value, Histogram):
            out[name] = ["H", [list(value.bounds), list(value.counts), value.sum]]
        elif isinstance(value, Mapping):
            items = list(value.items())
            histograms = getattr(value, "default_factory", None) is Histogram
            if histograms or (items and isinstance(items[0][1], Histogram)):
                out[name] = [
                    "h",
                    [[_wire_key(k), list(h.counts), h.sum] for k, h in items],
                ]
            else:
                out[name] = ["d", [[_wire_key(k), n] for k, n in items]]
    return out


def merge(snapshots: Iterable[Snapshot], into: FleetStats | None = None) -> FleetStats:
    """Sum snapshots into ``into`` (a fresh FleetStats by default) and return it.

    An attribute FleetStats does not have (a worker running newer code) is summed all
    the same, into a plain number or a dict created on first sight.
    """
    total = into if into is not None else FleetStats()
    fields = vars(total)
    for snap in snapshots:
        for name, (kind, value) in snap.items():
            if kind == "n":
                have = fields.get(name, 0)
                if isinstance(have, int | float):
                    fields[name] = max(have, value) if name in MAXIMA else have + value
            elif kind == "H":
                bounds, counts, total_sum = value
                hist = fields.get(name)
                if not isinstance(hist, Histogram):
                    hist = fields[name] = Histogram(tuple(bounds))
                if hist.bounds == tuple(bounds):
                    _add(hist, counts, total_sum)
            elif kind == "d":
                target = fields.get(name)
                if not isinstance(target, dict):
                    target = fields[name] = defaultdict(int)
                for key, n in value:
                    key = _local_key(key)
                    target[key] = target.get(key, 0) + n
            elif kind == "h":
                target = fields.get(name)
                if not isinstance(target, dict):
                    target = fields[name] = defaultdict(Histogram)
                for key, counts, total_sum in value:
                    key = _local_key(key)
                    hist = target.get(key)
                    if hist is None:
                        hist = target[key] = Histogram()
                    _add(hist, counts, total_sum)
    return total


def _add(hist: Histogram, counts: list[int], total_sum: float) -> None:
    if len(counts) != len(hist.counts):
        return  # other bucket bounds: cannot be summed bucket by bucket
    hist.counts = [a + b for a, b in zip(hist.counts, counts, strict=True)]
    hist.sum += total_sum


def lag_totals(stats: FleetStats, threshold: float = LAG_THRESHOLD) -> dict[str, Any]:
    """The generator's health for the run summary, the Fleet tab and its chart: probe
    samples, the lag p99 (at most this: the upper bound of its bucket, or the worst lag
    where that is lower), the worst lag, the busiest loop thread's CPU share now, the
    same lag for the gevent hub, and the threshold the p99 is judged against."""
    p99, worst = _p99_ms(stats.loop_lag, stats.loop_lag_max)
    hub_p99, hub_worst = _p99_ms(stats.hub_lag, stats.hub_lag_max)
    return {
        "samples": stats.loop_lag.count,
        "lag_p99_ms": p99,
        "lag_max_ms": worst,
        "loop_cpu_ratio": round(float(stats.loop_cpu_ratio), 4),
        "hub_samples": stats.hub_lag.count,
        "hub_lag_p99_ms": hub_p99,
        "hub_lag_max_ms": hub_worst,
        "lag_threshold_ms": round(threshold * 1000, 3),
    }


def _p99_ms(hist: Histogram, worst: float) -> tuple[float | None, float | None]:
    if not hist.count:
        return None, None
    p99 = min(hist.upper_bound(0.99) or 0.0, float(worst))  # no p99 is past the worst
    return round(p99 * 1000, 3), round(float(worst) * 1000, 3)


def window_p99_ms(
    before: Sequence[int] | None, after: Sequence[int], worst: float = float("inf")
) -> float | None:
    """The loop-lag p99 (bucket upper bound, ms) of the probes between two copies of
    ``FleetStats.loop_lag.counts``, at most ``worst`` (seconds: the worst lag so far);
    None when no probe ran in between. Past the last bound it reads as that bound."""
    if before is None or len(before) != len(after):
        before = [0] * len(after)
    counts = [max(0, int(b) - int(a)) for a, b in zip(before, after, strict=True)]
    bound = upper_bound(LAG_BUCKETS, counts, 0.99)
    if bound is None:
        return None
    return round(min(bound, LAG_BUCKETS[-1], worst) * 1000, 3)


LAG_WINDOW = 10.0
"""Seconds of probes the lag warning judges: long enough that one stray late timer is
not a p99, short enough that the warning follows the load."""


class LagWatch:
    """The loop-lag p99 of the last :data:`LAG_WINDOW` seconds against a threshold: what
    the lag warning (console, Fleet tab) and the Fleet tab's lag chart show.

    Fed copies of the cumulative ``FleetStats.loop_lag.counts`` now and then; the
    window is the difference between the newest and the oldest copy within it.
    :meth:`check` says when the p99 has just crossed above the threshold, so a warning
    is given once per crossing, and again only after the lag came back under."""

    def __init__(self, threshold: float = LAG_THRESHOLD, window: float = LAG_WINDOW) -> None:
        self.threshold = threshold
        self.window = window
        self.recent_ms: float | None = None
        self.above = False
        self._seen: deque[tuple[float, list[int]]] = deque()

    def check(self, now: float, counts: Sequence[int], worst: float = float("inf")) -> bool:
        """Judge the probes up to ``now`` (``worst``: the worst lag so far, seconds);
        True when the p99 has just passed the threshold."""
        seen = self._seen
        if seen and sum(counts) < sum(seen[-1][1]):  # a new fleet: its counts restart
            seen.clear()
        seen.append((now, list(counts)))
        while len(seen) > 2 and now - seen[1][0] >= self.window:
            seen.popleft()
        p99 = window_p99_ms(seen[0][1], counts, worst) if len(seen) > 1 else None
        if p99 is None:
            return False
        crossed = p99 > self.threshold * 1000 and not self.above
        self.recent_ms = p99
        self.above = p99 > self.threshold * 1000
        return crossed


def _wire_key(key: Any) -> Any:
    return list(key) if isinstance(key, tuple) else key


def _local_key(key: Any) -> Any:
    return tuple(key) if isinstance(key, list) else key
