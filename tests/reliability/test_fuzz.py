"""Fuzz the protocol core and the model together, sans-I/O, with a fake clock.

A booted Charge Pro (``Station``) behind an ``RpcEndpoint``, driven exactly as
``StationLink`` drives them, gets sequences of frames from a CSMS that hypothesis makes
up: CALLs whose payloads are generated from the official OCPP 1.6 JSON schemas that
ship in the ``ocpp`` package (valid ones, and ones with random mutations: a key dropped,
a value of the wrong type, an unknown key, an enum out of range, the whole payload
replaced), CALLs of actions the station does not take, replies to ids it never used,
random JSON and random text. Between frames the clock moves and the station's own
CALLs are answered, so the model really runs (transactions, reboots, profiles).

Invariants, for every frame:

* no exception escapes the endpoint or the model, other than the ``OcppError`` a
  handler raises to be sent as a CALLERROR;
* every CALL gets exactly one answer, a CALLRESULT or a CALLERROR carrying its unique id
  (a CALL whose id cannot be read gets a CALLERROR with id ``-1``), and nothing that is
  not a CALL is answered;
* every answer, and every CALL the station sends, is valid OCPP-J (our own CALLRESULTs
  pass the official schema: the endpoint checks it on the way out).

``derandomize=True``: the examples are the same in every run.
"""

from __future__ import annotations

import json
import string
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

import orjson
from evil_csms import default_answer
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from fleet.model.config import KEYS, ConfigStore
from fleet.model.records import Reboot, Reconnect
from fleet.model.station import CSMS_ACTIONS, Station
from fleet.protocol.errors import ERROR_CODES, OcppError
from fleet.protocol.rpc import (
    CALL,
    Answered,
    Dropped,
    Failed,
    IncomingCall,
    Rejected,
    RpcEndpoint,
)

SCHEMAS: dict[str, dict[str, Any]] = {}
for entry in resources.files("ocpp.v16").joinpath("schemas").iterdir():
    if entry.name.endswith(".json") and not entry.name.endswith("Response.json"):
        SCHEMAS[entry.name[:-5]] = json.loads(entry.read_text())
# The actions a CSMS may send a station, plus ones it may not (NotSupported).
ACTIONS = sorted(a for a in SCHEMAS if a in CSMS_ACTIONS)
OTHER_ACTIONS = sorted(a for a in SCHEMAS if a not in CSMS_ACTIONS)
assert set(ACTIONS) == CSMS_ACTIONS, sorted(CSMS_ACTIONS - set(ACTIONS))

T0 = 1_790_000_000.0

# -- payloads from the schemas -------------------------------------------------------

json_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
)
json_value = st.recursive(
    json_scalar,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)

_dates = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1), timezones=st.just(UTC)
)
date_time = st.one_of(
    _dates.map(lambda d: d.strftime("%Y-%m-%dT%H:%M:%SZ")),
    _dates.map(lambda d: d.isoformat()),
    st.just((datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=5)).isoformat()),
)
# Names the model looks at, so payloads reach past the schema into the handlers.
_NAMED: dict[str, st.SearchStrategy[Any]] = {
    "key": st.one_of(st.sampled_from(sorted(KEYS)), st.text(string.ascii_letters, max_size=20)),
    "value": st.one_of(
        st.sampled_from(["0", "1", "5", "60", "true", "false", "Energy.Active.Import.Register"]),
        st.text(max_size=20),
    ),
    "connectorId": st.integers(-1, 3),
    "idTag": st.sampled_from(["TAG1", "TAG2", "", "x" * 20]),
    "parentIdTag": st.sampled_from(["TAG1", "PARENT"]),
    "transactionId": st.integers(-1, 3),
    "reservationId": st.integers(0, 3),
    "location": st.sampled_from(["ftp://127.0.0.1/x", "https://127.0.0.1/fw.bin", "nope"]),
    "duration": st.integers(-10, 100_000),
    "retries": st.integers(0, 3),
    "retryInterval": st.integers(0, 60),
    "listVersion": st.integers(-1, 5),
}


