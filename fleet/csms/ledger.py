"""What the reference CSMS received, kept so a test can prove what the fleet sent.

The ledger is pure bookkeeping: the server calls one ``record_*`` method per message it
accepted and the ledger notices protocol-level inconsistencies as they happen (a
MeterValues for a transaction nobody started, a second StopTransaction, an energy
register running backwards). :meth:`Ledger.check` adds the checks that only make sense
once a transaction is over. Nothing here does I/O, so it is testable with plain calls and
a fake clock.

Delivery of transaction messages is at-least-once (OCPP 1.6, 4.10): a CALL in flight
when the link drops may have arrived, and the station sends it again. The ledger is
idempotent about it, as a CSMS is expected to be: a StartTransaction equal to one
already recorded (station, connector, idTag, meterStart, timestamp) gets the same
transactionId back, and a StopTransaction or MeterValues equal to one already recorded
is not applied twice. Each such copy counts as a *re-delivery*
(``StationRecord.redeliveries``), not a duplicate; a *duplicate* is a message for the
same thing with different content (a second, different StopTransaction), an anomaly.
Byte-identical copies cannot be told from a station sending a message twice by
mistake, so a test compares the re-deliveries with the re-sends the stations made.
``check(sent=...)`` also proves nothing was lost: each station's count of distinct
transaction messages received must equal what the station queued (minus what it
dropped, counted on its side).

Payloads are stored as the station sent them (camelCase keys), not as the ``ocpp``
library hands them to handlers, so a ledger entry can be compared to the wire.
"""

from __future__ import annotations

import copy
import itertools
import json
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

__all__ = [
    "ENERGY_REGISTER",
    "JournaledLedger",
    "Ledger",
    "StationRecord",
    "StatusEntry",
    "TransactionRecord",
    "energy_readings",
]

#: The measurand the transaction checks look at; it is also the OCPP default measurand
#: when a sampled value has none.
ENERGY_REGISTER = "Energy.Active.Import.Register"

# Readings converted from kWh carry binary rounding noise; a register that "went
# backwards" by a millionth of a Wh is not a finding.
_WH_TOLERANCE = 1e-6


class StatusEntry(NamedTuple):
    """One StatusNotification.req, with the time the CSMS received it."""

    received_at: float
    connector_id: int
    status: str
    error_code: str
    info: str | None
    vendor_error_code: str | None


@dataclass(slots=True)
class TransactionRecord:
    """A transaction as the CSMS saw it, keyed by the id the CSMS assigned."""

    transaction_id: int
    connector_id: int
    id_tag: str
    meter_start: int
    start_timestamp: str
    reservation_id: int | None = None
    #: The idTagInfo status the CSMS answered the StartTransaction with.
    status: str = "Accepted"
    #: MeterValues.req ``meterValue`` elements that named this transaction, in arrival order.
    meter_values: list[dict[str, Any]] = field(default_factory=list)
    meter_stop: int | None = None
    stop_timestamp: str | None = None
    stop_reason: str | None = None
    stop_id_tag: str | None = None
    #: StopTransaction.req ``transactionData``, or None when the station sent none.
    transaction_data: list[dict[str, Any]] | None = None
    stopped: bool = False
    #: Canonical JSON of every MeterValues.req ``meterValue`` list recorded, to tell a
    #: re-delivery from new values.
    meter_value_keys: set[str] = field(default_factory=set)

    @property
    def energy_wh(self) -> int | None:
        """Energy delivered according to the Start/Stop meter readings (None while active)."""
        if self.meter_stop is None:
            return None
        return self.meter_stop - self.meter_start


