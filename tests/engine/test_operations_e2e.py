"""CSMS-initiated operations end to end: a real station link, real loopback websockets,
the reference CSMS (the ``ocpp`` library's central system) sending the CALLs.

Each test asserts the answer the CSMS got and the follow-up messages its ledger
recorded. Reboots are shortened (``Station.reboot_seconds``); every wait is bounded.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from ocpp.exceptions import PropertyConstraintViolationError
from ocpp.v16 import call
from support import HANG_GUARD, until

from fleet.csms.ledger import Ledger, StationRecord
from fleet.csms.server import ReferenceCsms
from fleet.engine.fleet import Fleet
from fleet.engine.link import StationLink
from fleet.model.config import ConfigStore
from fleet.model.faults import lookup
from fleet.model.station import Station

FAST = {"MinimumStatusDuration": 0, "MeterValueSampleInterval": 1, "WebSocketPingInterval": 0}
CP = "CP-OPS"


def run(coro: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(coro(), HANG_GUARD))


@dataclass
class Rig:
    csms: ReferenceCsms
    fleet: Fleet
    link: StationLink

    @property
    def station(self) -> Station:
        return self.link.station

    @property
    def ledger(self) -> Ledger:
        return self.csms.ledger

    def record(self, station_id: str = CP) -> StationRecord:
        return self.ledger.station(station_id)

    async def call(self, request: Any) -> Any:
        return await self.csms.call(CP, request, timeout=5)

    def hardware(self, event: Callable[[float], None]) -> None:
        self.link.hardware(event)

    def statuses(self, connector_id: int) -> list[str]:
        return [s.status for s in self.record().statuses if s.connector_id == connector_id]

    async def session(self, tag: str = "TAG1") -> int:
        """Plug in and badge; return the CSMS's transaction id once it is running."""
        station = self.station
        self.hardware(station.plug_in)
        self.hardware(lambda now: station.present_tag(tag, now))
        tx = await until(
            lambda: station.transaction and station.transaction.transaction_id, what="start"
        )
        return int(tx)


@asynccontextmanager
async def rig(accepted_tags: list[str] | None = None, **config: Any) -> AsyncIterator[Rig]:
    """A reference CSMS and one booted station (statuses reported) on this loop."""
    csms = ReferenceCsms(accepted_tags=accepted_tags or [], accept_all_tags=accepted_tags is None)
    await csms.start()
    fleet = Fleet(asyncio.get_running_loop(), seed=7)
    station = Station(CP, fleet.now(), config=ConfigStore({**FAST, **config}))
    station.reboot_seconds = 0.2
    link = fleet.add(station, csms.url)
    r = Rig(csms, fleet, link)
    await until(
        lambda: (
            CP in csms.connected_stations()
            and station.boot_status == "Accepted"
            and {s.connector_id for s in r.record().statuses} == {0, 1}
        ),
        what="boot",
    )
    try:
        yield r
        assert r.ledger.check() == []
    finally:
        fleet.stop_all()
        await csms.stop()


def iso_in(seconds: float) -> str:
    return datetime.fromtimestamp(datetime.now(UTC).timestamp() + seconds, UTC).isoformat()


# -- Reset --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["Hard", "Soft"])
def test_reset_stops_the_session_reboots_and_boots_again(kind: str) -> None:
    async def scenario() -> None:
        async with rig() as r:
            tx_id = await r.session()
            answer = await r.call(call.Reset(type=kind))
            assert answer.status == "Accepted"
            await until(lambda: r.record().boots == 2, what="second BootNotification")
            await until(lambda: r.ledger.transaction(tx_id).stopped, what="StopTransaction")
            assert r.ledger.transaction(tx_id).stop_reason == f"{kind}Reset"
            await until(lambda: len(r.record().security_events) == 2, what="security events")
            events = r.record().security_events
            assert [e["type"] for e in events] == ["StartupOfTheDevice", "ResetOrReboot"]
            assert r.record().connections == 2
            await until(lambda: r.statuses(1)[-1] == "Finishing", what="status after boot")

    run(scenario)


# -- ChangeAvailability ------------------------------------------------------------------


