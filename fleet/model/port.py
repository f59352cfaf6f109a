"""What a feature module may see of the station: the :class:`StationPort` protocol.

``fleet.model.station`` is the facade (lifecycle and routing); the feature modules in
:mod:`fleet.model.features` hold the behaviour of each OCPP feature profile. They
receive the station as a :class:`StationPort` and never import ``station.py``, nor
each other, so ``fleet/model`` has no import cycle and a feature's reach is written
down in one place: if a feature needs more of the station, add it here, and the
type checker shows every feature that could use it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeVar, cast

from fleet.model.auth import Authorization, IdTagInfo
from fleet.model.config import ConfigStore
from fleet.model.connector import Connector
from fleet.model.faults import VendorError
from fleet.model.messages import (
    BootNotificationRequest,
    DiagnosticsStatus,
    FirmwareStatus,
    GetDiagnosticsRequest,
    GetDiagnosticsResponse,
    Reason,
    StationRequest,
    StatusNotificationRequest,
    UpdateFirmwareRequest,
    UpdateFirmwareResponse,
)
from fleet.model.meter import EvModel, Meter
from fleet.model.outbox import Outbox, Outgoing
from fleet.model.records import (
    BootInfo,
    Driver,
    Effect,
    Effects,
    JsonDict,
    Observer,
    Transaction,
)
from fleet.model.reservation import Reservation
from fleet.model.smart_charging import Limits, SmartCharging


class FileTransfers(Protocol):
    """The firmware-management feature's state (``features.firmware.Transfers``), as
    the station and the other features use it."""

    @property
    def diagnostics_status(self) -> DiagnosticsStatus: ...
    @property
    def firmware_status(self) -> FirmwareStatus: ...
    def advance(self, station: StationPort, now: float) -> None: ...
    def next_wakeup(self) -> float | None: ...
    def boot_accepted(self, station: StationPort, now: float) -> None: ...
    def get_diagnostics(
        self, station: StationPort, payload: GetDiagnosticsRequest, now: float
    ) -> GetDiagnosticsResponse: ...
    def update_firmware(
        self, station: StationPort, payload: UpdateFirmwareRequest, now: float
    ) -> UpdateFirmwareResponse: ...


class StationPort(Protocol):
    """The station as the feature modules see it.

    State is plain attributes; the methods are the primitives features share (each is
    implemented in one feature module, and the station forwards to it), so a feature
    calls another only through here.
    """

    identity: str
    config: ConfigStore
    ev: EvModel
    boot_info: BootInfo
    observer: Observer
    meter: Meter
    connectors: tuple[Connector, Connector]
    online: bool
    standalone: bool
    """Booted with OcppEnable False: no supervision until a reboot with it True."""
    boot_status: str | None
    transaction: Transaction | None
    driver: Driver
    outbox: Outbox
    effects: Effects
    auth: Authorization
    reservation: Reservation | None
    pending_tx_profile: dict[str, Any] | None
    smart: SmartCharging
    reject_number_phases: bool
    reboot_seconds: float
    enabled_faults: frozenset[str]
    """Vendor codes of the detections the guide ships disabled that this unit raises."""
    next_local_tx: int
    zero_inoperative_pending: bool
    """A ChangeAvailability(0, Inoperative) answered Scheduled: applied when the session ends."""
    limit_change_at: float | None
    """When the charging schedule steps to its next limit (smart charging)."""
    load_held_until: float
    """No current is offered before this: RestoreTimeout after a power cut."""

    # Configuration, read once per change (see Station.apply_config).
    sample_interval: float
    offline_sample_interval: float
    minimum_status_duration: int
    connection_timeout: int
    max_current: float
    wiring: int
    measurands: tuple[str, ...]
    stop_measurands: tuple[str, ...]

    @property
    def transfers(self) -> FileTransfers: ...
    @property
    def queued(self) -> int: ...
    @property
    def dropped_messages(self) -> int: ...

    # -- lifecycle (station.py)
    def send(self, action: str, payload: StationRequest) -> None: ...
    def apply_config_changes(self, now: float) -> None: ...
    def can_start(self) -> bool: ...
    def going_down(self, effect: Effect) -> None: ...
    def security_event(self, kind: str, now: float, tech_info: str | None = None) -> None: ...
    def boot_payload(self) -> BootNotificationRequest: ...
    def integrate(self, now: float) -> None: ...

    # -- statuses and faults (features/status.py)
    def update_status(self, connector_id: int, now: float) -> None: ...
    def status_payload(self, conn: Connector, now: float) -> StatusNotificationRequest: ...
    def raise_fault(self, error: VendorError, now: float, connector_id: int = 1) -> None: ...
    def clear_fault(self, now: float, connector_id: int = 1) -> None: ...
    def report_local_list_conflict(self, now: float) -> None: ...

    # -- transactions and authorization (features/transaction.py)
    def request_authorization(self, id_tag: str, now: float) -> None: ...
    def authorized(
        self, id_tag: str, info: IdTagInfo, now: float, *, local: bool = False
    ) -> None: ...
    def clear_pending_tag(self) -> None: ...
    def stop_transaction(self, reason: Reason, now: float, id_tag: str | None = None) -> None: ...
    def queue_transaction_message(self, msg: Outgoing) -> None: ...

    # -- reservation (features/reservation.py), smart charging (features/smart_charging.py)
    def set_reservation(self, reservation: Reservation | None, now: float) -> None: ...
    def recompute_draw(self, now: float) -> None: ...
    def profile_limits(self) -> Limits: ...


S = TypeVar("S", bound=StationPort)
Req = TypeVar("Req", bound=Mapping[str, Any])
Resp = TypeVar("Resp", bound=Mapping[str, Any])


def handler(fn: Callable[[S, Req, float], Resp]) -> Callable[[S, JsonDict, float], JsonDict]:
    """A handler of a CSMS CALL, typed with its request and answer (fleet.model.messages),
    as the station's routing table holds it: by the action's name, on JSON. This is the
    one place where a payload becomes its TypedDict, unchecked by mypy: the engine
    validates every CALL against the same schemas the TypedDicts are generated from,
    and the model's tests validate every answer."""
    return cast("Callable[[S, JsonDict, float], JsonDict]", fn)
