"""Benchmark: what one station process costs, against a fast sink CSMS (issue 7).

    fleet bench [--quick] [--json FILE]          (or: python -m fleet.bench, make bench)

Not a test: the numbers depend on the machine (and on whatever else runs on it). Every
part runs in its own process, so RSS and CPU time are that process's alone:

* the **sink CSMS** (``fleet.bench.sink``) answers every CALL at once with a canned
  CALLRESULT; it is never the bottleneck, and its CPU is not counted;
* **engine** runs (``--engine N``): N stations on the real engine (``Fleet`` /
  ``StationLink``, one uvloop loop, schema validation on in both directions), in a
  plain process (no gevent). Per size:

  - *boot storm*: all N stations are added at once; the time until every one is
    connected, Accepted and has sent its StatusNotification is the end-to-end storm
    time; N / station-process CPU seconds of the storm is **connects per second per
    core** (a connect = TCP + websocket handshake + BootNotification + StatusNotification);
  - *RSS per connected idle station*: RSS after the storm, quiet, minus RSS before the
    first station, divided by N;
  - *CPU per exchange* (one CALL sent + its CALLRESULT received and handled), three
    workloads at a fast interval (1 s per station; 2 s at 10,000): ``heartbeat``
    (every station idle), ``meter_values`` (every station charging, MeterValues with the
    five sampled values of the default MeterValuesSampledData) and ``mix`` (half idle,
    half charging). **All-in** = the process's total CPU time (user + system, every
    thread: loop, timers, GC, the kernel's socket work) over the window / exchanges
    completed in the window, for the ``mix`` workload;
  - *own delay at 60 s intervals* (``--hold``): the ``mix`` workload with heartbeats
    every 60 s and meter values every 60 s, for 65 s. **Own delay** is how late the
    event loop runs what is due, measured by the fleet's own lag probe
    (:class:`fleet.engine.loop.LagProbe`, the one behind ``fleet_loop_lag_seconds``
    and the Fleet tab): a timer due every 100 ms records (time it ran - time it was
    due). Every message the station handles waits at most that long between
    the kernel having it and the station acting on it (a CALLRESULT sits in the socket
    buffer until the loop gets to it; a due Heartbeat waits for its timer), so the
    station's share of any round trip it measures is at most the probe's lag plus the
    ~0.1 ms of handling itself. The rule "every round trip under 100 ms of own delay" is
    met when the probe's maximum stays under 100 ms for the whole window. The round
    trips the stations measured (sink and kernel included) are reported too;
* **max stations per worker**: the hold workload at the most stations the open-file
  limit allows (and at smaller sizes if that fails), full run only;
* the **baseline** (``fleet.bench.baseline``): the same workloads written the way most
  Python simulators are, one ``ocpp`` library ``ChargePoint`` per station over a
  ``websockets`` client connection, asyncio tasks; the table shows the ratio;
* the **gevent hub** check (``fleet.bench.hub``): a real Locust master and one real
  worker running the fleet's own locustfile; the worker boots 10,000 stations at
  once (a boot storm) while a greenlet measures how late the gevent hub wakes it (due
  every 10 ms) and the gaps between the master's heartbeat replies; the master's log
  is searched for "failed to send heartbeat". Locust marks a worker missing after 3
  heartbeats (1 s apart) go unanswered.

Results: a table on stdout and JSON (``--json``, default ``bench-results.json``).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import resource
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fleet.engine.limits import HEADROOM, raise_open_file_limit, stations_problem
from fleet.engine.loop import LagProbe
from fleet.metrics.stats import FleetStats, lag_totals

TARGETS = {
    "cpu_us_per_exchange": 60.0,
    "rss_kb_per_idle_station": 40.0,
    "stations_per_worker": 10_000,
    "connects_per_second_per_core": 1_000.0,
}
HOLD_INTERVAL = 60  # seconds between heartbeats / meter values in the hold workload
OWN_DELAY_LIMIT = 0.100


def rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def cpu_seconds() -> float:
    """User + system CPU of this whole process (every thread)."""
    return time.process_time()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


# -- the event-loop lag probe ----------------------------------------------------------


class OwnDelay:
    """The fleet's own :class:`fleet.engine.loop.LagProbe` (what ``fleet_loop_lag_seconds``,
    the Fleet tab and the run summary show) on counters of its own, one window at a
    time, plus the cyclic GC's pauses meanwhile (they hold the GIL: the usual cause of
    a long lag, which the probe alone cannot name).

    Its result (``loop_lag`` of the boot storm, ``own_delay`` of the hold): ``samples``
    (probes), ``max_ms`` (the worst lateness, exact), ``p99_ms`` (an upper bound: the
    bound of the histogram bucket holding the p99, or the worst where that is lower,
    as in the summary's ``generator`` block), ``gc_pause_max_ms``, ``gc_seconds``."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.stats = FleetStats()
        self.gc_pauses: list[float] = []
        self._probe: LagProbe | None = None
        self._gc_started = 0.0

    def start(self) -> None:
        """A fresh window; call on the loop (the probe's CPU clock is per thread)."""
        self.stats, self.gc_pauses = FleetStats(), []
        gc.callbacks.append(self._gc)
        self._probe = LagProbe(self.loop, self.stats)
        self._probe.start()

    def _gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
        else:
            self.gc_pauses.append(time.perf_counter() - self._gc_started)

    def stop(self) -> dict[str, Any]:
        if self._probe is not None:
            self._probe.stop()
        if self._gc in gc.callbacks:
            gc.callbacks.remove(self._gc)
        lag = lag_totals(self.stats)
        return {
            "samples": lag["samples"],
            "max_ms": lag["lag_max_ms"],
            "p99_ms": lag["lag_p99_ms"],
            "gc_pause_max_ms": round(max(self.gc_pauses, default=0.0) * 1000, 2),
            "gc_seconds": round(sum(self.gc_pauses), 3),
        }


# -- one engine run (its own process) ----------------------------------------------------


async def _until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"benchmark: {what} did not happen within {timeout:g} s")
        await asyncio.sleep(0.05)


