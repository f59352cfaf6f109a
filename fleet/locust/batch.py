"""Exchanges into Locust's statistics in batches, not one request event each (issue 16).

Firing ``events.request`` costs a greenlet-side call chain per exchange (the event,
Locust's listener, two ``StatsEntry.log`` calls); at thousands of exchanges a second it
was a large share of what a user pays. Locust's statistics are sums, minima, maxima and
histograms of *rounded* response times (``locust.stats.bucket_response_time``), so
they merge exactly: the loop thread adds each exchange to a per-(action, error)
:class:`Aggregate` with the same rounding, a loop timer hands the finished batch over
through a deque every :data:`HAND_OVER_EVERY` seconds, and a greenlet merges it into
``env.stats`` the way ``RequestStats.log_request`` / ``log_error`` would have, one
sample at a time. Counts, failures, min/max, the response-time histogram (hence the
median and percentiles), content length and the errors table come out the same; the
per-second counters count a batch at the second it was handed over (at most
:data:`HAND_OVER_EVERY` late, as the per-sample path counted a sample when the
greenlet drained it).

When something other than Locust's own statistics listens to ``events.request`` (a
user's listener, Locust's OpenTelemetry or debug hooks), every exchange is fired as
before, so those listeners see every one.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Any

import locust.stats
from locust.stats import RequestStats, StatsEntry, StatsError

from fleet.engine.loop import on_grid

HAND_OVER_EVERY = 0.5
"""Seconds between two batches handed over by the loop thread."""

Sample = tuple[str, float, int, "str | None"]


class Aggregate:
    """The exchanges of one (action, error) in one batch, as Locust would log them."""

    __slots__ = ("count", "max", "min", "size", "times", "total")

    def __init__(self) -> None:
        self.count = 0
        self.total = 0.0
        self.min: float | None = None
        self.max = 0.0
        self.size = 0
        self.times: dict[int, int] = {}

    def add(self, ms: float, size: int) -> None:
        self.count += 1
        self.total += ms
        if self.min is None or ms < self.min:
            self.min = ms
        if ms > self.max:
            self.max = ms
        self.size += size
        # Looked up at each call: Locust documents replacing it at runtime.
        key = locust.stats.bucket_response_time(ms)
        times = self.times
        times[key] = times.get(key, 0) + 1


Batch = dict[tuple[str, "str | None"], Aggregate]


class Batcher:
    """The loop thread's side: aggregate, and hand over through :attr:`ready`.

    ``raw`` (set from the gevent side, read on the loop thread; a plain attribute, so
    no lock) switches to handing every sample over as is, for listeners that must see
    each one."""

    def __init__(self) -> None:
        # Batches (handed-over time, batch), raw samples, or None (the last-batch marker).
        self.ready: deque[tuple[float, Batch] | Sample | None] = deque()
        self.raw = False
        self._open: Batch = {}
        self._handle: Any = None

    def add(self, action: str, seconds: float, size: int, error: str | None) -> None:
        """On the loop thread, per exchange (``Fleet.on_sample``)."""
        if self.raw:
            self.ready.append((action, seconds, size, error))
            return
        key = (action, error)
        agg = self._open.get(key)
        if agg is None:
            agg = self._open[key] = Aggregate()
        agg.add(seconds * 1000.0, size)

    def hand_over(self) -> None:
        """On the loop thread: the open batch goes to :attr:`ready`."""
        if self._open:
            self.ready.append((time.time(), self._open))
            self._open = {}

    def start(self, loop: Any, every: float = HAND_OVER_EVERY) -> None:
        """On the loop thread: hand over every ``every`` seconds (on the stations'
        wake-up grid, so in a wake-up the loop has anyway: see on_grid)."""

        def tick() -> None:
            self.hand_over()
            self._handle = loop.call_at(on_grid(loop, every), tick)

        self._handle = loop.call_at(on_grid(loop, every), tick)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


def only_locust_stats(handlers: list[Callable[..., Any]]) -> bool:
    """True when the request event's listeners are Locust's statistics alone (the
    runner's ``on_request``), so merging batches loses nothing."""
    return all(
        getattr(h, "__module__", None) == "locust.runners"
        and getattr(h, "__name__", None) == "on_request"
        for h in handlers
    )


def merge(
    stats: RequestStats,
    when: float,
    batch: Batch,
    method_of: Callable[[str], str],
    exception_of: Callable[[str, str], Exception],
) -> None:
    """Merge ``batch`` (handed over at ``when``) into ``stats`` as if each exchange had
    been logged by ``log_request`` (and ``log_error``) at ``when``.

    ``method_of(action)``: the request type; ``exception_of(action, error)``: the
    exception object the per-sample path would have fired (the errors table keys on
    its repr)."""
    for (action, error), agg in batch.items():
        method = method_of(action)
        for entry in (stats.total, stats.get(action, method)):
            _merge_entry(entry, agg, when, error is not None)
        if error is not None:
            exc = exception_of(action, error)
            key = StatsError.create_key(method, action, exc)
            found = stats.errors.get(key)
            if found is None:
                found = stats.errors[key] = StatsError(method, action, exc)
            if found.first_seen is None:
                found.first_seen = when
            found.occurrences += agg.count
            found.last_seen = when


def _merge_entry(entry: StatsEntry, agg: Aggregate, when: float, failed: bool) -> None:
    """``StatsEntry.log`` (and ``log_error``) ``agg.count`` times at ``when``."""
    t = int(when)
    last = entry.last_request_timestamp
    if entry.use_response_times_cache and last and t > int(last):
        entry._cache_response_times(t - 1)
    n = agg.count
    entry.num_requests += n
    entry.num_reqs_per_sec[t] += n
    entry.last_request_timestamp = when
    entry.total_response_time += agg.total
    low = entry.min_response_time
    if agg.min is not None and (low is None or agg.min < low):
        entry.min_response_time = agg.min
    if agg.max > entry.max_response_time:
        entry.max_response_time = agg.max
    times = entry.response_times
    for key, count in agg.times.items():
        times[key] += count
    entry.total_content_length += agg.size
    if failed:
        entry.num_failures += n
        entry.num_fail_per_sec[t] += n
