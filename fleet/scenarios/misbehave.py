"""Misbehaving stations: invalid CALLs at a steady rate, to test a CSMS's input handling.

A profile's ``misbehave:`` section makes a seeded share of the stations send, besides
their normal traffic, messages a CSMS must cope with::

    misbehave:
      share: 0.1              # share of the stations that misbehave (0 < share <= 1)
      rate_per_hour: 120      # misbehaviours per misbehaving station per hour (Poisson)
      kinds: {schema: 1, types: 1, order: 1, duplicate_id: 1, flood: 1,
              malformed: 1, unknown_action: 1}   # weights (or a list of names: equal)
      flood_burst: 20         # CALLs in one flood
      timeout: 10             # seconds to wait for an answer

Kinds (:data:`VARIANTS` lists what each one sends; one variant is drawn per shot):

``schema``
    A payload that breaks the official schema other than by a JSON type: a missing
    required property, a value outside its enum, a string over its maxLength, an
    additional property, a timestamp that is not a date-time.
``types``
    A property of the wrong JSON type: a string where an integer goes, a number where a
    string goes, an object where an array goes, a list as the payload.
``order``
    Schema-valid transaction messages out of order: MeterValues for a transaction id the
    CSMS never gave, a StopTransaction before any StartTransaction (for a transaction
    that does not exist), meter values whose timestamps and register go backwards.
``duplicate_id``
    A second CALL reusing the unique id of one still in flight, or of one just answered.
``flood``
    ``flood_burst`` Heartbeats at once without waiting for the answers, against OCPP-J's
    one-outstanding-CALL rule.
``malformed``
    Frames that are not OCPP-J: truncated JSON, a JSON object instead of the array, an
    unknown message type id.
``unknown_action``
    An action OCPP 1.6 does not define, or one only a CSMS may send.

Every frame goes through :meth:`StationLink.send_raw` with its own unique id
(``misbehave-<n>``, which cannot collide with the model's numeric ids), outside the
station's RpcEndpoint: the station's normal traffic keeps its order and its one
outstanding CALL. Replies with those ids come back here, never to the endpoint, and
each misbehaviour is classified by how the CSMS answered:

``accepted``
    a CALLRESULT;
a CALLERROR code
    ``FormationViolation``, ``PropertyConstraintViolation``, ... (OCPP 2.0.1's spellings
    such as ``FormatViolation`` as sent; any other code counts as ``other CALLERROR``,
    so labels stay bounded);
``timeout``
    no answer within ``timeout`` seconds (``ignored`` for a duplicate id: the CSMS
    answered the original only);
``closed``
    the CSMS (or the network) closed the connection before answering;
``abandoned``
    the station went away itself first (stopped, rebooted, cut by an offline wave); not
    the CSMS's doing, so not reported to Locust.

What counts as a finding (a Locust failure) is :data:`FINDINGS`: OCPP-J answers every
CALL, with a CALLERROR when it breaks the schema or names an unknown action, so for
``schema``, ``types`` and ``unknown_action`` both ``accepted`` and ``timeout`` are
findings; ``order`` and ``flood`` CALLs are valid and must be answered (``timeout``);
a CALLRESULT to something that is not OCPP-J (``malformed``) is a finding, silence is
not (OCPP 1.6 cannot answer a frame whose id it cannot read); a reused id may be
answered or dropped (nothing is a finding, the table shows what happened). ``closed`` is
never a finding: dropping a station that breaks the protocol is a defence, if a costly
one.

Counts go to ``FleetStats.misbehave_sent`` (kind) and ``misbehave_answers`` (kind,
answer); each classified answer (but ``abandoned``) is also a :class:`Outcome` in
:attr:`MisbehaveDirector.samples`, a deque the Locust side drains into request entries
of type ``MISBEHAVE``. Times: ``rate_per_hour`` and ``timeout`` are real seconds (the
CSMS's load does not speed up with time compression); timestamps inside the messages
are model time, like the station's own.

Costs: one timer per process (the next misbehaviour) and one sweep a second (timeouts,
who misbehaves), nothing per station; the link pays one dict check per frame only while
a misbehaviour of that station waits for its answer.
"""

from __future__ import annotations

import functools
import itertools
import logging
import random
import zlib
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from fleet.model.records import iso8601
from fleet.protocol import errors