class EngineRun:
    """N stations on the real engine against the sink, measured step by step."""

    def __init__(self, n: int, url: str, validate: bool, seconds: float) -> None:
        from fleet.engine.fleet import Fleet

        self.n = n
        self.url = url
        self.seconds = seconds
        self.loop = asyncio.get_running_loop()
        self.fleet = Fleet(self.loop, keep_samples=False, seed=1, validate=validate)
        self.probe = OwnDelay(self.loop)
        self.fast = 1 if n <= 5000 else 2  # seconds between messages per station

    def exchanges(self) -> int:
        return sum(h.count for h in self.fleet.stats.round_trip.values())

    def quiet(self) -> bool:
        return all(
            link.station.queued == 0 and not link.rpc.busy for link in self.fleet.links.values()
        )

    async def boot_storm(self) -> dict[str, Any]:
        from fleet.model.config import ConfigStore
        from fleet.model.station import Station

        fleet, n = self.fleet, self.n
        config = {"WebSocketPingInterval": 0, "MinimumStatusDuration": 0}
        gc.collect()
        self.rss0 = rss_bytes()
        self.probe.start()
        cpu0, t0 = cpu_seconds(), time.monotonic()
        for i in range(n):
            ident = f"B{i:06d}"
            fleet.add(Station(ident, fleet.now(), config=ConfigStore(config)), self.url)
            if i % 500 == 499:
                await asyncio.sleep(0)  # as Locust hands them over: in batches
        await _until(lambda: fleet.stats.boot_status["Accepted"] == n, 300, "boot storm")
        await _until(self.quiet, 120, "boot storm status notifications")
        wall, cpu = time.monotonic() - t0, cpu_seconds() - cpu0
        lag = self.probe.stop()
        failures = dict(fleet.stats.connect_failures)
        return {
            "seconds": round(wall, 2),
            "cpu_seconds": round(cpu, 2),
            "connects_per_second": round(n / wall, 1),
            "connects_per_second_per_core": round(n / cpu, 1) if cpu else None,
            "connect_failures_retried": sum(failures.values()),
            "loop_lag": lag,
        }

    async def idle_rss(self) -> float:
        for link in self.fleet.links.values():
            link.station.config.set_internal("HeartbeatInterval", 3600)
            link._pump()
        await asyncio.sleep(1.0)
        gc.collect()
        return round((rss_bytes() - self.rss0) / self.n / 1024, 1)

    def _configure(self, charging: Callable[[int], bool], interval: int) -> None:
        """Stations for which ``charging(i)`` is true charge with MeterValues every
        ``interval``; the others are idle with Heartbeats every ``interval``.

        The changes are spread evenly over one interval (station i at i/N of it), so
        the stations' rhythms have random-looking phases, as in a fleet that has run a
        while; all at once they would stay in lockstep (one burst of N messages per
        interval), which is the boot storm's problem, measured there."""
        loop = self.loop
        links = list(self.fleet.links.values())
        for i, link in enumerate(links):
            loop.call_later(interval * i / len(links), self._switch, link, charging(i), interval)

    @staticmethod
    def _switch(link: Any, wants: bool, interval: int) -> None:
        st = link.station
        st.config.set_internal("MeterValueSampleInterval", interval)
        st.config.set_internal("HeartbeatInterval", interval)
        if wants and st.transaction is None:
            link.hardware(st.plug_in)
            link.hardware(lambda now, st=st: st.present_tag("BENCH", now))
        elif not wants and st.transaction is not None:
            link.hardware(st.unplug)
        elif not wants:
            # A Heartbeat now (as a CSMS's TriggerMessage would ask) sets its phase.
            link.hardware(
                lambda now, st=st: st.handle_call(
                    "TriggerMessage", {"requestedMessage": "Heartbeat"}, now
                )
            )
        else:
            link._pump()

    async def window(self, charging: Callable[[int], bool], interval: int) -> dict[str, Any]:
        self._configure(charging, interval)
        await asyncio.sleep(2.0 + 2 * interval)  # the transactions start, the rhythm settles
        gc.collect()
        ex0, cpu0, wall0 = self.exchanges(), cpu_seconds(), time.monotonic()
        ru0 = resource.getrusage(resource.RUSAGE_SELF)
        # No lag probe here: its 50 wake-ups a second would be counted as the fleet's.
        await asyncio.sleep(self.seconds)
        ex1, cpu1, wall1 = self.exchanges(), cpu_seconds(), time.monotonic()
        ru1 = resource.getrusage(resource.RUSAGE_SELF)
        done, cpu = ex1 - ex0, cpu1 - cpu0
        per = 1e6 / done if done else 0.0
        return {
            "interval_s": interval,
            "exchanges": done,
            "exchanges_per_second": round(done / (wall1 - wall0), 1),
            "cpu_us_per_exchange": round(cpu / done * 1e6, 1) if done else None,
            # user: Python, uvloop, orjson...; system: the kernel (loopback TCP send and
            # receive, epoll, timers), see the README's profile.
            "user_us_per_exchange": round((ru1.ru_utime - ru0.ru_utime) * per, 1),
            "system_us_per_exchange": round((ru1.ru_stime - ru0.ru_stime) * per, 1),
            "cpu_share_of_one_core": round(cpu / (wall1 - wall0), 3),
        }

    async def hold(self, seconds: float) -> dict[str, Any]:
        """The mix at 60 s intervals: the own-delay rule (see the module docstring)."""
        from collections import deque

        self._configure(lambda i: i % 2 == 1, HOLD_INTERVAL)
        await asyncio.sleep(HOLD_INTERVAL + 3.0)  # every station in its new rhythm
        self.fleet.samples = samples = deque()
        rtts: list[float] = []
        ex0, cpu0, wall0 = self.exchanges(), cpu_seconds(), time.monotonic()
        self.probe.start()
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            await asyncio.sleep(0.5)
            while samples:
                rtts.append(samples.popleft()[1])
        lag = self.probe.stop()
        self.fleet.samples = None
        done, cpu = self.exchanges() - ex0, cpu_seconds() - cpu0
        rtts.sort()
        return {
            "stations": self.n,
            "interval_s": HOLD_INTERVAL,
            "seconds": round(time.monotonic() - wall0, 1),
            "exchanges": done,
            "cpu_share_of_one_core": round(cpu / (time.monotonic() - wall0), 3),
            # At a realistic rate few messages share a loop wake-up; includes the probe.
            "cpu_us_per_exchange": round(cpu / done * 1e6, 1) if done else None,
            "own_delay": lag,
            "round_trip_max_ms": round(rtts[-1] * 1000, 2) if rtts else None,
            "round_trip_p99_ms": round(rtts[int(len(rtts) * 0.99)] * 1000, 2) if rtts else None,
            "held": lag["max_ms"] is not None and lag["max_ms"] < OWN_DELAY_LIMIT * 1000,
            "disconnects": self.fleet.stats.stations_started - self.fleet.stats.stations_connected,
        }

    def stop(self) -> None:
        self.fleet.stop_all()


