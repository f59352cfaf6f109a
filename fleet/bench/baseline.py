"""The side-by-side baseline: the bench's workloads written the usual way.

    python -m fleet.bench.baseline --stations 1000 --url ws://127.0.0.1:P/ocpp [--seconds 12]

This is how most Python charge-point simulators are written (and what the ``ocpp``
library's own examples show): one ``ocpp.v16.ChargePoint`` per station over a
``websockets`` client connection, its ``start()`` loop and the station's own loop as
asyncio tasks, payloads as the library's dataclasses, schema validation on (the
library's default: ``jsonschema`` in the default thread pool), the default asyncio
event loop, websockets' default connection settings. Nothing is tuned, on purpose:
the point is the ratio to what a user would otherwise run.

It measures what ``fleet bench`` measures for the engine, the same way (process CPU
time over a window / exchanges completed, RSS delta / stations, boot time until every
station is Accepted and has sent its StatusNotification), against the same sink, and
prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import time
from datetime import UTC, datetime
from typing import Any

from fleet.engine.limits import raise_open_file_limit


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class Shared:
    """What every station loop reads: the workload and the counters."""

    def __init__(self) -> None:
        self.mode = "idle"
        self.interval = 1.0
        self.changed = asyncio.Event()
        self.booted = 0
        self.exchanges = 0
        self.errors = 0


async def station(ident: str, url: str, shared: Shared) -> None:
    import websockets
    from ocpp.v16 import ChargePoint, call

    async with websockets.connect(f"{url}/{ident}", subprotocols=["ocpp1.6"]) as ws:
        cp = ChargePoint(ident, ws)
        reader = asyncio.create_task(cp.start())
        await cp.call(
            call.BootNotification(
                charge_point_model="EVB4S22N40M", charge_point_vendor="Schneider Electric"
            )
        )
        await cp.call(
            call.StatusNotification(
                connector_id=1, error_code="NoError", status="Available", timestamp=_now()
            )
        )
        shared.booted += 1
        transaction_id: int | None = None
        energy = 0
        try:
            while True:
                if shared.mode == "idle":
                    await shared.changed.wait()
                    continue
                await asyncio.sleep(shared.interval)
                if shared.mode == "heartbeat":
                    await cp.call(call.Heartbeat())
                elif shared.mode == "meter_values":
                    if transaction_id is None:
                        result = await cp.call(
                            call.StartTransaction(
                                connector_id=1, id_tag="BENCH", meter_start=0, timestamp=_now()
                            )
                        )
                        transaction_id = result.transaction_id
                        continue
                    energy += 100
                    await cp.call(
                        call.MeterValues(
                            connector_id=1,
                            transaction_id=transaction_id,
                            meter_value=[
                                {
                                    "timestamp": _now(),
                                    "sampled_value": [
                                        {
                                            "value": str(energy),
                                            "context": "Sample.Periodic",
                                            "measurand": "Energy.Active.Import.Register",
                                            "location": "Outlet",
                                            "unit": "Wh",
                                        },
                                        {
                                            "value": "32.0",
                                            "context": "Sample.Periodic",
                                            "measurand": "Current.Offered",
                                            "location": "Outlet",
                                            "unit": "A",
                                        },
                                        *(
                                            {
                                                "value": "31.8",
                                                "context": "Sample.Periodic",
                                                "measurand": "Current.Import",
                                                "phase": phase,
                                                "location": "Outlet",
                                                "unit": "A",
                                            }
                                            for phase in ("L1", "L2", "L3")
                                        ),
                                    ],
                                }
                            ],
                        )
                    )
                else:
                    continue
                shared.exchanges += 1
        finally:
            reader.cancel()


def rss_bytes() -> int:
    import os

    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def measure(n: int, url: str, seconds: float) -> dict[str, Any]:
    # Warm the library up (imports, the validators' caches) before the RSS baseline.
    import ocpp.v16  # noqa: F401
    import websockets  # noqa: F401

    shared = Shared()
    gc.collect()
    rss0 = rss_bytes()
    t0 = time.monotonic()
    tasks = [asyncio.create_task(station(f"O{i:06d}", url, shared)) for i in range(n)]
    deadline = t0 + 300
    while shared.booted < n:
        failed = [t for t in tasks if t.done()]
        if failed or time.monotonic() > deadline:
            exc = failed[0].exception() if failed else None
            raise RuntimeError(f"{shared.booted} of {n} stations booted ({exc!r})")
        await asyncio.sleep(0.05)
    boot = time.monotonic() - t0
    await asyncio.sleep(1.0)
    gc.collect()
    result: dict[str, Any] = {
        "stations": n,
        "implementation": "ocpp.v16.ChargePoint over websockets, asyncio tasks",
        "boot_seconds": round(boot, 2),
        "rss_kb_per_idle_station": round((rss_bytes() - rss0) / n / 1024, 1),
    }
    for mode in ("heartbeat", "meter_values"):
        shared.mode, shared.interval = mode, 1.0
        shared.changed.set()
        shared.changed = asyncio.Event()
        await asyncio.sleep(3.0)
        ex0, cpu0, wall0 = shared.exchanges, time.process_time(), time.monotonic()
        await asyncio.sleep(seconds)
        done = shared.exchanges - ex0
        cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
        result[mode] = {
            "exchanges": done,
            "exchanges_per_second": round(done / wall, 1),
            "cpu_us_per_exchange": round(cpu / done * 1e6, 1) if done else None,
            "cpu_share_of_one_core": round(cpu / wall, 3),
        }
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return result


async def serve(n: int, url: str, interval: float) -> None:
    """Every station charging with MeterValues every ``interval`` until killed: the
    all-in benchmark (``fleet bench --all-in``) measures this process from outside,
    as it measures ``fleet run``. Stations enter the rhythm as they boot, so their
    phases spread over the boot."""
    shared = Shared()
    shared.mode, shared.interval = "meter_values", interval
    tasks = [asyncio.create_task(station(f"O{i:06d}", url, shared)) for i in range(n)]
    await asyncio.gather(*tasks)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m fleet.bench.baseline", description=__doc__)
    parser.add_argument("--stations", type=int, default=1000)
    parser.add_argument("--url", required=True)
    parser.add_argument("--seconds", type=float, default=12.0)
    parser.add_argument(
        "--serve", type=float, metavar="INTERVAL", help="charge with MeterValues until killed"
    )
    args = parser.parse_args(argv)
    raise_open_file_limit()
    logging.getLogger("ocpp").setLevel(logging.WARNING)
    if args.serve:
        asyncio.run(serve(args.stations, args.url, args.serve))
        return
    result = asyncio.run(measure(args.stations, args.url, args.seconds))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