__all__ = [
    "FINDINGS",
    "KINDS",
    "PREFIX",
    "VARIANTS",
    "MisbehaveDirector",
    "MisbehavePlan",
    "Outcome",
    "Probe",
    "build",
    "parse",
    "start",
]

log = logging.getLogger("fleet.misbehave")

KINDS = ("schema", "types", "order", "duplicate_id", "flood", "malformed", "unknown_action")
PREFIX = "misbehave-"
"""Unique ids of the frames sent here; the model's ids are plain numbers."""

ACCEPTED, TIMEOUT, IGNORED, CLOSED, ABANDONED = (
    "accepted",
    "timeout",
    "ignored",
    "closed",
    "abandoned",
)
OTHER_CALLERROR = "other CALLERROR"
CALLERROR_CODES = errors.ERROR_CODES | {
    # OCPP 2.0.1's RPC framework spellings, which CSMSs (the ``ocpp`` library among
    # them: "FormatViolation") also send to 1.6 stations: shown as sent.
    "FormatViolation",
    "OccurrenceConstraintViolation",
    "RpcFrameworkError",
    "MessageTypeNotSupported",
}
"""CALLERROR codes counted under their own name; anything else is ``other CALLERROR``."""

FINDINGS: dict[str, frozenset[str]] = {
    "schema": frozenset({ACCEPTED, TIMEOUT}),
    "types": frozenset({ACCEPTED, TIMEOUT}),
    "unknown_action": frozenset({ACCEPTED, TIMEOUT}),
    "order": frozenset({TIMEOUT}),
    "flood": frozenset({TIMEOUT}),
    "malformed": frozenset({ACCEPTED}),
    "duplicate_id": frozenset(),
}
"""Per kind, the answers that are a finding (a failure in Locust): see the module doc."""

_FIELDS = {"share", "rate_per_hour", "kinds", "flood_burst", "timeout"}
SWEEP_SECONDS = 1.0
"""How often timeouts are checked and the set of misbehaving stations refreshed."""

# Transaction ids "the CSMS never gave": far above what a CSMS hands out in a test, and
# below 2^31 so a CSMS storing them as int32 is not tripped up by something else.
_BOGUS_TX = (2_000_000_000, 2_100_000_000)


@dataclass(frozen=True, slots=True)
class MisbehavePlan:
    share: float
    rate_per_hour: float
    kinds: tuple[tuple[str, float], ...]  # (kind, weight > 0)
    flood_burst: int = 20
    timeout: float = 10.0


# -- validation ------------------------------------------------------------------------


def parse(reader: Any, value: Any) -> MisbehavePlan | None:
    """Validate the ``misbehave`` section (``reader``: the profile's _Reader); None when
    absent."""
    if value is None:
        return None
    where = "misbehave"
    if not isinstance(value, dict):
        raise reader.fail(where, f"expected a mapping, got {type(value).__name__}")
    spec = reader.mapping(value, where, _FIELDS)
    for required in ("share", "rate_per_hour"):
        if required not in spec:
            raise reader.fail(where, f"missing field {required!r}")
    share = reader.number(spec["share"], f"{where}.share", 0.0, 1.0)
    if share <= 0:
        raise reader.fail(f"{where}.share", "must be > 0 (leave the section out for none)")
    rate = reader.number(spec["rate_per_hour"], f"{where}.rate_per_hour", 0.0, 36_000.0)
    if rate <= 0:
        raise reader.fail(f"{where}.rate_per_hour", "must be > 0")
    burst = spec.get("flood_burst", 20)
    if isinstance(burst, bool) or not isinstance(burst, int) or not 2 <= burst <= 1000:
        raise reader.fail(f"{where}.flood_burst", f"expected an integer 2..1000, got {burst!r}")
    timeout = reader.number(spec.get("timeout", 10.0), f"{where}.timeout", 0.0, 300.0)
    if timeout <= 0:
        raise reader.fail(f"{where}.timeout", "must be > 0 seconds")
    return MisbehavePlan(
        share=share,
        rate_per_hour=rate,
        kinds=_kinds(reader, spec.get("kinds"), f"{where}.kinds"),
        flood_burst=burst,
        timeout=timeout,
    )