def test_change_availability_of_the_station_and_of_a_missing_connector() -> None:
    async def scenario() -> None:
        async with rig() as r:
            answer = await r.call(call.ChangeAvailability(connector_id=0, type="Inoperative"))
            assert answer.status == "Accepted"
            await until(
                lambda: r.statuses(0)[-1] == r.statuses(1)[-1] == "Unavailable",
                what="Unavailable",
            )
            started = await r.call(call.RemoteStartTransaction(id_tag="T", connector_id=1))
            assert started.status == "Rejected"
            answer = await r.call(call.ChangeAvailability(connector_id=0, type="Operative"))
            assert answer.status == "Accepted"
            await until(lambda: r.statuses(1)[-1] == "Available", what="Available")
            answer = await r.call(call.ChangeAvailability(connector_id=2, type="Inoperative"))
            assert answer.status == "Rejected"

    run(scenario)


def test_change_availability_while_charging_is_scheduled() -> None:
    async def scenario() -> None:
        async with rig() as r:
            tx_id = await r.session()
            answer = await r.call(call.ChangeAvailability(connector_id=1, type="Inoperative"))
            assert answer.status == "Scheduled"
            await asyncio.sleep(0.2)
            assert r.statuses(1)[-1] == "Charging"
            stopped = await r.call(call.RemoteStopTransaction(transaction_id=tx_id))
            assert stopped.status == "Accepted"
            await until(lambda: r.statuses(1)[-1] == "Unavailable", what="Unavailable")
            assert r.ledger.transaction(tx_id).stop_reason == "Remote"

    run(scenario)


# -- RemoteStartTransaction / RemoteStopTransaction ---------------------------------------


def test_remote_start_with_a_charging_profile_and_remote_stop_of_an_unknown_id() -> None:
    async def scenario() -> None:
        async with rig(AuthorizeRemoteTxRequests=False) as r:
            unknown = await r.call(call.RemoteStopTransaction(transaction_id=424242))
            assert unknown.status == "Rejected"
            profile = {
                "charging_profile_id": 1,
                "stack_level": 0,
                "charging_profile_purpose": "TxProfile",
                "charging_profile_kind": "Relative",
                "charging_schedule": {
                    "charging_rate_unit": "A",
                    "charging_schedule_period": [{"start_period": 0, "limit": 16.0}],
                },
            }
            answer = await r.call(
                call.RemoteStartTransaction(id_tag="R1", connector_id=1, charging_profile=profile)
            )
            assert answer.status == "Accepted"
            assert r.station.pending_tx_profile is not None
            r.hardware(r.station.plug_in)
            await until(lambda: r.ledger.summary()["transactions_started"] == 1, what="start")
            assert r.record().authorizations == {}  # AuthorizeRemoteTxRequests is False
            assert r.station.meter.offered == 16.0  # installed as the TxProfile

    run(scenario)


# -- UnlockConnector ---------------------------------------------------------------------


def test_unlock_connector() -> None:
    async def scenario() -> None:
        async with rig() as r:
            tx_id = await r.session()
            answer = await r.call(call.UnlockConnector(connector_id=1))
            assert answer.status == "Unlocked"
            await until(lambda: r.ledger.transaction(tx_id).stopped, what="StopTransaction")
            assert r.ledger.transaction(tx_id).stop_reason == "UnlockCommand"
            assert (await r.call(call.UnlockConnector(connector_id=0))).status == "NotSupported"
            r.hardware(lambda now: r.station.raise_fault(lookup("0x100205"), now))
            assert (await r.call(call.UnlockConnector(connector_id=1))).status == "UnlockFailed"
            last = r.record().last_status[1]
            assert (last.status, last.error_code) == ("Faulted", "ConnectorLockFailure")

    run(scenario)


# -- ReserveNow / CancelReservation -------------------------------------------------------


