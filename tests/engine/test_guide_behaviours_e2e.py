"""Issue 12's behaviours as a CSMS sees them: a real station link over loopback
websockets, the reference CSMS (the ``ocpp`` library's central system) sending the
CALLs, its ledger recording what arrived. The model-level tests of the same behaviours
are in tests/model/test_guide_behaviours.py. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import random

import pytest
from ocpp.v16 import call
from support import until
from test_link import FAST
from test_operations_e2e import CP, rig, run

from fleet.csms.server import ReferenceCsms
from fleet.engine.fleet import Fleet
from fleet.model.config import ConfigStore
from fleet.model.faults import lookup
from fleet.model.station import Station
from fleet.scenarios import power, storms
from fleet.scenarios.power import Outage, PowerPlan
from fleet.scenarios.storms import FaultPlan, Storm


def _tx_default(profile_id: int, limit: float, **period: int) -> dict[str, object]:
    return {
        "chargingProfileId": profile_id,
        "stackLevel": 0,
        "chargingProfilePurpose": "TxDefaultProfile",
        "chargingProfileKind": "Relative",
        "chargingSchedule": {
            "chargingRateUnit": "A",
            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit, **period}],
        },
    }


# -- 1. Finishing -> Preparing -----------------------------------------------------------


def test_remote_start_while_finishing_starts_a_second_transaction() -> None:
    """OCPP 1.6 4.9 / 5.11: the CSMS remote-starts a driver whose cable is still in
    after a session: Accepted, and a StartTransaction reaches the CSMS."""

    async def scenario() -> None:
        async with rig() as r:
            first = await r.session("TAG1")
            assert (await r.call(call.RemoteStopTransaction(transaction_id=first))).status == (
                "Accepted"
            )
            await until(lambda: r.statuses(1)[-1] == "Finishing", what="Finishing")
            answer = await r.call(call.RemoteStartTransaction(id_tag="TAG2", connector_id=1))
            assert answer.status == "Accepted"
            await until(lambda: len(r.record().transactions) == 2, what="second transaction")
            assert "Preparing" in r.statuses(1)[r.statuses(1).index("Finishing") :]

    run(scenario)


# -- 2. Boot Pending ---------------------------------------------------------------------


def test_trigger_message_while_pending_reaches_the_csms_at_once() -> None:
    """OCPP 1.6 4.2: a CSMS that answered Pending triggers a StatusNotification, then a
    BootNotification (which it accepts): both arrive without waiting for the interval."""

    async def scenario() -> None:
        csms = ReferenceCsms(accept_all_tags=True, boot_status="Pending", heartbeat_interval=600)
        await csms.start()
        fleet = Fleet(asyncio.get_running_loop(), seed=5)
        link = fleet.add(Station(CP, fleet.now(), config=ConfigStore(FAST)), csms.url)
        try:
            record = csms.ledger.station
            await until(lambda: link.station.boot_status == "Pending", what="Pending")
            status = await csms.call(
                CP, call.TriggerMessage(requested_message="StatusNotification", connector_id=1)
            )
            assert status.status == "Accepted"
            await until(lambda: record(CP).statuses, what="triggered StatusNotification")
            assert link.station.boot_status == "Pending"
            csms.boot_status = "Accepted"
            boot = await csms.call(CP, call.TriggerMessage(requested_message="BootNotification"))
            assert boot.status == "Accepted"
            await until(lambda: link.station.boot_status == "Accepted", what="Accepted")
            assert record(CP).boots == 2
        finally:
            fleet.stop_all()
            await csms.stop()

    run(scenario)


# -- 4. never an invalid message -------------------------------------------------------


def test_the_engine_tests_check_every_call_the_stations_send(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Issue 12 item 4: the engine's hot path skips the schema check of the stations'
    own CALLs, which must not hide an invalid one. Under the engine tests (conftest) the
    fleet checks them: a session sampled every second with MeterValuesSampledData ""
    sends no MeterValues at all, and a CALL the schema forbids (a vendorId over 255
    characters) is caught before it leaves: counted, logged, never sent."""

    async def scenario() -> None:
        async with rig(MeterValuesSampledData="") as r:
            assert r.fleet.validate_outgoing
            await r.session()
            await asyncio.sleep(1.5)  # the 1 s sampling clock ticks: nothing to send
            r.hardware(lambda now: r.station.data_transfer("V" * 256, None, None, now))
            violations = r.fleet.stats.schema_violations
            await until(lambda: violations[("DataTransfer", "sent")] == 1, what="caught")
            assert dict(violations) == {("DataTransfer", "sent"): 1}
            assert r.record().meter_value_samples == 0 and r.record().data_transfers == []

    run(scenario)
    assert "invalid DataTransfer" in caplog.text
    caplog.clear()  # provoked on purpose (see conftest.own_calls_schema_checked)


