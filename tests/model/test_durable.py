"""A station's durable state (fleet.model.durable): what survives a power cycle is what
a snapshot keeps, a snapshot loaded into a new station continues the old one, the end
of a run stops the transaction, and a Reset takes a moment before the link closes."""

from __future__ import annotations

import json

import pytest
from test_operations import Central, setup
from test_station import T0, start_session

from fleet.model.config import ConfigStore
from fleet.model.durable import DurableStateError
from fleet.model.records import Reboot
from fleet.model.station import Station


def _fresh(identity: str = "CP-OPS-0001") -> tuple[Station, Central]:
    station = Station(identity, T0, config=ConfigStore({"MinimumStatusDuration": 0}))
    return station, Central(station)


def _comparable(snapshot: dict[str, object]) -> str:
    snapshot = dict(snapshot)
    snapshot.pop("saved_at")
    return json.dumps(snapshot, sort_keys=True)


def _station_with_history() -> tuple[Station, Central]:
    st, c = setup()
    c.call("ChangeConfiguration", {"key": "MeterValueSampleInterval", "value": "30"})
    c.call("ChangeConfiguration", {"key": "disconnectedMeterValueSampleInterval", "value": "30"})
    entries = [{"idTag": "LISTED", "idTagInfo": {"status": "Accepted"}}]
    c.call(
        "SendLocalList",
        {"listVersion": 3, "updateType": "Full", "localAuthorizationList": entries},
    )
    c.call(
        "SetChargingProfile",
        {
            "connectorId": 0,
            "csChargingProfiles": {
                "chargingProfileId": 7,
                "stackLevel": 1,
                "chargingProfilePurpose": "ChargePointMaxProfile",
                "chargingProfileKind": "Absolute",
                "chargingSchedule": {
                    "chargingRateUnit": "A",
                    "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16.0}],
                },
            },
        },
    )
    start_session(st, c, T0 + 10)
    c.run(T0 + 200)
    return st, c


def test_a_snapshot_is_plain_json_and_keeps_what_a_reboot_keeps() -> None:
    st, c = _station_with_history()
    c.link_down(T0 + 210)  # the next samples wait in the queue
    c.run(T0 + 300)
    saved = st.snapshot(c.now)
    assert json.loads(json.dumps(saved)) == saved
    assert saved["energy_wh"] == pytest.approx(st.meter.energy_wh)
    assert saved["transaction"] is not None
    assert {m["action"] for m in saved["messages"]} == {"MeterValues"}  # type: ignore[attr-defined]

    # What survives a power cut on the unit itself is exactly what the snapshot restores.
    other, _ = _fresh()
    other.power_on(saved, c.now + 30)
    st.power_lost(30.0, c.now)
    st.rebooted(c.now + 30)
    assert _comparable(other.snapshot(c.now + 30)) == _comparable(st.snapshot(c.now + 30))


def test_the_next_run_reports_the_interrupted_transaction_with_power_loss() -> None:
    st, c = _station_with_history()
    tx_id = c.next_transaction_id
    register = st.meter.energy_wh
    saved = st.snapshot(c.now)

    later = c.now + 3600
    nxt, c2 = _fresh()
    c2.now = later
    nxt.power_on(saved, later)
    nxt.connected(later)
    c2.flush()
    assert c2.actions()[0] == "BootNotification"
    (stop,) = c2.payloads("StopTransaction")
    assert stop["transactionId"] == tx_id
    assert stop["reason"] == "PowerLoss"
    assert stop["meterStop"] == int(register)
    assert nxt.meter.energy_wh == pytest.approx(register)  # the register continues
    assert nxt.config.get_int("MeterValueSampleInterval") == 30
    assert nxt.auth.local_list.version == 3 and "LISTED" in nxt.auth.local_list
    assert 7 in nxt.smart.profiles
    assert nxt.unfinished_transactions == 0


def test_a_snapshot_of_another_station_is_refused() -> None:
    st, c = setup()
    other, _ = _fresh("CP-OTHER")
    with pytest.raises(DurableStateError):
        other.power_on(st.snapshot(c.now), c.now)


def test_the_end_of_a_run_stops_the_transaction_and_counts_what_is_undelivered() -> None:
    st, c = _station_with_history()
    c.held = {"StopTransaction"}
    st.end_of_run("Local", c.now)
    assert st.unfinished_transactions == 1
    c.flush()
    assert c.payloads("StopTransaction")[-1]["reason"] == "Local"
    assert st.unfinished_transactions == 1  # in flight, not answered
    c.release()
    assert st.unfinished_transactions == 0
    c.do(st.unplug)
    c.do(st.plug_in)
    c.do(st.present_tag, "TAG2")
    assert c.payloads("StartTransaction")[-1]["idTag"] == "TAG1"  # nothing new starts


def test_a_reset_closes_the_link_only_after_reset_close_delay() -> None:
    st, c = setup()
    st.reset_close_delay = 1.0
    c.run(T0 + 100)
    assert c.call("Reset", {"type": "Hard"}) == {"status": "Accepted"}
    c.run(T0 + 100.999)
    assert c.effects() == []
    assert c.actions(since=T0 + 100) == []  # sends nothing new while going down
    c.run(T0 + 101)
    (effect,) = c.effects()
    assert effect == Reboot(hard=True, seconds=st.reboot_seconds)


def test_a_unit_ended_and_powered_up_again_starts_sessions_again() -> None:
    st, c = setup()
    st.end_of_run("Local", c.now)
    c.link_down(c.now + 1)
    st.rebooted(c.now + 10)
    c.link_up(c.now + 10)
    start_session(st, c, c.now + 1)
    assert c.payloads("StartTransaction")