def test_reserve_now_and_cancel_reservation() -> None:
    async def scenario() -> None:
        async with rig() as r:
            reserve = call.ReserveNow(
                connector_id=0, expiry_date=iso_in(600), id_tag="RES", reservation_id=11
            )
            assert (await r.call(reserve)).status == "Accepted"
            await until(lambda: r.statuses(1)[-1] == "Reserved", what="Reserved")
            other = call.ReserveNow(
                connector_id=1, expiry_date=iso_in(600), id_tag="X", reservation_id=12
            )
            assert (await r.call(other)).status == "Occupied"
            assert (await r.call(call.CancelReservation(reservation_id=99))).status == "Rejected"
            tx_id = await r.session("RES")
            assert r.ledger.transaction(tx_id).reservation_id == 11

            r.hardware(lambda now: r.station.present_tag("RES", now))
            r.hardware(r.station.unplug)
            again = call.ReserveNow(
                connector_id=1, expiry_date=iso_in(600), id_tag="RES", reservation_id=13
            )
            assert (await r.call(again)).status == "Accepted"
            await until(lambda: r.statuses(1)[-1] == "Reserved", what="Reserved again")
            assert (await r.call(call.CancelReservation(reservation_id=13))).status == "Accepted"
            await until(lambda: r.statuses(1)[-1] == "Available", what="Available")

    run(scenario)


def test_a_reservation_expires() -> None:
    async def scenario() -> None:
        async with rig() as r:
            reserve = call.ReserveNow(
                connector_id=1, expiry_date=iso_in(0.5), id_tag="RES", reservation_id=1
            )
            assert (await r.call(reserve)).status == "Accepted"
            await until(lambda: r.statuses(1)[-1] == "Reserved", what="Reserved")
            await until(lambda: r.statuses(1)[-1] == "Available", what="expiry")

    run(scenario)


# -- local list, cache, authorization ---------------------------------------------------


def _entry(tag: str, status: str = "Accepted") -> dict[str, Any]:
    return {"id_tag": tag, "id_tag_info": {"status": status}}


def test_send_local_list_get_local_list_version_and_pre_authorize() -> None:
    async def scenario() -> None:
        async with rig(["CSMS-TAG"], LocalAuthListEnabled=True, LocalPreAuthorize=True) as r:
            assert (await r.call(call.GetLocalListVersion())).list_version == 0
            full = call.SendLocalList(
                list_version=3,
                update_type="Full",
                local_authorization_list=[_entry("LOCAL"), _entry("CSMS-TAG")],
            )
            assert (await r.call(full)).status == "Accepted"
            assert (await r.call(call.GetLocalListVersion())).list_version == 3
            stale = call.SendLocalList(
                list_version=2, update_type="Differential", local_authorization_list=[]
            )
            assert (await r.call(stale)).status == "VersionMismatch"
            # Listed and pre-authorized: no Authorize.req, the StartTransaction goes at once.
            await r.session("CSMS-TAG")
            assert r.record().authorizations == {}
            assert (await r.call(call.ClearCache())).status == "Accepted"

    run(scenario)


def test_a_conflicting_csms_answer_is_reported_as_local_list_conflict() -> None:
    async def scenario() -> None:
        async with rig(["OTHER"], LocalAuthListEnabled=True) as r:
            full = call.SendLocalList(
                list_version=1, update_type="Full", local_authorization_list=[_entry("LISTED")]
            )
            assert (await r.call(full)).status == "Accepted"
            r.hardware(r.station.plug_in)
            r.hardware(lambda now: r.station.present_tag("LISTED", now))  # CSMS: Invalid
            await until(
                lambda: r.record().last_status[0].error_code == "LocalListConflict",
                what="LocalListConflict",
            )
            conflict = r.record().last_status[0]
            assert conflict.vendor_error_code == "0x30000E"
            assert conflict.status == "Available"
            assert r.ledger.summary()["transactions_started"] == 0  # the CSMS's answer rules

    run(scenario)


# -- TriggerMessage ----------------------------------------------------------------------