# -- 6. numberPhases, 10. ClearChargingProfile by id --------------------------------------


def test_a_profile_with_number_phases_is_accepted() -> None:
    """Guide: numberPhases "Parameter not used": accepted (and ignored) by default."""

    async def scenario() -> None:
        async with rig() as r:
            await r.session()
            answer = await r.call(
                call.SetChargingProfile(
                    connector_id=1, cs_charging_profiles=_tx_default(3, 16.0, numberPhases=1)
                )
            )
            assert answer.status == "Accepted"

    run(scenario)


def test_clear_charging_profile_by_id_whatever_the_other_fields_say() -> None:
    """OCPP 1.6 ClearChargingProfile.req: the other criteria apply without an id."""

    async def scenario() -> None:
        async with rig() as r:
            await r.session()
            set_answer = await r.call(
                call.SetChargingProfile(connector_id=1, cs_charging_profiles=_tx_default(7, 10.0))
            )
            assert set_answer.status == "Accepted"
            assert r.station.meter.offered == 10.0
            answer = await r.call(
                call.ClearChargingProfile(
                    id=7,
                    connector_id=0,
                    charging_profile_purpose="ChargePointMaxProfile",
                    stack_level=9,
                )
            )
            assert answer.status == "Accepted"
            await until(lambda: r.station.meter.offered == 32.0, what="limit lifted")

    run(scenario)


# -- 7. OcppEnable: standalone mode ------------------------------------------------------


def test_ocpp_enable_false_is_standalone_after_a_reset_until_set_back_locally() -> None:
    """Guide, vendor keys: OcppEnable "Switch between Standalone mode and Supervision
    mode". Set False by the CSMS (RebootRequired) and reset, the station closes its link
    and never reconnects, though it charges on plug-in; the installer's local setup
    (OcppEnable True and a restart, docs/station-model.md, decisions) brings it back."""

    async def scenario() -> None:
        async with rig() as r:
            station = r.station
            answer = await r.call(call.ChangeConfiguration(key="OcppEnable", value="false"))
            assert answer.status == "RebootRequired"
            assert (await r.call(call.Reset(type="Hard"))).status == "Accepted"
            await until(
                lambda: station.standalone and CP not in r.csms.connected_stations(),
                what="standalone",
            )
            r.hardware(station.plug_in)
            await until(lambda: station.status(1) == "Charging", what="local charging")
            before = station.meter.energy_wh
            # Five reboots' worth of time, and a first reconnect backoff: still no link.
            await asyncio.sleep(1.0)
            assert (r.record().connections, r.record().boots) == (1, 1)
            r.hardware(station.unplug)
            assert station.meter.energy_wh > before  # read at the unplug
            r.hardware(lambda now: station.local_setup({"OcppEnable": True}, now))
            await until(
                lambda: r.record().boots == 2 and station.boot_status == "Accepted",
                what="supervised again",
            )
            assert not station.standalone and r.record().connections == 2
            assert r.record().transactions == {}  # the standalone session was never OCPP's

    run(scenario)


# -- 10. empty SupervisionUrl / BoxIdentifier --------------------------------------------


def test_an_empty_supervision_url_is_rejected_and_the_station_stays_connected() -> None:
    """The station's URL is SupervisionUrl + BoxIdentifier: emptied, it could never
    reconnect. Rejected; the link stays up (no reconnect)."""

    async def scenario() -> None:
        async with rig() as r:
            for key in ("SupervisionUrl", "BoxIdentifier"):
                answer = await r.call(call.ChangeConfiguration(key=key, value=""))
                assert answer.status == "Rejected", key
            heartbeat = await r.call(call.TriggerMessage(requested_message="Heartbeat"))
            assert heartbeat.status == "Accepted"
            await until(lambda: r.record().heartbeats >= 1, what="Heartbeat")
            assert r.record().connections == 1

    run(scenario)


