"""The connector's OCPP 1.6 status, derived from what is physically true.

Rather than a table of transitions to keep in sync with every event, the status is
a function of a few facts (cable plugged, fault active, transaction running, ...),
evaluated after each event. The priority order below is OCPP 1.6's (section 4.9 and
the ChargePointStatus definitions): a fault hides everything, an inoperative
connector is Unavailable once no transaction runs, and so on. A test checks that
every change this produces is one of the transitions OCPP 1.6 allows.

Reporting honours ``MinimumStatusDuration``: a status is sent only once it has held
for that long, so a blip that reverts in time is never reported.
"""

from __future__ import annotations

from dataclasses import dataclass

AVAILABLE = "Available"
PREPARING = "Preparing"
CHARGING = "Charging"
SUSPENDED_EV = "SuspendedEV"
SUSPENDED_EVSE = "SuspendedEVSE"
FINISHING = "Finishing"
RESERVED = "Reserved"
UNAVAILABLE = "Unavailable"
FAULTED = "Faulted"

NO_ERROR = "NoError"

STATUSES = (
    AVAILABLE,
    PREPARING,
    CHARGING,
    SUSPENDED_EV,
    SUSPENDED_EVSE,
    FINISHING,
    RESERVED,
    UNAVAILABLE,
    FAULTED,
)


@dataclass(slots=True)
class Fault:
    """An active error as a StatusNotification reports it."""

    error_code: str
    info: str = ""
    vendor_error_code: str = ""
    # False for an error reported with the status unchanged (fleet.model.faults.Behaviour).
    faulting: bool = True


class Connector:
    """One connector (or connector 0, the station as a whole)."""

    __slots__ = (
        "authorized",
        "changed_at",
        "connector_id",
        "ev_suspended",
        "evse_suspended",
        "fault",
        "finishing",
        "in_transaction",
        "operative",
        "plugged",
        "reported",
        "reserved",
        "status",
    )

    def __init__(self, connector_id: int, now: float) -> None:
        self.connector_id = connector_id
        self.plugged = False
        self.authorized = False
        self.in_transaction = False
        self.ev_suspended = False
        self.evse_suspended = False
        self.finishing = False
        self.reserved = False
        self.operative = True
        self.fault: Fault | None = None
        self.status = AVAILABLE
        self.reported: str | None = None
        self.changed_at = now

    @property
    def faulted(self) -> bool:
        """Whether an active error makes the connector Faulted.

        The guide's ``NoError`` row (0x0) is a report, not a fault: it rides along in
        StatusNotification without taking the connector out of service; so do the errors
        the catalogue reports with the status unchanged (``faulting`` False).
        """
        fault = self.fault
        return fault is not None and fault.faulting and fault.error_code != NO_ERROR

    def derive(self, unit_faulted: bool = False) -> str:
        """The status the facts imply. ``unit_faulted``: connector 0 (the whole unit) is
        Faulted, so this connector cannot charge; it is Unavailable rather than Faulted,
        the error being connector 0's."""
        if self.faulted:
            return FAULTED
        if self.connector_id == 0:
            return AVAILABLE if self.operative else UNAVAILABLE
        if self.in_transaction:
            if self.evse_suspended:
                return SUSPENDED_EVSE
            if self.ev_suspended:
                return SUSPENDED_EV
            return CHARGING
        if not self.operative or unit_faulted:
            return UNAVAILABLE
        if self.plugged:
            return FINISHING if self.finishing else PREPARING
        if self.authorized:
            return PREPARING
        if self.reserved:
            return RESERVED
        return AVAILABLE

    def update(self, now: float) -> tuple[str, str] | None:
        """Re-derive the status; return (old, new) if it changed."""
        return self.set_status(self.derive(), now)

    def set_status(self, new: str, now: float) -> tuple[str, str] | None:
        """Take ``new`` as the status (the station uses it for a passing status, see
        ``Station._update_status``); return (old, new) if it changed."""
        old = self.status
        if new == old:
            return None
        self.status = new
        self.changed_at = now
        return old, new

    def report_due(self, minimum_duration: float) -> float | None:
        """When the current status may be reported, or None if nothing is to report."""
        if self.status == self.reported:
            return None
        return self.changed_at + minimum_duration
