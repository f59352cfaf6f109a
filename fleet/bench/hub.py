"""The gevent-hub check: is Locust's hub ever starved while a worker boots a fleet?

A real Locust master and one real worker (two processes, ZeroMQ between them) run
the fleet's ``ChargeProUser`` (via fleet.bench.hub_locustfile) against the bench's sink;
the worker spawns all its stations at once: a boot storm of 10,000 websocket
handshakes, BootNotifications and StatusNotifications on the fleet's event loop, in
its own OS thread, while the gevent hub runs Locust's own greenlets (spawning the
users, heartbeats to the master, stats reports) in the same process.

Measured (see fleet.bench.hub_locustfile): the worker's hub lag (the fleet's own hub
probe, a hub timer due every 100 ms), the largest gap between two heartbeats the master
answered, heartbeats missed by that count (a gap of g seconds misses round(g) - 1 of
the 1 s beats), and the master's own verdict: the lines "failed to send heartbeat" it
logs when a worker stays silent for 3 beats. This module does not import locust (that
would monkey-patch the calling process); it starts ``locust`` as child processes.
"""

from __future__ import annotations

import itertools
import json
import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

LOCUSTFILE = str(Path(__file__).with_name("hub_locustfile.py"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _read(path: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(path.read_text())
        return data
    except (OSError, ValueError):
        return {}


def run(url: str, stations: int, seconds: float) -> dict[str, Any]:
    """Boot ``stations`` in one worker and hold them ``seconds``; the measurements."""
    with tempfile.TemporaryDirectory(prefix="fleet-bench-locust-") as tmp:
        out = Path(tmp)
        env = dict(
            os.environ,
            FLEET_BENCH_OUT=tmp,
            FLEET_BENCH_STATIONS=str(stations),
            PYTHONUNBUFFERED="1",
        )
        port = _free_port()
        common = ["-f", LOCUSTFILE, "--fleet-profile", "idle", "--loglevel", "INFO"]
        master_log = (out / "master.log").open("w")
        worker_log = (out / "worker.log").open("w")
        master = subprocess.Popen(
            [sys.executable, "-m", "locust", *common, "--master", "--headless",
             "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port),
             "--expect-workers", "1", "-u", str(stations), "-r", str(stations),
             "-t", f"{int(seconds)}s", "--host", url, "--only-summary"],
            env=env, stdout=master_log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        worker = subprocess.Popen(
            [sys.executable, "-m", "locust", *common, "--worker",
             "--master-host", "127.0.0.1", "--master-port", str(port)],
            env=env, stdout=worker_log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            master.wait(timeout=seconds + 90)
        except subprocess.TimeoutExpired:
            master.kill()
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
        master_log.close()
        worker_log.close()
        return _results(out, stations, seconds)


def _results(out: Path, stations: int, seconds: float) -> dict[str, Any]:
    log = (out / "master.log").read_text(errors="replace")
    w = _read(out / "worker.json")
    m = _read(out / "master.json")
    if not w or not m:
        tail = (log.strip().splitlines() or ["no output"])[-3:]
        return {"error": "the Locust run produced no measurements: " + " | ".join(tail)}
    beats = next(iter(m.get("heartbeats", {}).values()), [])
    gaps = [b - a for a, b in itertools.pairwise(beats)]
    missed = sum(max(0, round(g) - 1) for g in gaps)
    return {
        "stations": stations,
        "seconds": seconds,
        "booted": w.get("booted"),
        "boot_seconds": round(w["boot_seconds"], 2) if w.get("boot_seconds") else None,
        # fleet_hub_lag_seconds of the worker: p99 an upper bound (its bucket's).
        "hub_lag": {
            "samples": w.get("hub_samples"),
            "max_ms": w.get("hub_lag_max_ms"),
            "p99_ms": w.get("hub_lag_p99_ms"),
        },
        "gc_pause_max_ms": round(w.get("gc_pause_max", 0.0) * 1000, 1),
        "master_heartbeats": len(beats),
        "heartbeat_gap_max_s": round(max(gaps), 2) if gaps else None,
        "missed_heartbeats": missed,
        "master_marked_missing": log.count("failed to send heartbeat"),
        "worker_heartbeat_gap_max_s": (
            round(w["heartbeat_gap_max"], 2) if w.get("heartbeat_gap_max") else None
        ),
    }


if __name__ == "__main__":
    print(json.dumps(run(sys.argv[1], int(sys.argv[2]), float(sys.argv[3])), indent=2))
