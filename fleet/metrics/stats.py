"""Fleet counters kept as plain numbers on the loop thread.

Prometheus' own metric objects guard every update with a ``threading.Lock``; in a
Locust process that lock is a gevent object, which must not be touched from the
asyncio thread, and it costs a lock per message anyway. So the loop thread writes
plain ints and floats here (no lock: one writer), and the exporter reads them at
scrape time. A reader sees each number whole (the GIL), which is all a scrape needs.
The same structure is what a worker will ship to the master for aggregation.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict

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
        self.boot_status: defaultdict[str, int] = defaultdict(int)
        # (connector id, status) -> number of connectors in that status now
        self.connectors: defaultdict[tuple[int, str], int] = defaultdict(int)
        self.transactions_active = 0
        self.transactions_started = 0
        self.transactions_stopped = 0
        self.energy_wh = 0.0
        self.reconnects = 0
        self.transaction_messages_dropped: defaultdict[str, int] = defaultdict(int)
        # Transaction messages waiting in the stations' queues (summed once a second by
        # fleet.scenarios.network), and how many queued offline were delivered since.
        self.offline_queue_depth = 0
        self.offline_messages_delivered = 0
        # vendor error code ("0x30000B") -> faults a storm raised / has active now
        self.faults_raised: defaultdict[str, int] = defaultdict(int)
        self.faults_active: defaultdict[str, int] = defaultdict(int)
