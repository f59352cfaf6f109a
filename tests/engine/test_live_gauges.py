"""Live gauges count running stations only (issue 14, item 10): a station powered off
with a transaction in progress leaves ``transactions_active`` and its connectors, and
brings them back when it returns (the bridge's parked stations, a boot storm)."""

from __future__ import annotations

import asyncio

from support import HANG_GUARD, until

from fleet.csms.server import ReferenceCsms
from fleet.engine.fleet import Fleet
from fleet.model.config import ConfigStore
from fleet.model.station import Station

CONFIG = {"MinimumStatusDuration": 0, "MeterValueSampleInterval": 0, "WebSocketPingInterval": 0}


def test_a_parked_station_leaves_the_gauges_and_brings_its_transaction_back() -> None:
    async def scenario() -> None:
        csms = ReferenceCsms(accept_all_tags=True)
        await csms.start()
        fleet = Fleet(asyncio.get_running_loop(), seed=1)
        stats = fleet.stats
        station = Station("LG1", fleet.now(), config=ConfigStore(CONFIG))
        link = fleet.add(station, csms.url)
        await until(lambda: stats.boot_status["Accepted"] == 1, 10, "boot")
        link.hardware(station.plug_in)
        link.hardware(lambda now: station.present_tag("TAG1", now))
        await until(lambda: csms.ledger.summary()["transactions_started"] == 1, 10, "charging")
        assert stats.transactions_active == 1

        fleet.remove("LG1")  # powered off, kept (as Bridge._remove does)
        assert stats.transactions_active == 0 and stats.stations_started == 0
        assert all(n == 0 for n in stats.connectors.values()), dict(stats.connectors)
        await until(lambda: stats.stations_connected == 0, 10, "offline")

        station.rebooted(fleet.now())  # power back (as Bridge._add does), then a new link
        fleet.add(station, csms.url)
        assert stats.transactions_active == 1 and stats.stations_started == 1
        await until(lambda: stats.boot_status["Accepted"] == 1, 10, "boot again")
        assert sorted(n for n in stats.connectors.values() if n) == [1, 1]  # 0 and 1, once
        assert min(stats.connectors.values()) == 0
        fleet.stop_all()
        assert stats.transactions_active == 0
        await csms.stop()

    asyncio.run(asyncio.wait_for(scenario(), HANG_GUARD))
