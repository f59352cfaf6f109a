"""The locustfile of the gevent-hub check (see fleet.bench.hub): the fleet's own
``ChargeProUser`` plus probes, written to ``$FLEET_BENCH_OUT/<role>.json``.

* worker: how late the hub wakes a sleeping greenlet (the hub is "starved" when
  something holds it: a late wake-up is exactly the delay Locust's heartbeat greenlet
  would see), as the fleet itself measures it in every Locust process
  (:class:`fleet.locust.generator.HubProbe`, ``fleet_hub_lag_seconds``: one
  measurement for bench and metrics), the gaps between the master's heartbeat
  replies, and when the fleet's stations are all booted;
* master: the time of every heartbeat it answers, per worker.

Each file is rewritten twice a second, so it holds the latest numbers whenever the
process ends.
"""

from __future__ import annotations

import gc
import json
import os
import time
from pathlib import Path
from typing import Any

import gevent
from locust import events
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner

from fleet.locust.user import ChargeProUser
from fleet.metrics.stats import lag_totals

__all__ = ["ChargeProUser"]

OUT = Path(os.environ.get("FLEET_BENCH_OUT", "."))
STATIONS = int(os.environ.get("FLEET_BENCH_STATIONS", "0"))


def _write(name: str, data: dict[str, Any]) -> None:
    tmp = OUT / f".{name}.json"
    tmp.write_text(json.dumps(data))
    tmp.replace(OUT / f"{name}.json")


class WorkerProbe:
    def __init__(self, environment: Environment) -> None:
        self.env = environment
        self.hub: dict[str, Any] = {}
        self.heartbeats: list[float] = []
        self.test_start: float | None = None
        self.all_booted: float | None = None
        self.booted = 0
        self.gc_pauses: list[float] = []
        self._gc_started = 0.0
        gc.callbacks.append(self._gc)
        events.heartbeat_received.add_listener(self._heartbeat)
        events.test_start.add_listener(self._started)
        gevent.spawn(self._report)

    def _gc(self, phase: str, info: dict[str, Any]) -> None:
        # The cyclic GC holds the GIL: a long pause starves the hub and the loop alike.
        if phase == "start":
            self._gc_started = time.perf_counter()
        else:
            self.gc_pauses.append(time.perf_counter() - self._gc_started)

    def _heartbeat(self, **_: Any) -> None:
        self.heartbeats.append(time.monotonic())

    def _started(self, **_: Any) -> None:
        if self.test_start is None:
            self.test_start = time.monotonic()

    def _report(self) -> None:
        from fleet.locust import current

        while True:
            gevent.sleep(0.5)
            running = current.running()
            if running is not None:
                self.hub = lag_totals(running.stats)
                # The most at once: the stations stop (and count down) at the end.
                self.booted = max(self.booted, running.stats.boot_status["Accepted"])
                if self.all_booted is None and STATIONS and self.booted >= STATIONS:
                    self.all_booted = time.monotonic()
            gaps = [b - a for a, b in zip(self.heartbeats, self.heartbeats[1:], strict=False)]
            _write(
                "worker",
                {
                    "hub_samples": self.hub.get("hub_samples"),
                    "hub_lag_max_ms": self.hub.get("hub_lag_max_ms"),
                    "hub_lag_p99_ms": self.hub.get("hub_lag_p99_ms"),
                    "gc_pause_max": max(self.gc_pauses, default=0.0),
                    "heartbeats": len(self.heartbeats),
                    "heartbeat_gap_max": max(gaps, default=None),
                    "booted": self.booted,
                    "boot_seconds": (
                        None
                        if self.all_booted is None or self.test_start is None
                        else self.all_booted - self.test_start
                    ),
                },
            )


class MasterProbe:
    def __init__(self) -> None:
        self.sent: dict[str, list[float]] = {}
        events.heartbeat_sent.add_listener(self._sent)
        gevent.spawn(self._report)

    def _sent(self, client_id: str, **_: Any) -> None:
        self.sent.setdefault(client_id, []).append(time.monotonic())

    def _report(self) -> None:
        while True:
            gevent.sleep(0.5)
            _write("master", {"heartbeats": self.sent})


@events.init.add_listener
def _probe(environment: Environment, **_: Any) -> None:
    if isinstance(environment.runner, WorkerRunner):
        WorkerProbe(environment)
    elif isinstance(environment.runner, MasterRunner):
        MasterProbe()
