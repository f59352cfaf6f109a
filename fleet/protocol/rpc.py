"""OCPP-J RPC, sans-I/O: framing, message ids, one outstanding CALL, timeouts.

An :class:`RpcEndpoint` is one side of one websocket (here: the station's side).
It turns frames into events and events into frames; it never touches a socket or
a clock of its own, so the engine feeds it ``now`` and it can be tested with plain
calls. The rules it enforces are OCPP-J 1.6's:

* a CALL is ``[2, id, action, payload]``, a CALLRESULT ``[3, id, payload]``, a
  CALLERROR ``[4, id, code, description, details]``;
* at most one CALL of ours is outstanding; a second one is a programming error;
* a reply to an id we are not waiting for (unknown, or already timed out) is
  dropped and reported, never raised;
* every incoming CALL gets exactly one answer, a CALLRESULT or a CALLERROR;
* payloads in both directions are checked against the official schemas.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from typing import Any

import orjson

from fleet.protocol import errors, schemas
from fleet.protocol.errors import OcppError

CALL = 2
CALLRESULT = 3
CALLERROR = 4
SEEN_IDS = 64
"""How many of the CSMS's recent CALL ids a connection remembers to refuse a reuse."""


MESSAGE_IDS = ("unique", "counter")
"""How a station numbers its CALLs: ``unique`` (default), an id no other CALL of any
station, connection or process shares, in UUID form; ``counter``, "1", "2", ... per
station, which OCPP-J allows (unique per sender and connection) but which a CSMS that
correlates answers by id across stations mixes up."""


def _uuid_prefix() -> str:
    """The first 24 hex digits of a UUID version 4 (variant bits set), random once per
    process: the last 12 digits are a process-wide counter. 74 random bits keep processes
    (Locust workers, hosts, runs) apart; the counter keeps this process's CALLs apart.
    ``uuid.uuid4()`` per CALL costs ~2.7 us, this ~0.2 us (see docs/testing-your-csms.md)."""
    r = int.from_bytes(os.urandom(10), "big")  # 80 bits, 74 of them used
    return (
        f"{r >> 48 & 0xFFFFFFFF:08x}-{r >> 32 & 0xFFFF:04x}-4{r >> 20 & 0xFFF:03x}-"
        f"{0x8000 | (r >> 6) & 0x3FFF:04x}-"
    )


_UUID_PREFIX = _uuid_prefix()
_UUID_COUNTER = itertools.count(1)


def new_call_id() -> str:
    """A CALL id unique across stations, connections and processes (UUID form)."""
    return f"{_UUID_PREFIX}{next(_UUID_COUNTER) & 0xFFFFFFFFFFFF:012x}"


def _after_fork() -> None:
    # A forked process (Locust --processes) must not repeat its parent's ids.
    global _UUID_PREFIX
    _UUID_PREFIX = _uuid_prefix()


os.register_at_fork(after_in_child=_after_fork)


def _valid_id(unique_id: object) -> bool:
    return isinstance(unique_id, str) and 0 < len(unique_id) <= 36


@dataclass(slots=True)
class IncomingCall:
    """A valid CALL from the CSMS; the owner must answer it with reply()/reply_error()."""

    unique_id: str
    action: str
    payload: dict[str, Any]


@dataclass(slots=True)
class Answered:
    """Our outstanding CALL got its CALLRESULT (schema-checked)."""

    action: str
    payload: dict[str, Any]
    round_trip: float
    request: dict[str, Any]


@dataclass(slots=True)
class Failed:
    """Our outstanding CALL failed: a CALLERROR, a timeout, or an invalid CALLRESULT."""

    action: str
    code: str
    description: str
    round_trip: float
    request: dict[str, Any]
    timeout: bool = False
    schema: bool = False  # the CALLRESULT broke the official schema (the CSMS's mistake)


@dataclass(slots=True)
class Rejected:
    """An incoming frame we answered with a CALLERROR ourselves (``reply`` is the frame)."""

    action: str
    code: str
    description: str
    reply: bytes
    schema: bool = False  # the CALL's payload broke the official schema


@dataclass(slots=True)
class Dropped:
    """An incoming frame OCPP says to ignore (e.g. a reply to an unknown id)."""

    reason: str
    unique_id: str


Event = IncomingCall | Answered | Failed | Rejected | Dropped


@dataclass(slots=True)
class _Pending:
    unique_id: str
    action: str
    payload: dict[str, Any]
    sent_at: float
    deadline: float


def _call_error(
    unique_id: str, code: str, description: str, details: dict[str, Any] | None = None
) -> bytes:
    frame: list[Any] = [CALLERROR, unique_id, code, description[:255], details or {}]
    try:
        return orjson.dumps(frame)
    except orjson.JSONEncodeError:
        # Details that are not JSON (or a description with lone surrogates) must not
        # cost the CSMS its answer: send what can be sent.
        frame[3] = frame[3].encode("utf-8", "replace").decode("utf-8")
        frame[4] = {}
        return orjson.dumps(frame)


