"""CSMS-initiated operations and the authorization rules, on a fake clock.

Reset, ChangeAvailability, RemoteStart/Stop, UnlockConnector, ReserveNow /
CancelReservation, SendLocalList / GetLocalListVersion, ClearCache and the
authorization cache, TriggerMessage, DataTransfer, and the side effects of
ChangeConfiguration. The in-test CSMS of test_station checks every message and every
answer, both ways, against the official OCPP 1.6 schemas.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from test_station import T0, Csms, JsonDict, Recorder, iso, start_session

from fleet.model.config import ConfigStore
from fleet.model.faults import lookup
from fleet.model.meter import EvModel
from fleet.model.records import Reboot, Reconnect, Standalone
from fleet.model.station import RESET_RETRY_INTERVAL, Station
from fleet.protocol import errors
from fleet.protocol.errors import OcppError

KEY = "0123456789abcdef-secret"  # an AuthorizationKey (>= 16 bytes)


class Central(Csms):
    """The test CSMS, able to answer a whole idTagInfo (parentIdTag, expiryDate)."""

    def __init__(self, station: Station) -> None:
        super().__init__(station, T0)
        self.info: dict[str, JsonDict] = {}  # idTag -> idTagInfo for Authorize/StartTransaction
        self.stop_info: JsonDict | None = None  # idTagInfo of StopTransaction.conf

    def _reply(self, action: str, payload: JsonDict) -> JsonDict | None:
        reply = super()._reply(action, payload)
        if reply is None:
            return None
        if action in ("Authorize", "StartTransaction") and payload["idTag"] in self.info:
            reply["idTagInfo"] = dict(self.info[payload["idTag"]])
        if action == "StopTransaction" and self.stop_info is not None:
            reply["idTagInfo"] = dict(self.stop_info)
        if action == "DataTransfer":
            reply["status"] = "Accepted"
        return reply

    # -- what the engine does with the model's effects

    def effects(self) -> list[object]:
        out = list(self.station.effects)
        self.station.effects.clear()
        return out

    def reboot(self, effect: Reboot) -> None:
        """Close the link, stay dark, power back, reconnect: as StationLink does."""
        st = self.station
        st.disconnected(self.now)
        self.run(self.now + effect.seconds)
        st.rebooted(self.now)
        st.connected(self.now)
        self.flush()

    def events(self) -> list[str]:
        return [p["type"] for p in self.payloads("SecurityEventNotification")]


def setup(
    config: Mapping[str, str | int | bool] | None = None,
    *,
    observer: Recorder | None = None,
    ev: EvModel | None = None,
) -> tuple[Station, Central]:
    """A booted idle station at T0 (MinimumStatusDuration 0 unless given)."""
    station = Station(
        "CP-OPS-0001",
        T0,
        config=ConfigStore({"MinimumStatusDuration": 0, **(config or {})}),
        ev=ev if ev is not None else EvModel(),
        observer=observer,
    )
    csms = Central(station)
    station.connected(T0)
    csms.flush()
    return station, csms


def reserve(c: Central, reservation_id: int, connector_id: int = 1, **extra: Any) -> str:
    payload: JsonDict = {
        "connectorId": connector_id,
        "expiryDate": iso(c.now + 600),
        "idTag": "RES-TAG",
        "reservationId": reservation_id,
        **extra,
    }
    return str(c.call("ReserveNow", payload)["status"])


def local_list(c: Central, version: int, entries: list[JsonDict], update_type: str = "Full") -> str:
    payload: JsonDict = {"listVersion": version, "updateType": update_type}
    if entries:
        payload["localAuthorizationList"] = entries
    return str(c.call("SendLocalList", payload)["status"])


def entry(tag: str, status: str | None = "Accepted", **info: Any) -> JsonDict:
    if status is None:
        return {"idTag": tag}
    return {"idTag": tag, "idTagInfo": {"status": status, **info}}


def last_status(c: Central, connector_id: int) -> JsonDict:
    return [p for p in c.payloads("StatusNotification") if p["connectorId"] == connector_id][-1]


# -- Reset --------------------------------------------------------------------------------


def test_hard_reset_stops_the_session_reboots_and_keeps_what_a_reboot_keeps() -> None:
    st, c = setup()
    c.call("ChangeConfiguration", {"key": "MeterValueSampleInterval", "value": "30"})
    c.held = {"StartTransaction"}  # nothing answered yet: everything waits in the queue
    start_session(st, c, T0 + 10)
    c.run(T0 + 130)
    energy_before = st.meter.energy_wh
    assert c.call("Reset", {"type": "Hard"}) == {"status": "Accepted"}
    assert c.effects() == []  # the CALL in flight is answered (or times out) first
    c.pending = None
    c.held = set()
    st.on_failure(True, c.now)  # no answer within WebsocketRequestTimeout
    c.run(c.now)
    assert c.actions(since=T0 + 130) == []  # nothing new is sent while going down
    (effect,) = c.effects()
    assert isinstance(effect, Reboot) and effect.hard
    assert st.queued >= 6  # the StartTransaction, 4 MeterValues and the StopTransaction

    booted_at = c.now + effect.seconds
    c.reboot(effect)
    after = c.actions(since=booted_at)
    assert after[0] == "BootNotification"
    assert len(c.sent("BootNotification")) == 2
    # The StartTransaction lost in flight is resent, then its messages, then the events.
    assert after[1:7] == ["StartTransaction", *["MeterValues"] * 4, "StopTransaction"]
    stop = c.payloads("StopTransaction")[-1]
    assert stop["reason"] == "HardReset"
    assert stop["transactionId"] == c.next_transaction_id
    assert after[7:9] == ["SecurityEventNotification"] * 2
    assert c.events() == ["StartupOfTheDevice", "ResetOrReboot"]
    assert "Hard" in c.payloads("SecurityEventNotification")[1]["techInfo"]
    assert st.config.get_int("MeterValueSampleInterval") == 30
    assert st.meter.energy_wh == pytest.approx(energy_before)
    assert st.status(1) == "Finishing"  # the cable is still in


def test_soft_reset_delivers_the_stop_first_then_reboots() -> None:
    st, c = setup()
    start_session(st, c, T0 + 10)
    c.run(T0 + 40)
    assert c.call("Reset", {"type": "Soft"}, flush=False) == {"status": "Accepted"}
    assert c.effects() == []  # not before the StopTransaction is delivered
    c.do(st.present_tag, "NEW-DRIVER")  # a unit about to restart starts nothing
    c.run(T0 + 40)
    (effect,) = c.effects()
    assert isinstance(effect, Reboot) and not effect.hard
    assert c.payloads("StopTransaction")[0]["reason"] == "SoftReset"
    assert "Authorize" not in c.actions(since=T0 + 40)
    c.reboot(effect)
    assert c.events() == ["StartupOfTheDevice", "ResetOrReboot"]
    assert c.actions()[-5:].count("BootNotification") == 1


def test_a_soft_reset_reboots_after_the_grace_period_when_offline() -> None:
    st, c = setup()
    start_session(st, c, T0 + 10)
    c.link_down(T0 + 20)
    c.call("Reset", {"type": "Soft"}, flush=False)  # the stop cannot be delivered
    c.run(T0 + 29.9)
    assert c.effects() == []
    c.run(T0 + 31)
    (effect,) = c.effects()
    assert isinstance(effect, Reboot)


@pytest.mark.parametrize(("fails", "reboots_at"), [(1, 5.0), (2, 10.0), (3, None)])
def test_a_failing_reset_is_retried_reset_retries_times(
    fails: int, reboots_at: float | None
) -> None:
    st, c = setup()  # ResetRetries is 2: three attempts in all
    assert st.config.get_int("ResetRetries") == 2
    st.reset_fails = fails
    c.run(T0 + 100)
    assert c.call("Reset", {"type": "Hard"}) == {"status": "Accepted"}
    seen: list[float] = []
    for t in range(1, 40):
        c.run(T0 + 100 + t * 0.5)
        if c.effects():
            seen.append(c.now - T0 - 100)
    if reboots_at is None:
        assert seen == []
        c.do(st.plug_in)  # given up: the unit carries on and charges
        c.do(st.present_tag, "TAG1")
        assert st.status(1) == "Charging"
    else:
        assert seen == [reboots_at]
        assert reboots_at == RESET_RETRY_INTERVAL * fails


def test_no_security_events_when_security_events_enabled_is_false() -> None:
    _, c = setup({"SecurityEventsEnabled": False})
    c.call("Reset", {"type": "Hard"})
    (effect,) = c.effects()
    assert isinstance(effect, Reboot)
    c.reboot(effect)
    assert c.events() == []
    assert len(c.sent("BootNotification")) == 2


# -- ChangeAvailability ------------------------------------------------------------------


def test_connector_inoperative_refuses_badges_and_remote_starts() -> None:
    st, c = setup()
    c.run(T0 + 10)
    answer = c.call("ChangeAvailability", {"connectorId": 1, "type": "Inoperative"})
    assert answer == {"status": "Accepted"}
    assert c.statuses(1)[-1] == "Unavailable"
    assert c.statuses(0)[-1] == "Available"
    c.do(st.plug_in)
    c.do(st.present_tag, "TAG1")
    assert "Authorize" not in c.actions()
    assert c.call("RemoteStartTransaction", {"idTag": "TAG1"}) == {"status": "Rejected"}
    assert st.status(1) == "Unavailable"
    again = c.call("ChangeAvailability", {"connectorId": 1, "type": "Inoperative"})
    assert again == {"status": "Accepted"}  # already so: Accepted
    assert c.call("ChangeAvailability", {"connectorId": 1, "type": "Operative"}) == {
        "status": "Accepted"
    }
    assert c.statuses(1)[-1] == "Preparing"  # the cable is in
    c.do(st.present_tag, "TAG1")
    assert st.status(1) == "Charging"


def test_station_inoperative_makes_every_connector_unavailable() -> None:
    st, c = setup()
    c.run(T0 + 10)
    assert c.call("ChangeAvailability", {"connectorId": 0, "type": "Inoperative"}) == {
        "status": "Accepted"
    }
    assert (st.status(0), st.status(1)) == ("Unavailable", "Unavailable")
    assert c.statuses(0)[-1] == "Unavailable" and c.statuses(1)[-1] == "Unavailable"
    assert c.call("RemoteStartTransaction", {"idTag": "T"}) == {"status": "Rejected"}
    c.call("ChangeAvailability", {"connectorId": 0, "type": "Operative"})
    assert (st.status(0), st.status(1)) == ("Available", "Available")


@pytest.mark.parametrize("connector_id", [0, 1])
def test_inoperative_while_charging_is_scheduled_until_the_session_ends(connector_id: int) -> None:
    st, c = setup()
    start_session(st, c, T0 + 10)
    c.run(T0 + 20)
    answer = c.call("ChangeAvailability", {"connectorId": connector_id, "type": "Inoperative"})
    assert answer == {"status": "Scheduled"}
    assert (st.status(0), st.status(1)) == ("Available", "Charging")
    c.run(T0 + 80)
    assert len(c.sent("MeterValues")) == 1  # the session goes on
    c.do(st.present_tag, "TAG1")
    assert c.statuses(1)[-2:] == ["Charging", "Unavailable"]
    assert st.status(0) == ("Unavailable" if connector_id == 0 else "Available")
    c.do(st.unplug)
    c.do(st.plug_in)
    c.do(st.present_tag, "TAG1")
    assert len(c.sent("StartTransaction")) == 1


@pytest.mark.parametrize("connector_id", [2, -1, 7])
def test_change_availability_of_an_unknown_connector_is_rejected(connector_id: int) -> None:
    _, c = setup()
    payload = {"connectorId": connector_id, "type": "Inoperative"}
    assert c.call("ChangeAvailability", payload) == {"status": "Rejected"}


def test_availability_survives_a_reboot() -> None:
    st, c = setup()
    c.call("ChangeAvailability", {"connectorId": 0, "type": "Inoperative"})
    c.call("Reset", {"type": "Hard"})
    (effect,) = c.effects()
    assert isinstance(effect, Reboot)
    c.reboot(effect)
    after = [(p["connectorId"], p["status"]) for p in c.payloads("StatusNotification")[-2:]]
    assert sorted(after) == [(0, "Unavailable"), (1, "Unavailable")]
    assert (st.status(0), st.status(1)) == ("Unavailable", "Unavailable")


def test_inoperative_while_a_driver_waits_passes_through_available() -> None:
    """OCPP's table has no Preparing -> Unavailable; the waiting driver is sent away."""
    st, c = setup()
    c.run(T0 + 10)
    c.do(st.present_tag, "TAG1")  # authorized, no cable yet: Preparing
    assert st.status(1) == "Preparing"
    c.call("ChangeAvailability", {"connectorId": 1, "type": "Inoperative"})
    assert c.statuses(1)[-3:] == ["Preparing", "Available", "Unavailable"]
    c.do(st.plug_in)
    assert c.sent("StartTransaction") == []


