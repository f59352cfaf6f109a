"""The Reservation profile: ReserveNow, CancelReservation, and expiry (OCPP 1.6 5.13).

The station holds at most one reservation (one connector); a transaction started by
an idTag it admits consumes it (features/transaction.py), and it ends when the
connector becomes Unavailable or Faulted, or at its expiryDate.
"""

from __future__ import annotations

from fleet.model.messages import (
    CancelReservationRequest,
    CancelReservationResponse,
    ReserveNowRequest,
    ReserveNowResponse,
)
from fleet.model.port import StationPort, handler
from fleet.model.reservation import Reservation
from fleet.protocol import errors
from fleet.protocol.errors import OcppError


def set_reservation(st: StationPort, reservation: Reservation | None, now: float) -> None:
    st.reservation = reservation
    st.connectors[1].reserved = reservation is not None
    st.update_status(1, now)


def advance(st: StationPort, now: float) -> None:
    if st.reservation is not None and st.reservation.expired(now):
        # 5.13: the reservation ends, the connector is available again (and says so).
        set_reservation(st, None, now)


def next_wakeup(st: StationPort) -> float | None:
    return st.reservation.expiry if st.reservation is not None else None


def on_reserve_now(st: StationPort, payload: ReserveNowRequest, now: float) -> ReserveNowResponse:
    """5.13, checked in this order: an unknown connector, or connector 0 without
    ``ReserveConnectorZeroSupported``, or an expiryDate already past: Rejected. Then
    Faulted (the connector asked for; connector 1 is Unavailable while connector 0 is
    Faulted), Unavailable, and Occupied (a transaction, a cable, an authorized driver
    waiting, or another reservation: one connector holds one). The same
    reservationId replaces its reservation."""
    cid = payload["connectorId"]
    if cid not in (0, 1) or (cid == 0 and not st.config.get_bool("ReserveConnectorZeroSupported")):
        return {"status": "Rejected"}
    try:
        reservation = Reservation.parse(payload)
    except ValueError:
        raise OcppError(
            errors.PROPERTY_CONSTRAINT_VIOLATION, "expiryDate is not a date and time"
        ) from None
    if reservation.expired(now):
        return {"status": "Rejected"}
    c0, c1 = st.connectors
    if c1.faulted or (cid == 0 and c0.faulted):
        return {"status": "Faulted"}
    # Connector 0 Faulted is the whole unit out of order: connector 1 is Unavailable.
    if not c0.operative or not c1.operative or c0.faulted:
        return {"status": "Unavailable"}
    current = st.reservation
    if (
        st.transaction is not None
        or c1.plugged
        or c1.authorized
        or st.driver.authorizing is not None
        or (current is not None and current.reservation_id != reservation.reservation_id)
    ):
        return {"status": "Occupied"}
    set_reservation(st, reservation, now)
    return {"status": "Accepted"}


def on_cancel_reservation(
    st: StationPort, payload: CancelReservationRequest, now: float
) -> CancelReservationResponse:
    current = st.reservation
    if current is None or current.reservation_id != payload["reservationId"]:
        return {"status": "Rejected"}
    set_reservation(st, None, now)
    return {"status": "Accepted"}


HANDLERS = {
    "ReserveNow": handler(on_reserve_now),
    "CancelReservation": handler(on_cancel_reservation),
}