@dataclass(slots=True)
class StationRecord:
    """Everything one station (one charge point identity) sent to the CSMS."""

    station_id: str
    #: Accepted websocket connections; more than one means the station reconnected.
    connections: int = 0
    boots: int = 0
    last_boot: dict[str, Any] | None = None
    boot_times: list[float] = field(default_factory=list)
    #: Status the CSMS answered to the last BootNotification.
    registration_status: str | None = None
    statuses: list[StatusEntry] = field(default_factory=list)
    last_status: dict[int, StatusEntry] = field(default_factory=dict)
    heartbeats: int = 0
    authorizations: dict[str, int] = field(default_factory=dict)
    transactions: dict[int, TransactionRecord] = field(default_factory=dict)
    #: connector id -> id of the transaction that is running on it.
    active_transactions: dict[int, int] = field(default_factory=dict)
    #: (connector id, meterValue) from MeterValues.req without a transactionId.
    meter_values_without_transaction: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    #: (connector id, transaction id, meterValue) naming a transaction this station
    #: never started; kept so nothing the station sent is lost.
    unmatched_meter_values: list[tuple[int, int, dict[str, Any]]] = field(default_factory=list)
    meter_value_samples: int = 0
    data_transfers: list[dict[str, Any]] = field(default_factory=list)
    diagnostics_statuses: list[str] = field(default_factory=list)
    firmware_statuses: list[str] = field(default_factory=list)
    #: SecurityEventNotification.req payloads (``type``, ``timestamp``, ``techInfo``).
    security_events: list[dict[str, Any]] = field(default_factory=list)
    messages: dict[str, int] = field(default_factory=dict)
    anomalies: list[str] = field(default_factory=list)
    #: Distinct transaction messages (StartTransaction, StopTransaction, MeterValues
    #: naming a transaction) recorded; re-deliveries are not counted again.
    transaction_messages: int = 0
    #: Copies of a transaction message already recorded (at-least-once delivery).
    redeliveries: int = 0
    #: Messages for a transaction already closed, with different content.
    duplicates: int = 0
    #: (connector, idTag, meterStart, timestamp) of each StartTransaction -> its id.
    start_keys: dict[tuple[int, str, int, str], int] = field(default_factory=dict)


def _fmt(value: float) -> str:
    """Print 1200.0 as 1200 so that messages read like the meter values on the wire."""
    return str(int(value)) if float(value).is_integer() else repr(value)


def energy_readings(meter_values: Iterable[Mapping[str, Any]]) -> tuple[list[float], list[str]]:
    """Extract the energy register readings in Wh, in order, plus what could not be read.

    Only whole-meter readings count: a per-phase register (``phase`` set) or one at the EV
    is not comparable with meterStart/meterStop. Signed data is opaque and skipped.
    """
    readings: list[float] = []
    problems: list[str] = []
    for meter_value in meter_values:
        for sample in meter_value.get("sampledValue", ()):
            if sample.get("measurand", ENERGY_REGISTER) != ENERGY_REGISTER:
                continue
            if sample.get("phase") is not None or sample.get("location", "Outlet") != "Outlet":
                continue
            if sample.get("format") == "SignedData":
                continue
            raw = sample.get("value")
            try:
                value = float(raw)
            except (TypeError, ValueError):
                problems.append(f"unreadable energy register value {raw!r}")
                continue
            unit = sample.get("unit", "Wh")
            if unit == "kWh":
                value *= 1000.0
            elif unit != "Wh":
                problems.append(f"energy register in unexpected unit {unit!r}")
                continue
            readings.append(value)
    return readings, problems


def _backwards(readings: list[float], where: str) -> list[str]:
    return [
        f"energy register went backwards in {where}: {_fmt(prev)} -> {_fmt(cur)}"
        for prev, cur in itertools.pairwise(readings)
        if cur < prev - _WH_TOLERANCE
    ]


def _instant(timestamp: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(timestamp))
    except ValueError:
        return None


def _out_of_order(tx: TransactionRecord) -> list[str]:
    """MeterValues timestamps non-decreasing and between the Start and Stop timestamps."""
    tid = tx.transaction_id
    start, stop = _instant(tx.start_timestamp), _instant(tx.stop_timestamp)
    problems: list[str] = []
    previous = start
    for mv in tx.meter_values:
        at = _instant(mv.get("timestamp"))
        if at is None:
            problems.append(f"unreadable meter value timestamp in transaction {tid}")
            continue
        if previous is not None and at < previous:
            problems.append(
                f"meter value at {mv.get('timestamp')} out of order in transaction {tid}"
            )
        if stop is not None and at > stop:
            problems.append(
                f"meter value at {mv.get('timestamp')} after the stop in transaction {tid}"
            )
        previous = at
    return problems