# -- RemoteStartTransaction / RemoteStopTransaction --------------------------------------


def test_remote_start_with_a_tx_profile_limits_that_transaction_only() -> None:
    st, c = setup({"AuthorizeRemoteTxRequests": False})
    profile = {
        "chargingProfileId": 7,
        "stackLevel": 0,
        "chargingProfilePurpose": "TxProfile",
        "chargingProfileKind": "Relative",
        "chargingSchedule": {
            "chargingRateUnit": "A",
            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16.0}],
        },
    }
    answer = c.call("RemoteStartTransaction", {"idTag": "R1", "chargingProfile": profile})
    assert answer == {"status": "Accepted"}
    assert st.pending_tx_profile == profile
    c.do(st.plug_in)
    assert st.transaction is not None
    assert st.pending_tx_profile is None
    assert st.meter.offered == 16.0  # the profile is the transaction's TxProfile
    c.do(st.unplug)
    assert st.transaction is None
    assert st.smart.profiles == {}  # and it ended with the transaction


def test_remote_start_with_a_profile_that_is_not_a_tx_profile_is_rejected() -> None:
    st, c = setup()
    profile = {
        "chargingProfileId": 7,
        "stackLevel": 0,
        "chargingProfilePurpose": "TxDefaultProfile",
        "chargingProfileKind": "Relative",
        "chargingSchedule": {
            "chargingRateUnit": "A",
            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16.0}],
        },
    }
    answer = c.call("RemoteStartTransaction", {"idTag": "R1", "chargingProfile": profile})
    assert answer == {"status": "Rejected"}
    assert st.pending_tx_profile is None


