"""Connector statuses against OCPP 1.6's status transition table (section 4.9).

The property test drives a whole Station with random hardware and OCPP events and
checks every status change it makes, and every StatusNotification it sends, against
the table written out below cell by cell.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fleet.model.config import ConfigStore
from fleet.model.connector import (
    AVAILABLE,
    CHARGING,
    FAULTED,
    FINISHING,
    PREPARING,
    STATUSES,
    SUSPENDED_EV,
    SUSPENDED_EVSE,
    UNAVAILABLE,
    Connector,
    Fault,
)
from fleet.model.faults import DISABLED_BY_DEFAULT, VENDOR_ERRORS
from fleet.model.meter import EvModel
from fleet.model.records import NullObserver, Reboot
from fleet.model.station import Station
from fleet.protocol.schemas import validate

T0 = 1_700_000_000.0

# OCPP 1.6 edition 2, section 4.9, the StatusNotification transition table: for each
# "from" status (row), the statuses it may go to (columns), with the spec's cell labels.
# A blank cell is a forbidden transition.
ALLOWED: dict[str, set[str]] = {
    # A2 Preparing, A3 Charging, A4 SuspendedEV, A5 SuspendedEVSE, A7 Reserved,
    # A8 Unavailable, A9 Faulted
    "Available": {
        "Preparing",
        "Charging",
        "SuspendedEV",
        "SuspendedEVSE",
        "Reserved",
        "Unavailable",
        "Faulted",
    },
    # B1 Available, B3 Charging, B4 SuspendedEV, B5 SuspendedEVSE, B6 Finishing, B9 Faulted
    "Preparing": {
        "Available",
        "Charging",
        "SuspendedEV",
        "SuspendedEVSE",
        "Finishing",
        "Faulted",
    },
    # C1 Available, C4 SuspendedEV, C5 SuspendedEVSE, C6 Finishing, C8 Unavailable, C9 Faulted
    "Charging": {
        "Available",
        "SuspendedEV",
        "SuspendedEVSE",
        "Finishing",
        "Unavailable",
        "Faulted",
    },
    # D1 Available, D3 Charging, D5 SuspendedEVSE, D6 Finishing, D8 Unavailable, D9 Faulted
    "SuspendedEV": {
        "Available",
        "Charging",
        "SuspendedEVSE",
        "Finishing",
        "Unavailable",
        "Faulted",
    },
    # E1 Available, E3 Charging, E4 SuspendedEV, E6 Finishing, E8 Unavailable, E9 Faulted
    "SuspendedEVSE": {
        "Available",
        "Charging",
        "SuspendedEV",
        "Finishing",
        "Unavailable",
        "Faulted",
    },
    # F1 Available, F2 Preparing, F8 Unavailable, F9 Faulted
    "Finishing": {"Available", "Preparing", "Unavailable", "Faulted"},
    # G1 Available, G2 Preparing, G8 Unavailable, G9 Faulted
    "Reserved": {"Available", "Preparing", "Unavailable", "Faulted"},
    # H1 Available, H2 Preparing, H3 Charging, H4 SuspendedEV, H5 SuspendedEVSE, H9 Faulted
    "Unavailable": {
        "Available",
        "Preparing",
        "Charging",
        "SuspendedEV",
        "SuspendedEVSE",
        "Faulted",
    },
    # I1 .. I8: back to any status (the one before the fault)
    "Faulted": {
        "Available",
        "Preparing",
        "Charging",
        "SuspendedEV",
        "SuspendedEVSE",
        "Finishing",
        "Reserved",
        "Unavailable",
    },
}
# The status of connector 0 (the Charge Point as a whole) is a subset.
CONNECTOR_ZERO = {"Available", "Unavailable", "Faulted"}


def test_the_table_is_the_specs() -> None:
    assert set(ALLOWED) == set(STATUSES)
    assert sum(len(targets) for targets in ALLOWED.values()) == 53
    assert all(status not in targets for status, targets in ALLOWED.items())


# -- Connector on its own -----------------------------------------------------------------


def test_a_fault_hides_everything_else() -> None:
    c = Connector(1, T0)
    c.plugged = True
    c.in_transaction = True
    c.fault = Fault("OverVoltage", "OverVoltage", "0x200206")
    assert c.derive() == FAULTED
    c.fault = None
    assert c.derive() == CHARGING


def test_derived_statuses_of_connector_one() -> None:
    c = Connector(1, T0)
    assert c.derive() == AVAILABLE
    c.authorized = True
    assert c.derive() == PREPARING
    c.authorized = False
    c.plugged = True
    assert c.derive() == PREPARING
    c.in_transaction = True
    assert c.derive() == CHARGING
    c.ev_suspended = True
    assert c.derive() == SUSPENDED_EV
    c.evse_suspended = True
    assert c.derive() == SUSPENDED_EVSE  # the EVSE not offering wins over the EV
    c.in_transaction = False
    c.finishing = True
    assert c.derive() == FINISHING
    c.plugged = False
    c.finishing = False
    c.operative = False
    assert c.derive() == UNAVAILABLE


def test_connector_zero_is_available_unavailable_or_faulted() -> None:
    c = Connector(0, T0)
    c.plugged = True
    c.in_transaction = True
    assert c.derive() == AVAILABLE
    c.operative = False
    assert c.derive() == UNAVAILABLE
    c.fault = Fault("HighTemperature")
    assert c.derive() == FAULTED


def test_the_no_error_row_does_not_fault_a_connector() -> None:
    c = Connector(1, T0)
    c.fault = Fault("NoError", "NoError", "0x0")
    assert c.derive() == AVAILABLE


def test_update_and_report_due() -> None:
    c = Connector(1, T0)
    c.reported = AVAILABLE
    assert c.update(T0 + 1) is None
    assert c.report_due(10) is None
    c.plugged = True
    assert c.update(T0 + 5) == (AVAILABLE, PREPARING)
    assert c.report_due(10) == T0 + 15
    c.plugged = False
    assert c.update(T0 + 7) == (PREPARING, AVAILABLE)
    assert c.report_due(10) is None  # back to what the CSMS knows


# -- a Station driven at random -----------------------------------------------------------


class Watcher(NullObserver):
    """Observer that checks every status change as it happens."""

    def __init__(self) -> None:
        self.changes: list[tuple[int, str, str]] = []

    def status_changed(self, connector_id: int, old: str, new: str) -> None:
        self.changes.append((connector_id, old, new))
        if connector_id == 0:
            assert new in CONNECTOR_ZERO, f"connector 0 went {old} -> {new}"
        else:
            assert new in ALLOWED[old], f"connector {connector_id} went {old} -> {new}"


class Driver:
    """A CSMS that answers at once, and the fake clock."""

    def __init__(self, station: Station) -> None:
        self.st = station
        self.now = T0
        self.status = "Accepted"  # Authorize / StartTransaction answers
        self.fail_next: set[str] = set()  # actions whose next CALL gets a CALLERROR
        self.transaction_id = 0
        self.reported: dict[int, str | None] = {0: None, 1: None}

    def flush(self) -> None:
        for _ in range(1000):
            msg = self.st.next_message(self.now)
            if msg is None:
                return
            validate(msg.action, msg.payload, response=False)
            if msg.action == "StatusNotification":
                self._check_report(msg.payload)
            if msg.action in self.fail_next:
                self.fail_next.discard(msg.action)
                self.st.on_failure(False, self.now)
                continue
            reply = self._reply(msg.action)
            validate(msg.action, reply, response=True)
            self.st.on_answer(reply, self.now)
        raise AssertionError("the station never stops sending")

    def _check_report(self, payload: dict[str, Any]) -> None:
        cid, new = payload["connectorId"], payload["status"]
        if cid == 0:
            assert new in CONNECTOR_ZERO
        old = self.reported[cid]
        if cid == 1 and old is not None and old != new:
            # MinimumStatusDuration is 0 and the link stayed up: nothing was skipped.
            assert new in ALLOWED[old], f"reported {old} -> {new}"
        self.reported[cid] = new
        if new == FAULTED:
            assert payload["errorCode"] != "NoError"

    def _reply(self, action: str) -> dict[str, Any]:
        stamp = "2024-01-01T00:00:00Z"
        if action == "BootNotification":
            return {"status": "Accepted", "currentTime": stamp, "interval": 300}
        if action == "Authorize":
            return {"idTagInfo": {"status": self.status}}
        if action == "StartTransaction":
            self.transaction_id += 1
            return {"transactionId": self.transaction_id, "idTagInfo": {"status": self.status}}
        if action == "Heartbeat":
            return {"currentTime": stamp}
        return {}

    def call(self, action: str, payload: dict[str, Any]) -> None:
        validate(action, payload, response=False)
        validate(action, self.st.handle_call(action, payload, self.now), response=True)

    def wait(self, seconds: float) -> None:
        until = self.now + seconds
        self.flush()
        for _ in range(10_000):
            wake = self.st.next_wakeup()
            if wake is None or wake > until:
                break
            self.now = max(self.now, wake)
            self.st.advance(self.now)
            self.flush()
        else:
            raise AssertionError("next_wakeup() does not move on")
        self.now = until
        self.st.advance(self.now)
        self.flush()

    def apply(self, event: tuple[Any, ...]) -> None:
        st, now, kind = self.st, self.now, event[0]
        if kind == "wait":
            self.wait(event[1])
        elif kind == "plug_in":
            st.plug_in(now)
        elif kind == "unplug":
            st.unplug(now)
        elif kind == "tag":
            st.present_tag(event[1], now)
        elif kind == "ev_suspend":
            st.ev_suspend(now)
        elif kind == "ev_resume":
            st.ev_resume(now)
        elif kind == "fault":
            st.raise_fault(event[1], now, event[2])
        elif kind == "clear":
            st.clear_fault(now, event[1])
        elif kind == "remote_start":
            payload: dict[str, Any] = {"idTag": event[1]}
            if event[2] is not None:
                payload["connectorId"] = event[2]
            self.call("RemoteStartTransaction", payload)
        elif kind == "remote_stop":
            tx = st.transaction
            running = tx.transaction_id if tx is not None else None
            self.call("RemoteStopTransaction", {"transactionId": running or 12345})
        elif kind == "link_down":
            st.disconnected(now)
        elif kind == "link_up":
            if not st.online:
                st.connected(now)
                self.reported = {0: None, 1: None}  # offline changes are not replayed
        elif kind == "answers":
            self.status = event[1]
        elif kind == "callerror":
            self.fail_next.add(event[1])
        elif kind == "config":
            self.call("ChangeConfiguration", {"key": event[1], "value": event[2]})
        elif kind == "availability":
            self.call("ChangeAvailability", {"connectorId": event[1], "type": event[2]})
        elif kind == "reserve":
            expiry = datetime.fromtimestamp(now + event[2], UTC).isoformat()
            payload = {"connectorId": event[1], "expiryDate": expiry, "idTag": "A"}
            self.call("ReserveNow", {**payload, "reservationId": 1})
        elif kind == "cancel_reservation":
            self.call("CancelReservation", {"reservationId": 1})
        elif kind == "unlock":
            self.call("UnlockConnector", {"connectorId": 1})
        elif kind == "reset":
            self.call("Reset", {"type": event[1]})
        elif kind == "power_cut":
            st.power_lost(event[1], now)
        self._effects()
        self.flush()

    def _effects(self) -> None:
        """Reboot as the engine does (no sockets): offline, dark for a while, back."""
        st = self.st
        while st.effects:
            effect = st.effects.popleft()
            if isinstance(effect, Reboot):
                if st.online:
                    st.disconnected(self.now)
                self.now += effect.seconds
                st.advance(self.now)
                st.rebooted(self.now)
                st.connected(self.now)
                self.reported = {0: None, 1: None}


CONFIG_CHANGES = [
    ("AuthorizeRemoteTxRequests", "True"),
    ("AuthorizeRemoteTxRequests", "False"),
    ("AuthenticationOCPPMode", "True"),
    ("AuthenticationOCPPMode", "False"),
    ("StopTransactionOnInvalidId", "True"),
    ("StopTransactionOnInvalidId", "False"),
    ("AllowOfflineTxForUnknownId", "False"),
    ("MeterValueSampleInterval", "0"),
    ("MeterValueSampleInterval", "30"),
    ("PhasesConnection", "4"),
    ("PhasesConnection", "8"),
    ("ConnectionTimeOut", "0"),
    ("ConnectionTimeOut", "20"),
]

# Weighted so that sessions actually happen: a cable and a badge are common, a fault rare.
COMMON_EVENTS: list[tuple[Any, ...]] = [
    *[("plug_in",)] * 4,
    *[("unplug",)] * 2,
    *[("tag", "A")] * 4,
    ("tag", "B"),
    *[("wait", 5.0)] * 2,
    *[("wait", 61.0)] * 3,
    ("wait", 1.0),
    ("wait", 400.0),
    ("wait", 3000.0),
    ("ev_suspend",),
    *[("ev_resume",)] * 2,
    ("remote_start", "R", None),
    ("remote_start", "A", 1),
    ("remote_start", "R", 2),
    *[("remote_stop",)] * 2,
    ("link_down",),
    *[("link_up",)] * 2,
    *[("answers", status) for status in ("Accepted", "Accepted", "Invalid", "Blocked")],
    *[("callerror", a) for a in ("Authorize", "StartTransaction", "StopTransaction")],
    ("callerror", "MeterValues"),
    *[("config", key, value) for key, value in CONFIG_CHANGES],
    *[("availability", cid, kind) for cid in (0, 1) for kind in ("Inoperative", "Operative")],
    ("availability", 1, "Operative"),
    *[("reserve", cid, expiry) for cid in (0, 1) for expiry in (30.0, 900.0)],
    ("cancel_reservation",),
    ("unlock",),
    ("reset", "Soft"),
    ("reset", "Hard"),
    ("power_cut", 30.0),
    *[("clear", 0), ("clear", 1)] * 3,
]
FAULTS = st.tuples(st.just("fault"), st.sampled_from(VENDOR_ERRORS), st.sampled_from([0, 1, 1]))
EVENTS = st.integers(0, 24).flatmap(lambda i: FAULTS if i == 0 else st.sampled_from(COMMON_EVENTS))

EVS = st.builds(
    EvModel,
    battery_wh=st.sampled_from([300.0, 60_000.0]),  # a small one fills up within the run
    max_current=st.sampled_from([6.0, 16.0, 32.0]),
    phases=st.sampled_from([1, 3]),
    soc=st.sampled_from([0.0, 0.5, 0.95]),
    target_soc=st.sampled_from([0.8, 1.0]),
)


@settings(
    max_examples=250,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    events=st.lists(EVENTS, min_size=20, max_size=80),
    ev=EVS,
    max_current=st.sampled_from([32, 5]),  # 5 A: the EVSE cannot offer enough
    booted=st.sampled_from([True, True, True, False]),
)
def test_random_events_only_make_changes_the_table_allows(
    events: list[tuple[Any, ...]], ev: EvModel, max_current: int, booted: bool
) -> None:
    watcher = Watcher()
    config = ConfigStore({"MinimumStatusDuration": 0, "iMaxDeratingSwCapacity": max_current})
    station = Station("CP-PROP-1", T0, config=config, ev=ev, observer=watcher)
    station.enabled_faults = DISABLED_BY_DEFAULT  # every row of the catalogue may happen
    driver = Driver(station)
    if booted:
        station.connected(T0)
        driver.flush()
    for event in events:
        driver.apply(event)
    driver.apply(("link_up",))
    driver.wait(60.0)
    assert station.status(0) in CONNECTOR_ZERO
    assert station.next_message(driver.now) is None