def _kinds(reader: Any, value: Any, where: str) -> tuple[tuple[str, float], ...]:
    if value is None:
        return tuple((kind, 1.0) for kind in KINDS)
    if isinstance(value, list):
        if not value:
            raise reader.fail(where, "expected at least one kind")
        weights: dict[Any, Any] = {}
        for i, name in enumerate(value):
            if name in weights:
                raise reader.fail(f"{where}.{i}", f"duplicate kind {name!r}")
            weights[name] = 1
        listed = True
    elif isinstance(value, dict):
        weights, listed = value, False
    else:
        raise reader.fail(
            where, f"expected a mapping of kind: weight or a list of kinds, got {value!r}"
        )
    out = []
    for i, (name, weight) in enumerate(weights.items()):
        here = f"{where}.{i}" if listed else f"{where}.{name}"
        if name not in KINDS:
            raise reader.fail(here, f"unknown kind {name!r} (expected one of: {', '.join(KINDS)})")
        w = reader.number(weight, here, 0.0)
        if w > 0:
            out.append((name, w))
    if not out:
        raise reader.fail(where, "every weight is 0: give at least one kind a weight > 0")
    return tuple(out)


# -- the frames --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Probe:
    """One frame to send. ``counted``: a misbehaviour whose answer is classified (the
    carrier of a duplicate id is a normal CALL, not counted). ``replies``: answers it
    may get (2 for an id sent twice at once). ``follow_up``: sent with the same id once
    this one is answered (a duplicate of a CALL just answered)."""

    kind: str
    variant: str
    unique_id: str
    action: str
    frame: bytes
    payload: Any = None
    counted: bool = True
    replies: int = 1
    follow_up: Probe | None = None


@dataclass(frozen=True, slots=True)
class Context:
    """What the frames may borrow from the station: its clock and an id tag."""

    now: float  # model time (Unix seconds)
    id_tag: str = "MISBEHAVE"


def _call(kind: str, variant: str, uid: str, action: str, payload: Any, **kw: Any) -> Probe:
    return Probe(kind, variant, uid, action, orjson.dumps([2, uid, action, payload]), payload, **kw)


def _meter_value(now: float, wh: float) -> dict[str, Any]:
    return {
        "timestamp": iso8601(now),
        "sampledValue": [
            {"value": f"{wh:.0f}", "measurand": "Energy.Active.Import.Register", "unit": "Wh"}
        ],
    }


Builder = Callable[[Callable[[], str], random.Random, Context, int], list[Probe]]


def _schema(ids: Callable[[], str], rng: random.Random, ctx: Context, _: int) -> list[Probe]:
    now = iso8601(ctx.now)
    choices: list[tuple[str, str, dict[str, Any]]] = [
        (
            "StatusNotification without its required errorCode",
            "StatusNotification",
            {"connectorId": 1, "status": "Available"},
        ),
        (
            "StatusNotification status outside its enum",
            "StatusNotification",
            {"connectorId": 1, "errorCode": "NoError", "status": "Exploded", "timestamp": now},
        ),
        (
            "Authorize idTag over its 20-character maxLength",
            "Authorize",
            {"idTag": "X" * 21},
        ),
        ("Heartbeat with an additional property", "Heartbeat", {"misbehaving": True}),
        (
            "MeterValues timestamp that is not a date-time",
            "MeterValues",
            {"connectorId": 0, "meterValue": [{**_meter_value(ctx.now, 0), "timestamp": "now"}]},
        ),
    ]
    variant, action, payload = rng.choice(choices)
    return [_call("schema", variant, ids(), action, payload)]


def _types(ids: Callable[[], str], rng: random.Random, ctx: Context, _: int) -> list[Probe]:
    choices: list[tuple[str, str, Any]] = [
        (
            "StatusNotification connectorId as a string",
            "StatusNotification",
            {"connectorId": "1", "errorCode": "NoError", "status": "Available"},
        ),
        ("Authorize idTag as a number", "Authorize", {"idTag": 12345678}),
        (
            "MeterValues meterValue as an object",
            "MeterValues",
            {"connectorId": 0, "meterValue": _meter_value(ctx.now, 0)},
        ),
        ("Heartbeat payload as a list", "Heartbeat", []),
    ]
    variant, action, payload = rng.choice(choices)
    return [_call("types", variant, ids(), action, payload)]