def test_remote_stop_of_an_unknown_transaction_is_rejected() -> None:
    st, c = setup()
    start_session(st, c, T0 + 10)
    other = {"transactionId": c.next_transaction_id + 5}
    assert c.call("RemoteStopTransaction", other) == {"status": "Rejected"}
    assert st.status(1) == "Charging"


# -- UnlockConnector ---------------------------------------------------------------------


def test_unlock_stops_a_running_session_with_unlock_command() -> None:
    st, c = setup()
    start_session(st, c, T0 + 10)
    c.run(T0 + 70)
    assert c.call("UnlockConnector", {"connectorId": 1}) == {"status": "Unlocked"}
    (stop,) = c.payloads("StopTransaction")
    assert stop["reason"] == "UnlockCommand"
    assert c.actions()[-2:] == ["StopTransaction", "StatusNotification"]
    assert st.status(1) == "Finishing"


def test_unlock_fails_while_the_lock_is_faulted() -> None:
    st, c = setup()
    c.do(st.raise_fault, lookup("0x100205"))  # Lock / Unlock cable Failure
    assert c.call("UnlockConnector", {"connectorId": 1}) == {"status": "UnlockFailed"}
    c.do(st.clear_fault)
    assert c.call("UnlockConnector", {"connectorId": 1}) == {"status": "Unlocked"}


@pytest.mark.parametrize("connector_id", [0, 2, -3])
def test_unlock_of_a_connector_the_unit_does_not_have_is_not_supported(connector_id: int) -> None:
    _, c = setup()
    answer = c.call("UnlockConnector", {"connectorId": connector_id})
    assert answer == {"status": "NotSupported"}


# -- ReserveNow / CancelReservation -------------------------------------------------------


def test_a_reservation_admits_only_its_id_tag_and_is_consumed_by_it() -> None:
    rec = Recorder()
    st, c = setup(observer=rec)
    c.run(T0 + 10)
    assert reserve(c, 41) == "Accepted"
    assert c.statuses(1)[-1] == "Reserved"
    c.do(st.present_tag, "SOMEONE-ELSE")
    assert ("authorization", "SOMEONE-ELSE", "Reserved") in rec.events
    assert st.status(1) == "Reserved"
    c.do(st.plug_in)
    assert c.sent("StartTransaction") == []
    c.do(st.present_tag, "res-tag")  # idTags compare case-insensitively
    (start,) = c.payloads("StartTransaction")
    assert start["reservationId"] == 41
    assert st.reservation is None
    assert c.call("CancelReservation", {"reservationId": 41}) == {"status": "Rejected"}
    c.do(st.present_tag, "res-tag")
    c.do(st.unplug)
    assert st.status(1) == "Available"


def test_a_reservation_expires_at_its_expiry_date() -> None:
    st, c = setup()
    c.run(T0 + 10)
    assert reserve(c, 1) == "Accepted"
    c.run(T0 + 609.9)
    assert st.status(1) == "Reserved"
    c.run(T0 + 700)
    last = [s for s in c.sent("StatusNotification") if s.payload["connectorId"] == 1][-1]
    assert (last.at, last.payload["status"]) == (T0 + 610, "Available")
    assert st.reservation is None
    assert c.call("CancelReservation", {"reservationId": 1}) == {"status": "Rejected"}


def test_cancel_reservation() -> None:
    st, c = setup()
    assert reserve(c, 5) == "Accepted"
    assert c.call("CancelReservation", {"reservationId": 6}) == {"status": "Rejected"}
    assert c.call("CancelReservation", {"reservationId": 5}) == {"status": "Accepted"}
    assert c.statuses(1)[-2:] == ["Reserved", "Available"]
    c.do(st.plug_in)
    c.do(st.present_tag, "ANYONE")
    assert "reservationId" not in c.payloads("StartTransaction")[0]


