"""Connector statuses, StatusNotification, and vendor errors (faults).

A connector's status is derived from its facts (``Connector.derive``); a change is
reported once ``MinimumStatusDuration`` has passed, and only while the station is
online and accepted (a reconnect or an accepted boot reports the current status).
"""

from __future__ import annotations

from typing import cast

from fleet.model import faults
from fleet.model.connector import (
    AVAILABLE,
    CHARGING,
    FINISHING,
    PREPARING,
    RESERVED,
    SUSPENDED_EV,
    SUSPENDED_EVSE,
    UNAVAILABLE,
    Connector,
    Fault,
)
from fleet.model.faults import VendorError
from fleet.model.messages import (
    ChargePointErrorCode,
    ChargePointStatus,
    Reason,
    StatusNotificationRequest,
)
from fleet.model.port import StationPort
from fleet.model.records import VENDOR_ID, iso8601

# OCPP 1.6's transition table (section 4.9) has no cell for these, although the facts
# can make them happen (a cable pulled out of a reserved connector, a ChangeAvailability
# while a driver is preparing, a badge or a remote start while Finishing). The connector
# passes through a status the table allows both into and out of (Finishing -> Preparing
# is F2, a new session with the cable still in); with MinimumStatusDuration > 0 the CSMS
# never sees it.
_VIA = {
    (PREPARING, UNAVAILABLE): AVAILABLE,
    (PREPARING, RESERVED): AVAILABLE,
    (FINISHING, RESERVED): AVAILABLE,
    (FINISHING, CHARGING): PREPARING,
    (FINISHING, SUSPENDED_EV): PREPARING,
    (FINISHING, SUSPENDED_EVSE): PREPARING,
}

LOCAL_LIST_CONFLICT = faults.lookup("0x30000E")


def update_status(st: StationPort, connector_id: int, now: float) -> None:
    conn = st.connectors[connector_id]
    new = conn.derive(unit_faulted=st.connectors[0].faulted)
    via = _VIA.get((conn.status, new))
    if via is not None:
        _set_status(st, conn, via, now)
        queue_due_statuses(st, now)  # reported at once when MinimumStatusDuration is 0
    _set_status(st, conn, new, now)


def _set_status(st: StationPort, conn: Connector, status: str, now: float) -> None:
    change = conn.set_status(status, now)
    if change is not None:
        st.observer.status_changed(conn.connector_id, change[0], change[1])


def queue_due_statuses(st: StationPort, now: float) -> None:
    if not st.online or st.boot_status != "Accepted":
        return
    msd = st.minimum_status_duration
    for conn in st.connectors:
        due = conn.report_due(msd)
        if due is not None and now >= due:
            conn.reported = conn.status
            st.send("StatusNotification", status_payload(conn, now))


def next_report(st: StationPort) -> float | None:
    """When a status change is next due to be reported."""
    msd = st.minimum_status_duration
    dues = [d for d in (conn.report_due(msd) for conn in st.connectors) if d is not None]
    return min(dues) if dues else None


def report_all_again(st: StationPort, now: float) -> None:
    """Report every connector's status again, at once (an accepted boot, a reboot)."""
    for conn in st.connectors:
        conn.reported = None
        conn.changed_at = now - st.minimum_status_duration


def _ocpp(error_code: str) -> ChargePointErrorCode:
    """Error codes come from the guide's catalogue (fleet.model.faults), whose tests
    check each is one of OCPP's."""
    return cast(ChargePointErrorCode, error_code)


def status_payload(conn: Connector, now: float) -> StatusNotificationRequest:
    fault = conn.fault
    payload: StatusNotificationRequest = {
        "connectorId": conn.connector_id,
        "errorCode": _ocpp(fault.error_code) if fault is not None else "NoError",
        # Connector.derive() yields only OCPP's statuses (fleet.model.connector.STATUSES).
        "status": cast(ChargePointStatus, conn.status),
        "timestamp": iso8601(now),
    }
    if fault is not None:
        if fault.info:
            payload["info"] = fault.info
        if fault.vendor_error_code:
            payload["vendorId"] = VENDOR_ID
            payload["vendorErrorCode"] = fault.vendor_error_code
    return payload


