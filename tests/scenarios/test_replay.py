"""Replay of the sample trace at high time compression against the reference CSMS.

A Fleet and the ReferenceCsms on one asyncio loop (as tests/engine/test_link.py), the
shipped ``commuter-depot`` profile, the first few stations' rows of
``profiles/traces/commuter-day.csv`` played at 8000x (the day in about eleven
seconds). The CSMS's ledger must show every one of those sessions, started and
stopped, and their total energy within 2 % of the trace's (the trace caps each
session's energy below what the dwell allows, so the EV fills up before the driver
returns; the tolerance covers timer lateness at 8000x, where 1 ms is 8 model seconds
of charging past the target).
"""

from __future__ import annotations

import asyncio
import time

from fleet.csms.server import ReferenceCsms
from fleet.engine.fleet import Fleet
from fleet.model.config import ConfigStore
from fleet.model.station import Station
from fleet.scenarios import behaviour
from fleet.scenarios.profile import load

FACTOR = 8000.0
STATIONS = 8
TOLERANCE = 0.02


def test_sample_trace_replays_its_sessions_and_energy() -> None:
    profile = load("commuter-depot")
    trace = profile.sessions.trace
    assert trace is not None and trace.sessions >= 300
    rows = [s for n in range(1, STATIONS + 1) for s in trace.for_station(n, f"X{n}")]
    expected_kwh = sum(s.energy_kwh or 0.0 for s in rows)
    last_departure = max(s.arrival + s.dwell for s in rows)
    assert len(rows) >= STATIONS

    async def scenario() -> tuple[dict[str, object], list[behaviour.Behaviour]]:
        csms = ReferenceCsms(accepted_tags=profile.id_tags.shared)
        await csms.start()
        fleet = Fleet(asyncio.get_running_loop(), seed=5, time_compression=FACTOR)
        played = []
        for n in range(1, STATIONS + 1):
            station = Station(f"RP{n:03d}", fleet.now(), config=ConfigStore(profile.config))
            link = fleet.add(station, csms.url, behaviour.factory(profile, number=n))
            played.append(link.behaviour)
        budget = last_departure / FACTOR + 15.0
        deadline = time.monotonic() + budget
        ledger = csms.ledger
        while ledger.summary()["transactions_stopped"] < len(rows):
            assert time.monotonic() < deadline, ledger.summary()
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.2)
        summary = ledger.summary()
        problems = ledger.check()
        assert problems == []
        fleet.stop_all()
        await csms.stop()
        return summary, played

    summary, played = asyncio.run(scenario())
    assert summary["transactions_started"] == len(rows)
    assert summary["transactions_stopped"] == len(rows)
    assert sum(b.played for b in played) == len(rows)
    assert sum(b.late for b in played) == 0
    delivered_kwh = float(summary["energy_wh"]) / 1000.0  # type: ignore[arg-type]
    print(f"replay: {len(rows)} sessions, {delivered_kwh:.2f} of {expected_kwh:.2f} kWh")
    assert abs(delivered_kwh - expected_kwh) <= TOLERANCE * expected_kwh, (
        delivered_kwh,
        expected_kwh,
    )
