"""The station's outgoing CALLs: one ordered queue, one CALL in flight.

Transaction messages (StartTransaction, the MeterValues of a transaction,
StopTransaction) stay in the queue across disconnects and reboots, in order; security
events stay too (not retried); the rest is dropped when the link goes down, because it
is re-derived (statuses) or meaningless later (Heartbeat, Authorize).

Retries (OCPP 1.6 section 4.10, OCPP-J 1.6 section 4.1.1): only a CALLERROR is the
CSMS "failing to process" a transaction message. It counts towards
``TransactionMessageAttempts``; attempt n waits ``TransactionMessageRetryInterval``
times n - 1 after the last CALLERROR, and the message is dropped after the last. A
timeout is no such answer (the CSMS may be slow, or the link dead): the message stays
first in the queue, uncounted, and is sent again after ``TransactionMessageRetryInterval``
on the same link, or at once after the next reconnect. So no StartTransaction,
MeterValues or StopTransaction is ever dropped because the CSMS was slow.

A MeterValues or StopTransaction carries the transaction id the CSMS assigned, filled
in when it is sent: one queued before its StartTransaction was answered waits for that
id. Only when the StartTransaction itself was given up on (CALLERRORs) can nothing name
the transaction, and its later messages are dropped too. Every message given up on is
counted and reported (``on_drop``), never silent.

The queue knows nothing of the station: it takes ``now`` and the two retry settings,
and its tests (tests/model/test_outbox.py) drive it directly.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, cast

from fleet.model.messages import StationRequest
from fleet.model.records import Transaction, as_json

TRANSACTION_ACTIONS = frozenset({"StartTransaction", "StopTransaction", "MeterValues"})

DEFAULT_QUEUE_LIMIT = 10_000
"""Messages the outbox holds before the station drops queued periodic MeterValues
(``Outbox.limit``; the guide gives no figure, a profile's ``network.queue_limit``
sets it)."""


@dataclass(slots=True)
class Outgoing:
    """A CALL waiting to be sent (or in flight)."""

    action: str
    payload: dict[str, Any]
    transaction: Transaction | None = None
    attempts: int = 0  # sends
    failures: int = 0  # CALLERRORs (what TransactionMessageAttempts counts)
    timed_out: bool = False  # its last send got no answer in time
    not_before: float = 0.0
    # Asked for by a TriggerMessage: the one kind of request a station whose boot is
    # Pending may send (OCPP 1.6 4.2). A triggered MeterValues names the running
    # transaction, but it is a snapshot, not one of the transaction's messages (not kept
    # offline, not retried).
    triggered: bool = False
    # Queued while offline, or pending when the link went down: its delivery counts
    # in Outbox.offline_delivered.
    offline: bool = False


def wire(payload: StationRequest) -> dict[str, Any]:
    """A CALL's payload as the outbox carries it: built (and type-checked) as its
    TypedDict, kept as the JSON object it is (the outbox fills in transaction ids)."""
    return as_json(payload)


def is_transaction_message(msg: Outgoing) -> bool:
    """Kept across disconnects and retried: a triggered MeterValues outside a
    transaction is not transaction-related (OCPP 1.6, section 4.7)."""
    return msg.action in TRANSACTION_ACTIONS and msg.transaction is not None and not msg.triggered


def survives_disconnect(msg: Outgoing) -> bool:
    """Transaction messages, and security events: the security extension has the station
    queue them while offline (and one announcing new security settings is queued just
    before the reconnect they cause)."""
    return is_transaction_message(msg) or msg.action == "SecurityEventNotification"


def _named(msg: Outgoing) -> Outgoing:
    """``msg`` with its transaction's id filled in (a MeterValues or StopTransaction
    goes out only once the id is known; a triggered snapshot without one names none)."""
    tx = msg.transaction
    if tx is not None and msg.action != "StartTransaction":
        if tx.transaction_id is not None:
            msg.payload["transactionId"] = tx.transaction_id
        else:
            msg.payload.pop("transactionId", None)
    return msg


_EMPTY: tuple[Outgoing, ...] = ()


class Outbox:
    """The ordered queue of CALLs to send and the one in flight.

    An empty queue is a shared empty tuple, a deque only while something waits: a deque
    allocates a block of 64 slots up front (~0.7 KB), and a station's queue is empty
    nearly all the time, online (issue 16: memory per station)."""

    __slots__ = (
        "_on_drop",
        "_queue",
        "dropped",
        "inflight",
        "limit",
        "offline_delivered",
        "transaction_messages_queued",
        "transaction_resends",
    )

    def __init__(self, on_drop: Callable[[str], None]) -> None:
        self._queue: deque[Outgoing] | tuple[Outgoing, ...] = _EMPTY
        self.inflight: Outgoing | None = None
        self._on_drop = on_drop
        self.limit = DEFAULT_QUEUE_LIMIT
        """Size at which a new transaction message makes room by dropping the oldest
        periodic MeterValues (counted); StartTransaction and StopTransaction are never
        dropped, so with none left to drop the queue grows past the limit."""
        self.dropped = 0  # transaction messages given up on
        self.offline_delivered = 0  # offline-queued transaction messages answered
        self.transaction_messages_queued = 0  # every Start/MeterValues/Stop ever queued
        self.transaction_resends = 0  # sends of a transaction message after its first

    def __len__(self) -> int:
        return len(self._queue)

    def __iter__(self) -> Iterator[Outgoing]:
        return iter(self._queue)

    def _deque(self) -> deque[Outgoing]:
        """The queue, to add to."""
        queue = self._queue
        if isinstance(queue, deque):
            return queue
        self._queue = made = deque(queue)
        return made

    def _take(self, i: int = 0) -> Outgoing:
        """Remove and return the ``i``-th message (it exists, so the queue is a deque)."""
        queue = cast(deque[Outgoing], self._queue)
        if i == 0:
            msg = queue.popleft()
        else:
            msg = queue[i]
            del queue[i]
        if not queue:
            self._queue = _EMPTY
        return msg

    def _keep(self, messages: list[Outgoing]) -> None:
        self._queue = deque(messages) if messages else _EMPTY

    # -- in -------------------------------------------------------------------------

    def append(self, msg: Outgoing) -> None:
        """Queue a message that is not transaction-related (or a triggered snapshot)."""
        self._deque().append(msg)

    def append_transaction(self, msg: Outgoing, online: bool) -> None:
        """Append a StartTransaction, MeterValues or StopTransaction, in order. At
        ``limit`` the oldest periodic MeterValues waiting makes room (a sample between
        others loses the least: the register is cumulative and the next sample and the
        StopTransaction still carry it); with none, a new MeterValues is the one
        dropped, and a Start or Stop is queued anyway. Every drop is counted."""
        msg.offline = not online
        self.transaction_messages_queued += 1
        if self.limit > 0 and len(self._queue) >= self.limit:
            victim: Outgoing | None = None
            for i, m in enumerate(self._queue):
                if m.action == "MeterValues" and is_transaction_message(m):
                    victim = self._take(i)
                    break
            if victim is None and msg.action == "MeterValues":
                victim = msg
            if victim is not None:
                self._dropped(victim)
                if victim is msg:
                    return
        self._deque().append(msg)

    # -- out ------------------------------------------------------------------------

    def next_due(self) -> float | None:
        """When the head of the queue may be sent (None: the queue is empty)."""
        return self._queue[0].not_before if self._queue else None

    def pop_ready(self, now: float) -> Outgoing | None:
        """The head of the queue if it is due, with its transaction id filled in; it is
        not yet in flight (see :meth:`sending`)."""
        queue = self._queue
        while queue:
            head = queue[0]
            if head.not_before > now:
                return None
            tx = head.transaction
            if (
                tx is not None
                and head.action != "StartTransaction"
                and tx.transaction_id is None
                and not head.triggered
            ):
                if not tx.start_abandoned:
                    return None  # its StartTransaction is still unanswered: wait for the id
                # The StartTransaction was given up on; nothing can name the transaction.
                self._dropped(self._take())
                queue = self._queue
                continue
            return _named(self._take())
        return None

    def pop_triggered(self) -> Outgoing | None:
        """The first message a TriggerMessage asked for, wherever it waits (the only
        kind a station whose boot is Pending sends); not yet in flight."""
        for i, msg in enumerate(self._queue):
            if msg.triggered:
                return _named(self._take(i))
        return None

    def has_triggered(self) -> bool:
        return any(m.triggered for m in self._queue)

    def sending(self, msg: Outgoing) -> None:
        """``msg`` goes out now and is in flight until answered or failed."""
        msg.attempts += 1
        if msg.attempts > 1 and is_transaction_message(msg):
            self.transaction_resends += 1  # the CSMS may see it twice (at-least-once)
        self.inflight = msg

    def take_inflight(self) -> Outgoing:
        """The CALL in flight, answered or failed: no longer in flight."""
        msg = self.inflight
        if msg is None:
            raise RuntimeError("no CALL in flight")
        self.inflight = None
        return msg

    def answered(self, msg: Outgoing) -> None:
        """``msg`` (taken from flight) got its CALLRESULT."""
        if msg.offline and is_transaction_message(msg):
            self.offline_delivered += 1

    def failed(
        self, msg: Outgoing, timeout: bool, now: float, attempts: int, interval: int
    ) -> None:
        """A transaction message (taken from flight) got a CALLERROR, or no answer
        (``timeout``): see the module docstring. ``attempts`` and ``interval`` are
        TransactionMessageAttempts and TransactionMessageRetryInterval."""
        msg.timed_out = timeout
        if timeout:
            msg.not_before = now + interval
            self._deque().appendleft(msg)
            return
        msg.failures += 1
        if msg.failures < max(1, attempts):
            msg.not_before = now + interval * msg.failures
            self._deque().appendleft(msg)
            return
        self._dropped(msg)
        if msg.action == "StartTransaction" and msg.transaction is not None:
            msg.transaction.transaction_id = None
            msg.transaction.start_abandoned = True

    # -- the link -------------------------------------------------------------------

    def link_down(self) -> list[Outgoing]:
        """The link is gone: the message in flight goes back first, what survives a
        disconnect stays (marked offline); returns everything that was pending."""
        inflight, self.inflight = self.inflight, None
        pending = ([inflight] if inflight is not None else []) + list(self._queue)
        self._keep([m for m in pending if survives_disconnect(m)])
        for m in self._queue:
            m.offline = True
        return pending

    def link_up(self) -> None:
        """A new link: a message whose last send timed out is due at once (it waited
        for the CSMS, not for a retry interval)."""
        for m in self._queue:
            if m.timed_out:
                m.not_before = 0.0

    def reboot(self) -> None:
        """Power is back: only what survives a disconnect is still queued (a
        transaction message still in flight goes back first)."""
        self._keep(self.durable_messages())
        self.inflight = None

    # -- introspection --------------------------------------------------------------

    def durable_messages(self) -> list[Outgoing]:
        """What survives a reboot, in order (the one in flight first): the transaction
        messages not yet delivered and the security events; a station's durable state
        keeps exactly these."""
        inflight = self.inflight
        pending = ([inflight] if inflight is not None else []) + list(self._queue)
        return [m for m in pending if survives_disconnect(m)]

    def restore(self, messages: list[Outgoing]) -> None:
        """Queue ``messages`` (from a station's durable state) ahead of anything queued."""
        if messages:
            self._deque().extendleft(reversed(messages))

    @property
    def backlog(self) -> int:
        """Transaction messages waiting to be delivered (queued or in flight)."""
        inflight = self.inflight
        pending = sum(1 for m in self._queue if is_transaction_message(m))
        return pending + (inflight is not None and is_transaction_message(inflight))

    def _dropped(self, msg: Outgoing) -> None:
        """A transaction message given up on: counted and reported, never silent."""
        self.dropped += 1
        self._on_drop(msg.action)
