"""Soak benchmark: a fleet running for a long time, watched for leaks.

``fleet soak --minutes 30 --stations 2000`` runs the stations of a profile
(default ``demo``: sessions all the time) on the real engine in this process, against
the reference CSMS in a *separate* process (``fleet csms``), so what is measured here
is the fleet alone: the CSMS's ledger grows by design and must not blur the numbers.

Every ``--every`` seconds it records, for the fleet process: RSS, open file
descriptors, asyncio tasks, the timer handles the stations hold (uvloop does not expose
its handle count; with ``--loop asyncio`` the loop's own scheduled/ready queues are
counted as well), live Python objects (gc), connected stations and exchanges so far;
and the CSMS process's RSS and fds. At the end it prints one row per minute and the
least-squares slope of each series over the steady part (after ``--warmup`` minutes),
and writes everything as JSON (``--out``).

It is a benchmark, not a test: it takes as long as you ask and its CPU numbers depend
on what else the machine is doing. What counts is that memory, fds, tasks and handles
stay flat once the fleet is up.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import gc
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from fleet.engine.fleet import Fleet
from fleet.engine.limits import raise_open_file_limit
from fleet.engine.loop import LoopThread
from fleet.model.config import ConfigStore
from fleet.model.records import BootInfo
from fleet.model.station import Station
from fleet.scenarios import behaviour, network
from fleet.scenarios.profile import Profile, load

PAGE = os.sysconf("SC_PAGE_SIZE")
SERIES = ("rss_mb", "fds", "tasks", "link_timers", "loop_handles", "gc_objects", "csms_rss_mb")


def _rss_mb(pid: int | str = "self") -> float:
    with open(f"/proc/{pid}/statm") as fh:
        return int(fh.read().split()[1]) * PAGE / 1e6


def _fds(pid: int | str = "self") -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_csms(port: int, *extra: str) -> subprocess.Popen[bytes]:
    """``fleet csms`` in its own process; returns once it listens (or raises)."""
    exe = shutil.which("fleet", path=str(Path(sys.executable).parent)) or "fleet"
    cmd = [exe, "csms", "--port", str(port), "--accept-all", *extra]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stdout.read().decode() if proc.stdout else ""
            raise RuntimeError(f"fleet csms exited with {proc.returncode}: {out.strip()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("fleet csms did not start listening within 20 s")


def _make_station(fleet: Fleet, profile: Profile, number: int, prefix: str) -> Station:
    identity = f"{prefix}{number:05d}"
    model, firmware, config = profile.station_setup(number)
    station = Station(
        identity,
        fleet.now(),
        config=ConfigStore(config),
        ev=profile.pick_ev(fleet.rng),
        boot_info=BootInfo(model=model, serial=identity, firmware=firmware),
    )
    station.reboot_seconds = profile.reboot_seconds
    station.reset_close_delay = profile.reset_close_delay
    station.reject_number_phases = profile.reject_number_phases
    network.configure(station, profile.network)
    return station


def _add(fleet: Fleet, profile: Profile, number: int, prefix: str, url: str) -> None:
    """On the loop thread: build the station and bring it up (the fleet's RNG is the
    loop thread's)."""
    station = _make_station(fleet, profile, number, prefix)
    fleet.add(station, url, behaviour.factory(profile, number=number))


def _loop_probe(fleet: Fleet) -> dict[str, int]:
    """Runs on the loop thread: what only the loop thread may read safely."""
    loop = fleet.loop
    timers = 0
    for link in fleet.links.values():
        timers += link._timer is not None  # a model wake-up waiting in fleet.wakeups
        for handle in (link._aux_timer, link._ping_timer, link._cut_timer):
            if handle is not None and not handle.cancelled():
                timers += 1
    scheduled = getattr(loop, "_scheduled", None)
    ready = getattr(loop, "_ready", None)
    handles = len(scheduled) + len(ready) if scheduled is not None and ready is not None else -1
    return {
        "tasks": len(asyncio.all_tasks(loop)),
        "link_timers": timers,
        "loop_handles": handles,
        "connected": fleet.stats.stations_connected,
        "exchanges": sum(h.count for h in fleet.stats.round_trip.values()),
        "transactions_started": fleet.stats.transactions_started,
        "reconnects": fleet.stats.reconnects,
        "timeouts": sum(fleet.stats.timeouts.values()),
    }


def _on_loop(thread: LoopThread, fn: Any, *args: Any, timeout: float = 30) -> Any:
    """Call fn on the loop thread and wait for its result (no gevent here)."""
    future: concurrent.futures.Future[Any] = concurrent.futures.Future()

    def run() -> None:
        try:
            future.set_result(fn(*args))
        except BaseException as exc:  # handed back to the caller
            future.set_exception(exc)

    thread.call(run)
    return future.result(timeout)


def slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of ys over xs (0 with fewer than two points)."""
    n = len(xs)
    if n < 2:
        return 0.0
    mx, my = sum(xs) / n, sum(ys) / n
    var = sum((x - mx) ** 2 for x in xs)
    if var == 0:
        return 0.0
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var


def summarise(samples: list[dict[str, Any]], warmup_min: float) -> dict[str, Any]:
    """Per-series first/last/min/max over the steady part and the slope per minute."""
    steady = [s for s in samples if s["minute"] >= warmup_min] or samples
    xs = [s["minute"] for s in steady]
    out: dict[str, Any] = {"steady_from_minute": warmup_min, "steady_samples": len(steady)}
    for key in SERIES:
        ys = [float(s[key]) for s in steady]
        if not ys:
            continue
        out[key] = {
            "first": ys[0],
            "last": ys[-1],
            "min": min(ys),
            "max": max(ys),
            "slope_per_min": round(slope(xs, ys), 4),
        }
    return out


def table(samples: list[dict[str, Any]]) -> str:
    """One row per whole minute (the last sample of each)."""
    rows: dict[int, dict[str, Any]] = {}
    for s in samples:
        rows[int(s["minute"])] = s
    head = (
        f"{'min':>4} {'conn':>5} {'rss MB':>7} {'fds':>5} {'tasks':>5} {'timers':>6} "
        f"{'handles':>7} {'objects':>8} {'csms MB':>7} {'exchanges':>9} {'tx':>6}"
    )
    lines = [head]
    for minute in sorted(rows):
        s = rows[minute]
        lines.append(
            f"{minute:>4} {s['connected']:>5} {s['rss_mb']:>7.1f} {s['fds']:>5} "
            f"{s['tasks']:>5} {s['link_timers']:>6} {s['loop_handles']:>7} "
            f"{s['gc_objects']:>8} {s['csms_rss_mb']:>7.1f} {s['exchanges']:>9} "
            f"{s['transactions_started']:>6}"
        )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> dict[str, Any]:
    raise_open_file_limit()
    profile = load(args.profile)
    port = _free_port()
    csms = start_csms(port)
    url = f"ws://127.0.0.1:{port}/ocpp"
    thread = LoopThread()
    if args.loop == "asyncio":
        thread.loop = asyncio.new_event_loop()
    thread.start()
    fleet: Fleet = _on_loop(
        thread,
        lambda: Fleet(
            thread.loop,
            keep_samples=False,
            seed=args.seed,
            time_compression=profile.time_compression,
            clocks=profile.sessions.clocks,
        ),
    )
    samples: list[dict[str, Any]] = []
    t0 = time.monotonic()
    try:
        # Spawn at --spawn-rate stations per second, as Locust would.
        for number in range(1, args.stations + 1):
            thread.call(_add, fleet, profile, number, args.prefix, url)
            if number % max(1, int(args.spawn_rate / 10)) == 0:
                time.sleep(0.1)
        end = t0 + args.minutes * 60
        next_at = time.monotonic()
        while True:
            now = time.monotonic()
            if now >= next_at:
                gc.collect()
                probe = _on_loop(thread, _loop_probe, fleet)
                sample = {
                    "minute": round((now - t0) / 60, 3),
                    "rss_mb": round(_rss_mb(), 2),
                    "fds": _fds(),
                    "gc_objects": len(gc.get_objects()),
                    "csms_rss_mb": round(_rss_mb(csms.pid), 2) if csms.poll() is None else 0.0,
                    "csms_fds": _fds(csms.pid) if csms.poll() is None else 0,
                    **probe,
                }
                samples.append(sample)
                if args.verbose:
                    print(json.dumps(sample), flush=True)
                next_at += args.every
            if now >= end:
                break
            time.sleep(min(1.0, max(0.0, next_at - time.monotonic())))
    finally:
        with contextlib.suppress(Exception):  # best effort: the numbers are taken
            _on_loop(thread, fleet.stop_all)
        time.sleep(1.0)
        thread.stop()
        csms.terminate()
        try:
            csms.wait(10)
        except subprocess.TimeoutExpired:
            csms.kill()
    result = {
        "stations": args.stations,
        "profile": profile.name,
        "minutes": args.minutes,
        "loop": args.loop,
        "samples": samples,
        "summary": summarise(samples, args.warmup),
    }
    return result


def main(argv: list[str] | None = None, prog: str = "python -m fleet.bench.soak") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--stations", type=int, default=2000)
    parser.add_argument("--spawn-rate", type=float, default=100.0)
    parser.add_argument("--profile", default="demo")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--prefix", default="SK")
    parser.add_argument("--every", type=float, default=15.0, help="seconds between samples")
    parser.add_argument("--warmup", type=float, default=5.0, help="minutes left out of slopes")
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    parser.add_argument("--out", default="soak.json")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    if args.stations < 1 or args.minutes <= 0 or args.every <= 0:
        print("fleet: --stations, --minutes and --every must be positive", file=sys.stderr)
        return 2
    try:
        result = run(args)
    except RuntimeError as exc:
        print(f"fleet: {exc}", file=sys.stderr)
        return 2
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(table(result["samples"]))
    print()
    summary = result["summary"]
    print(f"steady part: from minute {summary['steady_from_minute']:g}")
    for key in SERIES:
        if key in summary:
            s = summary[key]
            print(
                f"  {key:<13} first {s['first']:>10.1f}  last {s['last']:>10.1f}  "
                f"min {s['min']:>10.1f}  max {s['max']:>10.1f}  "
                f"slope/min {s['slope_per_min']:>9.3f}"
            )
    print(f"JSON: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
