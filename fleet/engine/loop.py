"""The asyncio (uvloop) event loop that carries every station of a process.

Locust monkey-patches the process for gevent, where ``threading.Thread`` is a
greenlet. The loop must run in a *real* OS thread, or it would share the gevent hub
and starve Locust's heartbeats to the master; ``gevent.monkey.get_original`` gives
the unpatched thread starter. Without gevent (the CLI, the tests) the standard
``threading`` module is already the real one.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

from fleet.engine.link import TIMER_SLACK
from fleet.metrics.stats import FleetStats, Histogram

LAG_PERIOD = 0.1
"""Seconds between two probe timers: 10 samples a second, enough for a p99 over a
minute to rest on 600 samples. The probe itself takes a few microseconds, but on an
idle loop each timer is a wake-up of the thread, ~100 µs of CPU on a virtual machine:
at the former 50 a second that was ~5 ms of CPU a second per process whatever the
load (issue 16)."""

CPU_WINDOW = 1.0
"""Seconds of wall time over which the loop thread's CPU share is measured."""


def on_grid(loop: asyncio.AbstractEventLoop, delay: float) -> float:
    """The loop time ``delay`` seconds from now, moved to the nearest point of the grid
    the stations' wake-ups land on (TIMER_SLACK, see fleet.engine.link.Wakeups). A
    periodic timer of the process's own (Locust's batches) then runs in a loop wake-up
    the stations have anyway, instead of one of its own: on this virtual machine a
    wake-up of an idle thread costs 20-80 us of CPU."""
    now = loop.time()
    at = round((now + delay) / TIMER_SLACK) * TIMER_SLACK
    return at if at > now else at + TIMER_SLACK


def start_real_thread(target: Callable[[], None], name: str) -> None:
    """A real OS thread even when gevent has patched ``threading`` (see above); ``name``
    is its name where it can have one (an unpatched process)."""
    try:
        from gevent import monkey

        if monkey.is_module_patched("threading"):
            start = monkey.get_original("_thread", "start_new_thread")
            start(target, ())
            return
    except ImportError:  # pragma: no cover - gevent comes with locust
        pass
    threading.Thread(target=target, name=name, daemon=True).start()


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop where available: about half the per-message cost of the default loop."""
    try:
        import uvloop

        return uvloop.new_event_loop()
    except ImportError:  # pragma: no cover - uvloop does not exist on Windows
        return asyncio.new_event_loop()


class LagProbe:
    """How late the loop runs a timer: the generator's own share of every round trip.

    A timer is due every ``period`` seconds; when it runs, how late it ran (measured with
    ``perf_counter``: uvloop's own clock has millisecond steps) goes into
    ``stats.loop_lag`` and ``stats.loop_lag_max``. A callback the loop runs late (the
    answer of a CSMS, a station's timer) is late by the same amount, so a round trip
    measured while the loop lags includes the lag. Each ``CPU_WINDOW`` the probe also
    stores the loop thread's CPU share (``time.thread_time``, which counts the calling
    thread only: the probe runs on the loop thread) in ``stats.loop_cpu_ratio``; near 1
    the thread is saturated and the lag grows with the load.

    ``fleet bench`` runs this same probe (on its own FleetStats) for its own-delay
    figures, and the gevent hub's probe (fleet.locust.generator) judges lateness with
    :func:`lateness`: bench, Fleet tab and metrics measure one thing.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        stats: FleetStats,
        period: float = LAG_PERIOD,
        clock: Callable[[], float] = time.perf_counter,
        cpu_clock: Callable[[], float] = time.thread_time,
    ) -> None:
        self.loop = loop
        self.stats = stats
        self.period = period
        self._clock = clock
        self._cpu_clock = cpu_clock
        self._due = 0.0
        self._window: tuple[float, float] | None = None
        self._handle: asyncio.TimerHandle | None = None

    def start(self) -> None:
        """Arm the first timer; call on the loop thread (the CPU clock is per thread)."""
        now = self._clock()
        self._window = (now, self._cpu_clock())
        self._due = now + self.period
        self._handle = self.loop.call_later(self.period, self._tick)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _tick(self) -> None:
        self.record(self._clock(), self._cpu_clock())
        # Not on the stations' grid (on_grid): a probe locked to the grid samples the
        # loop at fixed phases and misses a periodic stall whose period is a multiple of
        # the grid step (measured: a 150 ms stall every 1.15 s never showed >= 100 ms).
        self._handle = self.loop.call_later(self.period, self._tick)

    def record(self, now: float, cpu: float) -> None:
        """One probe ran at ``now`` (its timer was due ``period`` after the last one);
        the next is due ``period`` from now."""
        lag = max(0.0, now - self._due)
        self._due = now + self.period
        stats = self.stats
        stats.loop_lag_max = lateness(stats.loop_lag, stats.loop_lag_max, lag)
        if self._window is not None:
            since, cpu_since = self._window
            if now - since >= CPU_WINDOW:
                stats.loop_cpu_ratio = min(1.0, max(0.0, (cpu - cpu_since) / (now - since)))
                self._window = (now, cpu)


def lateness(hist: Histogram, worst: float, lag: float) -> float:
    """Record one probe's lateness ``lag`` in ``hist``; the new worst lateness."""
    hist.observe(lag)
    return lag if lag > worst else worst


def stall(loop: asyncio.AbstractEventLoop, seconds: float, every: float = 1.0) -> None:
    """Diagnostic: block ``loop`` for ``seconds`` once every ``every`` seconds, from now.

    A deliberate, exactly known lag, to see the generator's warnings, the summary's
    ``latency_suspect`` and the ``generator_lag_p99`` SLO act (``--fleet-diag-loop-stall``)
    without having to overload a machine, which no test can do deterministically. The
    thread sleeps (it does not spin): the GIL is free, so only this loop is late, as
    when its thread is starved of CPU. Call it on the loop thread."""

    def block() -> None:
        time.sleep(seconds)
        loop.call_later(every, block)

    loop.call_later(every, block)


class LoopThread:
    """One event loop in one real OS thread; start it after Locust has forked.

    Nothing here waits on the loop thread: under gevent, ``threading.Event`` and
    ``concurrent.futures.Future`` are gevent objects, which must not be touched from
    another OS thread. Work goes in with ``call`` (fire and forget); results come
    back through thread-safe deques that a greenlet drains.
    """

    def __init__(self, stats: FleetStats | None = None) -> None:
        """With ``stats``, a :class:`LagProbe` measures the loop into them."""
        self.loop = new_event_loop()
        self.started = False
        self.probe = LagProbe(self.loop, stats) if stats is not None else None

    def start(self) -> LoopThread:
        # call_soon_threadsafe queues work even before run_forever starts, so
        # there is no need to wait for the thread to be up.
        start_real_thread(self._run, "fleet-loop")
        self.started = True
        if self.probe is not None:
            self.loop.call_soon_threadsafe(self.probe.start)
        return self

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def call(self, fn: Any, *args: Any) -> None:
        """Call fn(*args) on the loop thread, soon, from any thread."""
        self.loop.call_soon_threadsafe(fn, *args)

    def stop(self) -> None:
        """Ask the loop to stop after the callbacks already queued."""
        self.loop.call_soon_threadsafe(self.loop.stop)
