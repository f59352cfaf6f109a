"""The simulated Charge Pro (fleet.model.station) driven by a fake clock.

A tiny in-test CSMS (:class:`Csms`) wakes the station when it asks, answers every
CALL it sends the way a central system would, and checks every CALL and every
answer, in both directions, against the official OCPP 1.6 JSON schemas. Tests then
read what was sent, and when, from ``csms.log``.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from fleet.model.config import ConfigStore
from fleet.model.faults import lookup
from fleet.model.meter import EvModel
from fleet.model.station import Station
from fleet.protocol import errors
from fleet.protocol.errors import OcppError
from fleet.protocol.schemas import validate

T0 = 1_700_000_000.0
DEFAULT_ID_TAG = "18237379292"  # the guide's DefaultIdTag default
ENERGY = "Energy.Active.Import.Register"
JsonDict = dict[str, Any]


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def epoch(timestamp: str) -> float:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


@dataclass
class Sent:
    at: float
    action: str
    payload: JsonDict


class Recorder:
    """An Observer that remembers what it was told."""

    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []

    def status_changed(self, connector_id: int, old: str, new: str) -> None:
        self.events.append(("status_changed", connector_id, old, new))

    def transaction_started(self, connector_id: int, id_tag: str) -> None:
        self.events.append(("transaction_started", connector_id, id_tag))

    def transaction_stopped(self, connector_id: int, reason: str, energy_wh: float) -> None:
        self.events.append(("transaction_stopped", connector_id, reason, energy_wh))

    def energy_delivered(self, wh: float) -> None:
        pass

    def remote_start(self, connector_id: int, id_tag: str) -> None:
        self.events.append(("remote_start", connector_id, id_tag))

    def authorization(self, id_tag: str, status: str) -> None:
        self.events.append(("authorization", id_tag, status))

    def message_dropped(self, action: str) -> None:
        self.events.append(("message_dropped", action))

    def of(self, kind: str) -> list[tuple[Any, ...]]:
        return [e[1:] for e in self.events if e[0] == kind]


class Csms:
    """A central system on a fake clock: answers at once, validates everything."""

    def __init__(self, station: Station, now: float = T0, heartbeat: int = 3600) -> None:
        self.station = station
        self.now = now
        self.heartbeat = heartbeat
        self.log: list[Sent] = []
        self.boot_replies: list[tuple[str, int]] = []  # (status, interval), then Accepted
        self.id_status: dict[str, str] = {}  # idTag -> Authorize status (default Accepted)
        self.start_status: dict[str, str] = {}  # idTag -> StartTransaction status override
        self.default_status = "Accepted"
        self.errors: dict[str, int] = {}  # action -> CALLERRORs to give before answering
        self.timeouts: dict[str, int] = {}  # action -> CALLs left unanswered (timed out)
        self.held: set[str] = set()  # actions left unanswered (in flight) until release()
        self.pending: Sent | None = None
        self.next_transaction_id = 1000

    # -- time and messages

    def flush(self) -> None:
        """Take every CALL the station wants to send now and answer it."""
        st = self.station
        for _ in range(10_000):
            if self.pending is not None:
                return
            msg = st.next_message(self.now)
            if msg is None:
                return
            validate(msg.action, msg.payload, response=False)
            sent = Sent(self.now, msg.action, copy.deepcopy(msg.payload))
            self.log.append(sent)
            if msg.action in self.held:
                self.pending = sent
                return
            self._answer(sent)
        raise AssertionError("the station never stops sending")

    def release(self) -> None:
        """Answer the held CALL now."""
        sent, self.pending = self.pending, None
        assert sent is not None
        self._answer(sent)
        self.flush()

    def _answer(self, sent: Sent) -> None:
        if self.timeouts.get(sent.action, 0) > 0:
            self.timeouts[sent.action] -= 1
            self.station.on_failure(True, self.now)  # no answer within the timeout
            return
        reply = self._reply(sent.action, sent.payload)
        if reply is None:
            self.station.on_failure(False, self.now)
        else:
            validate(sent.action, reply, response=True)
            self.station.on_answer(reply, self.now)

    def run(self, until: float) -> None:
        """Let time pass up to ``until``, waking the station whenever it asks to."""
        st = self.station
        self.flush()
        stalls = 0
        while True:
            wake = st.next_wakeup()
            if wake is None or wake > until:
                break
            stalls = stalls + 1 if wake <= self.now else 0
            assert stalls < 5, f"next_wakeup() keeps returning {wake} at {self.now}"
            self.now = max(self.now, wake)
            st.advance(self.now)
            self.flush()
        self.now = max(self.now, until)
        st.advance(self.now)
        self.flush()

    def link_down(self, at: float) -> None:
        """Let time pass to ``at``, then lose the websocket."""
        self.run(at)
        self.station.disconnected(self.now)

    def link_up(self, at: float) -> None:
        """Let time pass to ``at``, then (re)open the websocket."""
        self.run(at)
        self.station.connected(self.now)
        self.flush()

    def do(self, event: Any, *args: Any, **kwargs: Any) -> None:
        """A hardware event now (``event(*args, now)``), then deliver what it caused."""
        event(*args, self.now, **kwargs)
        self.flush()

    def call(self, action: str, payload: JsonDict, *, flush: bool = True) -> JsonDict:
        """A CALL from the CSMS to the station; both sides schema-checked."""
        validate(action, payload, response=False)
        answer = self.station.handle_call(action, payload, self.now)
        validate(action, answer, response=True)
        if flush:
            self.flush()
        return answer

    def _reply(self, action: str, payload: JsonDict) -> JsonDict | None:
        if self.errors.get(action, 0) > 0:
            self.errors[action] -= 1
            return None
        if action == "BootNotification":
            status, interval = (
                self.boot_replies.pop(0) if self.boot_replies else ("Accepted", self.heartbeat)
            )
            return {"status": status, "currentTime": iso(self.now), "interval": interval}
        if action == "Authorize":
            return {"idTagInfo": {"status": self._id_status(payload["idTag"])}}
        if action == "StartTransaction":
            self.next_transaction_id += 1
            tag = payload["idTag"]
            status = self.start_status.get(tag, self._id_status(tag))
            return {"transactionId": self.next_transaction_id, "idTagInfo": {"status": status}}
        if action == "Heartbeat":
            return {"currentTime": iso(self.now)}
        return {}  # StatusNotification, MeterValues, StopTransaction, ...

    def _id_status(self, id_tag: str) -> str:
        return self.id_status.get(id_tag, self.default_status)

    # -- reading the log

    def actions(self, since: float = float("-inf")) -> list[str]:
        return [s.action for s in self.log if s.at >= since]

    def sent(self, action: str) -> list[Sent]:
        return [s for s in self.log if s.action == action]

    def payloads(self, action: str) -> list[JsonDict]:
        return [s.payload for s in self.sent(action)]

    def statuses(self, connector_id: int) -> list[str]:
        return [
            p["status"]
            for p in self.payloads("StatusNotification")
            if p["connectorId"] == connector_id
        ]


def make(
    config: Mapping[str, str | int | bool] | None = None,
    *,
    ev: EvModel | None = None,
    energy_wh: float = 0.0,
    observer: Recorder | None = None,
    boot: bool = True,
    heartbeat: int = 3600,
) -> tuple[Station, Csms]:
    """A station at T0 and its CSMS; booted (and idle) unless boot=False."""
    station = Station(
        "CP-TEST-0001",
        T0,
        config=ConfigStore(config or {}),
        ev=ev if ev is not None else EvModel(),
        observer=observer,
        energy_wh=energy_wh,
    )
    csms = Csms(station, T0, heartbeat=heartbeat)
    if boot:
        station.connected(T0)
        csms.flush()
    return station, csms


def start_session(st: Station, c: Csms, at: float, tag: str = "TAG1") -> None:
    """Plug in and badge at ``at``: the CSMS accepts and the transaction starts."""
    c.run(at)
    c.do(st.plug_in)
    c.do(st.present_tag, tag)


def sampled(meter_value: JsonDict) -> dict[tuple[str, str | None], JsonDict]:
    """The sampled values of one meterValue, by (measurand, phase)."""
    return {(s.get("measurand"), s.get("phase")): s for s in meter_value["sampledValue"]}


def energy_of(meter_value: JsonDict) -> int:
    return int(sampled(meter_value)[(ENERGY, None)]["value"])


def line_currents(meter_value: JsonDict) -> tuple[float, float, float]:
    values = sampled(meter_value)
    l1, l2, l3 = (float(values[("Current.Import", p)]["value"]) for p in ("L1", "L2", "L3"))
    return l1, l2, l3


MSD0 = {"MinimumStatusDuration": 0}


# -- boot ---------------------------------------------------------------------------------


def test_boot_notification_goes_first_and_alone_until_accepted() -> None:
    st, c = make(boot=False)
    c.boot_replies = [("Pending", 45), ("Rejected", 30)]
    st.plug_in(T0)  # before the link is up
    c.link_up(T0 + 1)
    c.run(T0 + 2)
    st.present_tag("TAG1", c.now)  # while Pending: the transaction must wait for Accepted
    c.run(T0 + 45.9)
    assert [(s.at, s.action) for s in c.log] == [(T0 + 1, "BootNotification")]

    c.run(T0 + 200)
    boots = [s.at for s in c.sent("BootNotification")]
    assert boots == [T0 + 1, T0 + 46, T0 + 76]  # Pending waits 45 s, Rejected 30 s
    accepted = boots[-1]
    assert all(s.action == "BootNotification" for s in c.log if s.at < accepted)
    assert c.payloads("BootNotification")[0]["chargePointVendor"] == "Schneider Electric"
    right_after = [s for s in c.log if s.at == accepted and s.action == "StatusNotification"]
    assert sorted(s.payload["connectorId"] for s in right_after) == [0, 1]
    assert "StartTransaction" in c.actions(since=accepted)


def test_statuses_of_both_connectors_follow_the_accepted_boot_at_once() -> None:
    _, c = make()
    assert [(s.at, s.action, s.payload.get("connectorId")) for s in c.log] == [
        (T0, "BootNotification", None),
        (T0, "StatusNotification", 0),
        (T0, "StatusNotification", 1),
    ]
    assert c.statuses(0) == ["Available"] and c.statuses(1) == ["Available"]


@pytest.mark.parametrize("timeout", [False, True])
def test_boot_without_an_answer_is_retried_after_30_seconds(timeout: bool) -> None:
    st, c = make(boot=False)
    st.connected(T0)
    msg = st.next_message(T0)
    assert msg is not None and msg.action == "BootNotification"
    validate(msg.action, msg.payload, response=False)
    st.on_failure(timeout, T0 + 10)  # a CALLERROR, or no answer within 10 s
    assert st.next_message(T0 + 39.9) is None
    assert st.next_wakeup() == T0 + 40
    c.now = T0 + 10
    c.run(T0 + 100)
    assert [s.at for s in c.sent("BootNotification")] == [T0 + 40]
    assert st.boot_status == "Accepted"


def test_heartbeat_interval_comes_from_the_boot_answer() -> None:
    _, c = make(heartbeat=120)
    answer = c.call("GetConfiguration", {"key": ["HeartbeatInterval"]})
    assert answer["configurationKey"][0]["value"] == "120"
    c.run(T0 + 119.9)
    assert "Heartbeat" not in c.actions()
    c.run(T0 + 250)
    assert [s.at for s in c.sent("Heartbeat")] == [T0 + 120, T0 + 240]


def test_heartbeat_is_sent_only_after_an_interval_without_any_exchange() -> None:
    st, c = make(heartbeat=100)
    c.run(T0 + 50)
    c.call("GetConfiguration", {"key": ["HeartbeatInterval"]})  # the CSMS talked at +50
    c.run(T0 + 170)
    c.do(st.plug_in)  # Preparing, reported at +180 (MinimumStatusDuration 10)
    c.run(T0 + 300)
    assert [s.at for s in c.sent("StatusNotification")][-1] == T0 + 180
    assert [s.at for s in c.sent("Heartbeat")] == [T0 + 150, T0 + 280]


# -- MinimumStatusDuration ----------------------------------------------------------------


def test_a_status_that_reverts_within_minimum_status_duration_is_never_reported() -> None:
    st, c = make()
    assert st.config.get_int("MinimumStatusDuration") == 10
    c.run(T0 + 100)
    c.do(st.plug_in)
    c.run(T0 + 109)
    c.do(st.unplug)
    c.run(T0 + 500)
    assert c.statuses(1) == ["Available"]  # only the boot-time report


def test_a_status_is_reported_once_it_has_held_for_minimum_status_duration() -> None:
    st, c = make()
    c.run(T0 + 100)
    c.do(st.plug_in)
    c.run(T0 + 109.9)
    assert c.statuses(1) == ["Available"]
    c.run(T0 + 500)
    assert [(s.at, s.payload["status"]) for s in c.sent("StatusNotification")][-1] == (
        T0 + 110,
        "Preparing",
    )
    assert c.statuses(1) == ["Available", "Preparing"]


def test_with_minimum_status_duration_zero_every_change_is_reported() -> None:
    st, c = make()
    c.call("ChangeConfiguration", {"key": "MinimumStatusDuration", "value": "0"})
    c.run(T0 + 100)
    c.do(st.plug_in)
    c.run(T0 + 101)
    c.do(st.unplug)
    changes = [(s.at, s.payload["status"]) for s in c.sent("StatusNotification")][-2:]
    assert changes == [(T0 + 100, "Preparing"), (T0 + 101, "Available")]


# -- a charging session -------------------------------------------------------------------


def test_full_session_with_authorize_meter_values_and_local_stop() -> None:
    rec = Recorder()
    st, c = make(MSD0, energy_wh=1000.0, observer=rec)
    start_session(st, c, T0 + 100, "TAG1")
    c.run(T0 + 700)  # 600 s at 32 A on three phases
    c.do(st.present_tag, "TAG1")
    c.run(T0 + 720)
    c.do(st.unplug)

    assert c.payloads("Authorize") == [{"idTag": "TAG1"}]
    start = c.sent("StartTransaction")[0]
    assert start.at == T0 + 100
    assert start.payload["connectorId"] == 1 and start.payload["idTag"] == "TAG1"
    assert start.payload["meterStart"] == 1000
    tx_id = c.next_transaction_id

    values = c.sent("MeterValues")
    assert [v.at for v in values] == [T0 + 100 + 60 * k for k in range(1, 11)]
    for k, v in enumerate(values, start=1):
        assert v.payload["connectorId"] == 1 and v.payload["transactionId"] == tx_id
        (mv,) = v.payload["meterValue"]
        assert epoch(mv["timestamp"]) == v.at
        by_key = sampled(mv)
        assert set(by_key) == {
            (ENERGY, None),
            ("Current.Offered", None),
            ("Current.Import", "L1"),
            ("Current.Import", "L2"),
            ("Current.Import", "L3"),
        }
        assert by_key[(ENERGY, None)]["unit"] == "Wh"
        assert all(s["unit"] == "A" for key, s in by_key.items() if key[0] != ENERGY)
        assert all(s["context"] == "Sample.Periodic" for s in by_key.values())
        assert energy_of(mv) == 1000 + 368 * k  # 22 080 W for 60 s = 368 Wh
        assert float(by_key[("Current.Offered", None)]["value"]) == 32.0
        assert line_currents(mv) == (32.0, 32.0, 32.0)

    stop = c.sent("StopTransaction")[0]
    assert stop.at == T0 + 700
    assert stop.payload["transactionId"] == tx_id
    assert stop.payload["reason"] == "Local" and stop.payload["idTag"] == "TAG1"
    assert "transactionData" not in stop.payload  # StopTxnSampledData is empty by default
    # 32 A x 3 phases x 230 V for 600 s
    assert stop.payload["meterStop"] - start.payload["meterStart"] == 3680
    assert c.statuses(1) == ["Available", "Preparing", "Charging", "Finishing", "Available"]
    assert rec.of("transaction_started") == [(1, "TAG1")]
    assert rec.of("transaction_stopped") == [(1, "Local", 3680)]

    # A second session continues the same register.
    start_session(st, c, T0 + 800, "TAG2")
    c.run(T0 + 860)
    c.do(st.present_tag, "TAG2")
    starts, stops = c.payloads("StartTransaction"), c.payloads("StopTransaction")
    assert starts[1]["meterStart"] == stops[0]["meterStop"] == 4680
    assert stops[1]["meterStop"] == 4680 + 368
    readings: list[int] = []
    for s in c.log:
        if s.action == "StartTransaction":
            readings.append(s.payload["meterStart"])
        elif s.action == "MeterValues":
            readings.append(energy_of(s.payload["meterValue"][0]))
        elif s.action == "StopTransaction":
            readings.append(s.payload["meterStop"])
    assert readings == sorted(readings)


def test_a_different_badge_does_not_stop_the_session() -> None:
    st, c = make(MSD0)
    start_session(st, c, T0 + 10, "TAG1")
    c.do(st.present_tag, "SOMEONE-ELSE")
    assert c.sent("StopTransaction") == []
    assert st.status(1) == "Charging"


def test_unplugging_stops_with_ev_disconnected_and_ids_are_filled_in_late() -> None:
    st, c = make(MSD0)
    c.held = {"StartTransaction"}
    start_session(st, c, T0 + 100)
    assert c.pending is not None and c.pending.action == "StartTransaction"
    c.run(T0 + 230)  # two samples are queued behind the unanswered StartTransaction
    c.do(st.unplug)
    assert st.status(1) == "Available"
    c.held = set()
    c.release()
    tx_id = c.next_transaction_id
    after = [s for s in c.log if s.action in ("StartTransaction", "MeterValues", "StopTransaction")]
    assert [s.action for s in after] == [
        "StartTransaction",
        "MeterValues",
        "MeterValues",
        "StopTransaction",
    ]
    assert all(s.payload["transactionId"] == tx_id for s in after[1:])
    stop = after[-1].payload
    assert stop["reason"] == "EVDisconnected"
    assert stop["meterStop"] == int(22080 * 130 / 3600)
    assert [epoch(s.payload["meterValue"][0]["timestamp"]) for s in after[1:3]] == [
        T0 + 160,
        T0 + 220,
    ]


def test_sample_interval_and_measurands_changes_apply_at_once() -> None:
    st, c = make()
    start_session(st, c, T0 + 100)
    c.run(T0 + 200)
    assert [s.at for s in c.sent("MeterValues")] == [T0 + 160]
    assert c.call("ChangeConfiguration", {"key": "MeterValueSampleInterval", "value": "15"}) == {
        "status": "Accepted"
    }
    c.run(T0 + 260)
    times = [s.at for s in c.sent("MeterValues")][1:]
    assert T0 + 200 < times[0] <= T0 + 215
    assert all(b - a == 15 for a, b in itertools.pairwise(times))
    assert times[-1] > T0 + 245

    answer = c.call("ChangeConfiguration", {"key": "MeterValuesSampledData", "value": ENERGY})
    assert answer == {"status": "Accepted"}
    c.run(T0 + 275.1)
    last = c.sent("MeterValues")[-1]
    assert T0 + 260 < last.at <= T0 + 275
    assert set(sampled(last.payload["meterValue"][0])) == {(ENERGY, None)}


def test_stop_txn_sampled_data_is_rejected_by_default() -> None:
    _, c = make()
    answer = c.call("ChangeConfiguration", {"key": "StopTxnSampledData", "value": ENERGY})
    assert answer == {"status": "Rejected"}  # StopTxnSampledDataMaxLength is 0


def test_stop_txn_sampled_data_fills_transaction_data_when_allowed() -> None:
    st, c = make({"StopTxnSampledDataMaxLength": 5})
    value = f"{ENERGY},Current.Import.L1"
    answer = c.call("ChangeConfiguration", {"key": "StopTxnSampledData", "value": value})
    assert answer == {"status": "Accepted"}
    start_session(st, c, T0 + 100)
    c.run(T0 + 250)
    c.do(st.present_tag, "TAG1")
    stop = c.payloads("StopTransaction")[0]
    data = stop["transactionData"]
    contexts = [{s["context"] for s in mv["sampledValue"]} for mv in data]
    assert contexts == [
        {"Transaction.Begin"},
        {"Sample.Periodic"},
        {"Sample.Periodic"},
        {"Transaction.End"},
    ]
    assert [epoch(mv["timestamp"]) for mv in data] == [T0 + 100, T0 + 160, T0 + 220, T0 + 250]
    for mv in data:
        assert set(sampled(mv)) == {(ENERGY, None), ("Current.Import", "L1")}
    energies = [energy_of(mv) for mv in data]
    assert energies == sorted(energies)
    assert energies[0] == c.payloads("StartTransaction")[0]["meterStart"]
    assert energies[-1] == stop["meterStop"]


def test_start_transaction_answered_invalid_stops_with_deauthorized() -> None:
    st, c = make(MSD0)
    c.start_status["TAG1"] = "Invalid"  # Authorize said Accepted, StartTransaction does not
    start_session(st, c, T0 + 100)
    stop = c.payloads("StopTransaction")
    assert len(stop) == 1
    assert stop[0]["reason"] == "DeAuthorized"
    assert stop[0]["transactionId"] == c.next_transaction_id
    assert st.status(1) == "Finishing" and c.statuses(1)[-1] == "Finishing"


def test_start_transaction_answered_invalid_keeps_going_without_stop_on_invalid_id() -> None:
    st, c = make({"StopTransactionOnInvalidId": False})
    c.start_status["TAG1"] = "Invalid"
    start_session(st, c, T0 + 100)
    c.run(T0 + 300)
    assert c.sent("StopTransaction") == []


def test_an_invalid_badge_starts_nothing() -> None:
    st, c = make(MSD0)
    c.id_status["STOLEN"] = "Blocked"
    c.run(T0 + 10)
    c.do(st.plug_in)
    c.do(st.present_tag, "STOLEN")
    c.run(T0 + 100)
    assert c.payloads("Authorize") == [{"idTag": "STOLEN"}]
    assert c.sent("StartTransaction") == []
    assert c.statuses(1) == ["Available", "Preparing"]


def test_authorized_without_a_cable_times_out_after_connection_timeout() -> None:
    st, c = make(MSD0)
    c.run(T0 + 10)
    c.do(st.present_tag, "TAG1")
    assert st.status(1) == "Preparing"
    c.run(T0 + 69.9)
    assert st.status(1) == "Preparing"
    c.run(T0 + 70)  # ConnectionTimeOut is 60 s
    assert c.statuses(1) == ["Available", "Preparing", "Available"]
    c.run(T0 + 80)
    c.do(st.plug_in)
    assert c.sent("StartTransaction") == []


def test_a_badge_presented_before_the_cable_starts_on_plug_in() -> None:
    st, c = make(MSD0)
    c.run(T0 + 10)
    c.do(st.present_tag, "TAG1")
    c.run(T0 + 40)
    c.do(st.plug_in)
    (start,) = c.sent("StartTransaction")
    assert start.at == T0 + 40 and start.payload["idTag"] == "TAG1"
    assert c.statuses(1) == ["Available", "Preparing", "Charging"]


def test_offline_unknown_ids_start_nothing_without_allow_offline_tx_for_unknown_id() -> None:
    st, c = make({"AllowOfflineTxForUnknownId": False})
    c.link_down(T0 + 5)
    c.do(st.plug_in)
    c.do(st.present_tag, "TAG1")
    c.link_up(T0 + 100)
    assert c.sent("StartTransaction") == []
    assert st.status(1) == "Preparing"


# -- remote start / stop ------------------------------------------------------------------


def test_remote_start_authorizes_first_by_default() -> None:
    rec = Recorder()
    st, c = make(MSD0, observer=rec)
    c.run(T0 + 10)
    c.do(st.plug_in)
    answer = c.call("RemoteStartTransaction", {"connectorId": 1, "idTag": "REMOTE1"})
    assert answer == {"status": "Accepted"}
    assert rec.of("remote_start") == [(1, "REMOTE1")]
    assert c.actions(since=T0 + 10)[-3:-1] == ["Authorize", "StartTransaction"]
    assert c.payloads("Authorize") == [{"idTag": "REMOTE1"}]
    assert c.payloads("StartTransaction")[0]["idTag"] == "REMOTE1"
    assert st.status(1) == "Charging"


def test_remote_start_without_authorize_when_authorize_remote_tx_requests_is_false() -> None:
    rec = Recorder()
    st, c = make({"AuthorizeRemoteTxRequests": False}, observer=rec)
    c.run(T0 + 10)
    answer = c.call("RemoteStartTransaction", {"idTag": "REMOTE1"})  # cable not in yet
    assert answer == {"status": "Accepted"}
    assert rec.of("remote_start") == [(1, "REMOTE1")]
    c.run(T0 + 20)
    c.do(st.plug_in)
    assert "Authorize" not in c.actions()
    assert c.payloads("StartTransaction")[0]["idTag"] == "REMOTE1"


def test_remote_start_is_rejected_while_charging_or_for_another_connector() -> None:
    rec = Recorder()
    st, c = make(observer=rec)
    c.run(T0 + 10)
    c.do(st.plug_in)
    payload = {"connectorId": 2, "idTag": "REMOTE1"}
    assert c.call("RemoteStartTransaction", payload) == {"status": "Rejected"}
    start_session(st, c, T0 + 20)
    payload = {"connectorId": 1, "idTag": "REMOTE2"}
    assert c.call("RemoteStartTransaction", payload) == {"status": "Rejected"}
    assert rec.of("remote_start") == []
    assert len(c.sent("StartTransaction")) == 1


def test_remote_stop_accepts_only_the_running_transaction() -> None:
    st, c = make()
    assert c.call("RemoteStopTransaction", {"transactionId": 1}) == {"status": "Rejected"}
    start_session(st, c, T0 + 10)
    tx_id = c.next_transaction_id
    wrong = {"transactionId": tx_id + 1}
    assert c.call("RemoteStopTransaction", wrong) == {"status": "Rejected"}
    assert c.sent("StopTransaction") == []
    c.run(T0 + 70)
    assert c.call("RemoteStopTransaction", {"transactionId": tx_id}) == {"status": "Accepted"}
    (stop,) = c.payloads("StopTransaction")
    assert stop["transactionId"] == tx_id and stop["reason"] == "Remote"
    assert c.call("RemoteStopTransaction", {"transactionId": tx_id}) == {"status": "Rejected"}


# -- free charging ------------------------------------------------------------------------


def test_free_charging_uses_default_id_tag_and_ignores_invalid_answers() -> None:
    st, c = make({"AuthenticationOCPPMode": False, "MinimumStatusDuration": 0})
    c.default_status = "Invalid"  # this CSMS knows no tag at all
    c.run(T0 + 10)
    c.do(st.plug_in)  # no badge: plugging in starts a free session
    assert c.payloads("Authorize") == [{"idTag": DEFAULT_ID_TAG}]
    assert c.payloads("StartTransaction")[0]["idTag"] == DEFAULT_ID_TAG
    c.run(T0 + 130)
    assert c.sent("StopTransaction") == []  # no authentication: Invalid does not gate it
    assert st.status(1) == "Charging"
    assert len(c.sent("MeterValues")) == 2
    c.do(st.present_tag, "SOME-BADGE")  # the same badge ends the free session
    (stop,) = c.payloads("StopTransaction")
    assert stop["reason"] == "Local"


# -- the EV -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ev", "config", "currents", "energy_per_minute"),
    [
        (EvModel(max_current=16.0, phases=3), {}, (16.0, 16.0, 16.0), 184),
        (EvModel(phases=1), {}, (32.0, 0.0, 0.0), 122),  # 122.67 Wh, register in whole Wh
        (EvModel(), {"PhasesConnection": 5}, (0.0, 32.0, 0.0), 122),  # Mono2
        (EvModel(phases=1), {"PhasesConnection": 2}, (0.0, 32.0, 0.0), 122),  # Tri231
    ],
    ids=["16A-3ph", "1ph-ev", "mono2", "1ph-ev-on-tri231"],
)
def test_what_the_ev_draws_shows_in_meter_values(
    ev: EvModel,
    config: Mapping[str, str | int | bool],
    currents: tuple[float, float, float],
    energy_per_minute: int,
) -> None:
    st, c = make(config, ev=ev)
    start_session(st, c, T0 + 10)
    c.run(T0 + 70)
    (mv,) = c.sent("MeterValues")[0].payload["meterValue"]
    assert line_currents(mv) == currents
    assert float(sampled(mv)[("Current.Offered", None)]["value"]) == 32.0
    assert energy_of(mv) == energy_per_minute


def test_changing_phases_connection_moves_the_current_during_a_session() -> None:
    st, c = make()
    start_session(st, c, T0 + 10)
    c.run(T0 + 30)
    assert c.call("ChangeConfiguration", {"key": "PhasesConnection", "value": "6"}) == {
        "status": "Accepted"
    }
    c.run(T0 + 70)
    (mv,) = c.sent("MeterValues")[0].payload["meterValue"]
    assert line_currents(mv) == (0.0, 0.0, 32.0)  # Mono3
    # 20 s on three phases, then 40 s on one
    assert energy_of(mv) == int(22080 * 20 / 3600 + 7360 * 40 / 3600)


def test_ev_reaching_its_target_soc_goes_suspended_ev_and_stops_drawing() -> None:
    # 60 kWh from 20 % to 80 % at 16 A x 3 = 36 kWh in ~3.26 h; these numbers leave
    # the float SoC a hair short of the target at the computed full time.
    ev = EvModel(battery_wh=60_000.0, max_current=16.0, soc=0.2, target_soc=0.8)
    rec = Recorder()
    st, c = make(ev=ev, observer=rec)
    start_session(st, c, T0 + 10)
    full_at = T0 + 10 + 36_000 * 3600 / 11_040
    c.run(T0 + 14_000)
    assert st.status(1) == "SuspendedEV"
    assert c.statuses(1)[-2:] == ["Charging", "SuspendedEV"]
    assert rec.of("status_changed")[-1] == (1, "Charging", "SuspendedEV")
    assert ev.full
    reported = [s for s in c.sent("StatusNotification") if s.payload["status"] == "SuspendedEV"]
    assert full_at <= reported[0].at <= full_at + 10.001  # MinimumStatusDuration
    values = c.sent("MeterValues")
    after = [v.payload["meterValue"][0] for v in values if v.at > full_at]
    assert after and all(line_currents(mv) == (0.0, 0.0, 0.0) for mv in after)
    (energy,) = {energy_of(mv) for mv in after}  # flat once full ...
    assert abs(energy - 36_000) <= 1  # ... after 60 % of 60 kWh
    c.do(st.ev_resume)  # a full EV does not want more
    assert st.status(1) == "SuspendedEV"


def test_ev_suspend_and_resume() -> None:
    st, c = make(MSD0)
    start_session(st, c, T0 + 10)
    c.run(T0 + 20)
    c.do(st.ev_suspend)
    c.run(T0 + 70)
    (mv,) = c.sent("MeterValues")[0].payload["meterValue"]
    assert line_currents(mv) == (0.0, 0.0, 0.0)
    assert energy_of(mv) == int(22080 * 10 / 3600)
    c.do(st.ev_resume)
    assert c.statuses(1)[-3:] == ["Charging", "SuspendedEV", "Charging"]


def test_offer_below_six_amps_is_suspended_evse() -> None:
    st, c = make({"iMaxDeratingSwCapacity": 5, "MinimumStatusDuration": 0})
    start_session(st, c, T0 + 10)
    c.run(T0 + 70)
    assert c.statuses(1)[-1] == "SuspendedEVSE"
    (mv,) = c.sent("MeterValues")[0].payload["meterValue"]
    assert line_currents(mv) == (0.0, 0.0, 0.0)


# -- faults -------------------------------------------------------------------------------


def test_fault_is_reported_with_vendor_codes_and_stops_the_transaction() -> None:
    rec = Recorder()
    st, c = make(MSD0, observer=rec)
    start_session(st, c, T0 + 10)
    c.run(T0 + 40)
    error = lookup("0x100205")
    c.do(st.raise_fault, error)
    faulted = c.payloads("StatusNotification")[-1]
    assert faulted["connectorId"] == 1 and faulted["status"] == "Faulted"
    assert faulted["errorCode"] == "ConnectorLockFailure"
    assert faulted["vendorErrorCode"] == "0x100205"
    assert faulted["info"] == "Lock / Unlock cable Failure"
    assert faulted["vendorId"] == "Schneider Electric"
    (stop,) = c.payloads("StopTransaction")
    assert stop["meterStop"] == int(22080 * 30 / 3600)
    assert rec.of("transaction_stopped")[0][0] == 1
    c.run(T0 + 130)
    assert c.sent("MeterValues") == []  # the transaction is over
    c.do(st.present_tag, "TAG1")  # a faulted connector does not start anything
    assert c.sent("Authorize")[-1].at == T0 + 10
    c.do(st.clear_fault)
    cleared = c.payloads("StatusNotification")[-1]
    assert cleared["status"] == "Finishing"  # the cable is still in
    assert cleared["errorCode"] == "NoError" and "vendorErrorCode" not in cleared


@pytest.mark.parametrize("plugged", [False, True])
def test_clearing_a_fault_returns_to_the_previous_status(plugged: bool) -> None:
    st, c = make(MSD0)
    c.run(T0 + 10)
    if plugged:
        c.do(st.plug_in)
    before = st.status(1)
    c.do(st.raise_fault, lookup("0x200206"))  # OverVoltage
    assert c.payloads("StatusNotification")[-1]["errorCode"] == "OverVoltage"
    c.run(T0 + 20)
    c.do(st.clear_fault)
    assert c.statuses(1)[-3:] == [before, "Faulted", before]


def test_a_station_wide_fault_is_reported_on_connector_zero() -> None:
    st, c = make(MSD0)
    c.run(T0 + 10)
    c.do(st.raise_fault, lookup("0x100101"), connector_id=0)  # HighTemperature
    first, last = c.payloads("StatusNotification")[-2:]
    assert (first["connectorId"], first["status"], first["errorCode"]) == (
        0,
        "Faulted",
        "HighTemperature",
    )
    # and then connector 1, which cannot charge (tests/model/test_guide_behaviours.py)
    assert (last["connectorId"], last["status"], last["errorCode"]) == (1, "Unavailable", "NoError")
    c.do(st.clear_fault, connector_id=0)
    assert c.statuses(0) == ["Available", "Faulted", "Available"]


def test_the_no_error_row_is_not_a_fault() -> None:
    st, c = make(MSD0)
    start_session(st, c, T0 + 10)
    c.do(st.raise_fault, lookup("0x0"))
    c.run(T0 + 70)
    assert st.status(1) == "Charging"
    assert c.sent("StopTransaction") == []
    (mv,) = c.sent("MeterValues")[0].payload["meterValue"]
    assert line_currents(mv) == (32.0, 32.0, 32.0)
    c.do(st.clear_fault)
    assert st.status(1) == "Charging"


# -- offline ------------------------------------------------------------------------------


def test_transaction_messages_survive_offline_and_arrive_in_order() -> None:
    st, c = make({"disconnectedMeterValueSampleInterval": 300})
    start_session(st, c, T0 + 100)
    c.run(T0 + 190)
    assert [s.at for s in c.sent("MeterValues")] == [T0 + 160]
    # Queued but not yet sent when the link drops: not transaction messages.
    c.call("TriggerMessage", {"requestedMessage": "Heartbeat"}, flush=False)
    c.call("TriggerMessage", {"requestedMessage": "MeterValues"}, flush=False)
    before = len(c.log)
    st.disconnected(c.now)
    c.run(T0 + 1000)  # offline: samples every 300 s from the start of the session
    c.do(st.unplug)
    assert len(c.log) == before
    assert st.queued == 4
    c.link_up(T0 + 1100)
    after = c.log[before:]
    assert [s.action for s in after[:4]] == ["MeterValues"] * 3 + ["StopTransaction"]
    tx_id = c.next_transaction_id
    assert all(s.payload["transactionId"] == tx_id for s in after[:4])
    stamps = [epoch(s.payload["meterValue"][0]["timestamp"]) for s in after[:3]]
    assert stamps == [T0 + 400, T0 + 700, T0 + 1000]
    assert after[3].payload["reason"] == "EVDisconnected"
    assert "BootNotification" not in c.actions(since=T0 + 1)
    assert "Heartbeat" not in c.actions()
    assert [s.payload.get("transactionId") for s in c.sent("MeterValues")].count(None) == 0
    assert c.statuses(1)[-1] == "Available"  # re-derived after the reconnect
    c.run(T0 + 1200)
    assert len(c.sent("MeterValues")) == 4  # the one online, three offline; none since


def test_a_transaction_message_in_flight_when_the_link_drops_is_sent_again() -> None:
    st, c = make()
    start_session(st, c, T0 + 100)
    c.held = {"MeterValues"}
    c.run(T0 + 165)
    assert c.pending is not None and c.pending.at == T0 + 160
    c.pending = None
    c.held = set()
    c.link_down(T0 + 170)
    c.link_up(T0 + 200)
    resent = c.sent("MeterValues")[-1]
    assert resent.at == T0 + 200
    assert epoch(resent.payload["meterValue"][0]["timestamp"]) == T0 + 160


def test_a_status_lost_with_the_link_is_reported_after_reconnecting() -> None:
    st, c = make(MSD0)
    c.held = {"StatusNotification"}
    c.run(T0 + 10)
    c.do(st.plug_in)
    assert c.pending is not None and c.pending.payload["status"] == "Preparing"
    c.pending = None
    c.held = set()
    c.link_down(T0 + 11)
    c.link_up(T0 + 20)
    assert [(s.at, s.payload["status"]) for s in c.sent("StatusNotification")][-1] == (
        T0 + 20,
        "Preparing",
    )


def test_an_authorize_lost_with_the_link_does_not_wedge_the_reader() -> None:
    st, c = make()
    c.run(T0 + 10)
    st.present_tag("TAG1", c.now)  # Authorize queued ...
    st.disconnected(c.now)  # ... and dropped before it could be sent
    c.link_up(T0 + 20)
    c.run(T0 + 200)  # past ConnectionTimeOut of an offline authorization, if any
    c.do(st.plug_in)
    c.do(st.present_tag, "TAG2")
    assert c.payloads("Authorize")[-1] == {"idTag": "TAG2"}
    assert c.payloads("StartTransaction")[-1]["idTag"] == "TAG2"


def test_a_session_started_offline_is_delivered_after_reconnecting() -> None:
    st, c = make()
    c.link_down(T0 + 5)
    c.run(T0 + 10)
    c.do(st.plug_in)
    c.do(st.present_tag, "TAG1")  # AllowOfflineTxForUnknownId: starts locally
    assert st.status(1) == "Charging"
    c.link_up(T0 + 100)
    assert c.actions(since=T0 + 1)[0] == "StartTransaction"
    assert "BootNotification" not in c.actions(since=T0 + 1)
    start = c.payloads("StartTransaction")[0]
    assert epoch(start["timestamp"]) == T0 + 10 and start["idTag"] == "TAG1"


# -- transaction message retries ----------------------------------------------------------


def test_stop_transaction_is_retried_then_dropped_after_transaction_message_attempts() -> None:
    rec = Recorder()
    st, c = make(observer=rec)
    start_session(st, c, T0 + 10)
    c.errors["StopTransaction"] = 99
    c.run(T0 + 50)
    c.do(st.present_tag, "TAG1")
    c.run(T0 + 1000)
    assert [s.at for s in c.sent("StopTransaction")] == [T0 + 50, T0 + 60]  # 2 attempts, 10 s
    assert st.dropped_messages == 1
    assert rec.of("message_dropped") == [("StopTransaction",)]  # counted, never silent
    assert st.queued == 0


def test_retries_wait_the_interval_times_the_attempts_so_far() -> None:
    st, c = make({"TransactionMessageAttempts": 3, "TransactionMessageRetryInterval": 10})
    start_session(st, c, T0 + 10)
    c.errors["StopTransaction"] = 2
    c.run(T0 + 50)
    c.do(st.present_tag, "TAG1")
    c.run(T0 + 1000)
    assert [s.at for s in c.sent("StopTransaction")] == [T0 + 50, T0 + 60, T0 + 80]
    assert st.dropped_messages == 0


# -- CALLs from the CSMS ------------------------------------------------------------------


def test_get_and_change_configuration() -> None:
    _, c = make(heartbeat=100)
    answer = c.call("GetConfiguration", {"key": ["HeartbeatInterval", "NoSuchKey"]})
    assert answer == {
        "configurationKey": [{"key": "HeartbeatInterval", "readonly": False, "value": "100"}],
        "unknownKey": ["NoSuchKey"],
    }
    everything = c.call("GetConfiguration", {})
    assert len(everything["configurationKey"]) > 50
    change = {"key": "HeartbeatInterval", "value": "30"}
    assert c.call("ChangeConfiguration", change) == {"status": "Accepted"}
    c.run(T0 + 100)
    assert [s.at for s in c.sent("Heartbeat")] == [T0 + 30, T0 + 60, T0 + 90]
    readonly = {"key": "NumberOfConnectors", "value": "2"}
    assert c.call("ChangeConfiguration", readonly) == {"status": "Rejected"}
    unknown = {"key": "NoSuchKey", "value": "1"}
    assert c.call("ChangeConfiguration", unknown) == {"status": "NotSupported"}


def test_too_many_keys_is_an_occurence_constraint_violation() -> None:
    _, c = make()
    keys = [f"Key{i}" for i in range(101)]  # GetConfigurationMaxKeys is 100
    with pytest.raises(OcppError) as info:
        c.call("GetConfiguration", {"key": keys})
    assert info.value.code == errors.OCCURENCE_CONSTRAINT_VIOLATION


def test_every_operation_of_the_guide_is_answered() -> None:
    """Both operation tables of the guide: nothing answers NotImplemented."""
    from fleet.model.station import _HANDLERS, CSMS_ACTIONS

    assert set(_HANDLERS) == CSMS_ACTIONS
    st, c = make()
    with pytest.raises(OcppError) as info:
        st.handle_call("NoSuchAction", {}, c.now)
    assert info.value.code == errors.NOT_IMPLEMENTED


def test_trigger_message_status_notification() -> None:
    _, c = make()
    c.run(T0 + 100)
    payload = {"requestedMessage": "StatusNotification", "connectorId": 1}
    assert c.call("TriggerMessage", payload) == {"status": "Accepted"}
    last = c.sent("StatusNotification")[-1]
    assert (last.at, last.payload["connectorId"], last.payload["status"]) == (
        T0 + 100,
        1,
        "Available",
    )