def from_schema(schema: dict[str, Any], name: str = "") -> st.SearchStrategy[Any]:
    """Values that (mostly) satisfy a draft-4 schema of the subset OCPP 1.6 uses."""
    if name in _NAMED and schema.get("type") in ("string", "integer"):
        return _NAMED[name]
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type")
    if kind == "object":
        props = schema.get("properties", {})
        required = set(schema.get("required", ()))
        return st.fixed_dictionaries(
            {k: from_schema(v, k) for k, v in props.items() if k in required},
            optional={k: from_schema(v, k) for k, v in props.items() if k not in required},
        )
    if kind == "array":
        return st.lists(
            from_schema(schema.get("items", {}), name),
            min_size=min(schema.get("minItems", 0), 3),
            max_size=min(schema.get("maxItems", 4), 4),
        )
    if kind == "string":
        if schema.get("format") == "date-time":
            return date_time
        return st.text(max_size=min(schema.get("maxLength", 30), 30))
    if kind == "integer":
        return st.integers(-5, 100_000)
    if kind == "number":
        return st.one_of(st.integers(0, 1000), st.decimals(0, 1000, places=1).map(float))
    if kind == "boolean":
        return st.booleans()
    return json_value


PAYLOADS = {action: from_schema(schema) for action, schema in SCHEMAS.items()}


def _mutate(draw: Any, value: Any, depth: int = 0) -> Any:
    """One random change somewhere inside ``value``."""
    how = draw(st.sampled_from(["replace", "drop", "add", "descend"]))
    if isinstance(value, dict) and value and how in ("drop", "descend"):
        key = draw(st.sampled_from(sorted(value)))
        out = dict(value)
        if how == "drop":
            del out[key]
        else:
            out[key] = _mutate(draw, value[key], depth + 1)
        return out
    if isinstance(value, list) and value and how == "descend":
        i = draw(st.integers(0, len(value) - 1))
        return [*value[:i], _mutate(draw, value[i], depth + 1), *value[i + 1 :]]
    if isinstance(value, dict) and how == "add":
        return {**value, draw(st.text(max_size=8)): draw(json_value)}
    return draw(json_value)


@st.composite
def csms_call(draw: Any, ids: st.SearchStrategy[str]) -> list[Any]:
    """A CALL from the CSMS: a schema-shaped payload, mutated one time in three."""
    action = draw(
        st.one_of(st.sampled_from(ACTIONS), st.sampled_from(OTHER_ACTIONS), st.text(max_size=12))
        if draw(st.integers(0, 9)) == 0
        else st.sampled_from(ACTIONS)
    )
    strategy = PAYLOADS.get(action, st.just({}))
    payload = draw(strategy)
    if draw(st.integers(0, 2)) == 0:
        payload = _mutate(draw, payload)
    return [CALL, draw(ids), action, payload]


@st.composite
def frames(draw: Any) -> str | bytes:
    """One websocket message from the CSMS."""
    ids = st.one_of(
        st.integers(0, 10_000).map(lambda i: f"c{i}"),  # mostly fresh; sometimes reused
        st.text(max_size=40),
    )
    kind = draw(st.integers(0, 9))
    if kind <= 5:
        frame: Any = draw(csms_call(ids))
    elif kind == 6:  # a reply to something (rarely to an id we used)
        frame = draw(
            st.one_of(
                st.tuples(st.just(3), st.sampled_from(["1", "2", "3", "x"]), json_value).map(list),
                st.tuples(
                    st.just(4), ids, st.sampled_from(sorted(ERROR_CODES)), st.text(), json_value
                ).map(list),
            )
        )
    elif kind == 7:  # a list of random shape
        frame = draw(st.lists(json_value, max_size=6))
    elif kind == 8:
        return draw(st.one_of(st.text(max_size=60), st.binary(max_size=60)))
    else:
        frame = draw(json_value)
    return orjson.dumps(frame)


# -- the driver: what StationLink does, without sockets -------------------------------


