"""Reservations (OCPP 1.6 sections 5.1 CancelReservation and 5.13 ReserveNow), sans-I/O.

The Charge Pro has one connector, so it holds at most one reservation: one on
connector 1, or one on connector 0 (``ReserveConnectorZeroSupported`` is True), which
must keep "one connector available for the reserved idTag" and so, with a single
connector, reserves connector 1 just the same; only the ``connectorId`` reported back
differs. The station decides the ReserveNow status (it knows the connector); this
module holds what a reservation is and whom it admits.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fleet.model.auth import parse_time

__all__ = ["Reservation"]


@dataclass(frozen=True, slots=True)
class Reservation:
    """One accepted ReserveNow.req."""

    reservation_id: int
    connector_id: int
    id_tag: str
    expiry: float
    parent_id_tag: str | None = None

    @classmethod
    def parse(cls, payload: Mapping[str, Any]) -> Reservation:
        """From a ReserveNow.req; raises ValueError for an unreadable ``expiryDate``."""
        return cls(
            int(payload["reservationId"]),
            int(payload["connectorId"]),
            str(payload["idTag"]),
            parse_time(str(payload["expiryDate"])),
            payload.get("parentIdTag"),
        )

    def admits(self, id_tag: str, parent_id_tag: str | None) -> bool:
        """5.13: charging is refused "for all incoming idTags on the reserved connector,
        except when the incoming idTag or the parent idTag match the idTag or parent
        idTag of the reservation" (idTags compare case-insensitively)."""
        mine = {self.id_tag.casefold()}
        if self.parent_id_tag:
            mine.add(self.parent_id_tag.casefold())
        if id_tag.casefold() in mine:
            return True
        return parent_id_tag is not None and parent_id_tag.casefold() in mine

    def expired(self, now: float) -> bool:
        return now >= self.expiry