def test_trigger_message_sends_each_message_after_its_answer() -> None:
    async def scenario() -> None:
        async with rig() as r:
            before = r.record()

            async def trigger(message: str, connector_id: int | None = None) -> str:
                answer = await r.call(
                    call.TriggerMessage(requested_message=message, connector_id=connector_id)
                )
                return str(answer.status)

            assert await trigger("Heartbeat") == "Accepted"
            await until(lambda: r.record().heartbeats == before.heartbeats + 1, what="Heartbeat")
            assert await trigger("StatusNotification", 1) == "Accepted"
            await until(lambda: len(r.record().statuses) == len(before.statuses) + 1, what="status")
            assert await trigger("DiagnosticsStatusNotification") == "Accepted"
            assert await trigger("FirmwareStatusNotification") == "Accepted"
            await until(lambda: r.record().firmware_statuses == ["Idle"], what="firmware")
            assert r.record().diagnostics_statuses == ["Idle"]
            assert await trigger("StatusNotification", 3) == "Rejected"
            assert await trigger("BootNotification") == "Accepted"
            await until(lambda: r.record().boots == 2, what="BootNotification")

            await r.call(call.ChangeConfiguration(key="MeterValueSampleInterval", value="0"))
            tx_id = await r.session()
            assert await trigger("MeterValues", 1) == "Accepted"
            values = await until(lambda: r.ledger.transaction(tx_id).meter_values, what="MV")
            assert values[0]["sampledValue"][0]["context"] == "Trigger"

    run(scenario)


# -- DataTransfer ------------------------------------------------------------------------


def test_data_transfer_both_ways() -> None:
    async def scenario() -> None:
        async with rig() as r:
            theirs = await r.call(call.DataTransfer(vendor_id="Acme", message_id="x"))
            assert theirs.status == "UnknownVendorId"
            ours = await r.call(call.DataTransfer(vendor_id="Schneider Electric", message_id="x"))
            assert ours.status == "UnknownMessageId"
            r.hardware(lambda now: r.station.data_transfer("Schneider Electric", "Hi", "1", now))
            await until(lambda: r.record().data_transfers, what="DataTransfer")
            assert r.record().data_transfers == [
                {"vendorId": "Schneider Electric", "messageId": "Hi", "data": "1"}
            ]

    run(scenario)


# -- ChangeConfiguration side effects ------------------------------------------------------


def test_a_new_authorization_key_reconnects_and_reports_a_security_event() -> None:
    async def scenario() -> None:
        async with rig() as r:
            changed = await r.call(
                call.ChangeConfiguration(key="AuthorizationKey", value="0123456789abcdef-k2")
            )
            assert changed.status == "Accepted"
            await until(lambda: r.record().connections == 2, what="reconnect")
            await until(lambda: r.record().security_events, what="security event")
            (event,) = r.record().security_events
            assert event["type"] == "ReconfigurationOfSecurityParameters"
            assert "0123456789abcdef-k2" not in str(event)
            assert r.record().boots == 1  # a reconnect, not a reboot

    run(scenario)


def test_a_new_box_identifier_reconnects_under_the_new_identity() -> None:
    async def scenario() -> None:
        async with rig() as r:
            changed = await r.call(call.ChangeConfiguration(key="BoxIdentifier", value="CP-NEW"))
            assert changed.status == "Accepted"
            await until(lambda: r.csms.connected_stations() == ["CP-NEW"], what="new identity")
            with pytest.raises(KeyError):
                await r.csms.call(CP, call.Heartbeat())
            answer = await r.csms.call("CP-NEW", call.GetLocalListVersion(), timeout=5)
            assert answer.list_version == 0

    run(scenario)


def test_trigger_backend_configuration_data_reset_empties_the_local_list() -> None:
    async def scenario() -> None:
        async with rig() as r:
            full = call.SendLocalList(
                list_version=4, update_type="Full", local_authorization_list=[_entry("A")]
            )
            assert (await r.call(full)).status == "Accepted"
            changed = await r.call(
                call.ChangeConfiguration(key="TriggerBackendConfigurationDataReset", value="true")
            )
            assert changed.status == "Accepted"
            assert (await r.call(call.GetLocalListVersion())).list_version == 0

    run(scenario)


def test_a_payload_the_schema_forbids_is_a_callerror_not_an_answer() -> None:
    async def scenario() -> None:
        async with rig() as r:
            bad = call.ReserveNow(
                connector_id=1, expiry_date="not a date", id_tag="R", reservation_id=1
            )
            with pytest.raises(PropertyConstraintViolationError):  # the station's answer
                await r.call(bad)
            assert r.station.reservation is None

    run(scenario)