async def _engine(n: int, url: str, seconds: float, validate: bool, steps: str) -> dict[str, Any]:
    run = EngineRun(n, url, validate, seconds)
    result: dict[str, Any] = {"stations": n, "validation": validate}
    result["boot_storm"] = await run.boot_storm()
    result["rss_kb_per_idle_station"] = await run.idle_rss()
    if "cpu" in steps:
        fast = run.fast
        result["heartbeat"] = await run.window(lambda i: False, fast)
        result["meter_values"] = await run.window(lambda i: True, fast)
        result["mix"] = await run.window(lambda i: i % 2 == 1, fast)
    if "hold" in steps:
        result["hold"] = await run.hold(HOLD_INTERVAL + 5 if "long" in steps else max(seconds, 30))
    run.stop()
    await asyncio.sleep(0.5)
    return result


def engine_main(n: int, url: str, seconds: float, validate: bool, steps: str) -> None:
    """The child process: print one JSON line with the results."""
    from fleet.engine.loop import new_event_loop
    from fleet.protocol import schemas

    raise_open_file_limit()
    schemas.precompile()  # compile time is start-up, not per message
    loop = new_event_loop()
    asyncio.set_event_loop(loop)
    result = loop.run_until_complete(_engine(n, url, seconds, validate, steps))
    print(json.dumps(result), flush=True)