def test_a_reservation_on_connector_zero_reserves_the_only_connector() -> None:
    st, c = setup()
    assert reserve(c, 9, connector_id=0) == "Accepted"
    assert st.status(1) == "Reserved" and st.status(0) == "Available"
    assert reserve(c, 10, connector_id=1) == "Occupied"  # no connector left for 9
    c.do(st.plug_in)
    c.do(st.present_tag, "RES-TAG")
    assert c.payloads("StartTransaction")[0]["reservationId"] == 9


def test_connector_zero_reservations_need_reserve_connector_zero_supported() -> None:
    _, c = setup({"ReserveConnectorZeroSupported": False})
    assert reserve(c, 9, connector_id=0) == "Rejected"
    assert reserve(c, 9, connector_id=1) == "Accepted"


def test_the_same_reservation_id_replaces_the_reservation() -> None:
    st, c = setup()
    assert reserve(c, 3) == "Accepted"
    assert reserve(c, 4, idTag="OTHER") == "Occupied"
    assert reserve(c, 3, idTag="NEW-TAG") == "Accepted"
    assert st.reservation is not None and st.reservation.id_tag == "NEW-TAG"
    c.do(st.plug_in)
    c.do(st.present_tag, "RES-TAG")
    assert c.sent("StartTransaction") == []
    c.do(st.present_tag, "NEW-TAG")
    assert c.payloads("StartTransaction")[0]["reservationId"] == 3


def test_reserve_now_statuses() -> None:
    st, c = setup()
    assert reserve(c, 1, connector_id=2) == "Rejected"
    past = {"connectorId": 1, "expiryDate": iso(T0 - 1), "idTag": "T", "reservationId": 1}
    assert c.call("ReserveNow", past) == {"status": "Rejected"}
    c.do(st.plug_in)
    assert reserve(c, 1) == "Occupied"  # a cable is in
    c.do(st.present_tag, "TAG1")
    assert reserve(c, 1) == "Occupied"  # charging
    c.do(st.present_tag, "TAG1")
    c.do(st.unplug)
    c.do(st.raise_fault, lookup("0x200206"))
    assert reserve(c, 1) == "Faulted"
    assert reserve(c, 1, connector_id=0) == "Faulted"
    c.do(st.clear_fault)
    c.call("ChangeAvailability", {"connectorId": 1, "type": "Inoperative"})
    assert reserve(c, 1) == "Unavailable"
    c.call("ChangeAvailability", {"connectorId": 1, "type": "Operative"})
    assert reserve(c, 1) == "Accepted"


def test_a_fault_or_inoperative_ends_the_reservation() -> None:
    st, c = setup()
    assert reserve(c, 1) == "Accepted"
    c.do(st.raise_fault, lookup("0x100101"), connector_id=0)  # HighTemperature
    assert st.reservation is None
    c.do(st.clear_fault, connector_id=0)
    assert st.status(1) == "Available"
    assert reserve(c, 2) == "Accepted"
    c.call("ChangeAvailability", {"connectorId": 0, "type": "Inoperative"})
    assert st.reservation is None
    assert c.statuses(1)[-2:] == ["Reserved", "Unavailable"]


def test_a_reservation_admits_the_parent_id_tag_from_the_authorize_answer() -> None:
    st, c = setup()
    c.info["CHILD"] = {"status": "Accepted", "parentIdTag": "FLEET-A"}
    c.info["STRANGER"] = {"status": "Accepted", "parentIdTag": "FLEET-B"}
    assert reserve(c, 8, idTag="DRIVER", parentIdTag="FLEET-A") == "Accepted"
    c.do(st.plug_in)
    c.do(st.present_tag, "STRANGER")
    assert c.sent("StartTransaction") == []
    c.do(st.present_tag, "CHILD")
    (start,) = c.payloads("StartTransaction")
    assert start["idTag"] == "CHILD" and start["reservationId"] == 8


def test_a_cable_plugged_into_a_reserved_connector_and_removed_goes_back_to_reserved() -> None:
    st, c = setup()
    assert reserve(c, 1) == "Accepted"
    c.do(st.plug_in)
    c.do(st.unplug)
    # Preparing -> Reserved is not in OCPP's table: the connector passes Available.
    assert c.statuses(1)[-4:] == ["Reserved", "Preparing", "Available", "Reserved"]


def test_a_remote_start_for_someone_else_on_a_reserved_connector_is_rejected() -> None:
    st, c = setup({"AuthorizeRemoteTxRequests": False})
    assert reserve(c, 1) == "Accepted"
    assert c.call("RemoteStartTransaction", {"idTag": "OTHER"}) == {"status": "Rejected"}
    assert c.call("RemoteStartTransaction", {"idTag": "RES-TAG"}) == {"status": "Accepted"}
    c.do(st.plug_in)
    assert c.payloads("StartTransaction")[0]["reservationId"] == 1


def test_a_reservation_survives_a_reboot_and_still_expires() -> None:
    st, c = setup()
    assert reserve(c, 1) == "Accepted"
    c.call("Reset", {"type": "Soft"})
    c.run(c.now + 1)
    (effect,) = c.effects()
    assert isinstance(effect, Reboot)
    c.reboot(effect)
    assert st.status(1) == "Reserved"
    c.run(T0 + 700)
    assert st.status(1) == "Available"


# -- Local Authorization List -----------------------------------------------------------


def test_local_list_versions_full_and_differential_updates() -> None:
    st, c = setup()
    assert c.call("GetLocalListVersion", {}) == {"listVersion": 0}
    assert local_list(c, 2, [entry("A"), entry("B", "Blocked")]) == "Accepted"
    assert c.call("GetLocalListVersion", {}) == {"listVersion": 2}
    assert local_list(c, 2, [entry("C")], "Differential") == "VersionMismatch"
    assert local_list(c, 1, [entry("C")], "Differential") == "VersionMismatch"
    assert local_list(c, 5, [entry("C"), entry("A", None)], "Differential") == "Accepted"
    assert sorted(st.auth.local_list.tags()) == ["B", "C"]  # A removed, C added
    assert c.call("GetLocalListVersion", {}) == {"listVersion": 5}
    assert local_list(c, 6, [], "Differential") == "Accepted"  # no effect on the entries
    assert len(st.auth.local_list) == 2
    assert local_list(c, 3, [entry("D")]) == "Accepted"  # a Full update sets any version
    assert st.auth.local_list.tags() == ["D"]
    assert local_list(c, 7, []) == "Accepted"  # a Full update without entries empties it
    assert len(st.auth.local_list) == 0
    assert c.call("GetLocalListVersion", {}) == {"listVersion": 7}


