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
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
"""Round-trip histogram bounds, in seconds (a CSMS answering in 30 s has timed out)."""


class Histogram:
    """Per-bucket counts (not cumulative), sum and count."""

    __slots__ = ("counts", "sum")

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(BUCKETS, value)] += 1
        self.sum += value

    @property
    def count(self) -> int:
        return sum(self.counts)


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
        self.energy_wh = 0.0
        self.reconnects = 0
        # Open connections lost without the station asking, by reason ("connection
        # lost", "closed by CSMS", "ping timeout", "message too big", "protocol error").
        self.disconnects: defaultdict[str, int] = defaultdict(int)
        self.transaction_messages_dropped: defaultdict[str, int] = defaultdict(int)
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
    }
)
"""FleetStats attributes that are levels now, not running totals."""

Snapshot = dict[str, list[Any]]
"""``{attribute: [kind, value]}``; kind ``"n"`` a number, ``"d"`` a dict of numbers as
``[[key, n], ...]``, ``"h"`` a dict of histograms as ``[[key, counts, sum], ...]``.
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
                    fields[name] = have + value
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
                    if len(counts) != len(hist.counts):
                        continue  # other bucket bounds: cannot be summed bucket by bucket
                    hist.counts = [a + b for a, b in zip(hist.counts, counts, strict=True)]
                    hist.sum += total_sum
    return total


def _wire_key(key: Any) -> Any:
    return list(key) if isinstance(key, tuple) else key


def _local_key(key: Any) -> Any:
    return tuple(key) if isinstance(key, list) else key