# -- the orchestration -------------------------------------------------------------------


class Sink:
    """The sink CSMS subprocess (``processes`` accepting processes on one port)."""

    def __init__(self, interval: int = HOLD_INTERVAL, processes: int = 1) -> None:
        self.port = free_port()
        self.url = f"ws://127.0.0.1:{self.port}/ocpp"
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "fleet.bench.sink",
                "--port",
                str(self.port),
                "--heartbeat-interval",
                str(interval),
                "--processes",
                str(processes),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        if self.proc.stdout.readline().strip() != "ready":
            raise RuntimeError("the sink CSMS did not start")

    def stats(self) -> dict[str, int]:
        """CALLs answered and connections open, over every sink process."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("stats\n")
        self.proc.stdin.flush()
        counts: dict[str, int] = json.loads(self.proc.stdout.readline())
        return counts

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def _child(args: list[str], timeout: float) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", *args], capture_output=True, text=True, timeout=timeout
    )
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if out.returncode != 0 or not lines:
        tail = (out.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"exit {out.returncode}: {tail}"}
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def run_engine(sink: Sink, n: int, seconds: float, validate: bool, steps: str) -> dict[str, Any]:
    args = [
        "fleet.bench.benchmark",
        "--engine",
        str(n),
        "--url",
        sink.url,
        "--seconds",
        str(seconds),
        "--steps",
        steps,
    ]
    if not validate:
        args.append("--no-validate")
    return _child(args, timeout=900)


def run_baseline(sink: Sink, n: int, seconds: float) -> dict[str, Any]:
    return _child(
        [
            "fleet.bench.baseline",
            "--stations",
            str(n),
            "--url",
            sink.url,
            "--seconds",
            str(seconds),
        ],
        timeout=900,
    )


def run_locust(sink: Sink, n: int, seconds: float) -> dict[str, Any]:
    from fleet.bench.hub import run

    return run(sink.url, n, seconds)


def max_stations(limit: int) -> int:
    """The most stations the open-file limits allow (station process and sink alike)."""
    return (limit - HEADROOM) // 100 * 100


def main(argv: list[str] | None = None, prog: str = "python -m fleet.bench") -> None:
    parser = argparse.ArgumentParser(
        prog=prog,
        description=(__doc__ or "").split("\n\n")[0],
        epilog="Each part runs in its own process; see the module docstring for definitions.",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="about two minutes: shorter windows, no max-stations search",
    )
    parser.add_argument(
        "--stations",
        default="1000,10000",
        help="engine fleet sizes for CPU / RSS / boot storm (comma-separated)",
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=None,
        help="measurement window per workload (default 12; --quick 5)",
    )
    parser.add_argument(
        "--json",
        dest="json_file",
        default="bench-results.json",
        help="write the results here ('' for none)",
    )
    parser.add_argument(
        "--no-validate", action="store_true", help="schema validation off (to see its share)"
    )
    parser.add_argument(
        "--skip", default="", help="comma-separated parts to skip: baseline, locust, max"
    )
    parser.add_argument(
        "--all-in",
        action="store_true",
        help="measure `fleet run --headless` (Locust) and the baseline from outside "
        "(fleet.bench.allin) instead of the engine",
    )
    parser.add_argument("--all-in-sizes", default="400,2000", help="all-in fleet sizes")
    parser.add_argument("--warmup", type=float, default=45.0, help="all-in warm-up seconds")
    parser.add_argument("--window", type=float, default=45.0, help="all-in window seconds")
    parser.add_argument(
        "--scale",
        type=int,
        metavar="N",
        help="the N-station check (heartbeats every 60 s, fleet run --processes auto)",
    )
    parser.add_argument("--local-ips", default="", help="--scale: fleet run --local-ips")
    parser.add_argument("--fleet-processes", default="auto", help="--scale: fleet run --processes")
    parser.add_argument(
        "--sink-processes", type=int, default=0, help="sink processes (default: 1 per 15,000)"
    )
    parser.add_argument("--engine", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--steps", default="cpu", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    seconds = args.seconds or (5.0 if args.quick else 12.0)
    if args.engine:
        engine_main(args.engine, args.url, seconds, not args.no_validate, args.steps)
        return

    if args.all_in or args.scale:
        outside(args)
        return
    soft, _ = raise_open_file_limit()
    sizes = [int(s) for s in args.stations.split(",") if s.strip()]
    problem = stations_problem(max([*sizes, 10000]))
    if problem is not None:
        print(f"fleet: {problem}", file=sys.stderr)
        sys.exit(2)
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    report: dict[str, Any] = {
        "machine": {
            "python": sys.version.split()[0],
            "cpus": os.cpu_count(),
            "open_file_limit": soft,
            "loadavg_at_start": os.getloadavg()[0],
        },
        "mode": "quick" if args.quick else "full",
        "targets": TARGETS,
        "engine": [],
    }
    started = time.monotonic()
    sink = Sink()
    try:
        for n in sizes:
            steps = "cpu,hold" if n == 10_000 else "cpu"
            if n == 10_000 and not args.quick:
                steps += ",long"
            _say(f"engine: {n} stations ({steps})")
            report["engine"].append(run_engine(sink, n, seconds, not args.no_validate, steps))
        if "max" not in skip and not args.quick:
            report["max_stations"] = _max_search(sink, max_stations(soft), seconds)
        if "baseline" not in skip:
            _say("baseline: ocpp ChargePoint per station, 1000 stations")
            report["baseline"] = run_baseline(sink, 1000, seconds)
        if "locust" not in skip:
            _say("gevent hub: Locust master + worker, 10000-station boot storm")
            report["locust"] = run_locust(sink, 10_000, 25 if args.quick else 45)
    finally:
        sink.close()
    report["seconds"] = round(time.monotonic() - started, 1)
    report["verdict"] = verdict(report)
    print(table(report))
    if args.json_file:
        Path(args.json_file).write_text(json.dumps(report, indent=2) + "\n")
        _say(f"results in {args.json_file}")


def outside(args: argparse.Namespace) -> None:
    """``--all-in`` / ``--scale``: measure real commands from outside (fleet.bench.allin)."""
    from fleet.bench import allin

    raise_open_file_limit()
    report: dict[str, Any] = {"machine": {"python": sys.version.split()[0], "cpus": os.cpu_count()}}
    biggest = max([args.scale or 0, *(int(n) for n in args.all_in_sizes.split(","))])
    # SO_REUSEPORT spreads connections by a hash, not evenly: 15,000 per process on
    # average leaves room under a 20,000 open-file limit.
    sink = Sink(processes=args.sink_processes or max(1, -(-biggest // 15_000)))
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    try:
        if args.all_in:
            sizes = [int(n) for n in args.all_in_sizes.split(",")]
            report["all_in"] = allin.all_in(sink, sizes, args.warmup, args.window, skip, _say)
        if args.scale:
            report["scale"] = allin.scale(
                sink,
                args.scale,
                args.local_ips,
                args.fleet_processes,
                args.window,
                _say,
                keep_log=f"{args.json_file}.log" if args.json_file else None,
            )
    finally:
        sink.close()
    print(allin.table(report))
    if args.json_file:
        Path(args.json_file).write_text(json.dumps(report, indent=2) + "\n")
        _say(f"results in {args.json_file}")


def _max_search(sink: Sink, top: int, seconds: float) -> dict[str, Any]:
    """The hold workload at the open-file ceiling, then lower until it holds."""
    tried = []
    for n in sorted({top, 15_000, 10_000}, reverse=True):
        if n > top:
            continue
        _say(f"max stations: {n} at {HOLD_INTERVAL} s intervals")
        r = run_engine(sink, n, seconds, True, "hold,long")
        hold = r.get("hold", {})
        tried.append(
            {
                "stations": n,
                **({"error": r["error"]} if "error" in r else hold),
                "boot_storm_seconds": r.get("boot_storm", {}).get("seconds"),
            }
        )
        if hold.get("held"):
            return {"stations": n, "bounded_by_open_files": n == top, "tried": tried}
    return {"stations": None, "tried": tried}


def _say(text: str) -> None:
    print(f"fleet bench: {text}", file=sys.stderr, flush=True)


# -- the verdict and the table -------------------------------------------------------------


def verdict(report: dict[str, Any]) -> dict[str, Any]:
    """Each target: the measured value and whether it is met."""
    out: dict[str, Any] = {}
    engines = [e for e in report["engine"] if "error" not in e]
    mixes = [e["mix"]["cpu_us_per_exchange"] for e in engines if e.get("mix")]
    if mixes:
        worst = max(mixes)
        out["cpu_us_per_exchange"] = {"measured": worst, "target": 60.0, "met": worst <= 60.0}
    rss = [e["rss_kb_per_idle_station"] for e in engines]
    if rss:
        out["rss_kb_per_idle_station"] = {
            "measured": max(rss),
            "target": 40.0,
            "met": max(rss) <= 40.0,
        }
    cps = [e["boot_storm"]["connects_per_second_per_core"] for e in engines]
    if cps:
        out["connects_per_second_per_core"] = {
            "measured": min(cps),
            "target": 1000.0,
            "met": min(cps) >= 1000.0,
        }
    held = [e["hold"]["stations"] for e in engines if e.get("hold", {}).get("held")]
    best = report.get("max_stations", {}).get("stations")
    most = max([*held, best or 0])
    out["stations_per_worker"] = {"measured": most or None, "target": 10_000, "met": most >= 10_000}
    loc = report.get("locust")
    if loc and "error" not in loc:
        out["gevent_hub_never_starved"] = {
            "measured": f"max hub lag {loc['hub_lag']['max_ms']} ms, "
            f"missed heartbeats {loc['missed_heartbeats']}",
            "met": loc["missed_heartbeats"] == 0 and loc["heartbeat_gap_max_s"] < 3.0,
        }
    base = report.get("baseline")
    if base and "error" not in base and mixes:
        ours = [e for e in engines if e["stations"] == base["stations"]]
        if ours:
            o = ours[0]
            out["baseline_ratio"] = {
                "cpu_per_exchange_heartbeat": _ratio(
                    base["heartbeat"]["cpu_us_per_exchange"], o["heartbeat"]["cpu_us_per_exchange"]
                ),
                "cpu_per_exchange_meter_values": _ratio(
                    base["meter_values"]["cpu_us_per_exchange"],
                    o["meter_values"]["cpu_us_per_exchange"],
                ),
                "rss_per_idle_station": _ratio(
                    base["rss_kb_per_idle_station"], o["rss_kb_per_idle_station"]
                ),
                "boot_seconds": _ratio(base["boot_seconds"], o["boot_storm"]["seconds"]),
            }
    return out


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 1) if a and b else None


def table(report: dict[str, Any]) -> str:
    """The readable table: one row per measurement, one column per fleet size."""
    engines = report["engine"]
    lines = [
        f"chargepro-fleet bench ({report['mode']}; python {report['machine']['python']}, "
        f"{report['machine']['cpus']} CPUs, load {report['machine']['loadavg_at_start']:.2f} "
        f"at start, {report['seconds']} s)",
        "",
    ]
    ok = [e for e in engines if "error" not in e]
    for e in engines:
        if "error" in e:
            lines.append(f"engine run failed: {e['error']}")
    if ok:
        head = f"{'':46}" + "".join(f"{e['stations']:>12,} st." for e in ok)
        lines.append(head)

        def row(label: str, get: Callable[[dict[str, Any]], Any]) -> None:
            cells = []
            for e in ok:
                try:
                    v = get(e)
                except (KeyError, TypeError):
                    v = None
                if isinstance(v, bool):
                    v = "yes" if v else "NO"
                cells.append(f"{'-' if v is None else v:>16}")
            lines.append(f"{label:<46}" + "".join(cells))

        row("CPU us / exchange, Heartbeat", lambda e: e["heartbeat"]["cpu_us_per_exchange"])
        row(
            "CPU us / exchange, MeterValues (5 values)",
            lambda e: e["meter_values"]["cpu_us_per_exchange"],
        )
        row("CPU us / exchange, mix (all-in)  [<= 60]", lambda e: e["mix"]["cpu_us_per_exchange"])
        row("  exchanges / s in the mix window", lambda e: e["mix"]["exchanges_per_second"])
        row("RSS KB / connected idle station  [<= 40]", lambda e: e["rss_kb_per_idle_station"])
        row("boot storm, end to end (s)", lambda e: e["boot_storm"]["seconds"])
        row("connects / s (wall)", lambda e: e["boot_storm"]["connects_per_second"])
        row(
            "connects / s / core  [>= 1000]",
            lambda e: e["boot_storm"]["connects_per_second_per_core"],
        )
        row("  loop lag max during the storm (ms)", lambda e: e["boot_storm"]["loop_lag"]["max_ms"])
        row(
            "  longest GC pause in the storm (ms)",
            lambda e: e["boot_storm"]["loop_lag"]["gc_pause_max_ms"],
        )
        row(
            "hold 60 s HB + 60 s MV: own delay max (ms)", lambda e: e["hold"]["own_delay"]["max_ms"]
        )
        row("  own delay p99 (ms)", lambda e: e["hold"]["own_delay"]["p99_ms"])
        row("  longest GC pause (ms)", lambda e: e["hold"]["own_delay"]["gc_pause_max_ms"])
        row("  round trip max, sink included (ms)", lambda e: e["hold"]["round_trip_max_ms"])
        row("  held (own delay < 100 ms)", lambda e: e["hold"]["held"])
        row("  CPU us / exchange at this rate (+probe)", lambda e: e["hold"]["cpu_us_per_exchange"])
    ms = report.get("max_stations")
    if ms:
        lines.append("")
        for t in ms["tried"]:
            if "error" in t:
                lines.append(f"max stations: {t['stations']:,}: failed: {t['error']}")
            else:
                lines.append(
                    f"max stations: {t['stations']:,} at {HOLD_INTERVAL} s HB/MV: own delay max "
                    f"{t['own_delay']['max_ms']} ms, p99 {t['own_delay']['p99_ms']} ms, "
                    f"round trip max {t['round_trip_max_ms']} ms, boot storm "
                    f"{t['boot_storm_seconds']} s -> {'held' if t['held'] else 'NOT held'}"
                )
        if ms.get("bounded_by_open_files"):
            lines.append("  (the open-file hard limit stops it here, not the CPU)")
    base = report.get("baseline")
    if base:
        lines.append("")
        if "error" in base:
            lines.append(f"baseline failed: {base['error']}")
        else:
            lines.append(
                f"baseline (ocpp ChargePoint + websockets, {base['stations']:,} stations): "
                f"Heartbeat {base['heartbeat']['cpu_us_per_exchange']} us, MeterValues "
                f"{base['meter_values']['cpu_us_per_exchange']} us per exchange, "
                f"{base['rss_kb_per_idle_station']} KB / idle station, boot "
                f"{base['boot_seconds']} s"
            )
            ratio = report["verdict"].get("baseline_ratio")
            if ratio:
                lines.append(
                    f"  baseline / fleet: CPU Heartbeat x{ratio['cpu_per_exchange_heartbeat']}, "
                    f"MeterValues x{ratio['cpu_per_exchange_meter_values']}, RSS "
                    f"x{ratio['rss_per_idle_station']}, boot x{ratio['boot_seconds']}"
                )
    loc = report.get("locust")
    if loc:
        lines.append("")
        if "error" in loc:
            lines.append(f"gevent hub check failed: {loc['error']}")
        else:
            lines.append(
                f"gevent hub (Locust master + worker, {loc['stations']:,}-station boot storm): "
                f"all booted in {loc['boot_seconds']} s; hub lag max {loc['hub_lag']['max_ms']} "
                f"ms (p99 {loc['hub_lag']['p99_ms']}; longest GC pause "
                f"{loc.get('gc_pause_max_ms')} ms); master heartbeat gap max "
                f"{loc['heartbeat_gap_max_s']} s; missed heartbeats {loc['missed_heartbeats']}"
            )
    lines.append("")
    lines.append("targets:")
    for name, v in report["verdict"].items():
        if name == "baseline_ratio":
            continue
        target = f" (target {v['target']})" if "target" in v else ""
        lines.append(f"  {name}: {v['measured']}{target} -> {'met' if v['met'] else 'MISSED'}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