class Ledger:
    """Per-station record of what arrived at the CSMS, safe to read from other threads.

    The CSMS loop thread writes, tests and the CLI read from theirs; one lock around
    every method is cheaper to reason about than anything finer, and the CSMS does
    very little work per message.
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._stations: dict[str, StationRecord] = {}
        self._anomalies: list[str] = []
        self._next_transaction_id = 1
        # transaction id -> owning station, to tell "unknown" from "someone else's".
        self._owner: dict[int, str] = {}
        # transaction id -> last energy reading (Wh) seen in its MeterValues.
        self._last_energy: dict[int, float] = {}

    # -- recording (called by the server) ------------------------------------------------

    def _station(self, station_id: str) -> StationRecord:
        record = self._stations.get(station_id)
        if record is None:
            record = self._stations[station_id] = StationRecord(station_id)
        return record

    def _anomaly(self, record: StationRecord, text: str) -> None:
        line = f"{record.station_id}: {text}"
        record.anomalies.append(line)
        self._anomalies.append(line)

    def record_anomaly(self, station_id: str, text: str) -> None:
        """Note a problem the server found (e.g. a payload the schema rejected)."""
        with self._lock:
            self._anomaly(self._station(station_id), text)

    def record_connection(self, station_id: str) -> None:
        with self._lock:
            self._station(station_id).connections += 1

    def record_message(self, station_id: str, action: str) -> None:
        """Count every CALL a station sent, including ones that were then rejected."""
        with self._lock:
            record = self._station(station_id)
            record.messages[action] = record.messages.get(action, 0) + 1
            if record.registration_status == "Rejected" and action != "BootNotification":
                # OCPP 1.6 4.2: after Rejected the station must stay silent until the
                # interval elapsed and then boot again.
                self._anomaly(record, f"{action} after a rejected BootNotification")

    def record_boot(
        self, station_id: str, payload: Mapping[str, Any], status: str = "Accepted"
    ) -> None:
        with self._lock:
            record = self._station(station_id)
            record.boots += 1
            record.last_boot = dict(payload)
            record.boot_times.append(self._clock())
            record.registration_status = status

    def record_status(
        self,
        station_id: str,
        connector_id: int,
        status: str,
        error_code: str,
        info: str | None = None,
        vendor_error_code: str | None = None,
    ) -> None:
        with self._lock:
            record = self._station(station_id)
            entry = StatusEntry(
                self._clock(), connector_id, status, error_code, info, vendor_error_code
            )
            record.statuses.append(entry)
            record.last_status[connector_id] = entry

    def record_heartbeat(self, station_id: str) -> None:
        with self._lock:
            self._station(station_id).heartbeats += 1

    def record_authorize(self, station_id: str, id_tag: str) -> None:
        with self._lock:
            tags = self._station(station_id).authorizations
            tags[id_tag] = tags.get(id_tag, 0) + 1

    def record_data_transfer(self, station_id: str, payload: Mapping[str, Any]) -> None:
        with self._lock:
            self._station(station_id).data_transfers.append(dict(payload))

    def record_diagnostics_status(self, station_id: str, status: str) -> None:
        with self._lock:
            self._station(station_id).diagnostics_statuses.append(status)

    def record_firmware_status(self, station_id: str, status: str) -> None:
        with self._lock:
            self._station(station_id).firmware_statuses.append(status)

    def record_security_event(self, station_id: str, event: Mapping[str, Any]) -> None:
        with self._lock:
            self._station(station_id).security_events.append(dict(event))

    def start_transaction(
        self,
        station_id: str,
        connector_id: int,
        id_tag: str,
        meter_start: int,
        timestamp: str,
        reservation_id: int | None = None,
        status: str = "Accepted",
    ) -> int:
        """Assign the next CSMS transaction id; ids are unique across all stations.
        ``status``: what the CSMS answered for the idTag (Accepted, ConcurrentTx, ...)."""
        with self._lock:
            record = self._station(station_id)
            key = (connector_id, id_tag, meter_start, timestamp)
            known = record.start_keys.get(key)
            if known is not None and record.active_transactions.get(connector_id) == known:
                # The answer was lost and the station sends it again (before anything
                # else of the transaction, since it keeps its queue in order): same id.
                record.redeliveries += 1
                return known
            record.transaction_messages += 1
            transaction_id = self._next_transaction_id
            self._next_transaction_id += 1
            running = record.active_transactions.get(connector_id)
            if running is not None:
                self._anomaly(
                    record,
                    f"StartTransaction on connector {connector_id} "
                    f"while transaction {running} is active",
                )
            record.transactions[transaction_id] = TransactionRecord(
                transaction_id=transaction_id,
                connector_id=connector_id,
                id_tag=id_tag,
                meter_start=meter_start,
                start_timestamp=timestamp,
                reservation_id=reservation_id,
                status=status,
            )
            record.active_transactions[connector_id] = transaction_id
            record.start_keys[key] = transaction_id
            self._owner[transaction_id] = station_id
            return transaction_id

    def stop_transaction(
        self,
        station_id: str,
        transaction_id: int,
        meter_stop: int,
        timestamp: str,
        reason: str | None = None,
        id_tag: str | None = None,
        transaction_data: list[dict[str, Any]] | None = None,
    ) -> None:
        """Close a transaction; a repeated or unknown stop is an anomaly, not an error."""
        with self._lock:
            record = self._station(station_id)
            tx = record.transactions.get(transaction_id)
            if tx is None:
                self._anomaly(
                    record,
                    f"StopTransaction for unknown transaction {transaction_id}"
                    f"{self._owned_by(transaction_id)} (meterStop {meter_stop})",
                )
                return
            if tx.stopped:
                if (tx.meter_stop, tx.stop_timestamp, tx.stop_reason) == (
                    meter_stop,
                    timestamp,
                    reason,
                ):
                    record.redeliveries += 1
                    return
                record.duplicates += 1
                self._anomaly(record, f"second StopTransaction for transaction {transaction_id}")
                return
            record.transaction_messages += 1
            tx.stopped = True
            tx.meter_stop = meter_stop
            tx.stop_timestamp = timestamp
            tx.stop_reason = reason
            tx.stop_id_tag = id_tag
            tx.transaction_data = (
                None if transaction_data is None else copy.deepcopy(transaction_data)
            )
            if record.active_transactions.get(tx.connector_id) == transaction_id:
                del record.active_transactions[tx.connector_id]

    def record_meter_values(
        self,
        station_id: str,
        connector_id: int,
        transaction_id: int | None,
        meter_values: list[dict[str, Any]],
    ) -> None:
        with self._lock:
            record = self._station(station_id)
            values = copy.deepcopy(meter_values)
            record.meter_value_samples += sum(len(mv.get("sampledValue", ())) for mv in values)
            if transaction_id is None:
                record.meter_values_without_transaction.extend((connector_id, mv) for mv in values)
                return
            tx = record.transactions.get(transaction_id)
            if tx is None:
                self._anomaly(
                    record,
                    f"MeterValues for unknown transaction {transaction_id}"
                    f"{self._owned_by(transaction_id)}",
                )
                record.unmatched_meter_values.extend(
                    (connector_id, transaction_id, mv) for mv in values
                )
                return
            key = json.dumps([connector_id, values], sort_keys=True)
            if key in tx.meter_value_keys:
                record.redeliveries += 1
                return
            tx.meter_value_keys.add(key)
            record.transaction_messages += 1
            if tx.stopped:
                self._anomaly(
                    record, f"MeterValues for transaction {transaction_id} after its stop"
                )
            if connector_id != tx.connector_id:
                self._anomaly(
                    record,
                    f"MeterValues on connector {connector_id} for transaction {transaction_id} "
                    f"on connector {tx.connector_id}",
                )
            tx.meter_values.extend(values)
            readings, problems = energy_readings(values)
            for problem in problems:
                self._anomaly(record, f"{problem} in transaction {transaction_id}")
            last = self._last_energy.get(transaction_id)
            if readings:
                chain = readings if last is None else [last, *readings]
                for problem in _backwards(chain, f"transaction {transaction_id}"):
                    self._anomaly(record, problem)
                self._last_energy[transaction_id] = readings[-1]

    def tag_in_transaction(self, id_tag: str, station_id: str, connector_id: int) -> bool:
        """Whether ``id_tag`` (case-insensitive) has a transaction running anywhere but on
        this station's connector (a StartTransaction sent again there is the same one)."""
        wanted = id_tag.casefold()
        with self._lock:
            for record in self._stations.values():
                for connector, tid in record.active_transactions.items():
                    if record.station_id == station_id and connector == connector_id:
                        continue
                    tx = record.transactions[tid]
                    if tx.status == "Accepted" and tx.id_tag.casefold() == wanted:
                        return True
            return False

    def _owned_by(self, transaction_id: int) -> str:
        owner = self._owner.get(transaction_id)
        return "" if owner is None else f" (it belongs to {owner})"

    # -- reading (any thread) ---------------------------------------------------------------

    def station_ids(self) -> list[str]:
        with self._lock:
            return sorted(self._stations)

    def station(self, station_id: str) -> StationRecord:
        """A deep copy, so the caller can read it while the CSMS keeps writing."""
        with self._lock:
            return copy.deepcopy(self._stations[station_id])

    def transaction(self, transaction_id: int) -> TransactionRecord:
        with self._lock:
            owner = self._owner[transaction_id]
            return copy.deepcopy(self._stations[owner].transactions[transaction_id])

    def snapshot(self) -> dict[str, StationRecord]:
        with self._lock:
            return copy.deepcopy(self._stations)

    @property
    def anomalies(self) -> list[str]:
        """All stations' anomalies in the order they were noticed."""
        with self._lock:
            return list(self._anomalies)

    def summary(self) -> dict[str, Any]:
        """Totals for a run report; JSON-serialisable."""
        with self._lock:
            stations = self._stations.values()
            txs = [tx for record in stations for tx in record.transactions.values()]
            stopped = [tx for tx in txs if tx.stopped]
            stopped_wh = sum(tx.energy_wh or 0 for tx in stopped)
            running_wh = sum(
                max(0.0, self._last_energy[tx.transaction_id] - tx.meter_start)
                for tx in txs
                if not tx.stopped and tx.transaction_id in self._last_energy
            )
            by_action: dict[str, int] = {}
            for record in stations:
                for action, count in record.messages.items():
                    by_action[action] = by_action.get(action, 0) + count
            return {
                "stations": len(self._stations),
                "connections": sum(r.connections for r in stations),
                "boots": sum(r.boots for r in stations),
                "status_notifications": sum(len(r.statuses) for r in stations),
                "heartbeats": sum(r.heartbeats for r in stations),
                "authorizations": sum(sum(r.authorizations.values()) for r in stations),
                "transactions_started": len(txs),
                "transactions_stopped": len(stopped),
                "transactions_active": len(txs) - len(stopped),
                # StartTransactions answered ConcurrentTx: the idTag was in another
                # transaction (a CSMS allowing one per tag; see one_transaction_per_tag).
                "transactions_concurrent_tx": sum(tx.status == "ConcurrentTx" for tx in txs),
                # Stopped transactions: meterStop - meterStart. Running ones add their last
                # MeterValues energy reading - meterStart: a run that ends with sessions
                # under way (most do) delivered energy the first figure cannot show.
                "energy_stopped_wh": stopped_wh,
                "energy_metered_wh": stopped_wh + running_wh,
                "energy_wh": stopped_wh,  # the name before both existed: stopped only
                "meter_value_samples": sum(r.meter_value_samples for r in stations),
                "messages_total": sum(by_action.values()),
                "messages_by_action": dict(sorted(by_action.items())),
                "anomalies": len(self._anomalies),
                "transaction_messages": sum(r.transaction_messages for r in stations),
                "redeliveries": sum(r.redeliveries for r in stations),
                "duplicates": sum(r.duplicates for r in stations),
            }

    def check(self, sent: Mapping[str, int] | None = None) -> list[str]:
        """Every consistency problem; an empty list means the ledger is consistent.

        Active transactions are only checked as far as the live anomalies go: their
        range is not known until StopTransaction arrives. ``sent``: station id -> the
        distinct transaction messages it delivered by its own count (queued minus
        dropped, its queue empty); a station that received fewer lost some, more means
        the ledger took a duplicate for new data.
        """
        with self._lock:
            problems = list(self._anomalies)
            seen = set(problems)
            for station_id, count in (sent or {}).items():
                record = self._stations.get(station_id)
                got = 0 if record is None else record.transaction_messages
                if got < count:
                    problems.append(
                        f"{station_id}: {count - got} of {count} transaction messages lost"
                    )
                elif got > count:
                    problems.append(
                        f"{station_id}: {got - count} transaction messages more than it sent"
                    )
            for record in self._stations.values():
                for tx in record.transactions.values():
                    if not tx.stopped or tx.meter_stop is None:
                        continue
                    for problem in self._check_stopped(tx):
                        line = f"{record.station_id}: {problem}"
                        if line not in seen:
                            seen.add(line)
                            problems.append(line)
            return problems

    @staticmethod
    def _check_stopped(tx: TransactionRecord) -> list[str]:
        assert tx.meter_stop is not None
        tid = tx.transaction_id
        problems: list[str] = []
        if tx.meter_stop < tx.meter_start:
            problems.append(
                f"meterStop {tx.meter_stop} < meterStart {tx.meter_start} in transaction {tid}"
            )
        problems.extend(_out_of_order(tx))
        sources = [("", tx.meter_values)]
        if tx.transaction_data is not None:
            sources.append(("transactionData of ", tx.transaction_data))
        for prefix, meter_values in sources:
            readings, unreadable = energy_readings(meter_values)
            problems.extend(f"{p} in {prefix}transaction {tid}" for p in unreadable)
            problems.extend(_backwards(readings, f"{prefix}transaction {tid}"))
            low, high = tx.meter_start, tx.meter_stop
            if high < low:
                continue  # no range to be inside of; the meterStop problem says it all
            problems.extend(
                f"energy register {_fmt(value)} Wh outside [{low}, {high}] "
                f"in {prefix}transaction {tid}"
                for value in readings
                if value < low - _WH_TOLERANCE or value > high + _WH_TOLERANCE
            )
        return problems