@pytest.mark.parametrize(
    ("update_type", "entries"),
    [
        ("Full", [entry("A"), entry("a")]),  # duplicates (idTags are case-insensitive)
        ("Full", [entry("A"), entry("B", None)]),  # a Full update needs every idTagInfo
        ("Differential", [entry("A"), entry("A", None)]),
        ("Full", [entry(f"T{i}") for i in range(401)]),  # SendLocalListMaxLength 400
    ],
    ids=["duplicate", "full-without-info", "differential-duplicate", "too-many"],
)
def test_invalid_local_list_updates_fail_and_change_nothing(
    update_type: str, entries: list[JsonDict]
) -> None:
    st, c = setup()
    assert local_list(c, 1, [entry("KEEP")]) == "Accepted"
    assert local_list(c, 2, entries, update_type) == "Failed"
    assert st.auth.local_list.tags() == ["KEEP"]
    assert c.call("GetLocalListVersion", {}) == {"listVersion": 1}


def test_the_list_cannot_grow_beyond_local_auth_list_max_length() -> None:
    st, c = setup({"LocalAuthListMaxLength": 3})
    assert local_list(c, 1, [entry("A"), entry("B"), entry("C")]) == "Accepted"
    assert local_list(c, 2, [entry("D")], "Differential") == "Failed"
    assert local_list(c, 2, [entry("D"), entry("A", None)], "Differential") == "Accepted"
    assert local_list(c, 3, [entry(t) for t in "WXYZ"]) == "Failed"
    assert sorted(st.auth.local_list.tags()) == ["B", "C", "D"]


def test_the_400_entry_update_is_the_largest_accepted() -> None:
    st, c = setup()
    assert local_list(c, 1, [entry(f"T{i}") for i in range(400)]) == "Accepted"
    assert len(st.auth.local_list) == 400


def test_the_local_list_survives_a_reboot() -> None:
    st, c = setup()
    local_list(c, 4, [entry("A")])
    c.call("Reset", {"type": "Hard"})
    (effect,) = c.effects()
    assert isinstance(effect, Reboot)
    c.reboot(effect)
    assert c.call("GetLocalListVersion", {}) == {"listVersion": 4}
    assert st.auth.local_list.tags() == ["A"]


# -- authorization: list, cache, offline rules ------------------------------------------


def offline_badge(st: Station, c: Central, tag: str) -> bool:
    """Badge while offline with a cable in; True when a transaction started."""
    if st.online:
        st.disconnected(c.now)
    c.run(c.now + 1)
    if st.connectors[1].plugged:
        c.do(st.unplug)
    c.do(st.plug_in)
    c.do(st.present_tag, tag)
    return st.transaction is not None


def test_offline_the_list_decides_for_the_tags_it_knows() -> None:
    st, c = setup({"LocalAuthListEnabled": True, "AllowOfflineTxForUnknownId": False})
    future, past = iso(T0 + 86400), iso(T0 - 1)
    local_list(
        c,
        1,
        [
            entry("GOOD", expiryDate=future),
            entry("BLOCKED", "Blocked"),
            entry("OLD", expiryDate=past),
            entry("BUSY", "ConcurrentTx"),  # 3.5.2: valid, like Accepted
        ],
    )
    assert offline_badge(st, c, "GOOD")
    c.do(st.present_tag, "GOOD")
    assert not offline_badge(st, c, "BLOCKED")
    assert not offline_badge(st, c, "OLD")  # past its expiryDate: Expired
    assert not offline_badge(st, c, "UNKNOWN")
    assert offline_badge(st, c, "BUSY")


def test_offline_a_tag_refused_by_the_list_stays_refused_even_for_unknown_ids() -> None:
    st, c = setup({"LocalAuthListEnabled": True, "AllowOfflineTxForUnknownId": True})
    local_list(c, 1, [entry("BLOCKED", "Blocked")])
    assert not offline_badge(st, c, "BLOCKED")
    assert offline_badge(st, c, "UNKNOWN")


def test_offline_without_local_authorize_offline_only_unknown_ids_may_start() -> None:
    config = {"LocalAuthListEnabled": True, "LocalAuthorizeOffline": False}
    st, c = setup({**config, "AllowOfflineTxForUnknownId": False})
    local_list(c, 1, [entry("GOOD")])
    assert not offline_badge(st, c, "GOOD")
    st, c = setup({**config, "AllowOfflineTxForUnknownId": True})
    local_list(c, 1, [entry("GOOD")])
    assert offline_badge(st, c, "GOOD")


def test_a_disabled_list_is_kept_but_not_used() -> None:
    st, c = setup({"AllowOfflineTxForUnknownId": False})
    assert local_list(c, 1, [entry("GOOD")]) == "Accepted"  # accepted while disabled
    assert not offline_badge(st, c, "GOOD")
    c.link_up(c.now + 1)
    c.call("ChangeConfiguration", {"key": "LocalAuthListEnabled", "value": "true"})
    c.do(st.unplug)
    assert offline_badge(st, c, "GOOD")


def test_local_pre_authorize_starts_listed_tags_without_asking() -> None:
    st, c = setup({"LocalAuthListEnabled": True, "LocalPreAuthorize": True})
    local_list(c, 1, [entry("GOOD"), entry("BLOCKED", "Blocked")])
    c.do(st.plug_in)
    c.do(st.present_tag, "BLOCKED")
    assert c.sent("Authorize") == [] and st.transaction is None  # refused without asking
    c.do(st.present_tag, "GOOD")
    assert c.sent("Authorize") == []
    assert c.payloads("StartTransaction")[0]["idTag"] == "GOOD"
    c.do(st.present_tag, "GOOD")
    c.do(st.present_tag, "UNLISTED")
    assert c.payloads("Authorize") == [{"idTag": "UNLISTED"}]


