"""A Schneider Charge Pro as OCPP 1.6J sees it, sans-I/O: the facade.

The station takes events (connected, a CALL arrived, our CALL was answered, the
cable was plugged in, time passed) and makes decisions (the next CALL to send, the
answer to a CALL, a new connector status). It never reads a clock or touches a
socket: every entry point takes ``now`` (Unix seconds), and the engine asks
:meth:`Station.next_wakeup` when to call :meth:`Station.advance` again. So the
whole device runs under a fake clock in tests.

This module is the station's lifecycle (boot Accepted/Pending/Rejected, heartbeat,
Reset and reboot, the link going up and down) and the router: CSMS CALLs go to the
feature modules of :mod:`fleet.model.features` (one per OCPP feature profile), the
answers to our CALLs and the hardware events likewise. Outgoing CALLs wait in the
outbox (:mod:`fleet.model.outbox`). Features see the station through
:class:`fleet.model.port.StationPort`; the methods of this class below "primitives
the features share" are that port, each forwarding to the feature that owns it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast

from fleet.model import actions, durable
from fleet.model.auth import Authorization, IdTagInfo
from fleet.model.config import ConfigStore
from fleet.model.connector import Connector
from fleet.model.faults import VendorError
from fleet.model.features import (
    core,
    firmware,
    local_auth,
    metering,
    remote_trigger,
    reservation,
    smart_charging,
    status,
    transaction,
)
from fleet.model.features.firmware import Transfers
from fleet.model.messages import (
    AuthorizeResponse,
    BootNotificationRequest,
    BootNotificationResponse,
    DataTransferRequest,
    Reason,
    ResetRequest,
    ResetResponse,
    SecurityEventNotificationRequest,
    StartTransactionResponse,
    StationRequest,
    StatusNotificationRequest,
    StopTransactionResponse,
)
from fleet.model.meter import EvModel, Meter
from fleet.model.outbox import (
    Outbox,
    Outgoing,
    is_transaction_message,
    wire,
)
from fleet.model.port import handler
from fleet.model.records import (
    BootInfo,
    Driver,
    Effect,
    Effects,
    JsonDict,
    NullObserver,
    Observer,
    Reboot,
    Standalone,
    Transaction,
    iso8601,
)
from fleet.model.reservation import Reservation
from fleet.model.smart_charging import Limits, SmartCharging
from fleet.protocol import errors
from fleet.protocol.errors import OcppError

# What this module defines; the records, effects and the outbox's names are imported
# from where they live (fleet.model.records, fleet.model.outbox), not from here.
__all__ = [
    "BOOT_RETRY_AFTER_ERROR",
    "CSMS_ACTIONS",
    "RESET_RETRY_INTERVAL",
    "SOFT_RESET_GRACE",
    "Station",
]

BOOT_RETRY_AFTER_ERROR = 30.0
"""Seconds before re-sending a BootNotification that got a CALLERROR or no answer."""

CSMS_ACTIONS = frozenset(actions.CSMS_INITIATED)
"""CSMS -> station operations the guide lists; anything else answers NotImplemented."""

# Configuration keys whose change must re-plan something in time.
_TIMED_KEYS = frozenset(
    {
        "MeterValueSampleInterval",
        "disconnectedMeterValueSampleInterval",
        "iMaxDeratingSwCapacity",
        "PhasesConnection",
    }
)
_BACKEND_RESET = "TriggerBackendConfigurationDataReset"
_NO_FAULTS: frozenset[str] = frozenset()

RESET_RETRY_INTERVAL = 5.0
"""Seconds between attempts of a reset that failed (``ResetRetries``); the guide gives none."""

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

    Besides CALLs, the model asks things of the engine through ``effects`` (a queue
    the engine drains after every call into the model): reboot, reconnect, standalone.
    """

    # Thousands of stations per process: slots keep each one's ~50 attributes in ~0.4 KB
    # instead of a ~1.6 KB dict (issue 16). ``__dict__`` stays available (allocated only
    # when something sets an attribute not listed here, e.g. a test wrapping a method).
    __slots__ = (
        "__dict__",
        "_boot_due",
        "_closing",
        "_config_changes",
        "_deferred",
        "_down_at",
        "_ending",
        "_last_activity",
        "_power_cut",
        "_reset",
        "_reset_reboot",
        "auth",
        "boot_info",
        "boot_status",
        "config",
        "connection_timeout",
        "connectors",
        "driver",
        "effects",
        "enabled_faults",
        "ev",
        "heartbeat_interval",
        "heartbeat_scale",
        "identity",
        "limit_change_at",
        "load_held_until",
        "max_current",
        "measurands",
        "meter",
        "minimum_status_duration",
        "next_local_tx",
        "observer",
        "offline_sample_interval",
        "online",
        "outbox",
        "pending_tx_profile",
        "reboot_seconds",
        "reject_number_phases",
        "reservation",
        "reset_close_delay",
        "reset_fails",
        "sample_interval",
        "sample_scale",
        "smart",
        "standalone",
        "stop_measurands",
        "transaction",
        "transfers",
        "wiring",
        "zero_inoperative_pending",
    )

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
        self.reject_number_phases = False
        """The guide marks ``numberPhases`` "Parameter not used": accepted and ignored, as
        many CSMSs always send it. True (profile: ``station.reject_number_phases``) takes
        the guide's NOTE instead: a profile carrying it is Rejected."""
        self.reboot_seconds = 10.0
        """How long a reboot keeps the station dark (profile: ``station.reboot_seconds``)."""
        self.reset_close_delay = 0.0
        """Seconds a unit restarting for a Reset keeps its link open, sending nothing new,
        before it closes it (profile: ``station.reset_close_delay``, default 1.0). A real
        unit takes a moment to go down; a CSMS that sees the socket close within a
        millisecond of the Reset.conf may report the call as failed (issue 17). The bare
        model (no profile) goes down at once."""
        self.enabled_faults: frozenset[str] = _NO_FAULTS
        """Detections the guide ships disabled (``faults.DISABLED_BY_DEFAULT``) that this
        unit has switched on (profile: ``faults.enable``); the others are never raised."""
        self.config = config if config is not None else ConfigStore()
        self.ev = ev if ev is not None else EvModel()
        self.boot_info = boot_info if boot_info is not None else BootInfo(serial=identity[-25:])
        self.observer: Observer = observer if observer is not None else NullObserver()
        self.meter = Meter(energy_wh, now)
        self.connectors = (Connector(0, now), Connector(1, now))
        self.online = False
        self.standalone = False  # see rebooted()
        self.boot_status: str | None = None  # None until a BootNotification is answered
        self._boot_due = now
        self.outbox = Outbox(self._message_dropped)
        self._last_activity = now
        self.next_local_tx = 1
        self.transaction: Transaction | None = None
        self.driver = Driver()
        self.effects = Effects()  # Reboot, Reconnect, transfer effects
        self.transfers = Transfers()
        self.auth = Authorization()  # the Local Authorization List and the cache
        self.reservation: Reservation | None = None
        self.pending_tx_profile: dict[str, Any] | None = None
        """The chargingProfile of an accepted RemoteStartTransaction until its transaction
        starts, when it is installed as that transaction's TxProfile."""
        self.smart = SmartCharging()  # installed charging profiles; survive reboots
        self.limit_change_at: float | None = None
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
        self._down_at: float | None = None  # deferred effects wait until then (going_down)
        self._reset_reboot: str | None = None  # "Hard"/"Soft": the coming reboot is a Reset
        # ChangeAvailability(0, Inoperative) while charging: applied when the session ends.
        self.zero_inoperative_pending = False
        self._power_cut = False  # the mains are gone: dark until rebooted()
        self._ending = False  # the run is over for this unit: it starts nothing new
        self.load_held_until = float("-inf")
        """No current is offered before this (RestoreTimeout after a power cut)."""
        self.config.set_internal("BoxIdentifier", identity[:50])
        # Model seconds per configured second of HeartbeatInterval (and a boot retry
        # interval) and of the meter sample intervals: above 1 when the model clock is
        # compressed and these timers keep real time (see scale_timers).
        self.heartbeat_scale = 1.0
        self.sample_scale = 1.0
        self._apply_config()
        # Keys changed since the last apply_config_changes (None: none, the usual case).
        self._config_changes: set[str] | None = None
        self.config.subscribe(self._config_changed)

    # -- configuration ---------------------------------------------------------

    def use_config(self, config: ConfigStore) -> None:
        """Replace the configuration store (a unit's flash loaded: fleet.model.durable)."""
        self.config = config
        self._apply_config()
        config.subscribe(self._config_changed)

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
        metering.reschedule_sample(self, now)

    def _config_changed(self, name: str, value: str) -> None:
        # The listener has no clock: note the change, and apply what depends on time
        # with the `now` of the call that made it (ChangeConfiguration) or, for a
        # station-side write, of the next advance().
        self._apply_config()
        if name in _TIMED_KEYS or (name == _BACKEND_RESET and value == "True"):
            if self._config_changes is None:
                self._config_changes = set()
            self._config_changes.add(name)

    def apply_config_changes(self, now: float) -> None:
        changed = self._config_changes
        if changed is None:
            return
        if (
            "MeterValueSampleInterval" in changed
            or "disconnectedMeterValueSampleInterval" in changed
        ):
            metering.reschedule_sample(self, now)
        if "iMaxDeratingSwCapacity" in changed or "PhasesConnection" in changed:
            self.recompute_draw(now)
        if _BACKEND_RESET in changed:
            core.backend_data_reset(self, now)
        self._config_changes = None

    # -- the link --------------------------------------------------------------

    def connected(self, now: float) -> None:
        """The websocket is open. Boot if this power cycle has not been accepted yet."""
        self.online = True
        self._last_activity = now
        self.outbox.link_up()
        if self.boot_status != "Accepted":
            self._boot_due = now
        else:
            for conn in self.connectors:
                conn.changed_at = min(conn.changed_at, now - self.minimum_status_duration)
        metering.reschedule_sample(self, now)

    def disconnected(self, now: float) -> None:
        """The websocket is gone: keep transaction messages, drop the rest."""
        self.online = False
        self._closing = False
        self._down_at = None
        self.effects.extend(self._deferred)  # nothing in flight any more: go ahead
        self._deferred.clear()
        pending = self.outbox.link_down()
        for m in pending:
            if m.action == "StatusNotification":
                # Never delivered: report the connector's status again once back online.
                self.connectors[m.payload["connectorId"]].reported = None
        for m in pending:
            if m.action == "Authorize":
                # Queued or in flight, it will never be answered: decide offline, or the
                # reader would wait for it forever.
                transaction.authorize_offline(self, m.payload["idTag"], now)
        if self.boot_status == "Pending":
            self.boot_status = None
        metering.reschedule_sample(self, now)

    # -- what to send ----------------------------------------------------------

    def next_message(self, now: float) -> Outgoing | None:
        """The next CALL to send now, if any; it is in flight until answered or failed."""
        outbox = self.outbox
        if not self.online or outbox.inflight is not None or self._closing or self.standalone:
            return None
        msg: Outgoing | None
        if self.boot_status != "Accepted":
            # While Pending, what the CSMS triggers goes at once (OCPP 1.6 4.2).
            msg = outbox.pop_triggered() if self.boot_status == "Pending" else None
            if msg is None:
                if now < self._boot_due:
                    return None
                self._boot_due = float("inf")
                msg = Outgoing("BootNotification", wire(self.boot_payload()))
        else:
            status.queue_due_statuses(self, now)
            msg = outbox.pop_ready(now)
            if msg is None:
                if (
                    self.heartbeat_interval > 0
                    and now >= self._last_activity + self.heartbeat_interval
                ):
                    msg = Outgoing("Heartbeat", {})
                else:
                    return None
        outbox.sending(msg)
        self._last_activity = now
        return msg

    def boot_payload(self) -> BootNotificationRequest:
        b = self.boot_info
        payload: BootNotificationRequest = {
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
        if self._power_cut:
            return None  # dark: nothing happens until power returns (rebooted())
        times: list[float | None] = []
        if (
            self.online
            and self.outbox.inflight is None
            and not self._closing
            and not self.standalone
        ):
            if self.boot_status != "Accepted":
                times.append(self._boot_due)
                if self.boot_status == "Pending" and self.outbox.has_triggered():
                    times.append(self.meter.since)  # now: see next_message
            else:
                times.append(self.outbox.next_due())
                if self.heartbeat_interval > 0:
                    times.append(self._last_activity + self.heartbeat_interval)
                times.append(status.next_report(self))
        times.append(transaction.next_wakeup(self))
        if self._deferred and self.outbox.inflight is None:
            times.append(self.meter.since if self._down_at is None else self._down_at)
        reset = self._reset
        if reset is not None:
            if reset.waits_for_queue and not self._transaction_messages_pending():
                times.append(self.meter.since)
            times.append(reset.due)
        times.append(reservation.next_wakeup(self))
        times.append(self.limit_change_at)
        times.append(self.transfers.next_wakeup())
        t = min((x for x in times if x is not None), default=float("inf"))
        return None if t == float("inf") else t

    # -- time ------------------------------------------------------------------

    def advance(self, now: float) -> None:
        """Let time pass: integrate energy, take samples, expire what has expired."""
        if self._power_cut:
            return  # dark: no samples, no timers, nothing drawn (power_lost())
        if self._config_changes:
            self.apply_config_changes(now)
        self.integrate(now)
        if self._deferred:
            self._release_deferred(now)
        reset = self._reset
        if reset is not None and (
            now >= reset.due or (reset.waits_for_queue and not self._transaction_messages_pending())
        ):
            self._attempt_reset(now)
        reservation.advance(self, now)
        self.transfers.advance(self, now)
        if self.limit_change_at is not None and now >= self.limit_change_at:
            self.recompute_draw(now)  # a charging schedule steps to its next limit
        transaction.advance(self, now)

    # -- answers to our CALLs --------------------------------------------------

    def on_answer(self, payload: JsonDict, now: float) -> None:
        """Our in-flight CALL got its CALLRESULT."""
        msg = self.outbox.take_inflight()
        self._last_activity = now
        self.outbox.answered(msg)
        action = msg.action
        # The engine validated the answer against the action's schema: it is its TypedDict.
        if action == "BootNotification":
            self._boot_answered(cast(BootNotificationResponse, payload), now)
        elif action == "StartTransaction":
            assert msg.transaction is not None
            started = cast(StartTransactionResponse, payload)
            transaction.start_answered(self, msg.transaction, started, now)
        elif action == "Authorize":
            info = cast(AuthorizeResponse, payload)["idTagInfo"]
            transaction.authorize_answered(self, msg.payload["idTag"], info, now)
        elif action == "StopTransaction":
            stopped = cast(StopTransactionResponse, payload)
            transaction.stop_answered(self, msg.payload, stopped, now)

    def on_failure(self, timeout: bool, now: float) -> None:
        """Our in-flight CALL got a CALLERROR, an invalid answer, or no answer in time."""
        msg = self.outbox.take_inflight()
        action = msg.action
        if action == "BootNotification":
            self._boot_due = now + BOOT_RETRY_AFTER_ERROR
        elif is_transaction_message(msg):
            self.outbox.failed(
                msg,
                timeout,
                now,
                self.config.get_int("TransactionMessageAttempts"),
                self.config.get_int("TransactionMessageRetryInterval"),
            )
        elif action == "Authorize":
            transaction.authorize_offline(self, msg.payload["idTag"], now)

    def _boot_answered(self, payload: BootNotificationResponse, now: float) -> None:
        boot_status = payload["status"]
        interval = int(payload["interval"])
        self.boot_status = boot_status
        if boot_status == "Accepted":
            if interval > 0:
                self.config.set_internal("HeartbeatInterval", interval)
            status.report_all_again(self, now)
            status.queue_due_statuses(self, now)
            self.transfers.boot_accepted(self, now)
        else:
            retry = (
                interval * self.heartbeat_scale
                if interval > 0
                else self.heartbeat_interval or BOOT_RETRY_AFTER_ERROR
            )
            self._boot_due = now + retry

    # -- Reset and reboot ------------------------------------------------------

    def _on_reset(self, payload: ResetRequest, now: float) -> ResetResponse:
        """Soft: stop the session, deliver what is queued (bounded), reboot. Hard: reboot now;
        the StopTransaction waits in the queue, which survives the reboot. An attempt that
        fails (``reset_fails``) is retried ``ResetRetries`` times."""
        hard = payload["type"] == "Hard"
        tx = self.transaction
        if tx is not None and tx.stop_reason is None:
            self.stop_transaction("HardReset" if hard else "SoftReset", now)
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
        self.going_down(
            Reboot(hard=reset.hard, seconds=self.reboot_seconds),
            not_before=now + self.reset_close_delay,
        )

    def _transaction_messages_pending(self) -> bool:
        return self.outbox.backlog > 0

    def power_lost(self, seconds: float, now: float) -> None:
        """The mains supply is gone for ``seconds`` (fleet.scenarios.power): the unit is
        dark at once. The meter stops, nothing more is sent or sampled, the CALL in
        flight is abandoned (its answer will never be read), a Reset under way is moot.
        The engine keeps the station dark for ``seconds`` (the ``Reboot`` effect), then
        :meth:`rebooted` finishes the power cycle."""
        self.integrate(now)
        self.meter.draw(0.0, self.wiring, self.ev.phases)
        self._power_cut = True
        self.load_held_until = float("inf")
        self._reset = None
        self._reset_reboot = None
        self.going_down(Reboot(hard=True, seconds=seconds, abrupt=True), at_once=True)

    def rebooted(self, now: float) -> None:
        """Power is back after a reboot: volatile state is gone; configuration,
        availability, the energy register, queued transaction messages, the Local
        Authorization List, the Authorization Cache and a reservation (it still expires
        at its expiryDate) remain. With ``SecurityEventsEnabled`` it queues the
        security events StartupOfTheDevice and, after a Reset, ResetOrReboot.

        After a power cut (:meth:`power_lost`) it is a power cycle: the faults latched
        until one clear, a transaction still open is stopped with reason PowerLoss (queued
        after the BootNotification, meterStop the register at the cut, which has not
        moved since), and no current is offered for ``RestoreTimeout`` seconds.

        A Station built from scratch models a unit already running when the simulation
        starts, so only this reboot, not construction, reports StartupOfTheDevice."""
        self.integrate(now)
        power_cycle, self._power_cut = self._power_cut, False
        self._ending = False  # powered up again (a ramp back up): a unit like any other
        self.boot_status = None
        self._boot_due = now
        self._reset = None
        self._closing = False
        self.outbox.reboot()
        self.driver.authorizing = None
        transaction.clear_pending_tag(self)
        for conn in self.connectors:
            conn.reported = None
            conn.changed_at = now - self.minimum_status_duration
        if power_cycle:
            status.clear_latched_faults(self)
            self.load_held_until = now + self.config.get_int("RestoreTimeout")
            tx = self.transaction
            if tx is not None and tx.stop_reason is None:
                self.stop_transaction("PowerLoss", now)
        if self.zero_inoperative_pending and self.transaction is None:
            self.zero_inoperative_pending = False
            self.connectors[0].operative = False
        self.recompute_draw(now)
        for cid in (0, 1):
            self.update_status(cid, now)
        self.security_event("StartupOfTheDevice", now)
        if self._reset_reboot is not None:
            self.security_event("ResetOrReboot", now, f"{self._reset_reboot} reset by the CSMS")
            self._reset_reboot = None
        # OcppEnable (RebootRequired) takes effect here: False is standalone mode.
        self.standalone = not self.config.get_bool("OcppEnable")
        if self.standalone:
            self.effects.append(Standalone())

    def snapshot(self, now: float) -> JsonDict:
        """The durable state (fleet.model.durable): what survives a power cycle."""
        return durable.snapshot(self, now)

    def power_on(self, saved: JsonDict, now: float) -> None:
        """Power returns on a unit whose memory holds ``saved`` (a :meth:`snapshot`, e.g.
        from the previous run): load it and finish the power cycle as after a power
        cut, so a transaction the unit was in is stopped with reason PowerLoss."""
        self.use_config(durable.restore(self, saved, now))
        self._power_cut = True
        self.rebooted(now)

    def local_setup(self, settings: Mapping[str, str | int | bool], now: float) -> None:
        """The installer changes settings on the unit itself (the commissioning app or
        web page, no CSMS involved) and restarts it to apply them: how a standalone unit
        gets back under supervision (``{"OcppEnable": True}``), since no CSMS can reach
        it to send ChangeConfiguration or Reset."""
        self.integrate(now)
        for key, value in settings.items():
            self.config.set_internal(key, value)
        self.going_down(Reboot(hard=True, seconds=self.reboot_seconds))

    # -- station-initiated messages a scenario or the engine asks for -------------

    def security_event(self, kind: str, now: float, tech_info: str | None = None) -> None:
        """Report a security event (OCPP 1.6 security extension) when
        ``SecurityEventsEnabled``; e.g. the engine's "FailedToAuthenticateAtCentralSystem"."""
        if not self.config.get_bool("SecurityEventsEnabled"):
            return
        payload: SecurityEventNotificationRequest = {"type": kind, "timestamp": iso8601(now)}
        if tech_info:
            payload["techInfo"] = tech_info[:255]
        self.send("SecurityEventNotification", payload)

    def data_transfer(
        self, vendor_id: str, message_id: str | None, data: str | None, now: float
    ) -> None:
        """Queue a DataTransfer.req to the CSMS.

        The guide lists station-initiated DataTransfer as "Parameter not used": a real
        Charge Pro never sends one. This is for scenarios that want to load a CSMS with
        them anyway; the answer is counted (not Accepted counts as a failure) and dropped.
        """
        self.integrate(now)
        payload: DataTransferRequest = {"vendorId": vendor_id}
        if message_id is not None:
            payload["messageId"] = message_id
        if data is not None:
            payload["data"] = data
        self.send("DataTransfer", payload)

    # -- hardware events (features/transaction.py, features/status.py) ------------

    # A unit without power notices nothing: a cable moved while dark is found as it is
    # at power return (rebooted()), a badge or a fault goes unseen.

    def plug_in(self, now: float) -> None:
        """The driver plugs the cable into the EV."""
        if self._power_cut:
            self.connectors[1].plugged = True
            return
        transaction.plug_in(self, now)

    def unplug(self, now: float) -> None:
        """The driver unplugs the cable at the EV."""
        if self._power_cut:
            self.connectors[1].plugged = False
            return
        transaction.unplug(self, now)

    def present_tag(self, id_tag: str, now: float) -> None:
        """A badge is presented to the reader (or the free-charging tag is used)."""
        if not self._power_cut:
            transaction.present_tag(self, id_tag, now)

    def ev_suspend(self, now: float) -> None:
        """The EV stops drawing (e.g. its battery management says so)."""
        transaction.ev_suspend(self, now)

    def ev_resume(self, now: float) -> None:
        """The EV wants current again."""
        transaction.ev_resume(self, now)

    def raise_fault(self, error: VendorError, now: float, connector_id: int = 1) -> None:
        """A vendor error becomes active (see features/status.py)."""
        if not self._power_cut:
            status.raise_fault(self, error, now, connector_id)

    def clear_fault(self, now: float, connector_id: int = 1) -> None:
        """The active error on a connector is gone (see features/status.py)."""
        status.clear_fault(self, now, connector_id)

    # -- CALLs from the CSMS ---------------------------------------------------

    def handle_call(self, action: str, payload: JsonDict, now: float) -> JsonDict:
        """Answer a schema-valid CALL from the CSMS; raise OcppError for a CALLERROR."""
        self._last_activity = now
        self.integrate(now)
        handler = _HANDLERS.get(action)
        if handler is None:
            raise OcppError(errors.NOT_IMPLEMENTED, f"{action} is not modelled yet")
        return handler(self, payload, now)

    # -- primitives the features share (fleet.model.port.StationPort) -------------

    def send(self, action: str, payload: StationRequest) -> None:
        """Queue a CALL that is not transaction-related."""
        self.outbox.append(Outgoing(action, wire(payload)))

    def queue_transaction_message(self, msg: Outgoing) -> None:
        if msg.transaction is not None and msg.transaction.standalone:
            return  # a standalone session is never OCPP's
        self.outbox.append_transaction(msg, self.online)

    def can_start(self) -> bool:
        c0, c1 = self.connectors
        return (
            self.transaction is None
            and not c1.faulted
            and c1.operative
            and c0.operative
            and not c0.faulted
            # A unit about to restart (or to drop its link on purpose) starts nothing new.
            and self._reset is None
            and not self._closing
            and not self._ending
        )

    # -- the end of a run ----------------------------------------------------------

    def end_of_run(self, reason: Reason, now: float) -> None:
        """The run is over (fleet.engine.link.StationLink.end): stop the transaction in
        progress with ``reason`` (queued like any StopTransaction) and start nothing new,
        so the CSMS is left with no open transaction once the queue is delivered."""
        self.integrate(now)
        self._ending = True
        tx = self.transaction
        # A dark unit (power cut) decides nothing: it reports PowerLoss when power returns.
        if tx is not None and tx.stop_reason is None and not tx.standalone and not self._power_cut:
            self.stop_transaction(reason, now)

    @property
    def unfinished_transactions(self) -> int:
        """Transactions the CSMS has not seen end: the one in progress, and every one
        whose messages still wait in the queue (or in flight)."""
        open_ = {
            id(m.transaction) for m in self.outbox.durable_messages() if is_transaction_message(m)
        }
        tx = self.transaction
        if tx is not None and not tx.standalone:
            open_.add(id(tx))
        return len(open_)

    def going_down(
        self, effect: Effect, *, at_once: bool = False, not_before: float | None = None
    ) -> None:
        """Ask the engine to close the link (reboot, reconnect) once no CALL is in flight
        and, with ``not_before``, no sooner than that (the unit takes a moment to go down;
        it sends nothing new meanwhile); ``at_once`` (a power cut) abandons the CALL in
        flight and supersedes whatever was waiting for it."""
        self._closing = True
        if at_once:
            self._deferred.clear()
            self._down_at = None
        elif not_before is not None and not_before > self.meter.since:
            self._down_at = not_before
        if at_once or (self.outbox.inflight is None and self._down_at is None):
            self.effects.append(effect)
        else:
            self._deferred.append(effect)

    def _release_deferred(self, now: float) -> None:
        """The link may close now: nothing in flight, and the moment to go down is over."""
        if self.outbox.inflight is None and (self._down_at is None or now >= self._down_at):
            self._down_at = None
            self.effects.extend(self._deferred)
            self._deferred.clear()

    def integrate(self, now: float) -> None:
        added = self.meter.integrate(now)
        if added:
            ev = self.ev
            ev.soc = min(1.0, ev.soc + added / ev.battery_wh)
            self.observer.energy_delivered(added)

    def update_status(self, connector_id: int, now: float) -> None:
        status.update_status(self, connector_id, now)

    def status_payload(self, conn: Connector, now: float) -> StatusNotificationRequest:
        return status.status_payload(conn, now)

    def report_local_list_conflict(self, now: float) -> None:
        status.report_local_list_conflict(self, now)

    def request_authorization(self, id_tag: str, now: float) -> None:
        transaction.request_authorization(self, id_tag, now)

    def authorized(self, id_tag: str, info: IdTagInfo, now: float, *, local: bool = False) -> None:
        transaction.authorized(self, id_tag, info, now, local=local)

    def clear_pending_tag(self) -> None:
        transaction.clear_pending_tag(self)

    def stop_transaction(self, reason: Reason, now: float, id_tag: str | None = None) -> None:
        transaction.stop_transaction(self, reason, now, id_tag)

    def set_reservation(self, reservation_: Reservation | None, now: float) -> None:
        reservation.set_reservation(self, reservation_, now)

    def recompute_draw(self, now: float) -> None:
        smart_charging.recompute_draw(self, now)

    def profile_limits(self) -> Limits:
        return smart_charging.profile_limits(self)

    # -- introspection ---------------------------------------------------------

    @property
    def queued(self) -> int:
        """Messages waiting to be sent (transaction messages survive offline)."""
        return len(self.outbox)

    @property
    def transaction_backlog(self) -> int:
        """Transaction messages waiting to be delivered (queued or in flight)."""
        return self.outbox.backlog

    @property
    def dropped_messages(self) -> int:
        """Transaction messages given up on (each also told to the observer)."""
        return self.outbox.dropped

    @property
    def offline_delivered(self) -> int:
        """Offline-queued transaction messages answered."""
        return self.outbox.offline_delivered

    @property
    def transaction_messages_queued(self) -> int:
        """Every Start/MeterValues/Stop ever queued."""
        return self.outbox.transaction_messages_queued

    @property
    def transaction_resends(self) -> int:
        """Sends of a transaction message after its first."""
        return self.outbox.transaction_resends

    @property
    def queue_limit(self) -> int:
        """See :attr:`fleet.model.outbox.Outbox.limit`."""
        return self.outbox.limit

    @queue_limit.setter
    def queue_limit(self, value: int) -> None:
        self.outbox.limit = value

    def status(self, connector_id: int) -> str:
        return self.connectors[connector_id].status

    def _message_dropped(self, action: str) -> None:
        self.observer.message_dropped(action)


_HANDLERS: dict[str, Callable[[Station, JsonDict, float], JsonDict]] = {
    "Reset": handler(Station._on_reset),
    **core.HANDLERS,
    **firmware.HANDLERS,
    **local_auth.HANDLERS,
    **reservation.HANDLERS,
    **smart_charging.HANDLERS,
    **remote_trigger.HANDLERS,
}