class Harness:
    """A booted station behind its endpoint, on a fake clock."""

    def __init__(self, charging: bool) -> None:
        self.now = T0
        config = ConfigStore({"MinimumStatusDuration": 0, "LocalPreAuthorize": True})
        self.station = Station("FZ1", self.now, config=config)
        self.rpc = RpcEndpoint(CSMS_ACTIONS, timeout=10.0)
        self.tx_ids = 0
        self.station.connected(self.now)
        self.pump()
        assert self.station.boot_status == "Accepted"
        if charging:
            self.station.plug_in(self.now)
            self.station.present_tag("TAG1", self.now)
            self.pump()

    def pump(self) -> None:
        """Let the station send what it wants; a well-behaved CSMS answers each CALL."""
        station, rpc = self.station, self.rpc
        for _ in range(50):
            station.advance(self.now)
            self.effects()
            msg = station.next_message(self.now) if not rpc.busy else None
            if msg is None:
                return
            frame = orjson.loads(rpc.call(msg.action, msg.payload, self.now))  # schema-checked
            answer = default_answer(msg.action, msg.payload)
            if msg.action == "StartTransaction":
                self.tx_ids += 1
                answer["transactionId"] = self.tx_ids
            event = rpc.receive(orjson.dumps([3, frame[1], answer]), self.now)
            assert isinstance(event, Answered), event
            station.on_answer(event.payload, self.now)
            self.now += 0.1

    def effects(self) -> None:
        station = self.station
        while station.effects:
            effect = station.effects.popleft()
            if isinstance(effect, Reboot | Reconnect):
                self.rpc.reset()
                station.disconnected(self.now)
                if isinstance(effect, Reboot):
                    self.now += effect.seconds
                    station.rebooted(self.now)
                station.connected(self.now)
            # File transfers (Upload / Download) need an engine: not here.

    def deliver(self, data: str | bytes) -> list[bytes]:
        """One message from the CSMS; returns what the station sent back for it."""
        out: list[bytes] = []
        got = self.rpc.receive(data, self.now)
        if isinstance(got, IncomingCall):
            try:
                result = self.station.handle_call(got.action, got.payload, self.now)
            except OcppError as exc:
                event(f"model refused: {exc.code}")
                out.append(self.rpc.reply_error(got, exc))
            else:
                event("model answered")
                out.append(self.rpc.reply(got, result))  # raises if our answer is invalid
        elif isinstance(got, Rejected):
            event(f"endpoint refused: {got.code}")
            out.append(got.reply)
        elif isinstance(got, Failed):
            self.station.on_failure(got.timeout, self.now)
        elif isinstance(got, Answered):
            self.station.on_answer(got.payload, self.now)
        else:
            assert isinstance(got, Dropped)
        return out


def _call_id(data: str | bytes) -> str | None:
    """The id a CALL's answer must carry: its own, "-1" if unreadable, None if no CALL."""
    try:
        frame = orjson.loads(data)
    except orjson.JSONDecodeError:
        return "-1"  # not JSON: answered as an unreadable frame
    if not isinstance(frame, list) or not frame:
        return "-1"
    uid = frame[1] if len(frame) > 1 else None
    if not (isinstance(uid, str) and 0 < len(uid) <= 36):
        return "-1"
    if frame[0] in (3, 4) and len(frame) >= 3:
        return None  # a reply: never answered
    return uid  # a CALL, or a frame of unknown type / too short: answered with its id


@settings(
    max_examples=400,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    charging=st.booleans(),
    messages=st.lists(st.tuples(frames(), st.floats(0, 120)), min_size=1, max_size=8),
)
def test_every_call_gets_exactly_one_answer_and_nothing_escapes(
    charging: bool, messages: list[tuple[bytes, float]]
) -> None:
    h = Harness(charging)
    for data, dt in messages:
        h.now += dt
        h.pump()
        out = h.deliver(data)
        expected = _call_id(data)
        if expected is None:
            assert out == []
            continue
        assert len(out) == 1, (data, out)
        answer = orjson.loads(out[0])
        assert answer[1] == expected, (data, answer)
        assert answer[0] in (3, 4)
        if answer[0] == 4:
            assert answer[2] in ERROR_CODES and isinstance(answer[3], str)
            assert isinstance(answer[4], dict)
        h.effects()
    h.now += 600
    h.pump()  # and the station still runs: it talks to a good CSMS again


@settings(max_examples=150, deadline=None, derandomize=True, database=None)
@given(action=st.sampled_from(ACTIONS), data=st.data())
def test_valid_schema_payloads_are_executed_or_refused_with_an_ocpp_code(
    action: str, data: Any
) -> None:
    """Payloads straight from the schema (no mutation) pass the endpoint and reach the
    model, which answers with a schema-valid CALLRESULT or a CALLERROR with an OCPP code."""
    payload = data.draw(PAYLOADS[action])
    h = Harness(data.draw(st.booleans()))
    out = h.deliver(orjson.dumps([CALL, "v1", action, payload]))
    assert len(out) == 1
    answer = orjson.loads(out[0])
    assert answer[1] == "v1"
    if answer[0] == 4:
        assert answer[2] in ERROR_CODES