def test_a_pre_authorized_session_is_still_ended_by_an_invalid_start_answer() -> None:
    st, c = setup({"LocalAuthListEnabled": True, "LocalPreAuthorize": True})
    local_list(c, 1, [entry("GOOD")])
    c.start_status["GOOD"] = "Blocked"
    start_session(st, c, T0 + 10, "GOOD")
    (stop,) = c.payloads("StopTransaction")
    assert stop["reason"] == "DeAuthorized"


def test_without_local_pre_authorize_listed_tags_are_still_authorized_online() -> None:
    st, c = setup({"LocalAuthListEnabled": True})
    local_list(c, 1, [entry("GOOD")])
    start_session(st, c, T0 + 10, "GOOD")
    assert c.payloads("Authorize") == [{"idTag": "GOOD"}]


def test_a_conflicting_answer_is_reported_as_local_list_conflict_and_followed() -> None:
    st, c = setup({"LocalAuthListEnabled": True})
    local_list(c, 1, [entry("GOOD"), entry("BAD", "Blocked")])
    c.run(T0 + 10)
    c.info["GOOD"] = {"status": "Blocked"}
    c.do(st.plug_in)
    c.do(st.present_tag, "GOOD")
    conflict = last_status(c, 0)
    assert conflict["errorCode"] == "LocalListConflict"
    assert conflict["vendorErrorCode"] == "0x30000E"
    assert conflict["vendorId"] == "Schneider Electric"
    assert conflict["status"] == "Available" and st.status(0) == "Available"
    assert st.transaction is None  # the CSMS said Blocked
    c.info["BAD"] = {"status": "Accepted"}
    c.do(st.present_tag, "BAD")
    assert st.transaction is not None  # the CSMS said Accepted
    conflicts = [p for p in c.payloads("StatusNotification") if p["errorCode"] != "NoError"]
    assert len(conflicts) == 2  # the StartTransaction.conf only counts for local starts
    assert st.auth.local_list.get("GOOD") is not None  # the list is the CSMS's to change
    assert len(st.auth.cache) == 0  # listed tags never go into the cache


def test_an_agreeing_answer_is_no_conflict() -> None:
    st, c = setup({"LocalAuthListEnabled": True})
    local_list(c, 1, [entry("GOOD")])
    start_session(st, c, T0 + 10, "GOOD")
    assert all(p["errorCode"] == "NoError" for p in c.payloads("StatusNotification"))


def test_the_cache_learns_from_authorize_answers_and_serves_offline() -> None:
    st, c = setup({"AuthorizationCacheEnabled": True, "AllowOfflineTxForUnknownId": False})
    c.info["CACHED"] = {"status": "Accepted", "expiryDate": iso(T0 + 3600)}
    c.run(T0 + 10)
    c.do(st.present_tag, "CACHED")  # Authorize.conf goes into the cache
    c.run(T0 + 100)  # ConnectionTimeOut: nothing started
    assert offline_badge(st, c, "CACHED")
    c.do(st.present_tag, "CACHED")
    c.do(st.unplug)
    c.run(T0 + 3700)  # past the cached expiryDate
    assert not offline_badge(st, c, "CACHED")


def test_start_and_stop_answers_update_the_cache() -> None:
    st, c = setup({"AuthorizationCacheEnabled": True, "AllowOfflineTxForUnknownId": False})
    start_session(st, c, T0 + 10, "TAG1")
    c.stop_info = {"status": "Blocked"}
    c.do(st.present_tag, "TAG1")
    c.do(st.unplug)
    info = st.auth.cache.get("TAG1")
    assert info is not None and info.status == "Blocked"
    assert not offline_badge(st, c, "TAG1")


def test_clear_cache_empties_it() -> None:
    st, c = setup({"AuthorizationCacheEnabled": True, "AllowOfflineTxForUnknownId": False})
    c.run(T0 + 10)
    c.do(st.present_tag, "TAG1")
    assert len(st.auth.cache) == 1
    assert c.call("ClearCache", {}) == {"status": "Accepted"}
    assert len(st.auth.cache) == 0
    c.run(T0 + 100)
    assert not offline_badge(st, c, "TAG1")


def test_a_disabled_cache_learns_nothing_and_clear_cache_is_still_accepted() -> None:
    st, c = setup()
    start_session(st, c, T0 + 10, "TAG1")
    assert len(st.auth.cache) == 0
    assert c.call("ClearCache", {}) == {"status": "Accepted"}


def test_the_cache_drops_invalid_entries_first_when_full() -> None:
    st, _ = setup()
    cache = st.auth.cache
    cache.capacity = 3
    from fleet.model.auth import IdTagInfo

    cache.put("A", IdTagInfo("Accepted"), T0)
    cache.put("B", IdTagInfo("Blocked"), T0)
    cache.put("C", IdTagInfo("Accepted"), T0)
    cache.put("D", IdTagInfo("Accepted"), T0)
    assert cache.get("B") is None and cache.get("A") is not None
    cache.put("E", IdTagInfo("Accepted"), T0)
    assert cache.get("A") is None  # then the oldest
    assert len(cache) == 3


def test_cache_and_list_survive_a_reboot() -> None:
    st, c = setup({"AuthorizationCacheEnabled": True})
    c.do(st.present_tag, "TAG1")
    local_list(c, 3, [entry("L")])
    c.call("Reset", {"type": "Hard"})
    (effect,) = c.effects()
    assert isinstance(effect, Reboot)
    c.reboot(effect)
    assert st.auth.cache.get("TAG1") is not None
    assert st.auth.local_list.version == 3


# -- StopTransactionOnInvalidId / MaxEnergyOnInvalidId ----------------------------------


