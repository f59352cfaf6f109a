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
``TransactionMessageRetryInterval``; the rest is dropped when the link goes down,
because it is re-derived (statuses) or meaningless later (Heartbeat, Authorize).
A MeterValues or StopTransaction carries the transaction id the CSMS assigned,
filled in when it is sent, so messages queued before the StartTransaction was
answered still name the right transaction.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Protocol

from fleet.model.config import ConfigStore, TooManyKeys
from fleet.model.connector import Connector, Fault
from fleet.model.faults import VendorError
from fleet.model.meter import MIN_CHARGING_CURRENT, EvModel, Meter
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


def _is_transaction_message(msg: Outgoing) -> bool:
    """Kept across disconnects and retried: a triggered MeterValues outside a
    transaction is not transaction-related (OCPP 1.6, section 4.7)."""
    return msg.action in TRANSACTION_ACTIONS and msg.transaction is not None


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


@dataclass(slots=True)
class Outgoing:
    """A CALL waiting to be sent (or in flight)."""

    action: str
    payload: dict[str, Any]
    transaction: Transaction | None = None
    attempts: int = 0
    not_before: float = 0.0


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


class Station:
    """One Charge Pro: connector 0 (the station) and connector 1.

    Besides CALLs, the model asks things of the engine through ``effects`` (a deque
    the engine drains after every call into the model): reboot, reconnect.
    """

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
        self.effects: deque[object] = deque()  # Reboot, Reconnect, transfer effects
        self.transfers = Transfers()
        self._soft_reset_at: float | None = None  # a soft reset waiting for the queue
        self.config.set_internal("BoxIdentifier", identity[:50])
        self._apply_config()
        self._config_changes: set[str] = set()
        self.config.subscribe(self._config_changed)

    # -- configuration ---------------------------------------------------------

    def _apply_config(self) -> None:
        c = self.config
        self.heartbeat_interval = c.get_int("HeartbeatInterval")
        self.sample_interval = c.get_int("MeterValueSampleInterval")
        self.offline_sample_interval = c.get_int("disconnectedMeterValueSampleInterval")
        self.minimum_status_duration = c.get_int("MinimumStatusDuration")
        self.connection_timeout = c.get_int("ConnectionTimeOut")
        self.max_current = float(c.get_int("iMaxDeratingSwCapacity"))
        self.wiring = c.get_int("PhasesConnection")
        self.measurands = c.get_list("MeterValuesSampledData")
        self.stop_measurands = c.get_list("StopTxnSampledData")

    def _config_changed(self, name: str, value: str) -> None:
        # The listener has no clock: note the change, and apply what depends on time
        # with the `now` of the call that made it (ChangeConfiguration) or, for a
        # station-side write, of the next advance().
        self._apply_config()
        if name in _TIMED_KEYS:
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
        changed.clear()

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
        inflight = self._inflight
        self._inflight = None
        pending = ([inflight] if inflight is not None else []) + list(self._outbox)
        self._outbox = deque(m for m in pending if _is_transaction_message(m))
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
        if not self.online or self._inflight is not None:
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
            if tx.transaction_id is None:
                # Its StartTransaction was never accepted; nothing can name it. Later
                # issues map offline ids; until then the message cannot be delivered.
                self._dropped(msg)
                return self.next_message(now)
            msg.payload["transactionId"] = tx.transaction_id
        msg.attempts += 1
        self._inflight = msg
        self._last_activity = now
        return msg

    def _dropped(self, msg: Outgoing) -> None:
        """A transaction message given up on: counted and reported, never silent."""
        self.dropped_messages += 1
        self.observer.message_dropped(msg.action)

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
        if self.online and self._inflight is None:
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
        if self._pending_tag is not None and self.connection_timeout > 0:
            t = min(t, self._pending_since + self.connection_timeout)
        if self._soft_reset_at is not None:
            t = min(t, self._soft_reset_at)
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
        if self._soft_reset_at is not None and (
            now >= self._soft_reset_at or not self._transaction_messages_pending()
        ):
            self._soft_reset_at = None
            self.effects.append(Reboot(hard=False, seconds=self.reboot_seconds))
        self.transfers.advance(self, now)
        tx = self.transaction
        if tx is not None:
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
            self._pending_tag = None
            self.connectors[1].authorized = False
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
        return self.meter._since

    # -- answers to our CALLs --------------------------------------------------

    def on_answer(self, payload: dict[str, Any], now: float) -> None:
        """Our in-flight CALL got its CALLRESULT."""
        msg = self._take_inflight()
        self._last_activity = now
        action = msg.action
        if action == "BootNotification":
            self._boot_answered(payload, now)
        elif action == "StartTransaction":
            self._start_answered(msg, payload, now)
        elif action == "Authorize":
            self._authorize_answered(msg.payload["idTag"], payload["idTagInfo"]["status"], now)

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
            retry = interval if interval > 0 else self.heartbeat_interval or BOOT_RETRY_AFTER_ERROR
            self._boot_due = now + retry

    # -- statuses --------------------------------------------------------------

    def _update_status(self, connector_id: int, now: float) -> None:
        conn = self.connectors[connector_id]
        change = conn.update(now)
        if change is not None:
            self.observer.status_changed(connector_id, change[0], change[1])

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
            tag = self._pending_tag
            self._pending_tag = None
            self._start_transaction(tag, now)

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
        """A vendor error becomes active; a running transaction on it stops."""
        self._integrate(now)
        conn = self.connectors[connector_id]
        conn.fault = Fault(error.ocpp_code, error.info, error.vendor_code)
        tx = self.transaction
        if tx is not None and tx.stop_reason is None and conn.faulted:
            self._stop_transaction("Other", now)
        self._recompute_draw(now)
        self._update_status(connector_id, now)

    def clear_fault(self, now: float, connector_id: int = 1) -> None:
        """The active error on a connector is gone."""
        self._integrate(now)
        self.connectors[connector_id].fault = None
        self._recompute_draw(now)
        self._update_status(connector_id, now)

    # -- authorization and transactions ---------------------------------------

    def _can_start(self) -> bool:
        c1 = self.connectors[1]
        return (
            self.transaction is None
            and not c1.faulted
            and c1.operative
            and self.connectors[0].operative
            and not self.connectors[0].faulted
        )

    def _request_authorization(self, id_tag: str, now: float) -> None:
        if not self._can_start() or self._authorizing is not None:
            return
        if self.online and self.boot_status == "Accepted":
            self._authorizing = id_tag
            self._outbox.append(Outgoing("Authorize", {"idTag": id_tag}))
        else:
            self._authorize_offline(id_tag, now)

    def _authorize_offline(self, id_tag: str, now: float) -> None:
        """Offline rules: LocalAuthorizeOffline and AllowOfflineTxForUnknownId."""
        self._authorizing = None
        c = self.config
        ok = c.get_bool("LocalAuthorizeOffline") and c.get_bool("AllowOfflineTxForUnknownId")
        self._authorized(id_tag, "Accepted" if ok else "Invalid", now)

    def _authorize_answered(self, id_tag: str, status: str, now: float) -> None:
        self._authorizing = None
        if not self.config.get_bool("AuthenticationOCPPMode"):
            status = "Accepted"  # free charging: the answer does not gate the session
        self._authorized(id_tag, status, now)

    def _authorized(self, id_tag: str, status: str, now: float) -> None:
        self.observer.authorization(id_tag, status)
        if status != "Accepted" or not self._can_start():
            return
        c1 = self.connectors[1]
        if c1.plugged and not c1.finishing:
            self._start_transaction(id_tag, now)
        else:
            self._pending_tag = id_tag
            self._pending_since = now
            c1.authorized = True
            self._update_status(1, now)

    def _start_transaction(self, id_tag: str, now: float) -> None:
        c1 = self.connectors[1]
        c1.authorized = False
        c1.in_transaction = True
        c1.ev_suspended = self.ev.full
        meter_start = int(self.meter.energy_wh)
        tx = Transaction(self._next_local_tx, 1, id_tag, meter_start, now)
        self._next_local_tx += 1
        self.transaction = tx
        self._outbox.append(
            Outgoing(
                "StartTransaction",
                {
                    "connectorId": 1,
                    "idTag": id_tag,
                    "meterStart": meter_start,
                    "timestamp": iso8601(now),
                },
                tx,
            )
        )
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
        status = payload["idTagInfo"]["status"]
        if (
            status != "Accepted"
            and tx is self.transaction
            and tx.stop_reason is None
            and self.config.get_bool("StopTransactionOnInvalidId")
            # Free charging (guide: AuthenticationOCPPMode False) authenticates no one.
            and self.config.get_bool("AuthenticationOCPPMode")
        ):
            self._stop_transaction("DeAuthorized", now)

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
        self._outbox.append(Outgoing("StopTransaction", payload, tx))
        self.transaction = None
        c1 = self.connectors[1]
        c1.in_transaction = False
        c1.ev_suspended = False
        c1.finishing = c1.plugged
        self._recompute_draw(now)
        self._update_status(1, now)
        self.observer.transaction_stopped(1, reason, meter_stop - tx.meter_start)

    def _recompute_draw(self, now: float) -> None:
        """Offered current and what the EV takes of it; sets SuspendedEVSE below 6 A."""
        self._integrate(now)
        c1 = self.connectors[1]
        offered = self.max_current if (self.transaction is not None and not c1.faulted) else 0.0
        self.meter.offered = offered
        c1.evse_suspended = self.transaction is not None and offered < MIN_CHARGING_CURRENT
        drawing = self.transaction is not None and not c1.evse_suspended and not c1.ev_suspended
        current = min(offered, self.ev.max_current) if drawing else 0.0
        self.meter.draw(current, self.wiring, self.ev.phases)
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
        self._outbox.append(
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
        status = self.config.change_configuration(payload["key"], payload["value"])
        self._apply_config_changes(now)
        return {"status": status}

    def _on_remote_start(self, payload: dict[str, Any], now: float) -> dict[str, Any]:
        connector_id = payload.get("connectorId", 1)
        id_tag = payload["idTag"]
        if connector_id != 1 or not self._can_start() or self._authorizing is not None:
            return {"status": "Rejected"}
        if "chargingProfile" in payload:
            # Smart charging is modelled by a later issue; refusing is honest.
            return {"status": "Rejected"}
        if self.config.get_bool("AuthorizeRemoteTxRequests"):
            self._request_authorization(id_tag, now)
        else:
            self._authorized(id_tag, "Accepted", now)
        self.observer.remote_start(connector_id, id_tag)
        return {"status": "Accepted"}

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
        requested = payload["requestedMessage"]
        connector_id = payload.get("connectorId")
        if connector_id is not None and connector_id not in (0, 1):
            return {"status": "Rejected"}
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
            value = self._meter_value(now, "Trigger", self.measurands)
            mv: dict[str, Any] = {"connectorId": connector_id or 1, "meterValue": [value]}
            self._outbox.append(Outgoing("MeterValues", mv))
        elif requested == "DiagnosticsStatusNotification":
            self._outbox.append(Outgoing("DiagnosticsStatusNotification", {"status": "Idle"}))
        elif requested == "FirmwareStatusNotification":
            self._outbox.append(Outgoing("FirmwareStatusNotification", {"status": "Idle"}))
        else:
            return {"status": "NotImplemented"}
        return {"status": "Accepted"}

    def _on_reset(self, payload: dict[str, Any], now: float) -> dict[str, Any]:
        """Soft: stop the session, deliver what is queued (bounded), reboot. Hard: reboot now;
        the StopTransaction waits in the queue, which survives the reboot."""
        hard = payload["type"] == "Hard"
        tx = self.transaction
        if tx is not None and tx.stop_reason is None:
            self._stop_transaction("HardReset" if hard else "SoftReset", now)
        if hard:
            self.effects.append(Reboot(hard=True, seconds=self.reboot_seconds))
        else:
            self._soft_reset_at = now + SOFT_RESET_GRACE
        return {"status": "Accepted"}

    def _transaction_messages_pending(self) -> bool:
        inflight = self._inflight
        return (inflight is not None and _is_transaction_message(inflight)) or any(
            _is_transaction_message(m) for m in self._outbox
        )

    def rebooted(self, now: float) -> None:
        """Power is back after a reboot: volatile state is gone; configuration,
        availability, the energy register and queued transaction messages remain."""
        self._integrate(now)
        self.boot_status = None
        self._boot_due = now
        self._soft_reset_at = None
        self._inflight = None
        self._outbox = deque(m for m in self._outbox if _is_transaction_message(m))
        self._pending_tag = None
        self._authorizing = None
        for conn in self.connectors:
            conn.authorized = False
            conn.reported = None
            conn.changed_at = now - self.minimum_status_duration
        self._recompute_draw(now)
        for cid in (0, 1):
            self._update_status(cid, now)

    def security_event(self, kind: str, now: float, tech_info: str | None = None) -> None:
        """Report a security event (OCPP 1.6 security extension) when
        ``SecurityEventsEnabled``; e.g. the engine's "FailedToAuthenticateAtCentralSystem"."""
        if not self.config.get_bool("SecurityEventsEnabled"):
            return
        payload: dict[str, Any] = {"type": kind, "timestamp": iso8601(now)}
        if tech_info:
            payload["techInfo"] = tech_info[:255]
        self._outbox.append(Outgoing("SecurityEventNotification", payload))

    def _on_data_transfer(self, payload: dict[str, Any], now: float) -> dict[str, Any]:
        return {"status": "UnknownVendorId"}

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
    **TRANSFER_HANDLERS,
}