def _order(ids: Callable[[], str], rng: random.Random, ctx: Context, _: int) -> list[Probe]:
    tx = rng.randrange(*_BOGUS_TX)
    wh = float(rng.randrange(1_000, 1_000_000))
    variant = rng.randrange(3)
    if variant == 0:
        payload: dict[str, Any] = {
            "connectorId": 1,
            "transactionId": tx,
            "meterValue": [_meter_value(ctx.now, wh)],
        }
        return [
            _call("order", "MeterValues for a transaction the CSMS never gave", ids(),
                  "MeterValues", payload)
        ]  # fmt: skip
    if variant == 1:
        payload = {
            "transactionId": tx,
            "meterStop": int(wh),
            "timestamp": iso8601(ctx.now),
            "idTag": ctx.id_tag,
            "reason": "Local",
        }
        return [
            _call("order", "StopTransaction before any StartTransaction", ids(),
                  "StopTransaction", payload)
        ]  # fmt: skip
    # No transactionId: the values go back an hour and lose energy, from one sample to
    # the next, without touching a transaction the station really runs.
    payload = {
        "connectorId": 1,
        "meterValue": [_meter_value(ctx.now, wh), _meter_value(ctx.now - 3600.0, wh - 500.0)],
    }
    return [
        _call("order", "MeterValues with timestamps and register going backwards", ids(),
              "MeterValues", payload)
    ]  # fmt: skip


def _duplicate_id(ids: Callable[[], str], rng: random.Random, ctx: Context, _: int) -> list[Probe]:
    uid = ids()
    original = orjson.dumps([2, uid, "Heartbeat", {}])
    if rng.random() < 0.5:
        variant = "a CALL reusing the id of one in flight"
        carrier = Probe("duplicate_id", variant, uid, "Heartbeat", original, {}, counted=False)
        dup = Probe("duplicate_id", variant, uid, "Heartbeat", original, {}, replies=2)
        return [carrier, dup]
    variant = "a CALL reusing the id of one just answered"
    dup = Probe("duplicate_id", variant, uid, "Heartbeat", original, {})
    return [Probe("duplicate_id", variant, uid, "Heartbeat", original, {}, False, 1, dup)]


def _flood(ids: Callable[[], str], rng: random.Random, ctx: Context, burst: int) -> list[Probe]:
    variant = f"{burst} Heartbeats without waiting for answers"
    return [_call("flood", variant, ids(), "Heartbeat", {}) for _ in range(burst)]


def _malformed(ids: Callable[[], str], rng: random.Random, ctx: Context, _: int) -> list[Probe]:
    uid = ids()
    variant = rng.randrange(3)
    if variant == 0:
        frame = f'[2,"{uid}","Heartbeat",{{'.encode()
        return [Probe("malformed", "truncated JSON", uid, "Heartbeat", frame)]
    if variant == 1:
        frame = orjson.dumps(
            {"messageTypeId": 2, "uniqueId": uid, "action": "Heartbeat", "payload": {}}
        )
        return [Probe("malformed", "a JSON object instead of an OCPP-J array", uid, "", frame)]
    frame = orjson.dumps([7, uid, "Heartbeat", {}])
    return [Probe("malformed", "unknown message type id 7", uid, "Heartbeat", frame)]


def _unknown_action(
    ids: Callable[[], str], rng: random.Random, ctx: Context, _: int
) -> list[Probe]:
    if rng.random() < 0.5:
        return [
            _call("unknown_action", "an action OCPP 1.6 does not define", ids(),
                  "SelfDestruct", {"countdown": 10})
        ]  # fmt: skip
    payload = {"idTag": ctx.id_tag, "connectorId": 1}
    return [
        _call("unknown_action", "RemoteStartTransaction (a CSMS-to-station action)", ids(),
              "RemoteStartTransaction", payload)
    ]  # fmt: skip


BUILDERS: dict[str, Builder] = {
    "schema": _schema,
    "types": _types,
    "order": _order,
    "duplicate_id": _duplicate_id,
    "flood": _flood,
    "malformed": _malformed,
    "unknown_action": _unknown_action,
}