class RpcEndpoint:
    """The station side of an OCPP-J connection.

    ``csms_actions`` is the set of actions this side accepts as incoming CALLs;
    an action OCPP 1.6 defines but that is not in the set answers NotSupported,
    an action OCPP 1.6 does not define answers NotImplemented.
    """

    __slots__ = (
        "_counter",
        "_csms_actions",
        "_next_id",
        "_pending",
        "_seen",
        "timeout",
        "validate",
    )

    def __init__(
        self,
        csms_actions: frozenset[str],
        *,
        timeout: float = 10.0,
        validate: bool = True,
        message_ids: str = "unique",
    ) -> None:
        """``message_ids``: how our CALLs are numbered (see MESSAGE_IDS)."""
        if message_ids not in MESSAGE_IDS:
            raise ValueError(f"message_ids must be one of {MESSAGE_IDS}, not {message_ids!r}")
        self._csms_actions = csms_actions
        self._counter = message_ids == "counter"
        self._next_id = 0
        self._pending: _Pending | None = None
        # The last SEEN_IDS CALL ids the CSMS used on this connection (a dict as an
        # ordered set): OCPP-J makes a CALL's id unique per connection, and a CALL that
        # reuses one is refused rather than executed twice.
        self._seen: dict[str, None] = {}
        self.timeout = timeout
        self.validate = validate

    # -- our CALLs -------------------------------------------------------------

    @property
    def busy(self) -> bool:
        """Whether a CALL of ours is waiting for its answer."""
        return self._pending is not None

    @property
    def deadline(self) -> float | None:
        """When the outstanding CALL times out, if there is one."""
        return self._pending.deadline if self._pending is not None else None

    def call(
        self, action: str, payload: dict[str, Any], now: float, *, check: bool = True
    ) -> bytes:
        """Frame a CALL. Raises RuntimeError if one is already outstanding.

        ``check=False`` skips the schema check of our own payload (when ``validate``):
        for payloads the typed station model builds, which the model tests check
        against the official schemas message by message; on the hot path the check
        was a quarter of a MeterValues exchange (~24 us of ~100). Replies from the CSMS
        are always checked."""
        if self._pending is not None:
            raise RuntimeError(f"{action}: a {self._pending.action} CALL is still outstanding")
        if self.validate and check:
            schemas.validate(action, payload, response=False)
        if self._counter:
            self._next_id += 1
            call_id = str(self._next_id)
        else:
            call_id = new_call_id()
        self._pending = _Pending(call_id, action, payload, now, now + self.timeout)
        return orjson.dumps([CALL, call_id, action, payload])

    def check_timeout(self, now: float) -> Failed | None:
        """Fail the outstanding CALL if its deadline has passed."""
        pending = self._pending
        if pending is None or now < pending.deadline:
            return None
        self._pending = None
        return Failed(
            pending.action,
            "Timeout",
            f"no answer within {self.timeout:g} s",
            now - pending.sent_at,
            pending.payload,
            timeout=True,
        )

    def reset(self) -> None:
        """Forget the outstanding CALL (the connection it was sent on is gone)."""
        self._pending = None
        self._seen.clear()  # ids are unique per connection; a new one starts afresh

    @property
    def outstanding(self) -> tuple[str, float] | None:
        """(action, when it was sent) of the CALL waiting for its answer, if any."""
        pending = self._pending
        return None if pending is None else (pending.action, pending.sent_at)

    def refuse_binary(self, data: bytes) -> Rejected | Dropped:
        """The event for a binary websocket message: OCPP-J is text only, so it is never
        executed. A CALL gets FormationViolation (with its id when that is readable, so
        the CSMS can match it); a CALLRESULT / CALLERROR is dropped (answering a reply
        is not OCPP), which leaves a CALL of ours to time out."""
        unique_id = "-1"
        try:
            frame = orjson.loads(data)
        except orjson.JSONDecodeError:
            frame = None
        if isinstance(frame, list) and len(frame) > 1 and _valid_id(frame[1]):
            if frame[0] in (CALLRESULT, CALLERROR):
                return Dropped("binary frame", frame[1])
            if frame[0] == CALL:
                unique_id = frame[1]
        return self._reject(
            "", unique_id, errors.FORMATION_VIOLATION, "binary frame: OCPP-J messages are text"
        )

    # -- frames from the CSMS --------------------------------------------------

    def receive(self, data: str | bytes, now: float) -> Event:
        """Turn one websocket message into exactly one event."""
        try:
            frame = orjson.loads(data)
        except orjson.JSONDecodeError:
            return self._reject("", "-1", errors.FORMATION_VIOLATION, "message is not valid JSON")
        if not isinstance(frame, list) or not frame:
            return self._reject(
                "", "-1", errors.FORMATION_VIOLATION, "message is not an OCPP-J array"
            )
        unique_id = frame[1] if len(frame) > 1 else None
        if not isinstance(unique_id, str) or not unique_id or len(unique_id) > 36:
            return self._reject(
                "", "-1", errors.FORMATION_VIOLATION, "unique id must be a string of 1..36 chars"
            )
        if len(frame) < 3:
            # The id is readable, so the CALLERROR can carry it.
            return self._reject("", unique_id, errors.FORMATION_VIOLATION, "message is too short")
        kind = frame[0]
        if kind == CALL:
            return self._incoming_call(frame, unique_id)
        if kind in (CALLRESULT, CALLERROR):
            return self._incoming_reply(frame, kind, unique_id, now)
        return self._reject("", unique_id, errors.PROTOCOL_ERROR, f"unknown message type {kind!r}")

    def _incoming_call(self, frame: list[Any], unique_id: str) -> Event:
        if len(frame) != 4 or not isinstance(frame[2], str):
            return self._reject(
                "", unique_id, errors.FORMATION_VIOLATION, "CALL must be [2, id, action, payload]"
            )
        seen = self._seen
        if unique_id in seen:
            # OCPP 1.6 has no code for it; GenericError is "any other error".
            return self._reject(
                frame[2] if frame[2] in self._csms_actions else "",
                unique_id,
                errors.GENERIC_ERROR,
                f"duplicate unique id {unique_id!r} on this connection",
            )
        seen[unique_id] = None
        if len(seen) > SEEN_IDS:
            del seen[next(iter(seen))]
        action, payload = frame[2], frame[3]
        if action not in self._csms_actions:
            if schemas.known_action(action):
                return self._reject(
                    action, unique_id, errors.NOT_SUPPORTED, f"{action} is not supported"
                )
            return self._reject(
                action, unique_id, errors.NOT_IMPLEMENTED, f"unknown action {action!r}"
            )
        if not isinstance(payload, dict):
            return self._reject(
                action, unique_id, errors.FORMATION_VIOLATION, "payload must be an object", True
            )
        if self.validate:
            try:
                schemas.validate(action, payload, response=False)
            except OcppError as exc:
                return self._reject(action, unique_id, exc.code, exc.description, True)
        return IncomingCall(unique_id, action, payload)

    def _incoming_reply(self, frame: list[Any], kind: int, unique_id: str, now: float) -> Event:
        pending = self._pending
        if pending is None or pending.unique_id != unique_id:
            return Dropped("reply to an unknown or expired id", unique_id)
        self._pending = None
        rtt = now - pending.sent_at
        if kind == CALLERROR:
            code = frame[2] if isinstance(frame[2], str) else errors.GENERIC_ERROR
            desc = frame[3] if len(frame) > 3 and isinstance(frame[3], str) else ""
            return Failed(pending.action, code, desc, rtt, pending.payload)
        payload = frame[2]
        if not isinstance(payload, dict):
            return Failed(
                pending.action,
                errors.FORMATION_VIOLATION,
                "CALLRESULT payload is not an object",
                rtt,
                pending.payload,
                schema=True,
            )
        if self.validate:
            try:
                schemas.validate(pending.action, payload, response=True)
            except OcppError as exc:
                return Failed(
                    pending.action, exc.code, exc.description, rtt, pending.payload, schema=True
                )
        return Answered(pending.action, payload, rtt, pending.payload)

    @staticmethod
    def _reject(
        action: str, unique_id: str, code: str, description: str, schema: bool = False
    ) -> Rejected:
        reply = _call_error(unique_id, code, description)
        return Rejected(action, code, description, reply, schema)

    # -- our answers to the CSMS's CALLs ---------------------------------------

    def reply(self, call: IncomingCall, payload: dict[str, Any]) -> bytes:
        """Frame the CALLRESULT for an incoming CALL (schema-checked: our bug if not)."""
        if self.validate:
            schemas.validate(call.action, payload, response=True)
        return orjson.dumps([CALLRESULT, call.unique_id, payload])

    def reply_error(self, call: IncomingCall, error: OcppError) -> bytes:
        """Frame a CALLERROR for an incoming CALL.

        A code OCPP 1.6 does not define goes out as GenericError (with the original
        code kept in the description), since the CSMS may reject anything else.
        """
        code, description = error.code, error.description
        if code not in errors.ERROR_CODES:
            description = f"{code}: {description}" if description else code
            code = errors.GENERIC_ERROR
        return _call_error(call.unique_id, code, description, error.details)