# -- 9. faults that no storm timer clears ------------------------------------------------


def test_a_fault_that_stays_until_repaired_outlives_the_storm_timer() -> None:
    """fleet.model.faults STAYS (a welded contactor, 0x300006): a storm's ``duration``
    does not clear it; its ``repair_after`` (a technician) does."""

    async def scenario() -> None:
        csms = ReferenceCsms(accept_all_tags=True)
        await csms.start()
        fleet = Fleet(asyncio.get_running_loop(), seed=3)
        links = [
            fleet.add(Station(f"CP{i}", fleet.now(), config=ConfigStore(FAST)), csms.url)
            for i in range(2)
        ]
        try:
            await until(
                lambda: all(link.station.boot_status == "Accepted" for link in links),
                what="boots",
            )
            welded = lookup("0x300006")
            plan = FaultPlan(
                (
                    # Half the fleet, no technician; then everyone else, repaired.
                    Storm(0.0, (0.2, 0.2), 0.5, (welded,), correlated=True),
                    Storm(
                        0.6, (0.2, 0.2), 1.0, (welded,), correlated=True, repair_after=(0.4, 0.4)
                    ),
                )
            )
            director = storms.start(fleet, plan, random.Random(2))
            assert director is not None
            await until(lambda: fleet.stats.faults_raised["0x300006"] == 1, what="raised")
            (hit,) = [link for link in links if link.station.status(1) == "Faulted"]
            (other,) = [link for link in links if link is not hit]
            await until(lambda: other.station.status(1) == "Faulted", what="second storm")
            assert hit.station.status(1) == "Faulted"  # three storm durations later
            await until(lambda: other.station.status(1) == "Available", what="repaired")
            assert hit.station.status(1) == "Faulted"  # still waiting for its technician
            assert fleet.stats.faults_active["0x300006"] == 1
            director.stop()
            ids = {s.vendor_error_code for s in csms.ledger.station("CP0").statuses} | {
                s.vendor_error_code for s in csms.ledger.station("CP1").statuses
            }
            assert "0x300006" in ids
        finally:
            fleet.stop_all()
            await csms.stop()

    run(scenario)


# -- 8. a regional blackout --------------------------------------------------------------


def test_a_blackout_stops_the_running_transactions_with_power_loss() -> None:
    """fleet.scenarios.power: every station loses power together; when it returns each
    boots again and the CSMS gets the running transactions stopped with PowerLoss."""

    async def scenario() -> None:
        csms = ReferenceCsms(accept_all_tags=True)
        await csms.start()
        fleet = Fleet(asyncio.get_running_loop(), seed=4)
        links = [
            fleet.add(
                Station(f"CP{i}", fleet.now(), config=ConfigStore({**FAST, "RestoreTimeout": 0})),
                csms.url,
            )
            for i in range(3)
        ]
        try:
            await until(
                lambda: all(link.station.boot_status == "Accepted" for link in links),
                what="boots",
            )
            for link in links[:2]:
                link.hardware(link.station.plug_in)
                link.hardware(lambda now, s=link.station: s.present_tag("TAG", now))
            ledger = csms.ledger
            await until(lambda: ledger.summary()["transactions_started"] == 2, what="charging")
            director = power.start(
                fleet, PowerPlan((Outage(0.0, (0.3, 0.3), 1.0),)), random.Random(1)
            )
            assert director is not None
            await until(lambda: director.cuts == 3, what="power cut")
            await until(
                lambda: all(ledger.station(f"CP{i}").boots == 2 for i in range(3)),
                what="boots after the blackout",
            )
            await until(
                lambda: (
                    sum(
                        tx.stopped
                        for i in range(2)
                        for tx in ledger.station(f"CP{i}").transactions.values()
                    )
                    == 2
                ),
                what="StopTransactions",
            )
            reasons = {
                tx.stop_reason
                for i in range(2)
                for tx in ledger.station(f"CP{i}").transactions.values()
            }
            assert reasons == {"PowerLoss"}
            assert ledger.check() == []
        finally:
            fleet.stop_all()
            await csms.stop()

    run(scenario)