VARIANTS: dict[str, tuple[str, ...]] = {
    "schema": (
        "StatusNotification without its required errorCode",
        "StatusNotification status outside its enum",
        "Authorize idTag over its 20-character maxLength",
        "Heartbeat with an additional property",
        "MeterValues timestamp that is not a date-time",
    ),
    "types": (
        "StatusNotification connectorId as a string",
        "Authorize idTag as a number",
        "MeterValues meterValue as an object",
        "Heartbeat payload as a list",
    ),
    "order": (
        "MeterValues for a transaction the CSMS never gave",
        "StopTransaction before any StartTransaction",
        "MeterValues with timestamps and register going backwards",
    ),
    "duplicate_id": (
        "a CALL reusing the id of one in flight",
        "a CALL reusing the id of one just answered",
    ),
    "flood": ("N Heartbeats without waiting for answers",),
    "malformed": (
        "truncated JSON",
        "a JSON object instead of an OCPP-J array",
        "unknown message type id 7",
    ),
    "unknown_action": (
        "an action OCPP 1.6 does not define",
        "RemoteStartTransaction (a CSMS-to-station action)",
    ),
}
"""What each kind sends (for the README and the tests)."""


def build(
    kind: str, ids: Callable[[], str], rng: random.Random, ctx: Context, flood_burst: int = 20
) -> list[Probe]:
    """The frames of one misbehaviour of ``kind``, sent together in this order."""
    return BUILDERS[kind](ids, rng, ctx, flood_burst)


# -- running ---------------------------------------------------------------------------


@dataclass(slots=True)
class Outcome:
    """A classified answer, for Locust (see fleet.locust.misbehave)."""

    kind: str
    variant: str
    answer: str
    seconds: float  # real seconds from sending to the answer
    size: int  # bytes of the answer
    finding: bool


@dataclass(slots=True)
class _Pending:
    probe: Probe
    link: Any
    sent_at: float  # loop time
    replies: list[list[Any]] = field(default_factory=list)


def answer_of(frame: list[Any]) -> str:
    """``accepted`` for a CALLRESULT, the code of a CALLERROR (bounded: a code neither
    OCPP 1.6 nor 2.0.1 defines is ``other CALLERROR``)."""
    if frame[0] == 3:
        return ACCEPTED
    code = frame[2] if len(frame) > 2 else None
    return code if isinstance(code, str) and code in CALLERROR_CODES else OTHER_CALLERROR