def test_invalid_start_answer_without_stop_on_invalid_id_suspends_at_once() -> None:
    st, c = setup({"StopTransactionOnInvalidId": False})
    c.start_status["TAG1"] = "Invalid"
    start_session(st, c, T0 + 10)
    assert c.sent("StopTransaction") == []
    assert st.status(1) == "SuspendedEVSE"
    c.run(T0 + 130)
    values = [v.payload["meterValue"][0] for v in c.sent("MeterValues")]
    energies = {
        s["value"] for v in values for s in v["sampledValue"] if s["measurand"].startswith("Energy")
    }
    assert energies == {"0"}  # MaxEnergyOnInvalidId is 0: nothing delivered
    c.do(st.present_tag, "TAG1")  # the driver can still end it
    assert c.payloads("StopTransaction")[0]["reason"] == "Local"


def test_max_energy_on_invalid_id_is_delivered_then_the_evse_suspends() -> None:
    st, c = setup({"StopTransactionOnInvalidId": False, "MaxEnergyOnInvalidId": 184})
    c.start_status["TAG1"] = "Invalid"
    start_session(st, c, T0 + 10)
    assert st.status(1) == "Charging"
    c.run(T0 + 29.9)  # 22 080 W: 184 Wh take 30 s
    assert st.status(1) == "Charging"
    c.run(T0 + 200)
    assert st.status(1) == "SuspendedEVSE"
    assert c.statuses(1)[-2:] == ["Charging", "SuspendedEVSE"]
    assert st.meter.energy_wh == pytest.approx(184, abs=0.01)


# -- TriggerMessage ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("requested", "action", "payload"),
    [
        ("Heartbeat", "Heartbeat", {}),
        ("DiagnosticsStatusNotification", "DiagnosticsStatusNotification", {"status": "Idle"}),
        ("FirmwareStatusNotification", "FirmwareStatusNotification", {"status": "Idle"}),
    ],
)
def test_trigger_message_simple_messages(requested: str, action: str, payload: JsonDict) -> None:
    _, c = setup()
    c.run(T0 + 5)
    before = len(c.log)
    assert c.call("TriggerMessage", {"requestedMessage": requested}) == {"status": "Accepted"}
    (sent,) = c.log[before:]
    assert (sent.action, sent.payload) == (action, payload)


def test_trigger_boot_notification_is_sent_and_answered_again() -> None:
    st, c = setup()
    c.run(T0 + 5)
    c.call("TriggerMessage", {"requestedMessage": "BootNotification"})
    assert len(c.sent("BootNotification")) == 2
    assert st.boot_status == "Accepted"


def test_trigger_status_notification_with_and_without_connector() -> None:
    _, c = setup()
    c.run(T0 + 5)
    before = len(c.log)
    c.call("TriggerMessage", {"requestedMessage": "StatusNotification"})
    assert [s.payload["connectorId"] for s in c.log[before:]] == [0, 1]
    c.call("TriggerMessage", {"requestedMessage": "StatusNotification", "connectorId": 0})
    assert c.log[-1].payload["connectorId"] == 0


def test_trigger_meter_values_names_the_running_transaction() -> None:
    st, c = setup()
    c.call("TriggerMessage", {"requestedMessage": "MeterValues"})
    idle = c.payloads("MeterValues")[-1]
    assert idle["connectorId"] == 1 and "transactionId" not in idle
    start_session(st, c, T0 + 10)
    c.run(T0 + 20)
    c.call("TriggerMessage", {"requestedMessage": "MeterValues", "connectorId": 1})
    triggered = c.payloads("MeterValues")[-1]
    assert triggered["transactionId"] == c.next_transaction_id
    assert triggered["meterValue"][0]["sampledValue"][0]["context"] == "Trigger"
    c.call("TriggerMessage", {"requestedMessage": "MeterValues", "connectorId": 0})
    main = c.payloads("MeterValues")[-1]
    assert main["connectorId"] == 0 and "transactionId" not in main


def test_trigger_meter_values_before_the_transaction_id_is_known_names_none() -> None:
    st, c = setup()
    c.errors["StartTransaction"] = 99  # never accepted: no transaction id, ever
    start_session(st, c, T0 + 10)
    c.call("TriggerMessage", {"requestedMessage": "MeterValues"})
    c.run(T0 + 30)
    triggered = c.payloads("MeterValues")[-1]
    assert "transactionId" not in triggered  # a snapshot, not a transaction message
    assert triggered["meterValue"][0]["sampledValue"][0]["context"] == "Trigger"
    assert st.dropped_messages == 1  # only the StartTransaction


@pytest.mark.parametrize("connector_id", [2, -1])
def test_trigger_message_for_a_connector_that_does_not_exist_is_rejected(connector_id: int) -> None:
    _, c = setup()
    before = len(c.log)
    payload = {"requestedMessage": "StatusNotification", "connectorId": connector_id}
    assert c.call("TriggerMessage", payload) == {"status": "Rejected"}
    assert len(c.log) == before


def test_the_triggered_message_follows_the_answer() -> None:
    st, _ = setup()
    answer = st.handle_call("TriggerMessage", {"requestedMessage": "Heartbeat"}, T0 + 1)
    assert answer == {"status": "Accepted"}
    msg = st.next_message(T0 + 1)  # only after the answer, the engine sends this
    assert msg is not None and msg.action == "Heartbeat"


# -- DataTransfer ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "status"),
    [
        ({"vendorId": "Acme"}, "UnknownVendorId"),
        ({"vendorId": "Schneider Electric", "messageId": "GetStatus"}, "UnknownMessageId"),
        ({"vendorId": "schneider electric"}, "UnknownMessageId"),
        ({"vendorId": "Schneider Electric", "messageId": "x", "data": "{}"}, "UnknownMessageId"),
    ],
)
def test_data_transfer_from_the_csms(payload: JsonDict, status: str) -> None:
    _, c = setup()
    assert c.call("DataTransfer", payload) == {"status": status}


def test_data_transfer_to_the_csms() -> None:
    st, c = setup()
    c.do(st.data_transfer, "Schneider Electric", "Hello", '{"a": 1}')
    assert c.payloads("DataTransfer") == [
        {"vendorId": "Schneider Electric", "messageId": "Hello", "data": '{"a": 1}'}
    ]
    c.do(st.data_transfer, "X", None, None)
    assert c.payloads("DataTransfer")[-1] == {"vendorId": "X"}


# -- free charging -----------------------------------------------------------------------