# -- a ledger that survives its process (fleet csms --ledger-journal) ---------------------

_RECORDING = (
    "record_anomaly",
    "record_connection",
    "record_message",
    "record_boot",
    "record_status",
    "record_heartbeat",
    "record_authorize",
    "record_data_transfer",
    "record_diagnostics_status",
    "record_firmware_status",
    "record_security_event",
    "start_transaction",
    "stop_transaction",
    "record_meter_values",
)


class JournaledLedger(Ledger):
    """A :class:`Ledger` that writes every recording call to a journal file and, when it
    is made, replays the file: a CSMS killed with SIGKILL and started again on the same
    journal has the ledger it had (the same transaction ids, re-deliveries recognised).

    Each call is one JSON line ``[time, method, args, kwargs]`` written with a single
    ``os.write`` on an ``O_APPEND`` descriptor before the ledger applies it (and so
    before the CSMS answers the station): once written it is in the kernel, which a
    killed process cannot take back. A torn last line (killed mid-write) is skipped.
    ``path=None`` after :meth:`replay` gives a read-only copy (for tests reading the
    journal of a CSMS in another process).
    """

    def __init__(self, path: str | None, clock: Callable[[], float] = time.time) -> None:
        super().__init__(clock)
        self._journal_lock = threading.Lock()
        self._fd: int | None = None
        self.path = path
        if path is not None:
            self.replay(path)
            self._fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
            size = os.fstat(self._fd).st_size
            if size and os.pread(self._fd, 1, size - 1) != b"\n":
                # A line torn by the kill: end it, or the next line would be glued to it.
                os.write(self._fd, b"\n")

    @classmethod
    def read(cls, path: str) -> Ledger:
        """The ledger a journal holds, without writing to it."""
        ledger = cls(None)
        ledger.replay(path)
        return ledger

    def replay(self, path: str) -> int:
        """Apply the journal's calls to this ledger (none is written again); returns how many."""
        try:
            with open(path, "rb") as fh:
                lines = fh.read().split(b"\n")
        except FileNotFoundError:
            return 0
        clock, count = self._clock, 0
        try:
            for line in lines:
                try:
                    at, name, args, kwargs = json.loads(line)
                except (ValueError, TypeError):
                    continue  # empty, torn by a kill in the middle of a write, or not ours
                if name not in _RECORDING:
                    continue
                self._clock = lambda at=at: float(at)
                getattr(Ledger, name)(self, *args, **kwargs)
                count += 1
        finally:
            self._clock = clock
        return count

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def _journaled(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        with self._journal_lock:
            if self._fd is not None:
                line = json.dumps([self._clock(), name, args, kwargs], default=str) + "\n"
                os.write(self._fd, line.encode())
            return getattr(Ledger, name)(self, *args, **kwargs)


def _journal_method(name: str) -> Callable[..., Any]:
    original = getattr(Ledger, name)

    def method(self: JournaledLedger, *args: Any, **kwargs: Any) -> Any:
        return self._journaled(name, args, kwargs)

    method.__name__ = name
    method.__doc__ = original.__doc__
    return method


for _name in _RECORDING:
    setattr(JournaledLedger, _name, _journal_method(_name))