class MisbehaveDirector:
    """Sends the plan's misbehaviours on the fleet's loop and classifies the answers.

    Loop thread only (``samples`` is the one thing other threads read).
    """

    def __init__(self, fleet: Any, plan: MisbehavePlan, rng: random.Random) -> None:
        self.fleet = fleet
        self.plan = plan
        self.rng = rng
        self._salt = rng.getrandbits(32)
        self._kinds = [k for k, _ in plan.kinds]
        self._weights = [w for _, w in plan.kinds]
        self._ids = itertools.count(1)
        self._chosen: dict[str, bool] = {}
        self.members: list[str] = []  # station ids that misbehave, among those running
        self.pending: dict[str, _Pending] = {}  # unique id -> waiting for its answer
        self._malformed: dict[Any, deque[str]] = {}  # link -> malformed ids, oldest first
        self.samples: deque[Outcome] = deque()
        self._arrival: Any = None  # the next misbehaviour's timer
        self._sweeper: Any = None
        self.stopped = False
        self._logged: set[tuple[str, str]] = set()

    # -- who misbehaves -----------------------------------------------------------------

    def misbehaves(self, identity: str) -> bool:
        """Seeded and per station id: the same stations in every run with the same seed,
        a station keeps its role for its whole life, and about ``share`` of any fleet."""
        chosen = self._chosen.get(identity)
        if chosen is None:
            h = zlib.crc32(f"{self._salt}:{identity}".encode())
            chosen = self._chosen[identity] = h / 2**32 < self.plan.share
        return chosen

    # -- scheduling ---------------------------------------------------------------------

    def start(self) -> None:
        self._sweep()
        self._schedule()

    def stop(self) -> None:
        self.stopped = True
        for handle in (self._arrival, self._sweeper):
            if handle is not None:
                handle.cancel()
        self._arrival = self._sweeper = None

    def _schedule(self) -> None:
        """The next misbehaviour of the fleet: the stations' Poisson processes merged
        (rate x members), each arrival going to a member drawn uniformly."""
        if self.stopped:
            return
        total = self.plan.rate_per_hour * len(self.members) / 3600.0
        delay = self.rng.expovariate(total) if total > 0 else SWEEP_SECONDS
        self._arrival = self.fleet.loop.call_later(
            delay, self._arrive if total > 0 else self._schedule
        )

    def _arrive(self) -> None:
        if self.stopped:
            return
        if self.members:
            link = self.fleet.links.get(self.rng.choice(self.members))
            if link is not None:
                kind = self.rng.choices(self._kinds, self._weights)[0]
                self.fire(link, kind)
        self._schedule()

    def _sweep(self) -> None:
        if self.stopped:
            return
        self.members = [sid for sid in self.fleet.links if self.misbehaves(sid)]
        self.expire()
        every = min(SWEEP_SECONDS, self.plan.timeout / 2)
        self._sweeper = self.fleet.loop.call_later(every, self._sweep)

    # -- sending --------------------------------------------------------------------------

    def next_id(self) -> str:
        return f"{PREFIX}{next(self._ids)}"

    def fire(self, link: Any, kind: str) -> bool:
        """Send one misbehaviour of ``kind`` from ``link``'s station now; False when the
        station is not connected and accepted (it misbehaves only where it may talk)."""
        station = link.station
        if station.boot_status != "Accepted":
            return False
        ctx = Context(self.fleet.now(), _id_tag(station))
        probes = build(kind, self.next_id, self.rng, ctx, self.plan.flood_burst)
        if not self._send(link, probes[0]):
            return False
        for probe in probes[1:]:
            self._send(link, probe)
        return True

    def _send(self, link: Any, probe: Probe) -> bool:
        uid = probe.unique_id
        known = self.pending.get(uid)
        if not link.send_raw(probe.frame, uid, self._reply):
            return False
        stats = self.fleet.stats
        if probe.counted:
            stats.misbehave_sent[probe.kind] += 1
        if known is not None and not known.probe.counted:
            # The same id at once (a duplicate in flight): the duplicate takes over the
            # pending entry and collects both answers.
            known.probe = probe
        else:
            self.pending[uid] = _Pending(probe, link, self.fleet.loop.time())
        if probe.kind == "malformed":
            # A CSMS that cannot read the id may answer with id "-1" (as OCPP 2.0.1 asks).
            self._malformed.setdefault(link, deque()).append(uid)
            if "-1" not in link.raw_calls:
                link.raw_calls["-1"] = functools.partial(self._reply_minus_one, link)
        return True

    # -- answers --------------------------------------------------------------------------

    def _reply(self, uid: str, frame: list[Any] | str) -> None:
        """From the link: a reply with one of our ids, or the connection ending."""
        pending = self.pending.get(uid)
        if pending is None:
            return
        if isinstance(frame, str):  # "closed" or "abandoned"
            self._resolve(uid, pending, frame, 0)
            return
        pending.replies.append(frame)
        probe = pending.probe
        if probe.follow_up is not None:
            del self.pending[uid]
            self._send(pending.link, probe.follow_up)
            return
        if len(pending.replies) < probe.replies:
            pending.link.raw_calls[uid] = self._reply  # the other answer may follow
            return
        self._resolve(uid, pending, _classify(pending.replies), len(orjson.dumps(frame)))

    def _reply_minus_one(self, link: Any, uid: str, frame: list[Any] | str) -> None:
        """A reply with id "-1" goes to the oldest malformed frame of that link."""
        queue = self._malformed.get(link)
        if isinstance(frame, str) or not queue:
            return  # each malformed id is resolved through its own entry
        oldest = queue[0]
        pending = self.pending.get(oldest)
        if pending is not None:
            link.raw_calls.pop(oldest, None)
            pending.replies.append(frame)
            self._resolve(oldest, pending, answer_of(frame), len(orjson.dumps(frame)))

    def expire(self) -> None:
        """Time out what waited longer than ``timeout`` (oldest first: dict order)."""
        if not self.pending:
            return
        deadline = self.fleet.loop.time() - self.plan.timeout
        for uid, pending in list(self.pending.items()):
            if pending.sent_at > deadline:
                break
            link = pending.link
            link.raw_calls.pop(uid, None)
            probe = pending.probe
            if probe.follow_up is not None or not probe.counted:
                del self.pending[uid]  # a carrier never answered: nothing was sent to count
                continue
            if pending.replies:  # a duplicate in flight answered once: the other was dropped
                answer = _classify(pending.replies, IGNORED)
            else:
                answer = IGNORED if probe.kind == "duplicate_id" else TIMEOUT
            self._resolve(uid, pending, answer, 0, self.plan.timeout)

    def _resolve(
        self, uid: str, pending: _Pending, answer: str, size: int, seconds: float | None = None
    ) -> None:
        self.pending.pop(uid, None)
        probe = pending.probe
        link = pending.link
        queue = self._malformed.get(link)
        if queue is not None and uid in queue:
            queue.remove(uid)
            if not queue:
                del self._malformed[link]
                link.raw_calls.pop("-1", None)
            elif "-1" not in link.raw_calls:  # the link let it go with the reply it routed
                link.raw_calls["-1"] = functools.partial(self._reply_minus_one, link)
        if not probe.counted:
            return
        kind = probe.kind
        self.fleet.stats.misbehave_answers[(kind, answer)] += 1
        if answer == ABANDONED:
            return
        if seconds is None:
            seconds = max(0.0, self.fleet.loop.time() - pending.sent_at)
        finding = answer in FINDINGS[kind]
        self.samples.append(Outcome(kind, probe.variant, answer, seconds, size, finding))
        if finding and (probe.variant, answer) not in self._logged:
            self._logged.add((probe.variant, answer))
            log.warning(
                "misbehave: the CSMS's answer to %s (%s) is a finding: %s; frame %s",
                kind,
                probe.variant,
                answer,
                probe.frame[:200].decode("utf-8", "replace"),
            )


