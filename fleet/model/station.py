"""A Schneider Charge Pro as OCPP 1.6J sees it, sans-I/O.

The station takes events (connected, a CALL arrived, our CALL was answered, the
cable was plugged in, time passed) and makes decisions (the next CALL to send, the
answer to a CALL, a new connector status). It never reads a clock or touches a
socket: every entry point takes ``now`` (Unix seconds), and the engine asks
:meth:`Station.next_wakeup` when to call :meth:`Station.advance` again. So the
whole device runs under a fake clock in tests.

Outgoing messages live in one ordered queue. Transaction messages
(StartTransaction, MeterValues of a transaction, StopTransaction) stay in it
across disconnects and are retried per ``TransactionMessageAttempts`` /
``TransactionMessageRetryInterval``; security events stay too (not retried); the
rest is dropped when the link goes down, because it is re-derived (statuses) or
meaningless later (Heartbeat, Authorize).

The CSMS-initiated operations of the guide are answered here (local authorization
lives in :mod:`fleet.model.auth`, reservations in :mod:`fleet.model.reservation`,
file transfers in :mod:`fleet.model.transfers`). Where OCPP 1.6 or the guide leaves
room, the handler's docstring says which reading the model takes.
A MeterValues or StopTransaction carries the transaction id the CSMS assigned,
filled in when it is sent, so messages queued before the StartTransaction was
answered still name the right transaction.
"""

from __future__ import annotations

import copy
import math
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Protocol

from fleet.model import faults
from fleet.model.auth import ACCEPTED, Authorization, IdTagInfo
from fleet.model.config import ConfigStore, TooManyKeys
from fleet.model.connector import (
    AVAILABLE,
    FINISHING,
    PREPARING,
    RESERVED,
    UNAVAILABLE,
    Connector,
    Fault,
)
from fleet.model.faults import VendorError
from fleet.model.meter import MIN_CHARGING_CURRENT, NOMINAL_VOLTAGE, EvModel, Meter
from fleet.model.reservation import Reservation
from fleet.model.smart_charging import (
    TX,
    Limits,
    ProfileRejected,
    SmartCharging,
    parse_profile,
    wired_phases,
)
from fleet.model.transfers import HANDLERS as TRANSFER_HANDLERS
from fleet.model.transfers import Transfers
from fleet.protocol import errors
from fleet.protocol.errors import OcppError

VENDOR_ID = "Schneider Electric"
BOOT_RETRY_AFTER_ERROR = 30.0
"""Seconds before re-sending a BootNotification that got a CALLERROR or no answer."""

# CSMS -> station operations the guide lists; see the two tables of "Supported OCPP
# Operations". Anything else OCPP 1.6 defines answers NotSupported.
CSMS_ACTIONS = frozenset(
    {
        "CancelReservation",
        "ChangeAvailability",
        "ChangeConfiguration",
        "ClearCache",
        "ClearChargingProfile",
        "DataTransfer",
        "GetCompositeSchedule",
        "GetConfiguration",
        "GetDiagnostics",
        "GetLocalListVersion",
        "RemoteStartTransaction",
        "RemoteStopTransaction",
        "ReserveNow",
        "Reset",
        "SendLocalList",
        "SetChargingProfile",
        "TriggerMessage",
        "UnlockConnector",
        "UpdateFirmware",
    }
)

TRANSACTION_ACTIONS = frozenset({"StartTransaction", "StopTransaction", "MeterValues"})

# Configuration keys whose change must re-plan something in time.
_TIMED_KEYS = frozenset(
    {
        "MeterValueSampleInterval",
        "disconnectedMeterValueSampleInterval",
        "iMaxDeratingSwCapacity",
        "PhasesConnection",
    }
)


# ChangeConfiguration of these makes the station reconnect with the new settings (the
# engine builds the URL from SupervisionUrl + "/" + BoxIdentifier at every connection).
_RECONNECT_KEYS = ("SupervisionUrl", "BoxIdentifier", "SecurityProfile", "AuthorizationKey")
_SECURITY_KEYS = frozenset({"SecurityProfile", "AuthorizationKey"})
_BACKEND_RESET = "TriggerBackendConfigurationDataReset"

# OCPP 1.6's transition table (section 4.9) has no cell for these, although the facts
# can make them happen (a cable pulled out of a reserved connector, a ChangeAvailability
# while a driver is preparing). The connector passes through Available, which the table
# allows both into and out of; with MinimumStatusDuration > 0 the CSMS never sees it.
_VIA_AVAILABLE = frozenset({(PREPARING, UNAVAILABLE), (PREPARING, RESERVED), (FINISHING, RESERVED)})

DEFAULT_QUEUE_LIMIT = 10_000
"""Messages the outbox holds before the station drops queued periodic MeterValues
(``Station.queue_limit``; the guide gives no figure, a profile's ``network.queue_limit``
sets it)."""

RESET_RETRY_INTERVAL = 5.0
"""Seconds between attempts of a reset that failed (``ResetRetries``); the guide gives none."""

LOCAL_LIST_CONFLICT = faults.lookup("0x30000E")


def _is_transaction_message(msg: Outgoing) -> bool:
    """Kept across disconnects and retried: a triggered MeterValues outside a
    transaction is not transaction-related (OCPP 1.6, section 4.7)."""
    return msg.action in TRANSACTION_ACTIONS and msg.transaction is not None and not msg.triggered


def _survives_disconnect(msg: Outgoing) -> bool:
    """Transaction messages, and security events: the security extension has the station
    queue them while offline (and one announcing new security settings is queued just
    before the reconnect they cause)."""
    return _is_transaction_message(msg) or msg.action == "SecurityEventNotification"


def iso8601(now: float) -> str:
    """UTC timestamp with milliseconds, the form CSMSs parse most reliably."""
    whole = int(now)
    return (
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
        + f".{int((now - whole) * 1000):03d}Z"
    )


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
    samples: list[dict[str, Any]] = field(default_factory=list)  # for StopTxnSampledData
    # StartTransaction.conf refused the idTag and StopTransactionOnInvalidId is False:
    # energy delivery goes on until the register reaches this (meterStart +
    # MaxEnergyOnInvalidId, the energy of the transaction), then the EVSE suspends.
    energy_limit: float | None = None
    limit_reached: bool = False
    reservation_id: int | None = None
    authorized_locally: bool = False  # started without an Authorize.conf


@dataclass(slots=True)
class Outgoing:
    """A CALL waiting to be sent (or in flight)."""

    action: str
    payload: dict[str, Any]
    transaction: Transaction | None = None
    attempts: int = 0
    not_before: float = 0.0
    # A TriggerMessage's MeterValues: it names the running transaction, but it is a
    # snapshot, not one of the transaction's messages (not kept offline, not retried).
    triggered: bool = False
    # Queued while offline, or pending when the link went down: its delivery counts
    # in Station.offline_delivered.
    offline: bool = False


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
    """Effect: close the link, stay dark for ``seconds``, then ``rebooted()`` and reconnect."""

    hard: bool
    seconds: float


@dataclass(slots=True)
class Reconnect:
    """Effect: close the link and open it again with the current settings
    (SupervisionUrl, BoxIdentifier, SecurityProfile, AuthorizationKey)."""


Effect = Reboot | Reconnect
"""What the model asks of the engine; see :attr:`Station.effects`."""

SOFT_RESET_GRACE = 10.0
"""Seconds a soft reset waits for queued transaction messages before rebooting anyway."""


@dataclass(slots=True)
class _PendingReset:
    """A Reset.req accepted and not yet carried out (or failed and to be retried)."""

    hard: bool
    due: float
    waits_for_queue: bool  # a soft reset's first attempt: as soon as the queue is empty
    attempts: int = 0


