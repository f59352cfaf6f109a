"""Records the station and its feature modules share: a transaction, the driver in
front of the reader, what BootNotification says, the effects the model asks of the
engine, and the observer. Data only, no behaviour, so every module may import it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

from fleet.model.messages import MeterValue

JsonDict = dict[str, Any]

VENDOR_ID = "Schneider Electric"


def as_json(payload: Mapping[str, Any]) -> JsonDict:
    """A typed message (fleet.model.messages) where plain JSON is taken: the same
    object, for the data modules that parse JSON themselves (profiles, local lists)."""
    return cast(JsonDict, payload)


_SECOND: tuple[int, str] = (-1, "")
"""The last whole second iso8601 formatted, and its text up to the seconds: a fleet
stamps thousands of messages within each second (one tuple, so a reader on another
thread never sees a second with another second's text)."""


def iso8601(now: float) -> str:
    """UTC timestamp with milliseconds, the form CSMSs parse most reliably."""
    global _SECOND
    whole = int(now)
    second, text = _SECOND
    if second != whole:
        text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
        _SECOND = (whole, text)
    return f"{text}.{int((now - whole) * 1000):03d}Z"


class Observer(Protocol):
    """What the station tells the world besides OCPP: metrics and scenario drivers."""

    def status_changed(self, connector_id: int, old: str, new: str) -> None: ...
    def transaction_started(self, connector_id: int, id_tag: str) -> None: ...
    def transaction_stopped(self, connector_id: int, reason: str, energy_wh: float) -> None: ...
    def energy_delivered(self, wh: float) -> None: ...
    def remote_start(self, connector_id: int, id_tag: str) -> None: ...
    def authorization(self, id_tag: str, status: str) -> None: ...
    def message_dropped(self, action: str) -> None: ...


class NullObserver:
    """Observer that ignores everything (the default)."""

    def status_changed(self, connector_id: int, old: str, new: str) -> None:
        pass

    def transaction_started(self, connector_id: int, id_tag: str) -> None:
        pass

    def transaction_stopped(self, connector_id: int, reason: str, energy_wh: float) -> None:
        pass

    def energy_delivered(self, wh: float) -> None:
        pass

    def remote_start(self, connector_id: int, id_tag: str) -> None:
        pass

    def authorization(self, id_tag: str, status: str) -> None:
        pass

    def message_dropped(self, action: str) -> None:
        pass


@dataclass(slots=True)
class Transaction:
    """A charging session, from StartTransaction until StopTransaction is delivered."""

    local_id: int
    connector_id: int
    id_tag: str
    meter_start: int
    started_at: float
    transaction_id: int | None = None  # assigned by the CSMS
    next_sample: float | None = None
    stop_reason: str | None = None
    samples: list[MeterValue] = field(default_factory=list)  # for StopTxnSampledData
    # StartTransaction.conf refused the idTag and StopTransactionOnInvalidId is False:
    # energy delivery goes on until the register reaches this (meterStart +
    # MaxEnergyOnInvalidId, the energy of the transaction), then the EVSE suspends.
    energy_limit: float | None = None
    limit_reached: bool = False
    reservation_id: int | None = None
    authorized_locally: bool = False  # started without an Authorize.conf
    # The idTag's group (IdTagInfo.parentIdTag): another idTag of the same group may
    # stop the transaction (OCPP 1.6 4.10).
    parent_id_tag: str | None = None
    # Charged in standalone mode (OcppEnable False): no OCPP record of it, ever.
    standalone: bool = False
    # The StartTransaction was given up on (CALLERRORs up to TransactionMessageAttempts):
    # no transaction id will ever come, so its later messages cannot be delivered.
    start_abandoned: bool = False


@dataclass(slots=True)
class Driver:
    """The driver in front of the station: an Authorize in flight, or an authorized
    idTag waiting for the cable (``ConnectionTimeOut``)."""

    authorizing: str | None = None
    pending_tag: str | None = None
    pending_parent: str | None = None  # parentIdTag of the pending tag
    pending_local: bool = False  # the pending tag was authorized without the CSMS
    pending_since: float = 0.0


@dataclass(slots=True)
class BootInfo:
    """What BootNotification says about the device."""

    model: str = "EVB4S22N40M"
    vendor: str = VENDOR_ID
    serial: str = ""
    firmware: str = "3.0.0"
    meter_type: str = "MID"


@dataclass(slots=True)
class Reboot:
    """Effect: close the link, stay dark for ``seconds``, then ``rebooted()`` and reconnect.

    ``abrupt`` (a power cut): the unit has no time to say goodbye, so the TCP connection
    just dies (no websocket close frame; the CSMS sees 1006). Otherwise (Reset, a
    firmware update, a local restart) the unit closes the websocket cleanly (1000)."""

    hard: bool
    seconds: float
    abrupt: bool = False


@dataclass(slots=True)
class Reconnect:
    """Effect: close the link and open it again with the current settings
    (SupervisionUrl, BoxIdentifier, SecurityProfile, AuthorizationKey)."""


@dataclass(slots=True)
class Standalone:
    """Effect: the unit booted in standalone mode (``OcppEnable`` False): close the
    supervision link if one is open and open none until the next reboot, which is
    ``rebooted()`` again (a local event: ``Station.local_setup``, a power cycle)."""


Effect = Reboot | Reconnect | Standalone
"""What the model asks of the engine; see ``Station.effects``."""


class Effects(list[object]):
    """The effects a station asks of the engine, in order (``Station.effects``; the
    engine takes them with ``popleft``). A list, not a deque: a deque allocates a block
    of 64 slots up front (~0.7 KB per station, issue 16), and effects are rare and come
    one or two at a time."""

    __slots__ = ()

    def popleft(self) -> object:
        return self.pop(0)