def _classify(replies: list[list[Any]], single: str = ACCEPTED) -> str:
    """The answer to a CALL from its replies: a CALLERROR's code if any came, else
    ``accepted`` (or ``single`` when a CALL sent twice was answered once)."""
    answers = [answer_of(r) for r in replies]
    refused = [a for a in answers if a != ACCEPTED]
    if refused:
        return refused[0]
    return ACCEPTED if len(replies) != 1 or single == ACCEPTED else single


def _id_tag(station: Any) -> str:
    tx = getattr(station, "transaction", None)
    tag = getattr(tx, "id_tag", None)
    return tag if isinstance(tag, str) and tag else "MISBEHAVE"


def start(fleet: Any, plan: MisbehavePlan | None, rng: random.Random) -> MisbehaveDirector | None:
    """Run the plan on the fleet's loop (call on the loop thread); None without a plan."""
    if plan is None:
        return None
    director = MisbehaveDirector(fleet, plan, rng)
    director.start()
    return director


def table(sent: Mapping[str, int], answers: Mapping[tuple[str, str], int]) -> str:
    """How the CSMS answered each kind: one line per (kind, answer), findings marked."""
    kinds = [k for k in KINDS if sent.get(k) or any(a[0] == k for a in answers)]
    if not kinds:
        return ""
    lines = [
        "Misbehaving stations: how the CSMS answered",
        f"  {'kind':<16}{'sent':>7}  {'answer':<30}{'count':>7}",
    ]
    findings = 0
    for kind in kinds:
        rows = sorted(
            ((a, n) for (k, a), n in answers.items() if k == kind and n),
            key=lambda row: (-row[1], row[0]),
        )
        done = sum(n for _, n in rows)
        pending = sent.get(kind, 0) - done
        if pending > 0:
            rows.append(("(still waiting)", pending))
        first = True
        for answer, n in rows or [("", 0)]:
            mark = ""
            if answer in FINDINGS[kind]:
                mark = "  finding"
                findings += n
            head = f"{kind:<16}{sent.get(kind, 0):>7}" if first else " " * 23
            lines.append(f"  {head}  {answer:<30}{n:>7}{mark}")
            first = False
    lines.append(
        f"  findings: {findings} (invalid input accepted, or a CALL left unanswered; "
        "Locust lists them as MISBEHAVE failures)"
    )
    return "\n".join(lines)