class Station:
    """One Charge Pro: connector 0 (the station) and connector 1.

    Besides CALLs, the model asks things of the engine through ``effects`` (a deque
    the engine drains after every call into the model): reboot, reconnect.
    """

    reject_number_phases = True
    """The guide marks ``numberPhases`` "Parameter not used" and says messages with
    attributes the station does not support are rejected; a profile can relax this."""

    reboot_seconds = 10.0
    """How long a reboot keeps the station dark (profile: ``station.reboot_seconds``)."""

    def __init__(
        self,
        identity: str,
        now: float,
        *,
        config: ConfigStore | None = None,
        ev: EvModel | None = None,
        boot_info: BootInfo | None = None,
        observer: Observer | None = None,
        energy_wh: float = 0.0,
    ) -> None:
        self.identity = identity
        self.config = config if config is not None else ConfigStore()
        self.ev = ev if ev is not None else EvModel()
        self.boot_info = boot_info if boot_info is not None else BootInfo(serial=identity[-25:])
        self.observer: Observer = observer if observer is not None else NullObserver()
        self.meter = Meter(energy_wh, now)
        self.connectors = (Connector(0, now), Connector(1, now))
        self.online = False
        self.boot_status: str | None = None  # None until a BootNotification is answered
        self._boot_due = now
        self._outbox: deque[Outgoing] = deque()
        self._inflight: Outgoing | None = None
        self._last_activity = now
        self._next_local_tx = 1
        self.transaction: Transaction | None = None
        self._pending_tag: str | None = None  # authorized, waiting for the cable
        self._pending_since = 0.0
        self._authorizing: str | None = None
        self.dropped_messages = 0
        self.queue_limit = DEFAULT_QUEUE_LIMIT
        """Outbox size at which a new transaction message makes room by dropping the
        oldest periodic MeterValues (counted); StartTransaction and StopTransaction are
        never dropped, so with none left to drop the queue grows past the limit."""
        self.offline_delivered = 0  # offline-queued transaction messages answered
        self.transaction_messages_queued = 0  # every Start/MeterValues/Stop ever queued
        self.transaction_resends = 0  # sends of a transaction message after its first
        self.effects: deque[object] = deque()  # Reboot, Reconnect, transfer effects
        self.transfers = Transfers()
        self.auth = Authorization()  # the Local Authorization List and the cache
        self.reservation: Reservation | None = None
        self.pending_tx_profile: dict[str, Any] | None = None
        """The chargingProfile of an accepted RemoteStartTransaction until its transaction
        starts, when it is installed as that transaction's TxProfile."""
        self.smart = SmartCharging()  # installed charging profiles; survive reboots
        self._limit_change_at: float | None = None
        self.reset_fails = 0
        """Test and scenario hook: how many coming reset attempts fail (as when the unit
        cannot restart, e.g. while writing flash). A failed attempt is retried every
        RESET_RETRY_INTERVAL seconds, ``ResetRetries`` times, then the reset is dropped."""
        self._reset: _PendingReset | None = None
        # Reboot / Reconnect asked for: nothing new is sent, and the effect waits until
        # the CALL in flight (if any) is answered, so the CSMS is never left writing an
        # answer into a closing socket (and the exchange in progress completes).
        self._closing = False
        self._deferred: list[Effect] = []
        self._reset_reboot: str | None = None  # "Hard"/"Soft": the coming reboot is a Reset
        self._pending_parent: str | None = None  # parentIdTag of the pending tag
        self._pending_local = False  # the pending tag was authorized without the CSMS
        # ChangeAvailability(0, Inoperative) while charging: applied when the session ends.
        self._zero_inoperative_pending = False
        self.config.set_internal("BoxIdentifier", identity[:50])
        # Model seconds per configured second of HeartbeatInterval (and a boot retry
        # interval) and of the meter sample intervals: above 1 when the model clock is
        # compressed and these timers keep real time (see scale_timers).
        self.heartbeat_scale = 1.0
        self.sample_scale = 1.0
        self._apply_config()
        self._config_changes: set[str] = set()
        self.config.subscribe(self._config_changed)

    # -- configuration ---------------------------------------------------------

    def _apply_config(self) -> None:
        c = self.config
        self.heartbeat_interval = c.get_int("HeartbeatInterval") * self.heartbeat_scale
        self.sample_interval = c.get_int("MeterValueSampleInterval") * self.sample_scale
        self.offline_sample_interval = (
            c.get_int("disconnectedMeterValueSampleInterval") * self.sample_scale
        )
        self.minimum_status_duration = c.get_int("MinimumStatusDuration")
        self.connection_timeout = c.get_int("ConnectionTimeOut")
        self.max_current = float(c.get_int("iMaxDeratingSwCapacity"))
        self.wiring = c.get_int("PhasesConnection")
        self.measurands = c.get_list("MeterValuesSampledData")
        self.stop_measurands = c.get_list("StopTxnSampledData")

    def scale_timers(self, heartbeat: float, samples: float, now: float) -> None:
        """Run HeartbeatInterval and the sample intervals ``heartbeat`` / ``samples``
        times longer on the model clock than configured: with a clock compressed N times,
        N keeps a timer in real seconds, 1 keeps it on the model clock. What the CSMS
        reads and sets (GetConfiguration, ChangeConfiguration) stays the configured value."""
        self.heartbeat_scale = heartbeat
        self.sample_scale = samples
        self._apply_config()
        self._reschedule_sample(now)

    def _config_changed(self, name: str, value: str) -> None:
        # The listener has no clock: note the change, and apply what depends on time
        # with the `now` of the call that made it (ChangeConfiguration) or, for a
        # station-side write, of the next advance().
        self._apply_config()
        if name in _TIMED_KEYS or (name == _BACKEND_RESET and value == "True"):
            self._config_changes.add(name)

    def _apply_config_changes(self, now: float) -> None:
        changed = self._config_changes
        if (
            "MeterValueSampleInterval" in changed
            or "disconnectedMeterValueSampleInterval" in changed
        ):
            self._reschedule_sample(now)
        if "iMaxDeratingSwCapacity" in changed or "PhasesConnection" in changed:
            self._recompute_draw(now)
        if _BACKEND_RESET in changed:
            self._backend_data_reset(now)
        changed.clear()

    def _backend_data_reset(self, now: float) -> None:
        """``TriggerBackendConfigurationDataReset`` written true: the guide only says
        "specified data will be reset". Taken to mean the data the backend (the CSMS) put
        on the unit besides its configuration: the Local Authorization List (back to
        version 0), the Authorization Cache, the reservation and a pending remote-start
        charging profile. Configuration keys stay (resetting SupervisionUrl or
        BoxIdentifier would cut the unit off its CSMS), and so does the energy register."""
        self.auth.local_list.clear()
        self.auth.cache.clear()
        self.pending_tx_profile = None
        self._set_reservation(None, now)

    # -- the link --------------------------------------------------------------

    def connected(self, now: float) -> None:
        """The websocket is open. Boot if this power cycle has not been accepted yet."""
        self.online = True
        self._last_activity = now
        if self.boot_status != "Accepted":
            self._boot_due = now
        else:
            for conn in self.connectors:
                conn.changed_at = min(conn.changed_at, now - self.minimum_status_duration)
        self._reschedule_sample(now)

    def disconnected(self, now: float) -> None:
        """The websocket is gone: keep transaction messages, drop the rest."""
        self.online = False
        self._closing = False
        self.effects.extend(self._deferred)  # nothing in flight any more: go ahead
        self._deferred.clear()
        inflight = self._inflight
        self._inflight = None
        pending = ([inflight] if inflight is not None else []) + list(self._outbox)
        self._outbox = deque(m for m in pending if _survives_disconnect(m))
        for m in self._outbox:
            m.offline = True
        for m in pending:
            if m.action == "StatusNotification":
                # Never delivered: report the connector's status again once back online.
                self.connectors[m.payload["connectorId"]].reported = None
        for m in pending:
            if m.action == "Authorize":
                # Queued or in flight, it will never be answered: decide offline, or the
                # reader would wait for it forever.
                self._authorize_offline(m.payload["idTag"], now)
        if self.boot_status == "Pending":
            self.boot_status = None
        self._reschedule_sample(now)

    # -- what to send ----------------------------------------------------------

    def next_message(self, now: float) -> Outgoing | None:
        """The next CALL to send now, if any; it is in flight until answered or failed."""
        if not self.online or self._inflight is not None or self._closing:
            return None
        msg: Outgoing | None
        if self.boot_status != "Accepted":
            if now < self._boot_due:
                return None
            self._boot_due = float("inf")
            msg = Outgoing("BootNotification", self._boot_payload())
        else:
            self._queue_due_statuses(now)
            msg = self._pop_ready(now)
            if msg is None:
                if (
                    self.heartbeat_interval > 0
                    and now >= self._last_activity + self.heartbeat_interval
                ):
                    msg = Outgoing("Heartbeat", {})
                else:
                    return None
        assert msg is not None
        tx = msg.transaction
        if tx is not None and msg.action != "StartTransaction":
            if tx.transaction_id is not None:
                msg.payload["transactionId"] = tx.transaction_id
            elif msg.triggered:
                del msg.payload["transactionId"]
            else:
                # Its StartTransaction was never accepted; nothing can name it. Later
                # issues map offline ids; until then the message cannot be delivered.
                self._dropped(msg)
                return self.next_message(now)
        msg.attempts += 1
        if msg.attempts > 1 and _is_transaction_message(msg):
            self.transaction_resends += 1  # the CSMS may see it twice (at-least-once)
        self._inflight = msg
        self._last_activity = now
        return msg

    def _dropped(self, msg: Outgoing) -> None:
        """A transaction message given up on: counted and reported, never silent."""
        self.dropped_messages += 1
        self.observer.message_dropped(msg.action)

    def _queue_transaction_message(self, msg: Outgoing) -> None:
        """Append a StartTransaction, MeterValues or StopTransaction, in order. At
        ``queue_limit`` the oldest periodic MeterValues waiting makes room (a sample
        between others loses the least: the register is cumulative and the next sample
        and the StopTransaction still carry it); with none, a new MeterValues is the one
        dropped, and a Start or Stop is queued anyway. Every drop is counted."""
        msg.offline = not self.online
        self.transaction_messages_queued += 1
        outbox = self._outbox
        if self.queue_limit > 0 and len(outbox) >= self.queue_limit:
            victim: Outgoing | None = None
            for i, m in enumerate(outbox):
                if m.action == "MeterValues" and _is_transaction_message(m):
                    victim = m
                    del outbox[i]
                    break
            if victim is None and msg.action == "MeterValues":
                victim = msg
            if victim is not None:
                self._dropped(victim)
                if victim is msg:
                    return
        outbox.append(msg)

    @property
    def transaction_backlog(self) -> int:
        """Transaction messages waiting to be delivered (queued or in flight)."""
        inflight = self._inflight
        pending = sum(1 for m in self._outbox if _is_transaction_message(m))
        return pending + (inflight is not None and _is_transaction_message(inflight))

    def _pop_ready(self, now: float) -> Outgoing | None:
        if not self._outbox:
            return None
        head = self._outbox[0]
        if head.not_before > now:
            return None
        return self._outbox.popleft()

    def _boot_payload(self) -> dict[str, Any]:
        b = self.boot_info
        payload = {
            "chargePointVendor": b.vendor,
            "chargePointModel": b.model,
            "firmwareVersion": b.firmware,
            "meterType": b.meter_type,
        }
        if b.serial:
            payload["chargePointSerialNumber"] = b.serial
        return payload

    def next_wakeup(self) -> float | None:
        """The earliest time advance()/next_message() has something to do."""
        t = float("inf")
        if self.online and self._inflight is None and not self._closing:
            if self.boot_status != "Accepted":
                t = self._boot_due
            else:
                if self._outbox:
                    t = min(t, self._outbox[0].not_before)
                if self.heartbeat_interval > 0:
                    t = min(t, self._last_activity + self.heartbeat_interval)
                msd = self.minimum_status_duration
                for conn in self.connectors:
                    due = conn.report_due(msd)
                    if due is not None:
                        t = min(t, due)
        tx = self.transaction
        if tx is not None:
            if tx.next_sample is not None:
                t = min(t, tx.next_sample)
            full_at = self._ev_full_at()
            if full_at is not None:
                t = min(t, full_at)
            limit_at = self._energy_limit_at()
            if limit_at is not None:
                t = min(t, limit_at)
        if self._pending_tag is not None and self.connection_timeout > 0:
            t = min(t, self._pending_since + self.connection_timeout)
        if self._deferred and self._inflight is None:
            t = min(t, self._last_integration())
        reset = self._reset
        if reset is not None:
            if reset.waits_for_queue and not self._transaction_messages_pending():
                t = min(t, self._last_integration())
            t = min(t, reset.due)
        if self.reservation is not None:
            t = min(t, self.reservation.expiry)
        if self._limit_change_at is not None:
            t = min(t, self._limit_change_at)
        transfer_at = self.transfers.next_wakeup()
        if transfer_at is not None:
            t = min(t, transfer_at)
        return None if t == float("inf") else t

    # -- time ------------------------------------------------------------------

    def advance(self, now: float) -> None:
        """Let time pass: integrate energy, take samples, expire what has expired."""
        if self._config_changes:
            self._apply_config_changes(now)
        self._integrate(now)
        if self._deferred and self._inflight is None:
            self.effects.extend(self._deferred)
            self._deferred.clear()
        reset = self._reset
        if reset is not None and (
            now >= reset.due or (reset.waits_for_queue and not self._transaction_messages_pending())
        ):
            self._attempt_reset(now)
        if self.reservation is not None and self.reservation.expired(now):
            # 5.13: the reservation ends, the connector is available again (and says so).
            self._set_reservation(None, now)
        self.transfers.advance(self, now)
        if self._limit_change_at is not None and now >= self._limit_change_at:
            self._recompute_draw(now)  # a charging schedule steps to its next limit
        tx = self.transaction
        if tx is not None:
            self._check_energy_limit(now)
            full_at = self._ev_full_at()
            if full_at is not None and now >= full_at:
                # Float rounding can leave the SoC a hair below the target at the time
                # computed for it; without this the EV is never full and next_wakeup()
                # keeps returning `now`.
                self.ev.soc = max(self.ev.soc, self.ev.target_soc)
            if self.ev.full and not self.connectors[1].ev_suspended and tx.stop_reason is None:
                self.connectors[1].ev_suspended = True
                self._recompute_draw(now)
            if tx.next_sample is not None and now >= tx.next_sample and tx.stop_reason is None:
                self._take_sample(tx, now, "Sample.Periodic")
                tx.next_sample = self._first_sample_after(tx.started_at, now)
        if (
            self._pending_tag is not None
            and self.connection_timeout > 0
            and now >= self._pending_since + self.connection_timeout
        ):
            self._clear_pending_tag()
            self._update_status(1, now)

    def _integrate(self, now: float) -> None:
        added = self.meter.integrate(now)
        if added:
            ev = self.ev
            ev.soc = min(1.0, ev.soc + added / ev.battery_wh)
            self.observer.energy_delivered(added)

    def _ev_full_at(self) -> float | None:
        power = self.meter.power_w
        if power <= 0.0:
            return None
        ev = self.ev
        remaining_wh = max(0.0, (ev.target_soc - ev.soc) * ev.battery_wh)
        return self._last_integration() + remaining_wh * 3600.0 / power

    def _last_integration(self) -> float:
        return self.meter.since

    def _energy_limit_at(self) -> float | None:
        """When a refused-but-continued transaction reaches MaxEnergyOnInvalidId."""
        tx = self.transaction
        power = self.meter.power_w
        if tx is None or tx.energy_limit is None or tx.limit_reached or power <= 0.0:
            return None
        remaining_wh = max(0.0, tx.energy_limit - self.meter.energy_wh)
        return self._last_integration() + remaining_wh * 3600.0 / power

    def _check_energy_limit(self, now: float) -> None:
        tx = self.transaction
        if tx is None or tx.energy_limit is None or tx.limit_reached:
            return
        at = self._energy_limit_at()
        # As for a full EV: float rounding can leave the register a hair short at the
        # computed time, so reaching the time counts as reaching the energy.
        if self.meter.energy_wh >= tx.energy_limit or (at is not None and now >= at):
            tx.limit_reached = True
            self._recompute_draw(now)

    # -- answers to our CALLs --------------------------------------------------

    def on_answer(self, payload: dict[str, Any], now: float) -> None:
        """Our in-flight CALL got its CALLRESULT."""
        msg = self._take_inflight()
        self._last_activity = now
        action = msg.action
        if msg.offline and _is_transaction_message(msg):
            self.offline_delivered += 1
        if action == "BootNotification":
            self._boot_answered(payload, now)
        elif action == "StartTransaction":
            self._start_answered(msg, payload, now)
        elif action == "Authorize":
            self._authorize_answered(msg.payload["idTag"], payload["idTagInfo"], now)
        elif action == "StopTransaction":
            info = payload.get("idTagInfo")
            id_tag = msg.payload.get("idTag")
            if info is not None and id_tag is not None:
                self._learn(id_tag, info, now, report=False)  # the session is over

    def on_failure(self, timeout: bool, now: float) -> None:
        """Our in-flight CALL got a CALLERROR, an invalid answer, or no answer in time."""
        msg = self._take_inflight()
        action = msg.action
        if action == "BootNotification":
            self._boot_due = now + BOOT_RETRY_AFTER_ERROR
        elif _is_transaction_message(msg):
            attempts = self.config.get_int("TransactionMessageAttempts")
            if msg.attempts < max(1, attempts):
                interval = self.config.get_int("TransactionMessageRetryInterval")
                msg.not_before = now + interval * msg.attempts
                self._outbox.appendleft(msg)
            else:
                self._dropped(msg)
                if action == "StartTransaction" and msg.transaction is not None:
                    msg.transaction.transaction_id = None
        elif action == "Authorize":
            self._authorize_offline(msg.payload["idTag"], now)

    def _take_inflight(self) -> Outgoing:
        msg = self._inflight
        if msg is None:
            raise RuntimeError("no CALL in flight")
        self._inflight = None
        return msg

    def _boot_answered(self, payload: dict[str, Any], now: float) -> None:
        status = payload["status"]
        interval = int(payload["interval"])
        self.boot_status = status
        if status == "Accepted":
            if interval > 0:
                self.config.set_internal("HeartbeatInterval", interval)
            for conn in self.connectors:
                conn.reported = None
                conn.changed_at = now - self.minimum_status_duration
            self._queue_due_statuses(now)
            self.transfers.boot_accepted(self, now)
        else:
            retry = (
                interval * self.heartbeat_scale
                if interval > 0
                else self.heartbeat_interval or BOOT_RETRY_AFTER_ERROR
            )
            self._boot_due = now + retry

    # -- statuses --------------------------------------------------------------

    def _update_status(self, connector_id: int, now: float) -> None:
        conn = self.connectors[connector_id]
        new = conn.derive()
        if (conn.status, new) in _VIA_AVAILABLE:
            self._set_status(conn, AVAILABLE, now)
            self._queue_due_statuses(now)  # reported at once when MinimumStatusDuration is 0
        self._set_status(conn, new, now)

    def _set_status(self, conn: Connector, status: str, now: float) -> None:
        change = conn.set_status(status, now)
        if change is not None:
            self.observer.status_changed(conn.connector_id, change[0], change[1])

    def _queue_due_statuses(self, now: float) -> None:
        if not self.online or self.boot_status != "Accepted":
            return
        msd = self.minimum_status_duration
        for conn in self.connectors:
            due = conn.report_due(msd)
            if due is not None and now >= due:
                conn.reported = conn.status
                self._outbox.append(Outgoing("StatusNotification", self._status_payload(conn, now)))

    def _status_payload(self, conn: Connector, now: float) -> dict[str, Any]:
        fault = conn.fault
        payload: dict[str, Any] = {
            "connectorId": conn.connector_id,
            "errorCode": fault.error_code if fault is not None else "NoError",
            "status": conn.status,
            "timestamp": iso8601(now),
        }
        if fault is not None:
            if fault.info:
                payload["info"] = fault.info
            if fault.vendor_error_code:
                payload["vendorId"] = VENDOR_ID
                payload["vendorErrorCode"] = fault.vendor_error_code
        return payload

    # -- hardware events -------------------------------------------------------

    def plug_in(self, now: float) -> None:
        """The driver plugs the cable into the EV."""
        self._integrate(now)
        c1 = self.connectors[1]
        if c1.plugged:
            return
        c1.plugged = True
        c1.finishing = False
        self._update_status(1, now)
        if self._pending_tag is not None and self._can_start():
            tag, parent = self._pending_tag, self._pending_parent
            self._pending_tag = None
            self._start_transaction(tag, now, parent, self._pending_local)

    def unplug(self, now: float) -> None:
        """The driver unplugs the cable at the EV."""
        self._integrate(now)
        c1 = self.connectors[1]
        if not c1.plugged:
            return
        c1.plugged = False
        c1.finishing = False
        tx = self.transaction
        if (
            tx is not None
            and tx.stop_reason is None
            and self.config.get_bool("StopTransactionOnEVSideDisconnect")
        ):
            self._stop_transaction("EVDisconnected", now)
        self._update_status(1, now)

    def present_tag(self, id_tag: str, now: float) -> None:
        """A badge is presented to the reader (or the free-charging tag is used)."""
        self._integrate(now)
        tag = id_tag
        if not self.config.get_bool("AuthenticationOCPPMode"):
            tag = self.config.get("DefaultIdTag")  # what a free session is started with
        tx = self.transaction
        if tx is not None and tx.stop_reason is None:
            if tx.id_tag in (id_tag, tag):
                self._stop_transaction("Local", now, id_tag=tx.id_tag)
            return
        self._request_authorization(tag, now)

    def ev_suspend(self, now: float) -> None:
        """The EV stops drawing (e.g. its battery management says so)."""
        self._integrate(now)
        self.connectors[1].ev_suspended = True
        self._recompute_draw(now)

    def ev_resume(self, now: float) -> None:
        """The EV wants current again."""
        self._integrate(now)
        if self.ev.full:
            return
        self.connectors[1].ev_suspended = False
        self._recompute_draw(now)

    def raise_fault(self, error: VendorError, now: float, connector_id: int = 1) -> None:
        """A vendor error becomes active, as its catalogue row says (fleet.model.faults).

        A faulting error makes the connector Faulted and stops a running transaction with
        the row's stop reason. Any other is reported in a StatusNotification with the
        status unchanged, and charging goes on; while a faulting error is active on the
        connector it is only reported (once), the fault stays.
        """
        self._integrate(now)
        conn = self.connectors[connector_id]
        behaviour = error.behaviour
        faulting = behaviour.faults and error.is_error
        if conn.faulted and not faulting:
            self._report_error(conn, error, now)
            return
        conn.fault = Fault(error.ocpp_code, error.info, error.vendor_code, faulting)
        tx = self.transaction
        if tx is not None and tx.stop_reason is None and conn.faulted:
            self._stop_transaction(behaviour.stop_reason or "Other", now)
        if conn.faulted:
            # 5.13: a reservation ends when the Charge Point or its connector faults.
            self._set_reservation(None, now)
        self._recompute_draw(now)
        self._update_status_reporting(connector_id, now)

    def clear_fault(self, now: float, connector_id: int = 1) -> None:
        """The active error on a connector is gone: a StatusNotification with errorCode
        NoError reports the recovery, also when the status does not change."""
        self._integrate(now)
        conn = self.connectors[connector_id]
        if conn.fault is None:
            return
        conn.fault = None
        self._recompute_draw(now)
        self._update_status_reporting(connector_id, now)

    def _update_status_reporting(self, connector_id: int, now: float) -> None:
        """Re-derive the status; if it stays the same, report it again anyway, as the
        error it carries changed (still subject to MinimumStatusDuration)."""
        conn = self.connectors[connector_id]
        before = conn.status
        self._update_status(connector_id, now)
        if conn.status == before:
            conn.reported = None

    def _report_error(self, conn: Connector, error: VendorError, now: float) -> None:
        """A one-off StatusNotification carrying ``error`` and the unchanged status."""
        if not self.online or self.boot_status != "Accepted":
            return
        payload = self._status_payload(conn, now)
        payload.update(
            errorCode=error.ocpp_code,
            info=error.info,
            vendorId=VENDOR_ID,
            vendorErrorCode=error.vendor_code,
        )
        self._outbox.append(Outgoing("StatusNotification", payload))

    # -- authorization and transactions ---------------------------------------

    def _can_start(self) -> bool:
        c1 = self.connectors[1]
        return (
            self.transaction is None
            and not c1.faulted
            and c1.operative
            and self.connectors[0].operative
            and not self.connectors[0].faulted
            # A unit about to restart (or to drop its link on purpose) starts nothing new.
            and self._reset is None
            and not self._closing
        )

    def _request_authorization(self, id_tag: str, now: float) -> None:
        """A badge (or a remote start with ``AuthorizeRemoteTxRequests``): decide locally
        or ask the CSMS, per OCPP 1.6 section 3.5 (see fleet.model.auth)."""
        if not self._can_start() or self._authorizing is not None:
            return
        if self.online and self.boot_status == "Accepted":
            if self.config.get_bool("AuthenticationOCPPMode"):
                local = self.auth.pre_authorized(id_tag, now, self.config)
                if local is not None:
                    self._authorized(id_tag, local, now, local=True)
                    return
            self._authorizing = id_tag
            self._outbox.append(Outgoing("Authorize", {"idTag": id_tag}))
        else:
            self._authorize_offline(id_tag, now)

    def _authorize_offline(self, id_tag: str, now: float) -> None:
        """Offline rules: the list and cache, LocalAuthorizeOffline, AllowOfflineTxForUnknownId."""
        self._authorizing = None
        if not self.config.get_bool("AuthenticationOCPPMode"):
            decision = IdTagInfo(ACCEPTED)  # free charging needs no one's approval
        else:
            decision = self.auth.offline(id_tag, now, self.config)
        self._authorized(id_tag, decision, now, local=True)

    def _authorize_answered(self, id_tag: str, info_payload: dict[str, Any], now: float) -> None:
        self._authorizing = None
        info = self._learn(id_tag, info_payload, now)
        if not self.config.get_bool("AuthenticationOCPPMode"):
            # Free charging: the answer does not gate the session.
            info = IdTagInfo(ACCEPTED, None, info.parent_id_tag)
        self._authorized(id_tag, info, now)

    def _learn(
        self, id_tag: str, info_payload: dict[str, Any], now: float, report: bool = True
    ) -> IdTagInfo:
        """An idTagInfo from the CSMS: update the cache, report a conflict with the list.

        The CSMS's answer is followed either way; a conflict is reported with a
        StatusNotification on connector 0 carrying the guide's LocalListConflict error
        (0x30000E) and the connector's unchanged status.
        """
        try:
            info = IdTagInfo.parse(info_payload)
        except ValueError:
            # An unreadable expiryDate: keep the status, forget the date.
            info = IdTagInfo(str(info_payload["status"]), None, info_payload.get("parentIdTag"))
        if self.auth.learn(id_tag, info, now, self.config) and report:
            self._report_local_list_conflict(id_tag, now)
        return info

    def _report_local_list_conflict(self, id_tag: str, now: float) -> None:
        conn = self.connectors[0]
        error = LOCAL_LIST_CONFLICT
        payload = {
            "connectorId": 0,
            "errorCode": error.ocpp_code,
            "info": error.info,
            "status": conn.status,
            "timestamp": iso8601(now),
            "vendorId": VENDOR_ID,
            "vendorErrorCode": error.vendor_code,
        }
        self._outbox.append(Outgoing("StatusNotification", payload))

    def _authorized(self, id_tag: str, info: IdTagInfo, now: float, *, local: bool = False) -> None:
        """Authorization decided (``local``: without an Authorize.conf from the CSMS)."""
        status = info.status
        reservation = self.reservation
        if (
            status == ACCEPTED
            and reservation is not None
            and not reservation.admits(id_tag, info.parent_id_tag)
        ):
            status = "Reserved"  # not an OCPP status: the connector is someone else's
        self.observer.authorization(id_tag, status)
        if status != ACCEPTED or not self._can_start():
            self._drop_pending_remote_profile()
            return
        c1 = self.connectors[1]
        if c1.plugged and not c1.finishing:
            self._start_transaction(id_tag, now, info.parent_id_tag, local)
        else:
            self._pending_tag = id_tag
            self._pending_parent = info.parent_id_tag
            self._pending_local = local
            self._pending_since = now
            c1.authorized = True
            self._update_status(1, now)

    def _drop_pending_remote_profile(self) -> None:
        if self._pending_tag is None:
            self.pending_tx_profile = None

    def _clear_pending_tag(self) -> None:
        self._pending_tag = None
        self._pending_parent = None
        self.pending_tx_profile = None
        self.connectors[1].authorized = False

    def _start_transaction(
        self, id_tag: str, now: float, parent_id_tag: str | None, local: bool
    ) -> None:
        c1 = self.connectors[1]
        c1.authorized = False
        c1.in_transaction = True
        c1.ev_suspended = self.ev.full
        meter_start = int(self.meter.energy_wh)
        tx = Transaction(self._next_local_tx, 1, id_tag, meter_start, now)
        tx.authorized_locally = local
        self._next_local_tx += 1
        self.transaction = tx
        payload: dict[str, Any] = {
            "connectorId": 1,
            "idTag": id_tag,
            "meterStart": meter_start,
            "timestamp": iso8601(now),
        }
        reservation = self.reservation
        if reservation is not None and reservation.admits(id_tag, parent_id_tag):
            # 5.13: the reservation is consumed and StartTransaction names it.
            payload["reservationId"] = tx.reservation_id = reservation.reservation_id
            self.reservation = None
            c1.reserved = False
        if self.pending_tx_profile is not None:
            # 5.11: the RemoteStartTransaction's profile is this transaction's TxProfile.
            limits = self._profile_limits()
            try:
                profile = parse_profile(1, self.pending_tx_profile, now, limits)
                self.smart.install(profile, limits)
            except ProfileRejected:
                pass  # checked when the request was accepted; the store may have filled since
            self.pending_tx_profile = None
        self._pending_parent = None
        self._queue_transaction_message(Outgoing("StartTransaction", payload, tx))
        self._recompute_draw(now)
        if self.stop_measurands:
            tx.samples.append(self._meter_value(now, "Transaction.Begin", self.stop_measurands))
        tx.next_sample = self._first_sample_after(now, now)
        self._update_status(1, now)
        self.observer.transaction_started(1, id_tag)

    def _start_answered(self, msg: Outgoing, payload: dict[str, Any], now: float) -> None:
        tx = msg.transaction
        assert tx is not None
        tx.transaction_id = int(payload["transactionId"])
        if self.smart.profiles and tx is self.transaction:
            self._recompute_draw(now)  # a TxProfile may name the transaction by this id
        # A conflict with the list is reported here only when no Authorize.conf came first.
        info = self._learn(tx.id_tag, payload["idTagInfo"], now, tx.authorized_locally)
        if (
            info.status == ACCEPTED
            or tx is not self.transaction
            or tx.stop_reason is not None
            # Free charging (guide: AuthenticationOCPPMode False) authenticates no one.
            or not self.config.get_bool("AuthenticationOCPPMode")
        ):
            return
        if self.config.get_bool("StopTransactionOnInvalidId"):
            self._stop_transaction("DeAuthorized", now)
        elif tx.energy_limit is None:
            # OCPP 4.8: only stop delivering energy, keep the transaction. Up to
            # MaxEnergyOnInvalidId Wh in the transaction (0: suspend at once), then
            # SuspendedEVSE until it ends.
            tx.energy_limit = tx.meter_start + self.config.get_int("MaxEnergyOnInvalidId")
            self._check_energy_limit(now)

    def _stop_transaction(self, reason: str, now: float, id_tag: str | None = None) -> None:
        tx = self.transaction
        assert tx is not None
        self._integrate(now)
        tx.stop_reason = reason
        meter_stop = int(self.meter.energy_wh)
        payload: dict[str, Any] = {
            "meterStop": meter_stop,
            "timestamp": iso8601(now),
            "reason": reason,
        }
        if id_tag is not None:
            payload["idTag"] = id_tag
        if self.stop_measurands:
            tx.samples.append(self._meter_value(now, "Transaction.End", self.stop_measurands))
            payload["transactionData"] = tx.samples
        self._queue_transaction_message(Outgoing("StopTransaction", payload, tx))
        self.transaction = None
        self.smart.transaction_ended(tx.transaction_id)
        c1 = self.connectors[1]
        c1.in_transaction = False
        c1.ev_suspended = False
        c1.finishing = c1.plugged
        if self._zero_inoperative_pending:
            # A ChangeAvailability(0, Inoperative) answered Scheduled takes effect now.
            self._zero_inoperative_pending = False
            self.connectors[0].operative = False
            self._update_status(0, now)
        self._recompute_draw(now)
        self._update_status(1, now)
        self.observer.transaction_stopped(1, reason, meter_stop - tx.meter_start)

    def _recompute_draw(self, now: float) -> None:
        """Offered current and what the EV takes of it; sets SuspendedEVSE below 6 A."""
        self._integrate(now)
        c1 = self.connectors[1]
        tx = self.transaction
        offering = tx is not None and not c1.faulted and not tx.limit_reached
        offered = self.max_current if offering else 0.0
        self._limit_change_at = None
        if tx is not None and self.smart.profiles:
            limit = self.smart.limit(
                now,
                1,
                unit="A",
                phases=wired_phases(self.wiring),
                tx_start=tx.started_at,
                transaction_id=tx.transaction_id,
            )
            if limit is not None:
                offered = min(offered, _tenth_down(limit))
            self._limit_change_at = self.smart.next_change(
                now, 1, tx_start=tx.started_at, transaction_id=tx.transaction_id
            )
        self.meter.offered = offered
        c1.evse_suspended = tx is not None and offered < MIN_CHARGING_CURRENT
        drawing = tx is not None and not c1.evse_suspended and not c1.ev_suspended
        current = min(offered, self.ev.max_current) if drawing else 0.0
        self.meter.draw(current, self.wiring, self.ev.phases)
        self._update_status(1, now)

    def _set_reservation(self, reservation: Reservation | None, now: float) -> None:
        self.reservation = reservation
        self.connectors[1].reserved = reservation is not None
        self._update_status(1, now)

    # -- meter values ----------------------------------------------------------

    def _first_sample_after(self, start: float, now: float) -> float | None:
        interval = self.sample_interval if self.online else self.offline_sample_interval
        if interval <= 0:
            return None
        periods = int((now - start) // interval) + 1
        return start + periods * interval

    def _reschedule_sample(self, now: float) -> None:
        tx = self.transaction
        if tx is not None and tx.stop_reason is None:
            tx.next_sample = self._first_sample_after(tx.started_at, now)

    def _take_sample(self, tx: Transaction, now: float, context: str) -> None:
        self._integrate(now)
        value = self._meter_value(now, context, self.measurands)
        self._queue_transaction_message(
            Outgoing(
                "MeterValues",
                {"connectorId": tx.connector_id, "transactionId": 0, "meterValue": [value]},
                tx,
            )
        )
        if self.stop_measurands:
            tx.samples.append(self._meter_value(now, context, self.stop_measurands))

    def _meter_value(self, now: float, context: str, measurands: tuple[str, ...]) -> dict[str, Any]:
        m = self.meter
        sampled: list[dict[str, Any]] = []
        for measurand in measurands:
            if measurand == "Energy.Active.Import.Register":
                sampled.append(
                    {
                        "value": str(int(m.energy_wh)),
                        "context": context,
                        "measurand": measurand,
                        "location": "Outlet",
                        "unit": "Wh",
                    }
                )
            elif measurand == "Current.Offered":
                sampled.append(
                    {
                        "value": f"{m.offered:.1f}",
                        "context": context,
                        "measurand": measurand,
                        "location": "Outlet",
                        "unit": "A",
                    }
                )
            elif measurand.startswith("Current.Import"):
                phases = (measurand[-2:],) if measurand != "Current.Import" else ("L1", "L2", "L3")
                for phase in phases:
                    sampled.append(
                        {
                            "value": f"{m.currents[int(phase[1]) - 1]:.1f}",
                            "context": context,
                            "measurand": "Current.Import",
                            "phase": phase,
                            "location": "Outlet",
                            "unit": "A",
                        }
                    )
        return {"timestamp": iso8601(now), "sampledValue": sampled}

    # -- CALLs from the CSMS ---------------------------------------------------

    def handle_call(self, action: str, payload: dict[str, Any], now: float) -> dict[str, Any]:
        """Answer a schema-valid CALL from the CSMS; raise OcppError for a CALLERROR."""
        self._last_activity = now
        self._integrate(now)
        handler = _HANDLERS.get(action)
        if handler is None:
            raise OcppError(errors.NOT_IMPLEMENTED, f"{action} is not modelled yet")
        return handler(self, payload, now)

    def _on_get_configuration(self, payload: dict[str, Any], now: float) -> dict[str, Any]:
        try:
            return self.config.get_configuration(payload.get("key"))
        except TooManyKeys as exc:
            raise OcppError(errors.OCCURENCE_CONSTRAINT_VIOLATION, str(exc)) from None

    def _on_change_configuration(self, payload: dict[str, Any], now: float) -> dict[str, Any]:
        config = self.config
        before = [config.get(key) for key in _RECONNECT_KEYS]
        status = config.change_configuration(payload["key"], payload["value"])
        self._apply_config_changes(now)
        changed = [
            key for key, old in zip(_RECONNECT_KEYS, before, strict=True) if config.get(key) != old
        ]
        if changed:
            # The station reconnects with the new settings right after answering (the
            # engine drains effects after the reply is written), so the change is in
            # effect: Accepted, not RebootRequired ("the Charge Point will not reboot
            # itself"), as the security whitepaper's profile upgrade also answers.
            status = "Accepted"
            for key in changed:
                if key in _SECURITY_KEYS:
                    detail = "changed" if key == "AuthorizationKey" else f"= {config.get(key)}"
                    self.security_event(
                        "ReconfigurationOfSecurityParameters", now, f"{key} {detail}"
                    )
            self._going_down(Reconnect())
        return {"status": status}

    def _on_remote_start(self, payload: dict[str, Any], now: float) -> dict[str, Any]:
        connector_id = payload.get("connectorId", 1)
        id_tag = payload["idTag"]
        if connector_id != 1 or not self._can_start() or self._authorizing is not None:
            return {"status": "Rejected"}
        profile = payload.get("chargingProfile")
        if profile is not None and profile.get("chargingProfilePurpose") != "TxProfile":
            # 5.11: the purpose of a RemoteStartTransaction's profile SHALL be TxProfile.
            return {"status": "Rejected"}
        authorize_first = self.config.get_bool("AuthorizeRemoteTxRequests")
        known = self.auth.lookup(id_tag, self.config)
        parent = None if known is None else known.parent_id_tag
        reservation = self.reservation
        if (
            reservation is not None
            and not reservation.admits(id_tag, parent)
            and not authorize_first  # else the Authorize.conf's parentIdTag decides
        ):
            return {"status": "Rejected"}
        if profile is not None:
            try:
                parse_profile(1, profile, now, self._profile_limits())
            except ProfileRejected:
                return {"status": "Rejected"}
        self.pending_tx_profile = copy.deepcopy(profile)
        if authorize_first:
            self._request_authorization(id_tag, now)
        else:
            # The StartTransaction.conf is the CSMS's first word on this idTag.
            self._authorized(id_tag, IdTagInfo(ACCEPTED, None, parent), now, local=True)
        self.observer.remote_start(connector_id, id_tag)
        return {"status": "Accepted"}

    # -- smart charging -----------------------------------------------------------

    def _profile_limits(self) -> Limits:
        c = self.config
        return Limits(
            max_stack_level=c.get_int("ChargeProfileMaxStackLevel"),
            max_periods=c.get_int("ChargingScheduleMaxPeriods"),
            max_installed=c.get_int("MaxChargingProfilesInstalled"),
            allowed_units=c.get_list("ChargingScheduleAllowedChargingRateUnit"),
            reject_number_phases=self.reject_number_phases,
        )

    def _on_set_charging_profile(self, payload: dict[str, Any], now: float) -> dict[str, Any]:
        connector_id = payload["connectorId"]
        raw = payload["csChargingProfiles"]
        if connector_id not in (0, 1):
            return {"status": "Rejected"}
        if raw["chargingProfilePurpose"] == TX:
            # 3.13.1: a TxProfile only with a running transaction, and for that one.
            tx = self.transaction
            if (
                tx is None
                or tx.stop_reason is not None
                or raw.get("transactionId", tx.transaction_id) != tx.transaction_id
            ):
                return {"status": "Rejected"}
        limits = self._profile_limits()
        try:
            self.smart.install(parse_profile(connector_id, raw, now, limits), limits)
        except ProfileRejected:
            return {"status": "Rejected"}
        self._recompute_draw(now)
        return {"status": "Accepted"}

    def _on_clear_charging_profile(self, payload: dict[str, Any], now: float) -> dict[str, Any]:
        removed = self.smart.clear(
            profile_id=payload.get("id"),
            connector_id=payload.get("connectorId"),
            purpose=payload.get("chargingProfilePurpose"),
            stack_level=payload.get("stackLevel"),
        )
        self._recompute_draw(now)
        return {"status": "Accepted" if removed else "Unknown"}

    def _on_get_composite_schedule(self, payload: dict[str, Any], now: float) -> dict[str, Any]:
        connector_id = payload["connectorId"]
        unit = payload.get("chargingRateUnit", "A")
        allowed = self.config.get_list("ChargingScheduleAllowedChargingRateUnit")
        if connector_id not in (0, 1) or {"A": "Current", "W": "Power"}[unit] not in allowed:
            return {"status": "Rejected"}
        phases = wired_phases(self.wiring)
        ceiling = self.max_current if unit == "A" else self.max_current * NOMINAL_VOLTAGE * phases
        tx = self.transaction
        start = float(int(now))
        duration = payload["duration"]
        steps = self.smart.composite(
            start,
            duration,
            1,
            unit=unit,
            phases=phases,
            tx_start=tx.started_at if tx is not None else None,
            transaction_id=tx.transaction_id if tx is not None else None,
            ceiling=ceiling,
        )
        return {
            "status": "Accepted",
            "connectorId": connector_id,
            "scheduleStart": iso8601(start),
            "chargingSchedule": {
                "duration": duration,
                "startSchedule": iso8601(start),
                "chargingRateUnit": unit,
                "chargingSchedulePeriod": [
                    {"startPeriod": offset, "limit": _tenth_down(limit)} for offset, limit in steps
                ],
            },
        }

    def _on_remote_stop(self, payload: dict[str, Any], now: float) -> dict[str, Any]:
        tx = self.transaction
        if (
            tx is None
            or tx.stop_reason is not None
            or tx.transaction_id != payload["transactionId"]
        ):
            return {"status": "Rejected"}
        self._stop_transaction("Remote", now)
        return {"status": "Accepted"}

    def _on_trigger_message(self, payload: dict[str, Any], now: float) -> dict[str, Any]:
        """The triggered message is queued; the engine writes this answer first (5.17)."""
        requested = payload["requestedMessage"]
        connector_id = payload.get("connectorId")
        if connector_id is not None and connector_id not in (0, 1):
            return {"status": "Rejected"}  # no such connector
        if requested == "BootNotification":
            self._outbox.append(Outgoing("BootNotification", self._boot_payload()))
        elif requested == "Heartbeat":
            self._outbox.append(Outgoing("Heartbeat", {}))
        elif requested == "StatusNotification":
            targets = (connector_id,) if connector_id is not None else (0, 1)
            for cid in targets:
                conn = self.connectors[cid]
                self._outbox.append(Outgoing("StatusNotification", self._status_payload(conn, now)))
        elif requested == "MeterValues":
            self._trigger_meter_values(connector_id, now)
        elif requested == "DiagnosticsStatusNotification":
            status = str(getattr(self.transfers, "diagnostics_status", "Idle"))
            self._outbox.append(Outgoing("DiagnosticsStatusNotification", {"status": status}))
        elif requested == "FirmwareStatusNotification":
            status = str(getattr(self.transfers, "firmware_status", "Idle"))
            self._outbox.append(Outgoing("FirmwareStatusNotification", {"status": status}))
        else:
            return {"status": "NotImplemented"}
        return {"status": "Accepted"}

    def _trigger_meter_values(self, connector_id: int | None, now: float) -> None:
        """Connector 1 (also when none is named: it is the only one) with the running
        transaction's id if any; connector 0 is the station's meter, outside transactions."""
        value = self._meter_value(now, "Trigger", self.measurands)
        cid = 1 if connector_id is None else connector_id
        mv: dict[str, Any] = {"connectorId": cid, "meterValue": [value]}
        tx = self.transaction
        if cid == 1 and tx is not None and tx.stop_reason is None:
            # Filled in when sent, like any message of the transaction.
            mv["transactionId"] = 0
            self._outbox.append(Outgoing("MeterValues", mv, tx, triggered=True))
        else:
            self._outbox.append(Outgoing("MeterValues", mv))

    def _on_reset(self, payload: dict[str, Any], now: float) -> dict[str, Any]:
        """Soft: stop the session, deliver what is queued (bounded), reboot. Hard: reboot now;
        the StopTransaction waits in the queue, which survives the reboot. An attempt that
        fails (``reset_fails``) is retried ``ResetRetries`` times."""
        hard = payload["type"] == "Hard"
        tx = self.transaction
        if tx is not None and tx.stop_reason is None:
            self._stop_transaction("HardReset" if hard else "SoftReset", now)
        if self._reset is not None and not hard:
            return {"status": "Accepted"}  # a reset is already under way
        if hard:
            self._reset = _PendingReset(hard=True, due=now, waits_for_queue=False)
            self._attempt_reset(now)
        else:
            self._reset = _PendingReset(
                hard=False, due=now + SOFT_RESET_GRACE, waits_for_queue=True
            )
        return {"status": "Accepted"}

    def _attempt_reset(self, now: float) -> None:
        reset = self._reset
        assert reset is not None
        reset.attempts += 1
        if self.reset_fails > 0:
            self.reset_fails -= 1
            if reset.attempts > self.config.get_int("ResetRetries"):
                self._reset = None  # ResetRetries exhausted: the unit carries on as it is
            else:
                reset.due = now + RESET_RETRY_INTERVAL
                reset.waits_for_queue = False
            return
        self._reset = None
        self._reset_reboot = "Hard" if reset.hard else "Soft"
        self._going_down(Reboot(hard=reset.hard, seconds=self.reboot_seconds))

    def _going_down(self, effect: Effect) -> None:
        """Ask the engine to close the link (reboot, reconnect) once no CALL is in flight."""
        self._closing = True
        if self._inflight is None:
            self.effects.append(effect)
        else:
            self._deferred.append(effect)

    def _transaction_messages_pending(self) -> bool:
        inflight = self._inflight
        return (inflight is not None and _is_transaction_message(inflight)) or any(
            _is_transaction_message(m) for m in self._outbox
        )

    def rebooted(self, now: float) -> None:
        """Power is back after a reboot: volatile state is gone; configuration,
        availability, the energy register, queued transaction messages, the Local
        Authorization List, the Authorization Cache and a reservation (it still expires
        at its expiryDate) remain. With ``SecurityEventsEnabled`` it queues the
        security events StartupOfTheDevice and, after a Reset, ResetOrReboot.

        A Station built from scratch models a unit already running when the simulation
        starts, so only this reboot, not construction, reports StartupOfTheDevice."""
        self._integrate(now)
        self.boot_status = None
        self._boot_due = now
        self._reset = None
        self._closing = False
        self._inflight = None
        self._outbox = deque(m for m in self._outbox if _survives_disconnect(m))
        self._authorizing = None
        self._clear_pending_tag()
        for conn in self.connectors:
            conn.reported = None
            conn.changed_at = now - self.minimum_status_duration
        if self._zero_inoperative_pending and self.transaction is None:
            self._zero_inoperative_pending = False
            self.connectors[0].operative = False
        self._recompute_draw(now)
        for cid in (0, 1):
            self._update_status(cid, now)
        self.security_event("StartupOfTheDevice", now)
        if self._reset_reboot is not None:
            self.security_event("ResetOrReboot", now, f"{self._reset_reboot} reset by the CSMS")
            self._reset_reboot = None

    def security_event(self, kind: str, now: float, tech_info: str | None = None) -> None:
        """Report a security event (OCPP 1.6 security extension) when
        ``SecurityEventsEnabled``; e.g. the engine's "FailedToAuthenticateAtCentralSystem"."""
        if not self.config.get_bool("SecurityEventsEnabled"):
            return
        payload: dict[str, Any] = {"type": kind, "timestamp": iso8601(now)}
        if tech_info:
            payload["techInfo"] = tech_info[:255]
        self._outbox.append(Outgoing("SecurityEventNotification", payload))

    def data_transfer(
        self, vendor_id: str, message_id: str | None, data: str | None, now: float
    ) -> None:
        """Queue a DataTransfer.req to the CSMS.

        The guide lists station-initiated DataTransfer as "Parameter not used": a real
        Charge Pro never sends one. This is for scenarios that want to load a CSMS with
        them anyway; the answer is counted (not Accepted counts as a failure) and dropped.
        """
        self._integrate(now)
        payload: dict[str, Any] = {"vendorId": vendor_id}
        if message_id is not None:
            payload["messageId"] = message_id
        if data is not None:
            payload["data"] = data
        self._outbox.append(Outgoing("DataTransfer", payload))

    def _on_data_transfer(self, payload: dict[str, Any], now: float) -> dict[str, Any]:
        """The Charge Pro knows no vendor-specific data. A vendorId other than its own is
        UnknownVendorId; its own ("Schneider Electric", compared case-insensitively as
        OCPP's CiString is) with any messageId, or none, is UnknownMessageId."""
        if payload["vendorId"].casefold() != VENDOR_ID.casefold():
            return {"status": "UnknownVendorId"}
        return {"status": "UnknownMessageId"}

    def _on_change_availability(self, payload: dict[str, Any], now: float) -> dict[str, Any]:
        """5.2: connector 0 is the whole station (and so every connector). Accepted, or
        Scheduled while a transaction runs (applied when it ends; a station-wide change
        takes connector 0 with it then). The availability is kept across reboots."""
        cid = payload["connectorId"]
        if cid not in (0, 1):
            return {"status": "Rejected"}  # no such connector
        c0, c1 = self.connectors
        if payload["type"] == "Operative":
            if not c1.operative:
                c1.finishing = False  # Unavailable has no way to Finishing (4.9): Preparing
            c1.operative = True
            if cid == 0:
                c0.operative = True
                self._zero_inoperative_pending = False
            self._update_status(0, now)
            self._update_status(1, now)
            return {"status": "Accepted"}
        tx = self.transaction
        busy = tx is not None and tx.stop_reason is None
        c1.operative = False  # the connector's status follows once no transaction runs
        if cid == 0:
            if busy:
                self._zero_inoperative_pending = True
            else:
                c0.operative = False
        if self._pending_tag is not None:
            self._clear_pending_tag()  # the driver who badged cannot charge here now
        self._set_reservation(None, now)  # 5.13: a reservation ends when Unavailable
        self._update_status(0, now)
        self._update_status(1, now)
        return {"status": "Scheduled" if busy else "Accepted"}

    def _on_unlock_connector(self, payload: dict[str, Any], now: float) -> dict[str, Any]:
        """5.18: a running transaction is stopped first (reason UnlockCommand). The Charge
        Pro's socket has a locking motor (the guide's "Lock / Unlock cable Failure",
        0x100205), so Unlocked, or UnlockFailed while that ConnectorLockFailure is
        active; a connector it does not have (0 is the station) is NotSupported."""
        if payload["connectorId"] != 1:
            return {"status": "NotSupported"}
        tx = self.transaction
        if tx is not None and tx.stop_reason is None:
            self._stop_transaction("UnlockCommand", now)
        if any(
            conn.fault is not None and conn.fault.error_code == "ConnectorLockFailure"
            for conn in self.connectors
        ):
            return {"status": "UnlockFailed"}
        return {"status": "Unlocked"}

    def _on_reserve_now(self, payload: dict[str, Any], now: float) -> dict[str, Any]:
        """5.13, checked in this order: an unknown connector, or connector 0 without
        ``ReserveConnectorZeroSupported``, or an expiryDate already past: Rejected. Then
        Faulted, Unavailable, and Occupied (a transaction, a cable, an authorized driver
        waiting, or another reservation: one connector holds one). The same
        reservationId replaces its reservation."""
        cid = payload["connectorId"]
        if cid not in (0, 1) or (
            cid == 0 and not self.config.get_bool("ReserveConnectorZeroSupported")
        ):
            return {"status": "Rejected"}
        try:
            reservation = Reservation.parse(payload)
        except ValueError:
            raise OcppError(
                errors.PROPERTY_CONSTRAINT_VIOLATION, "expiryDate is not a date and time"
            ) from None
        if reservation.expired(now):
            return {"status": "Rejected"}
        c0, c1 = self.connectors
        if c0.faulted or c1.faulted:
            return {"status": "Faulted"}
        if not c0.operative or not c1.operative:
            return {"status": "Unavailable"}
        current = self.reservation
        if (
            self.transaction is not None
            or c1.plugged
            or c1.authorized
            or self._authorizing is not None
            or (current is not None and current.reservation_id != reservation.reservation_id)
        ):
            return {"status": "Occupied"}
        self._set_reservation(reservation, now)
        return {"status": "Accepted"}

    def _on_cancel_reservation(self, payload: dict[str, Any], now: float) -> dict[str, Any]:
        current = self.reservation
        if current is None or current.reservation_id != payload["reservationId"]:
            return {"status": "Rejected"}
        self._set_reservation(None, now)
        return {"status": "Accepted"}

    def _on_clear_cache(self, payload: dict[str, Any], now: float) -> dict[str, Any]:
        """5.4: Accepted whenever the cache could be cleared, which it always can; also
        while ``AuthorizationCacheEnabled`` is False (the cache exists, unused)."""
        self.auth.cache.clear()
        return {"status": "Accepted"}

    def _on_get_local_list_version(self, payload: dict[str, Any], now: float) -> dict[str, Any]:
        """0 before any list was sent; never -1 (the profile is supported)."""
        return {"listVersion": self.auth.local_list.version}

    def _on_send_local_list(self, payload: dict[str, Any], now: float) -> dict[str, Any]:
        """Updates are taken whatever ``LocalAuthListEnabled`` says: that key decides whether
        the list is used to authorize, and a CSMS fills the list before enabling it."""
        config = self.config
        status = self.auth.local_list.update(
            payload,
            max_length=config.get_int("LocalAuthListMaxLength"),
            max_send=config.get_int("SendLocalListMaxLength"),
        )
        return {"status": status}

    # -- introspection ---------------------------------------------------------

    @property
    def queued(self) -> int:
        """Messages waiting to be sent (transaction messages survive offline)."""
        return len(self._outbox)

    def status(self, connector_id: int) -> str:
        return self.connectors[connector_id].status


_HANDLERS = {
    "GetConfiguration": Station._on_get_configuration,
    "ChangeConfiguration": Station._on_change_configuration,
    "RemoteStartTransaction": Station._on_remote_start,
    "RemoteStopTransaction": Station._on_remote_stop,
    "TriggerMessage": Station._on_trigger_message,
    "DataTransfer": Station._on_data_transfer,
    "Reset": Station._on_reset,
    "ChangeAvailability": Station._on_change_availability,
    "UnlockConnector": Station._on_unlock_connector,
    "ReserveNow": Station._on_reserve_now,
    "CancelReservation": Station._on_cancel_reservation,
    "ClearCache": Station._on_clear_cache,
    "GetLocalListVersion": Station._on_get_local_list_version,
    "SendLocalList": Station._on_send_local_list,
    "SetChargingProfile": Station._on_set_charging_profile,
    "ClearChargingProfile": Station._on_clear_charging_profile,
    "GetCompositeSchedule": Station._on_get_composite_schedule,
    **TRANSFER_HANDLERS,
}


def _tenth_down(value: float) -> float:
    """Round down to 0.1: OCPP limits are multiples of 0.1, and a limit must not be
    reported (or offered) above what a profile allows."""
    return math.floor(value * 10 + 1e-9) / 10
