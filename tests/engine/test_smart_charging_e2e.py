"""Smart charging end to end: the CSMS limits a running session and the meter shows it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from ocpp.v16 import call
from support import HANG_GUARD, until

from fleet.csms.server import ReferenceCsms
from fleet.engine.fleet import Fleet
from fleet.model.config import ConfigStore
from fleet.model.meter import EvModel
from fleet.model.station import Station

CONFIG = {
    "MinimumStatusDuration": 0,
    "MeterValueSampleInterval": 1,
    "WebSocketPingInterval": 0,
}


def latest_sample(csms: ReferenceCsms, tx_id: int) -> dict[str, float]:
    """The last MeterValues of a transaction as {measurand[.phase]: value}."""
    values = csms.ledger.transaction(tx_id).meter_values
    if not values:
        return {}
    out = {}
    for sv in values[-1]["sampledValue"]:
        key = sv.get("measurand", "Energy.Active.Import.Register")
        if "phase" in sv:
            key += "." + sv["phase"]
        out[key] = float(sv["value"])
    return out


def tx_profile(tx_id: int, limit: float, profile_id: int = 1) -> dict[str, Any]:
    return {
        "chargingProfileId": profile_id,
        "transactionId": tx_id,
        "stackLevel": 0,
        "chargingProfilePurpose": "TxProfile",
        "chargingProfileKind": "Absolute",
        "chargingSchedule": {
            "chargingRateUnit": "A",
            "startSchedule": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit}],
        },
    }


def test_profile_set_mid_transaction_changes_offered_and_drawn_current() -> None:
    async def scenario() -> None:
        csms = ReferenceCsms(accept_all_tags=True)
        await csms.start()
        fleet = Fleet(asyncio.get_running_loop(), seed=11)
        station = Station(
            "SC1",
            fleet.now(),
            config=ConfigStore(CONFIG),
            ev=EvModel(battery_wh=80_000, max_current=32, phases=3, soc=0.2),
        )
        link = fleet.add(station, csms.url)
        await until(lambda: station.boot_status == "Accepted", 5, "boot")
        link.hardware(station.plug_in)
        link.hardware(lambda now: station.present_tag("SMART", now))
        tx_id = await until(
            lambda: station.transaction and station.transaction.transaction_id, 5, "transaction"
        )
        await until(lambda: latest_sample(csms, tx_id).get("Current.Offered") == 32.0, 5, "32 A")

        answer = await csms.call("SC1", call.SetChargingProfile(1, tx_profile(tx_id, 10.0)))
        assert answer.status == "Accepted"
        sample = await until(
            lambda: (s := latest_sample(csms, tx_id)).get("Current.Offered") == 10.0 and s,
            5,
            "10 A offered",
        )
        assert sample["Current.Import.L1"] == sample["Current.Import.L2"] == 10.0

        composite = await csms.call("SC1", call.GetCompositeSchedule(connector_id=1, duration=600))
        assert composite.status == "Accepted"
        assert composite.charging_schedule["charging_schedule_period"][0]["limit"] == 10.0

        # Under 6 A the EVSE suspends charging; the EV draws nothing.
        answer = await csms.call("SC1", call.SetChargingProfile(1, tx_profile(tx_id, 4.0)))
        assert answer.status == "Accepted"
        await until(lambda: station.status(1) == "SuspendedEVSE", 5, "SuspendedEVSE")
        sample = await until(
            lambda: (s := latest_sample(csms, tx_id)).get("Current.Offered") == 4.0 and s,
            5,
            "4 A offered",
        )
        assert sample["Current.Import.L1"] == 0.0
        last_status = csms.ledger.station("SC1").last_status[1]
        assert last_status.status == "SuspendedEVSE"

        cleared = await csms.call("SC1", call.ClearChargingProfile(id=1))
        assert cleared.status == "Accepted"
        await until(lambda: station.status(1) == "Charging", 5, "Charging again")
        await until(lambda: latest_sample(csms, tx_id).get("Current.Import.L3") == 32.0, 5, "32 A")
        assert csms.ledger.check() == []
        fleet.stop_all()
        await csms.stop()

    asyncio.run(asyncio.wait_for(scenario(), HANG_GUARD))
