"""Benchmark: what one station process costs, against a fast sink CSMS.

    python -m fleet.bench [--stations 1000,5000] [--seconds 20] [--json FILE]

The sink runs in a separate process (so its CPU is not counted) and answers every
CALL at once with a canned CALLRESULT. The station process runs the real engine with
schema validation on. For each fleet size it measures:

* RSS per connected idle station: RSS after all stations booted and went quiet,
  minus RSS before the first station, divided by the stations;
* CPU microseconds per exchange: process CPU time over a steady window divided by
  the CALL/CALLRESULT exchanges completed in it, for two workloads: heartbeats every
  second (the smallest message), and charging stations sending MeterValues with five
  sampled values every second.

Not a test: numbers depend on the machine. Results go to stdout as a table and,
with --json, to a file.
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
from typing import Any

import orjson

from fleet.engine.fleet import Fleet
from fleet.engine.loop import new_event_loop
from fleet.model.config import ConfigStore
from fleet.model.station import Station
from fleet.protocol import schemas

_CANNED = {
    "BootNotification": {
        "status": "Accepted",
        "interval": 3600,
        "currentTime": "2026-01-01T00:00:00Z",
    },
    "Heartbeat": {"currentTime": "2026-01-01T00:00:00Z"},
    "Authorize": {"idTagInfo": {"status": "Accepted"}},
    "StartTransaction": {"transactionId": 1, "idTagInfo": {"status": "Accepted"}},
    "StopTransaction": {},
}


def raise_fd_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


# -- the sink CSMS (its own process) -----------------------------------------------


async def _sink(port: int) -> None:
    from websockets.asyncio.server import serve

    tx = 0

    async def handler(ws: Any) -> None:
        nonlocal tx
        async for message in ws:
            msg = orjson.loads(message)
            if msg[0] != 2:
                continue
            payload = _CANNED.get(msg[2], {})
            if msg[2] == "StartTransaction":
                tx += 1
                payload = {"transactionId": tx, "idTagInfo": {"status": "Accepted"}}
            await ws.send(orjson.dumps([3, msg[1], payload]).decode())

    async with serve(
        handler,
        "127.0.0.1",
        port,
        subprotocols=["ocpp1.6"],
        compression=None,
        ping_interval=None,
        max_queue=4,
        backlog=4096,
    ):
        print("ready", flush=True)
        await asyncio.Future()


def run_sink(port: int) -> None:
    raise_fd_limit()
    loop = new_event_loop()
    loop.run_until_complete(_sink(port))


# -- the station side ----------------------------------------------------------------


def _exchanges(fleet: Fleet) -> int:
    return sum(h.count for h in fleet.stats.round_trip.values())


async def _wait(check: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark fleet did not settle in time")
        await asyncio.sleep(0.1)


async def _measure(n: int, url: str, seconds: float, validate: bool) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    fleet = Fleet(loop, keep_samples=False, seed=1, validate=validate)
    gc.collect()
    rss0 = rss_bytes()
    config = {"HeartbeatInterval": 3600, "WebSocketPingInterval": 0, "MinimumStatusDuration": 0}
    t0 = time.monotonic()
    batch = 200
    for i in range(0, n, batch):
        for j in range(i, min(n, i + batch)):
            ident = f"B{j:06d}"
            fleet.add(Station(ident, fleet.now(), config=ConfigStore(config)), url)
        await asyncio.sleep(0)
    await _wait(lambda: fleet.stats.boot_status["Accepted"] == n, 120)
    await _wait(
        lambda: all(
            link.station.queued == 0 and not link.rpc.busy for link in fleet.links.values()
        ),
        60,
    )
    boot_seconds = time.monotonic() - t0
    await asyncio.sleep(1.0)
    gc.collect()
    rss_idle = rss_bytes()

    results: dict[str, Any] = {
        "stations": n,
        "validation": validate,
        "boot_seconds": round(boot_seconds, 2),
        "rss_per_idle_station_kb": round((rss_idle - rss0) / n / 1024, 1),
    }

    # Workload 1: a Heartbeat per station per second.
    for link in fleet.links.values():
        link.station.config.set_internal("HeartbeatInterval", 1)
        link._pump()
    results["heartbeat"] = await _window(fleet, seconds)

    # Workload 2: every station charging, MeterValues (5 sampled values) every second.
    for link in fleet.links.values():
        st = link.station
        st.config.set_internal("HeartbeatInterval", 3600)
        st.config.set_internal("MeterValueSampleInterval", 1)
        link.hardware(st.plug_in)
        link.hardware(lambda now, st=st: st.present_tag("BENCH", now))
    await asyncio.sleep(3.0)
    results["meter_values"] = await _window(fleet, seconds)

    fleet.stop_all()
    await asyncio.sleep(0.5)
    return results


async def _window(fleet: Fleet, seconds: float) -> dict[str, Any]:
    await asyncio.sleep(2.0)  # settle into the new rhythm
    ex0, cpu0, wall0 = _exchanges(fleet), time.process_time(), time.monotonic()
    await asyncio.sleep(seconds)
    ex1, cpu1, wall1 = _exchanges(fleet), time.process_time(), time.monotonic()
    done = ex1 - ex0
    cpu = cpu1 - cpu0
    return {
        "exchanges": done,
        "exchanges_per_second": round(done / (wall1 - wall0), 1),
        "cpu_us_per_exchange": round(cpu / done * 1e6, 1) if done else None,
        "cpu_share_of_one_core": round(cpu / (wall1 - wall0), 3),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m fleet.bench", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--stations", default="1000,5000", help="comma-separated fleet sizes")
    parser.add_argument(
        "--seconds", type=float, default=15.0, help="measurement window per workload"
    )
    parser.add_argument("--port", type=int, default=0, help="sink port (0: pick one)")
    parser.add_argument("--json", dest="json_file", help="also write results to this file")
    parser.add_argument(
        "--no-validate", action="store_true", help="turn schema validation off (to see its share)"
    )
    parser.add_argument("--sink", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.sink:
        run_sink(args.port)
        return
    limit = raise_fd_limit()
    sizes = [int(s) for s in args.stations.split(",")]
    if max(sizes) + 100 > limit:
        sys.exit(
            f"fleet bench: {max(sizes)} stations need {max(sizes) + 100} file descriptors; "
            f"the limit is {limit}"
        )
    with socket.socket() as s:
        s.bind(("127.0.0.1", args.port))
        port = s.getsockname()[1]
    sink = subprocess.Popen(
        [sys.executable, "-m", "fleet.bench", "--sink", "--port", str(port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert sink.stdout is not None
        if sink.stdout.readline().strip() != "ready":
            sys.exit("fleet bench: the sink CSMS did not start")
        schemas.precompile()  # compile time is start-up, not per message
        loop = new_event_loop()
        asyncio.set_event_loop(loop)
        results = []
        for n in sizes:
            r = loop.run_until_complete(
                _measure(n, f"ws://127.0.0.1:{port}/ocpp", args.seconds, not args.no_validate)
            )
            results.append(r)
            _print(r)
    finally:
        sink.terminate()
        sink.wait(5)
    if args.json_file:
        with open(args.json_file, "w") as fh:
            json.dump({"python": sys.version.split()[0], "results": results}, fh, indent=2)


def _print(r: dict[str, Any]) -> None:
    hb, mv = r["heartbeat"], r["meter_values"]
    print(
        f"{r['stations']:>6} stations, validation {'on ' if r['validation'] else 'off'} | "
        f"boot {r['boot_seconds']:>6.2f} s | "
        f"idle RSS {r['rss_per_idle_station_kb']:>5.1f} KB/station | "
        f"Heartbeat {hb['cpu_us_per_exchange']} us/exch ({hb['exchanges_per_second']}/s) | "
        f"MeterValues {mv['cpu_us_per_exchange']} us/exch ({mv['exchanges_per_second']}/s)",
        flush=True,
    )


if __name__ == "__main__":
    main()