def raise_fault(st: StationPort, error: VendorError, now: float, connector_id: int) -> None:
    """A vendor error becomes active, as its catalogue row says (fleet.model.faults).

    A detection the guide ships disabled is ignored unless ``enabled_faults`` has it.
    A faulting error makes the connector Faulted and stops a running transaction with
    the row's stop reason (on connector 0, connector 1 goes Unavailable with it). Any
    other is reported in a StatusNotification with the status unchanged, and charging
    goes on; while a faulting error is active on the connector it is only reported
    (once), the fault stays.
    """
    if error.vendor_code in faults.DISABLED_BY_DEFAULT and error.vendor_code not in (
        st.enabled_faults
    ):
        return  # the guide: "This function is disabled by default" (faults.enable)
    st.integrate(now)
    conn = st.connectors[connector_id]
    behaviour = error.behaviour
    faulting = behaviour.faults and error.is_error
    if conn.faulted and not faulting:
        _report_error(st, conn, error, now)
        return
    conn.fault = Fault(error.ocpp_code, error.info, error.vendor_code, faulting)
    tx = st.transaction
    if tx is not None and tx.stop_reason is None and conn.faulted:
        # The catalogue's stop reasons are OCPP's (tests/model/test_fault_catalogue.py).
        st.stop_transaction(cast(Reason, behaviour.stop_reason or "Other"), now)
    if conn.faulted:
        # 5.13: a reservation ends when the Charge Point or its connector faults.
        st.set_reservation(None, now)
    st.recompute_draw(now)
    _update_status_reporting(st, connector_id, now)


def clear_fault(st: StationPort, now: float, connector_id: int) -> None:
    """The active error on a connector is gone: a StatusNotification with errorCode
    NoError reports the recovery, also when the status does not change."""
    st.integrate(now)
    conn = st.connectors[connector_id]
    if conn.fault is None:
        return
    conn.fault = None
    if connector_id == 0:
        _unit_fault_cleared(st)
    st.recompute_draw(now)
    _update_status_reporting(st, connector_id, now)


def clear_latched_faults(st: StationPort) -> None:
    """A power cycle: the errors latched until one (faults.POWER_CYCLE, whose self-test
    runs at power-up) are gone; the caller re-derives and reports the statuses."""
    for conn in st.connectors:
        fault = conn.fault
        error = faults.BY_VENDOR_CODE.get(fault.vendor_error_code) if fault is not None else None
        if error is not None and error.behaviour.clears == faults.POWER_CYCLE:
            conn.fault = None
            if conn.connector_id == 0:
                _unit_fault_cleared(st)


def _unit_fault_cleared(st: StationPort) -> None:
    """Connector 0's fault is gone, so connector 1 leaves Unavailable. A session that
    ended while it was is over: OCPP 1.6 4.9 has no Unavailable -> Finishing, so a cable
    still in goes Preparing (as after ChangeAvailability Operative)."""
    c1 = st.connectors[1]
    if c1.status == UNAVAILABLE:
        c1.finishing = False


def _update_status_reporting(st: StationPort, connector_id: int, now: float) -> None:
    """Re-derive the status; if it stays the same, report it again anyway, as the
    error it carries changed (still subject to MinimumStatusDuration)."""
    conn = st.connectors[connector_id]
    before = conn.status
    update_status(st, connector_id, now)
    if conn.status == before:
        conn.reported = None


def _error_payload(conn: Connector, error: VendorError, now: float) -> StatusNotificationRequest:
    """The connector's status, carrying ``error`` (whatever fault the connector has)."""
    payload = status_payload(conn, now)
    payload["errorCode"] = _ocpp(error.ocpp_code)
    payload["info"] = error.info
    payload["vendorId"] = VENDOR_ID
    payload["vendorErrorCode"] = error.vendor_code
    return payload


def _report_error(st: StationPort, conn: Connector, error: VendorError, now: float) -> None:
    """A one-off StatusNotification carrying ``error`` and the unchanged status."""
    if not st.online or st.boot_status != "Accepted":
        return
    st.send("StatusNotification", _error_payload(conn, error, now))


def report_local_list_conflict(st: StationPort, now: float) -> None:
    """The CSMS's idTagInfo contradicts the Local Authorization List: a StatusNotification
    on connector 0 carrying the guide's LocalListConflict error (0x30000E) and the
    connector's unchanged status."""
    st.send("StatusNotification", _error_payload(st.connectors[0], LOCAL_LIST_CONFLICT, now))