def test_free_charging_starts_offline_whatever_the_offline_rules() -> None:
    st, c = setup({"AuthenticationOCPPMode": False, "AllowOfflineTxForUnknownId": False})
    st.disconnected(c.now)
    c.run(c.now + 1)
    c.do(st.plug_in)  # no badge: plugging in starts a free session
    assert st.transaction is not None and st.transaction.id_tag == "18237379292"


# -- ChangeConfiguration side effects ------------------------------------------------------


def test_changing_the_supervision_url_or_box_identifier_reconnects() -> None:
    st, c = setup()
    st.config.set_internal("SupervisionUrl", "ws://old.example/ocpp")
    url = {"key": "SupervisionUrl", "value": "ws://new.example/ocpp"}
    assert c.call("ChangeConfiguration", url) == {"status": "Accepted"}
    assert [type(e) for e in c.effects()] == [Reconnect]
    assert c.call("ChangeConfiguration", url) == {"status": "Accepted"}
    assert c.effects() == []  # the same value again: nothing to do
    box = {"key": "boxidentifier", "value": "CP-RENAMED"}  # keys are case-insensitive
    assert c.call("ChangeConfiguration", box) == {"status": "Accepted"}
    assert [type(e) for e in c.effects()] == [Reconnect]
    assert c.events() == []  # not security settings


def test_changing_security_settings_reconnects_and_reports_the_event() -> None:
    st, c = setup()
    key = {"key": "AuthorizationKey", "value": KEY}
    assert c.call("ChangeConfiguration", key, flush=False) == {"status": "Accepted"}
    assert [type(e) for e in c.effects()] == [Reconnect]
    st.disconnected(c.now)  # what the engine does for the Reconnect
    c.link_up(c.now + 1)
    assert c.events() == ["ReconfigurationOfSecurityParameters"]
    event = c.payloads("SecurityEventNotification")[0]
    assert KEY not in str(event)
    profile = {"key": "SecurityProfile", "value": "1"}
    assert c.call("ChangeConfiguration", profile) == {"status": "Accepted"}
    assert [type(e) for e in c.effects()] == [Reconnect]
    st.disconnected(c.now)
    c.link_up(c.now + 1)
    assert c.events()[-1] == "ReconfigurationOfSecurityParameters"
    assert c.payloads("SecurityEventNotification")[-1]["techInfo"] == "SecurityProfile = 1"


def test_the_reconnect_waits_for_the_call_in_flight_and_sends_nothing_new() -> None:
    st, c = setup()
    c.held = {"Heartbeat"}
    c.run(T0 + 3600)  # a Heartbeat is in flight
    assert c.pending is not None
    box = {"key": "BoxIdentifier", "value": "CP-RENAMED"}
    assert c.call("ChangeConfiguration", box) == {"status": "Accepted"}
    c.call("TriggerMessage", {"requestedMessage": "StatusNotification"})
    assert c.effects() == []  # not while the CSMS may be answering us
    c.held = set()
    c.release()
    c.run(c.now)
    assert [type(e) for e in c.effects()] == [Reconnect]
    assert c.actions(since=T0 + 3600) == ["Heartbeat"]  # the trigger waits for the new link
    st.disconnected(c.now)
    c.link_up(c.now + 1)
    assert c.actions(since=T0 + 3600)[1:] == ["StatusNotification"] * 2


def test_a_rejected_change_does_not_reconnect() -> None:
    _, c = setup()
    down = {"key": "SecurityProfile", "value": "1"}  # no AuthorizationKey yet
    assert c.call("ChangeConfiguration", down) == {"status": "Rejected"}
    assert c.effects() == []


def test_trigger_backend_configuration_data_reset_clears_backend_data() -> None:
    st, c = setup(
        {"AuthorizationCacheEnabled": True},
    )
    c.do(st.present_tag, "TAG1")
    c.run(T0 + 100)
    local_list(c, 9, [entry("L")])
    assert reserve(c, 1) == "Accepted"
    st.meter.energy_wh = 5000.0
    c.call("ChangeConfiguration", {"key": "HeartbeatInterval", "value": "120"})
    answer = c.call(
        "ChangeConfiguration", {"key": "TriggerBackendConfigurationDataReset", "value": "true"}
    )
    assert answer == {"status": "Accepted"}
    assert c.call("GetLocalListVersion", {}) == {"listVersion": 0}
    assert len(st.auth.cache) == 0
    assert st.reservation is None and st.status(1) == "Available"
    assert st.meter.energy_wh == 5000.0  # never the energy register
    assert st.config.get_int("HeartbeatInterval") == 120  # nor the configuration
    assert st.config.get("TriggerBackendConfigurationDataReset") == "False"


def test_an_unreadable_expiry_date_in_reserve_now_is_a_callerror() -> None:
    st, _ = setup()
    payload = {
        "connectorId": 1,
        "expiryDate": "2024-13-45T99:00:00Z",
        "idTag": "T",
        "reservationId": 1,
    }
    with pytest.raises(OcppError) as info:
        st.handle_call("ReserveNow", payload, T0)
    assert info.value.code == errors.PROPERTY_CONSTRAINT_VIOLATION


# -- standalone mode (OcppEnable) ---------------------------------------------------------


def test_the_installers_local_setup_brings_a_standalone_station_back_under_supervision() -> None:
    """No CSMS reaches a standalone unit (no ChangeConfiguration, no Reset): the
    installer's local setup writes OcppEnable True and restarts it, and it boots with
    its CSMS again (docs/station-model.md, decisions)."""
    st, c = setup({"OcppEnable": False})
    assert c.call("Reset", {"type": "Hard"}) == {"status": "Accepted"}
    (effect,) = c.effects()
    assert isinstance(effect, Reboot)
    st.disconnected(c.now)
    c.run(c.now + effect.seconds)
    st.rebooted(c.now)
    assert [type(e) for e in c.effects()] == [Standalone]
    c.do(st.local_setup, {"OcppEnable": True})
    (effect,) = c.effects()
    assert isinstance(effect, Reboot)
    c.reboot(effect)
    assert c.effects() == [] and not st.standalone
    assert c.actions(since=c.now)[0] == "BootNotification"
    assert st.boot_status == "Accepted"
