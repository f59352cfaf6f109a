"""Memory per station (issue 16: at most 20 KB per station all-in): what a charging
station costs the process, engine side, built as a run builds it.

Measured with tracemalloc (the bytes Python allocates, not RSS, so the figure does not
depend on the allocator or on what else the process did): warm-up stations first, so
first-use caches are not counted; then N more, connected to the sink CSMS on loopback,
every one charging and past its first MeterValues; the bytes still held then, divided by
N. The snapshot is taken while no station has a CALL queued or in flight, so it counts
what a station keeps, not a message passing through.
"""

from __future__ import annotations

import asyncio
import gc
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import until

from fleet.bench.allin import write_profile
from fleet.bench.benchmark import Sink
from fleet.engine.fleet import Fleet
from fleet.engine.link import StationLink
from fleet.engine.loop import new_event_loop
from fleet.scenarios import behaviour
from fleet.scenarios.profile import load
from fleet.scenarios.stations import StationBuilder

WARM_UP = 30
STATIONS = 300
BOUND = 13_000
"""Bytes per station: 10.3 KB measured (a Station and its StationLink with their parts,
the websockets protocol object, uvloop's transport, timers, the behaviour); 22.8 KB
before issue 16's memory work (two Mersenne Twisters per station, dicts for attributes,
deques allocated up front, the handshake's headers kept)."""


@pytest.fixture
def sink() -> Iterator[Sink]:
    s = Sink()
    yield s
    s.close()


def _charging(links: list[StationLink]) -> bool:
    return all(
        (tx := link.station.transaction) is not None
        and tx.transaction_id is not None
        and link.station.transaction_messages_queued >= 2  # its Start and a MeterValues
        for link in links
    )


def _quiet(links: list[StationLink]) -> bool:
    return _charging(links) and not any(
        link.station.queued or link.station.outbox.inflight is not None for link in links
    )


@pytest.mark.timeout(120)
def test_a_charging_station_holds_under_13_kb(sink: Sink, tmp_path: Path) -> None:
    profile = load(write_profile(str(tmp_path), 3600, charging=True))
    builder = StationBuilder(profile)
    loop = new_event_loop()
    # Compressed 5 times: sessions start within a second, MeterValues every real second.
    fleet = Fleet(loop, seed=1, time_compression=5)

    def add(first: int, count: int) -> list[StationLink]:
        return [
            fleet.add(
                builder.build(f"MEM{n:05d}", n, fleet.now(), fleet.rng),
                sink.url,
                behaviour.factory(profile, number=n),
            )
            for n in range(first, first + count)
        ]

    async def measure() -> float:
        warm = add(1, WARM_UP)
        await until(lambda: _quiet(warm), 30, "warm-up stations charging")
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.take_snapshot()
            links = add(WARM_UP + 1, STATIONS)
            await until(lambda: _quiet(warm + links), 60, "every station charging, quiet")
            gc.collect()
            after = tracemalloc.take_snapshot()
        finally:
            tracemalloc.stop()
        fleet.stop_all()
        held = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
        return held / STATIONS

    try:
        per_station = loop.run_until_complete(measure())
    finally:
        loop.run_until_complete(asyncio.sleep(0.1))
        loop.close()
    assert per_station < BOUND, f"{per_station:.0f} bytes per station"
