"""The generator watches itself: the gevent hub's lag, and a warning when the stations'
event loop lags past the threshold (issue 15).

A load generator that runs late reports its own lateness as the CSMS's latency. The
stations' loop is measured by :class:`fleet.engine.loop.LagProbe`; this module adds:

- :class:`HubProbe`, a timer of the hub in every Locust process (master, workers,
  standalone) due every ``HUB_PERIOD``; it records how late the hub ran it into
  ``FleetStats.hub_lag`` / ``hub_lag_max`` (the lateness rule of the loop probe). A hub
  that lags delays Locust's own work: spawning, the samples' request events, the
  heartbeats a master drops a worker without. A master's own hub lag goes into its
  aggregate (:func:`fleet.locust.metrics.own_stats`).
- :class:`LagMonitor`, on the process that reports (a master or a standalone process):
  every two seconds, the loop-lag p99 of the last ten seconds
  (:class:`fleet.metrics.stats.LagWatch`); when it passes ``--fleet-lag-threshold`` it
  writes one line to the console, once per crossing (again only after it came back
  under), and the Fleet tab shows a warning row meanwhile.
- ``--fleet-diag-loop-stall MS`` (``LOCUST_FLEET_DIAG_LOOP_STALL`` in the environment
  of ``fleet run``): a diagnostic that blocks the stations' loop for MS
  milliseconds every second (:func:`fleet.engine.loop.stall`), to see all of the above
  act on a machine that is not overloaded.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import gevent
from locust import events
from locust.env import Environment
from locust.runners import WorkerRunner

from fleet.engine.loop import LAG_PERIOD, lateness, stall
from fleet.locust import current
from fleet.locust.metrics import fleet_stats, lag_watch, own_stats
from fleet.metrics.stats import LAG_THRESHOLD
from fleet.reports.html import LAG_ADVICE, ms_text

HUB_PERIOD = LAG_PERIOD
"""Seconds between two hub probes: the loop probe's pace. Each wake-up of an idle hub
costs ~100 µs of CPU on a virtual machine (the system calls of the poll), a greenlet
woken from ``gevent.sleep`` ~180 µs: at the former 50 a second that was ~9 ms of CPU a
second per process whatever the load (issue 16); a plain timer callback at 10 a second
is ~1 ms."""

CHECK_EVERY = 2.0
"""Seconds between two looks at the loop lag (the pace of the web UI's poll)."""

STALL_EVERY = 1.0
"""Seconds between two stalls of ``--fleet-diag-loop-stall``."""


@events.init_command_line_parser.add_listener
def _arguments(parser: Any, **_: Any) -> None:
    group = parser.add_argument_group("chargepro-fleet generator")
    group.add_argument(
        "--fleet-lag-threshold",
        type=float,
        default=LAG_THRESHOLD * 1000,
        help="Milliseconds of event-loop lag p99 past which the run warns and its latency "
        "figures are marked suspect (default 50)",
    )
    group.add_argument(
        "--fleet-diag-loop-stall",
        type=float,
        default=0.0,
        env_var="LOCUST_FLEET_DIAG_LOOP_STALL",  # how `fleet run` passes it on
        help="Diagnostic: block the stations' event loop this many milliseconds every "
        "second, to see the lag warning act (0: off)",
    )


def setup(environment: Environment) -> None:
    """Called once per process from the locustfile's init hook."""
    HubProbe(environment)
    if not isinstance(environment.runner, WorkerRunner):
        LagMonitor(environment)


class HubProbe:
    """How late the gevent hub runs a timer due every ``period``; also arms the loop
    stall of ``--fleet-diag-loop-stall`` on each new fleet of the process.

    A callback of a hub timer, not a greenlet: greenlets (Locust's heartbeats, the
    spawner) are resumed by the same kind of callback, so it is as late as they are,
    without a greenlet switch per probe. The lateness rule is the loop probe's."""

    def __init__(self, environment: Environment, period: float = HUB_PERIOD) -> None:
        self.env = environment
        self.period = period
        opts = environment.parsed_options
        self.stall = float(getattr(opts, "fleet_diag_loop_stall", 0.0) or 0.0) / 1000
        self._stalled: Any = None
        self._timer = gevent.get_hub().loop.timer(period, period)
        self._due = time.perf_counter() + period
        self._timer.start(self._tick)

    def _tick(self) -> None:
        now = time.perf_counter()
        lag = max(0.0, now - self._due)
        self._due = now + self.period
        stats = own_stats(self.env)
        if stats is not None:
            stats.hub_lag_max = lateness(stats.hub_lag, stats.hub_lag_max, lag)
        if self.stall > 0:
            self._arm_stall()

    def _arm_stall(self) -> None:
        running = current.of(self.env)
        if running is not None and running is not self._stalled:
            self._stalled = running
            loop = running.fleet.loop
            loop.call_soon_threadsafe(stall, loop, self.stall, STALL_EVERY)


class LagMonitor:
    """Feeds the process's :class:`~fleet.metrics.stats.LagWatch` every
    :data:`CHECK_EVERY` seconds; one console line per crossing of the threshold."""

    def __init__(self, environment: Environment) -> None:
        self.env = environment
        self.watch = lag_watch(environment)  # what the Fleet tab shows
        self.greenlet = gevent.spawn(self._run)

    def _run(self) -> None:
        watch = self.watch
        while True:
            gevent.sleep(CHECK_EVERY)
            stats = fleet_stats(self.env)
            if watch.check(time.monotonic(), list(stats.loop_lag.counts), stats.loop_lag_max):
                sys.stderr.write(
                    f"fleet: generator lag p99 {ms_text(watch.recent_ms)} > "
                    f"{ms_text(watch.threshold * 1000)}: {LAG_ADVICE}\n"
                )
                sys.stderr.flush()
