"""The station side of OCPP-J 1.6 RPC: framing, ids, one outstanding CALL, timeouts,
CALLERROR mapping and schema validation, driven through RpcEndpoint's public API."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fleet.protocol import errors
from fleet.protocol.errors import OcppError
from fleet.protocol.rpc import (
    Answered,
    Dropped,
    Failed,
    IncomingCall,
    Rejected,
    RpcEndpoint,
)

# The CSMS -> station operations a Charge Pro accepts (written out here so these
# tests do not depend on the station model).
SUPPORTED = frozenset(
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

BOOT = {"chargePointVendor": "Schneider Electric", "chargePointModel": "Charge Pro"}
BOOT_OK = {"status": "Accepted", "currentTime": "2026-01-01T00:00:00Z", "interval": 60}

EVENT_TYPES = (IncomingCall, Answered, Failed, Rejected, Dropped)


def endpoint(**kwargs: Any) -> RpcEndpoint:
    return RpcEndpoint(SUPPORTED, **kwargs)


def frame(*items: Any) -> bytes:
    return orjson.dumps(list(items))


def assert_call_error(reply: bytes, unique_id: str, code: str | None = None) -> list[Any]:
    """``reply`` is a well-formed OCPP-J CALLERROR for ``unique_id``."""
    msg = orjson.loads(reply)
    assert isinstance(msg, list)
    assert len(msg) == 5
    assert msg[0] == 4
    assert msg[1] == unique_id
    assert isinstance(msg[1], str)
    assert 1 <= len(msg[1]) <= 36
    assert msg[2] in errors.ERROR_CODES
    if code is not None:
        assert msg[2] == code
    assert isinstance(msg[3], str)
    assert isinstance(msg[4], dict)
    return msg


# -- our CALLs ---------------------------------------------------------------------


@pytest.mark.parametrize("message_ids", ["unique", "counter"])
def test_call_frames_a_call_with_unique_ids(message_ids: str) -> None:
    ep = endpoint(message_ids=message_ids)
    ids = []
    for i in range(5):
        raw = ep.call("Heartbeat", {}, now=float(i))
        msg = orjson.loads(raw)
        assert msg[0] == 2
        assert msg[2] == "Heartbeat"
        assert msg[3] == {}
        assert len(msg) == 4
        assert isinstance(msg[1], str)
        assert 1 <= len(msg[1]) <= 36
        ids.append(msg[1])
        assert isinstance(
            ep.receive(frame(3, msg[1], {"currentTime": "2026-01-01T00:00:00Z"}), i), Answered
        )
    assert len(set(ids)) == len(ids)
    if message_ids == "counter":
        assert ids == ["1", "2", "3", "4", "5"]
    else:  # UUID form, and no other endpoint (station) repeats them
        assert all(len(x) == 36 and x.count("-") == 4 for x in ids)
        other = orjson.loads(endpoint().call("Heartbeat", {}, now=0.0))[1]
        assert other not in ids


def test_unknown_message_ids_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="counter"):
        endpoint(message_ids="sequential")


def test_call_payload_round_trips() -> None:
    msg = orjson.loads(endpoint().call("BootNotification", BOOT, now=0.0))
    assert msg[3] == BOOT


def test_second_call_while_one_is_outstanding_raises() -> None:
    ep = endpoint()
    ep.call("Heartbeat", {}, now=0.0)
    assert ep.busy
    with pytest.raises(RuntimeError):
        ep.call("Heartbeat", {}, now=1.0)
    # The first call is still the one being waited for.
    assert ep.deadline == pytest.approx(10.0)


def test_call_with_invalid_payload_raises_and_leaves_endpoint_free() -> None:
    ep = endpoint()
    with pytest.raises(OcppError) as exc:
        ep.call("BootNotification", {"chargePointVendor": "x"}, now=0.0)
    assert exc.value.code == errors.OCCURENCE_CONSTRAINT_VIOLATION
    assert not ep.busy


def test_callresult_for_outstanding_id_is_answered_with_round_trip() -> None:
    ep = endpoint()
    uid = orjson.loads(ep.call("BootNotification", BOOT, now=100.0))[1]
    event = ep.receive(frame(3, uid, BOOT_OK), now=100.25)
    assert isinstance(event, Answered)
    assert event.action == "BootNotification"
    assert event.payload == BOOT_OK
    assert event.request == BOOT
    assert event.round_trip == pytest.approx(0.25)
    assert not ep.busy
    assert ep.deadline is None


def test_callresult_accepts_str_input() -> None:
    ep = endpoint()
    uid = orjson.loads(ep.call("Heartbeat", {}, now=0.0))[1]
    event = ep.receive(f'[3,"{uid}",{{"currentTime":"2026-01-01T00:00:00Z"}}]', now=1.0)
    assert isinstance(event, Answered)


def test_callerror_for_outstanding_id_fails_with_code_and_description() -> None:
    ep = endpoint()
    uid = orjson.loads(ep.call("Heartbeat", {}, now=5.0))[1]
    event = ep.receive(frame(4, uid, "InternalError", "database down", {}), now=5.5)
    assert isinstance(event, Failed)
    assert event.action == "Heartbeat"
    assert event.code == "InternalError"
    assert event.description == "database down"
    assert event.round_trip == pytest.approx(0.5)
    assert event.timeout is False
    assert event.request == {}
    assert not ep.busy


def test_reply_to_unknown_id_is_dropped() -> None:
    ep = endpoint()
    uid = orjson.loads(ep.call("Heartbeat", {}, now=0.0))[1]
    event = ep.receive(frame(3, uid[:-1] + "x", {"currentTime": "2026-01-01T00:00:00Z"}), now=1.0)
    assert isinstance(event, Dropped)
    assert event.unique_id == uid[:-1] + "x"
    # Still waiting for the real answer.
    assert ep.busy
    event = ep.receive(frame(4, "nope", "GenericError", "", {}), now=1.0)
    assert isinstance(event, Dropped)
    assert ep.busy


def test_reply_when_nothing_is_outstanding_is_dropped() -> None:
    event = endpoint().receive(frame(3, "1", {}), now=0.0)
    assert isinstance(event, Dropped)
    assert event.unique_id == "1"


def test_check_timeout_before_and_after_the_deadline() -> None:
    ep = endpoint(timeout=30.0)
    assert ep.check_timeout(1000.0) is None  # nothing outstanding
    ep.call("BootNotification", BOOT, now=10.0)
    assert ep.deadline == pytest.approx(40.0)
    assert ep.check_timeout(39.999) is None
    assert ep.busy
    event = ep.check_timeout(40.0)
    assert isinstance(event, Failed)
    assert event.timeout is True
    assert event.action == "BootNotification"
    assert event.request == BOOT
    assert event.round_trip == pytest.approx(30.0)
    assert not ep.busy
    assert ep.check_timeout(50.0) is None  # reported once


def test_reply_to_timed_out_call_is_dropped() -> None:
    ep = endpoint(timeout=1.0)
    uid = orjson.loads(ep.call("Heartbeat", {}, now=0.0))[1]
    assert isinstance(ep.check_timeout(2.0), Failed)
    late = ep.receive(frame(3, uid, {"currentTime": "2026-01-01T00:00:00Z"}), now=3.0)
    assert isinstance(late, Dropped)
    assert late.unique_id == uid
    # A late answer is still dropped while a newer call is outstanding.
    new_uid = orjson.loads(ep.call("Heartbeat", {}, now=3.0))[1]
    assert new_uid != uid
    late = ep.receive(frame(4, uid, "GenericError", "", {}), now=3.5)
    assert isinstance(late, Dropped)
    assert ep.busy


def test_reset_forgets_outstanding_call_but_never_reuses_ids() -> None:
    ep = endpoint()
    uid = orjson.loads(ep.call("Heartbeat", {}, now=0.0))[1]
    ep.reset()
    assert not ep.busy
    assert ep.deadline is None
    assert ep.check_timeout(100.0) is None
    assert isinstance(
        ep.receive(frame(3, uid, {"currentTime": "2026-01-01T00:00:00Z"}), 1.0), Dropped
    )
    new_uid = orjson.loads(ep.call("Heartbeat", {}, now=1.0))[1]  # no RuntimeError
    assert new_uid != uid


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({}, errors.OCCURENCE_CONSTRAINT_VIOLATION),
        ({"currentTime": 5}, errors.TYPE_CONSTRAINT_VIOLATION),
        ({"currentTime": "yesterday"}, errors.PROPERTY_CONSTRAINT_VIOLATION),
        (
            {"currentTime": "2026-01-01T00:00:00Z", "extra": 1},
            errors.FORMATION_VIOLATION,
        ),
        ([], errors.FORMATION_VIOLATION),
        ("x", errors.FORMATION_VIOLATION),
    ],
)
def test_invalid_callresult_payload_fails_with_mapped_code(payload: Any, code: str) -> None:
    ep = endpoint()
    uid = orjson.loads(ep.call("Heartbeat", {}, now=0.0))[1]
    event = ep.receive(frame(3, uid, payload), now=0.5)
    assert isinstance(event, Failed)
    assert event.code == code
    assert event.timeout is False
    assert event.round_trip == pytest.approx(0.5)
    assert not ep.busy


def test_invalid_callresult_enum_fails_with_property_constraint() -> None:
    ep = endpoint()
    uid = orjson.loads(ep.call("BootNotification", BOOT, now=0.0))[1]
    event = ep.receive(frame(3, uid, {**BOOT_OK, "status": "Maybe"}), now=0.1)
    assert isinstance(event, Failed)
    assert event.code == errors.PROPERTY_CONSTRAINT_VIOLATION


def test_validate_false_skips_schema_checks_on_callresult_and_call() -> None:
    ep = endpoint(validate=False)
    uid = orjson.loads(ep.call("Heartbeat", {"bogus": True}, now=0.0))[1]
    event = ep.receive(frame(3, uid, {}), now=0.1)
    assert isinstance(event, Answered)
    assert event.payload == {}


# -- CALLs from the CSMS -----------------------------------------------------------


def test_incoming_call_for_supported_action_with_valid_payload() -> None:
    ep = endpoint()
    event = ep.receive(frame(2, "abc-123", "Reset", {"type": "Hard"}), now=0.0)
    assert event == IncomingCall("abc-123", "Reset", {"type": "Hard"})


def test_incoming_call_does_not_disturb_outstanding_call() -> None:
    ep = endpoint()
    uid = orjson.loads(ep.call("Heartbeat", {}, now=0.0))[1]
    assert isinstance(ep.receive(frame(2, uid, "ClearCache", {}), now=0.1), IncomingCall)
    assert ep.busy
    assert isinstance(
        ep.receive(frame(3, uid, {"currentTime": "2026-01-01T00:00:00Z"}), 0.2), Answered
    )


def test_reply_frames_a_callresult() -> None:
    ep = endpoint()
    call = ep.receive(frame(2, "m-1", "Reset", {"type": "Soft"}), now=0.0)
    assert isinstance(call, IncomingCall)
    assert orjson.loads(ep.reply(call, {"status": "Accepted"})) == [
        3,
        "m-1",
        {"status": "Accepted"},
    ]


def test_reply_with_invalid_payload_raises() -> None:
    ep = endpoint()
    call = ep.receive(frame(2, "m-1", "Reset", {"type": "Soft"}), now=0.0)
    assert isinstance(call, IncomingCall)
    with pytest.raises(OcppError) as exc:
        ep.reply(call, {"status": "Perhaps"})
    assert exc.value.code == errors.PROPERTY_CONSTRAINT_VIOLATION
    # With validation off the endpoint frames whatever it is given.
    ep.validate = False
    assert orjson.loads(ep.reply(call, {"status": "Perhaps"}))[2] == {"status": "Perhaps"}


def test_reply_error_frames_a_callerror() -> None:
    ep = endpoint()
    call = ep.receive(frame(2, "m-2", "UnlockConnector", {"connectorId": 1}), now=0.0)
    assert isinstance(call, IncomingCall)
    raw = ep.reply_error(call, OcppError(errors.INTERNAL_ERROR, "boom"))
    assert orjson.loads(raw) == [4, "m-2", "InternalError", "boom", {}]


def test_reply_error_carries_details() -> None:
    ep = endpoint()
    call = ep.receive(frame(2, "m-3", "ClearCache", {}), now=0.0)
    assert isinstance(call, IncomingCall)
    raw = ep.reply_error(call, OcppError(errors.GENERIC_ERROR, "x", {"cause": "fault"}))
    assert orjson.loads(raw) == [4, "m-3", "GenericError", "x", {"cause": "fault"}]
    # Details that are not JSON do not cost the CSMS its answer.
    raw = ep.reply_error(call, OcppError(errors.GENERIC_ERROR, "x", {"cause": object()}))
    assert_call_error(raw, "m-3", errors.GENERIC_ERROR)


def test_reply_error_with_non_ocpp_code_sends_generic_error() -> None:
    ep = endpoint()
    call = ep.receive(frame(2, "m-4", "ClearCache", {}), now=0.0)
    assert isinstance(call, IncomingCall)
    msg = assert_call_error(ep.reply_error(call, OcppError("Timeout", "slow")), "m-4")
    assert msg[2] == errors.GENERIC_ERROR
    assert "Timeout" in msg[3]


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"[2, 'single quotes', 'Reset', {}]", errors.FORMATION_VIOLATION),
        (b"", errors.FORMATION_VIOLATION),
        (b"\xff\xfe\x00", errors.FORMATION_VIOLATION),
        (b"[2,", errors.FORMATION_VIOLATION),
        (b"{}", errors.FORMATION_VIOLATION),
        (b'{"0": 2, "1": "x"}', errors.FORMATION_VIOLATION),
        (b'"[2,\\"1\\",\\"Reset\\",{}]"', errors.FORMATION_VIOLATION),
        (b"42", errors.FORMATION_VIOLATION),
        (b"null", errors.FORMATION_VIOLATION),
        (b"[]", errors.FORMATION_VIOLATION),
        (b"[2]", errors.FORMATION_VIOLATION),
        (b'[2, 17, "Reset", {"type": "Hard"}]', errors.FORMATION_VIOLATION),
        (b'[2, null, "Reset", {"type": "Hard"}]', errors.FORMATION_VIOLATION),
        (b'[2, ["1"], "Reset", {"type": "Hard"}]', errors.FORMATION_VIOLATION),
        (b'[2, "", "Reset", {"type": "Hard"}]', errors.FORMATION_VIOLATION),
        (b'[2, "' + b"a" * 37 + b'", "Reset", {"type": "Hard"}]', errors.FORMATION_VIOLATION),
    ],
)
def test_unreadable_frames_are_rejected_with_id_minus_one(data: bytes, code: str) -> None:
    event = endpoint().receive(data, now=0.0)
    assert isinstance(event, Rejected)
    assert event.code == code
    assert_call_error(event.reply, "-1", code)


def test_id_of_exactly_36_chars_is_accepted() -> None:
    uid = "f" * 36
    event = endpoint().receive(frame(2, uid, "ClearCache", {}), now=0.0)
    assert event == IncomingCall(uid, "ClearCache", {})


UID = "2c9e1b4a-6c0d-4f5e-9d3b-8a7f6e5d4c3b"  # 36 chars, like a UUID


@pytest.mark.parametrize(
    ("message", "code"),
    [
        # Short arrays whose id is still readable.
        ([2, UID], errors.FORMATION_VIOLATION),
        ([2, UID, "Reset"], errors.FORMATION_VIOLATION),
        # Too long, or a non-string action.
        ([2, UID, "Reset", {"type": "Hard"}, {}], errors.FORMATION_VIOLATION),
        ([2, UID, 7, {"type": "Hard"}], errors.FORMATION_VIOLATION),
        ([2, UID, None, {"type": "Hard"}], errors.FORMATION_VIOLATION),
        # Unknown message type ids.
        ([5, UID, "Reset", {"type": "Hard"}], errors.PROTOCOL_ERROR),
        ([0, UID, "Reset", {"type": "Hard"}], errors.PROTOCOL_ERROR),
        (["2", UID, "Reset", {"type": "Hard"}], errors.PROTOCOL_ERROR),
        ([None, UID, "Reset", {"type": "Hard"}], errors.PROTOCOL_ERROR),
        # Action unknown to OCPP 1.6.
        ([2, UID, "FlyToTheMoon", {}], errors.NOT_IMPLEMENTED),
        ([2, UID, "", {}], errors.NOT_IMPLEMENTED),
        ([2, UID, "reset", {"type": "Hard"}], errors.NOT_IMPLEMENTED),
        ([2, UID, "ResetResponse", {"status": "Accepted"}], errors.NOT_IMPLEMENTED),
        ([2, UID, "../schemas/Reset", {"type": "Hard"}], errors.NOT_IMPLEMENTED),
        ([2, UID, "../../v201/schemas/ResetRequest", {}], errors.NOT_IMPLEMENTED),
        ([2, UID, "Reset\x00", {"type": "Hard"}], errors.NOT_IMPLEMENTED),
        # Actions OCPP 1.6 defines that a Charge Pro does not take from a CSMS.
        ([2, UID, "BootNotification", BOOT], errors.NOT_SUPPORTED),
        ([2, UID, "Heartbeat", {}], errors.NOT_SUPPORTED),
        ([2, UID, "CertificateSigned", {"certificateChain": "x"}], errors.NOT_SUPPORTED),
        ([2, UID, "ExtendedTriggerMessage", {"requestedMessage": "Heartbeat"}], "NotSupported"),
        # Payload not an object.
        ([2, UID, "Reset", ["type", "Hard"]], errors.FORMATION_VIOLATION),
        ([2, UID, "Reset", None], errors.FORMATION_VIOLATION),
        ([2, UID, "Reset", "Hard"], errors.FORMATION_VIOLATION),
        # Schema violations, one per mapped rule.
        ([2, UID, "Reset", {}], errors.OCCURENCE_CONSTRAINT_VIOLATION),
        ([2, UID, "UnlockConnector", {}], errors.OCCURENCE_CONSTRAINT_VIOLATION),
        ([2, UID, "Reset", {"type": 1}], errors.TYPE_CONSTRAINT_VIOLATION),
        ([2, UID, "UnlockConnector", {"connectorId": "1"}], errors.TYPE_CONSTRAINT_VIOLATION),
        ([2, UID, "UnlockConnector", {"connectorId": 1.5}], errors.TYPE_CONSTRAINT_VIOLATION),
        ([2, UID, "UnlockConnector", {"connectorId": True}], errors.TYPE_CONSTRAINT_VIOLATION),
        ([2, UID, "Reset", {"type": "Medium"}], errors.PROPERTY_CONSTRAINT_VIOLATION),
        (
            [2, UID, "RemoteStartTransaction", {"idTag": "x" * 21}],
            errors.PROPERTY_CONSTRAINT_VIOLATION,
        ),
        (
            [
                2,
                UID,
                "ReserveNow",
                {"connectorId": 1, "expiryDate": "soon", "idTag": "t", "reservationId": 1},
            ],
            errors.PROPERTY_CONSTRAINT_VIOLATION,
        ),
        ([2, UID, "GetDiagnostics", {"location": "no uri"}], errors.PROPERTY_CONSTRAINT_VIOLATION),
        ([2, UID, "Reset", {"type": "Hard", "when": "now"}], errors.FORMATION_VIOLATION),
    ],
)
def test_bad_incoming_call_is_rejected_with_its_unique_id(message: list[Any], code: str) -> None:
    ep = endpoint()
    event = ep.receive(orjson.dumps(message), now=0.0)
    assert isinstance(event, Rejected)
    assert event.code == code
    msg = assert_call_error(event.reply, UID, code)
    assert msg[3] == event.description[:255]
    assert not ep.busy


def test_rejected_reports_the_action() -> None:
    event = endpoint().receive(frame(2, "1", "Reset", {"type": "Medium"}), now=0.0)
    assert isinstance(event, Rejected)
    assert event.action == "Reset"
    event = endpoint().receive(frame(2, "1", "BootNotification", BOOT), now=0.0)
    assert isinstance(event, Rejected)
    assert event.action == "BootNotification"


def test_validate_false_skips_schema_checks_on_incoming_call() -> None:
    ep = endpoint(validate=False)
    event = ep.receive(frame(2, "1", "Reset", {"type": "Medium", "extra": 1}), now=0.0)
    assert event == IncomingCall("1", "Reset", {"type": "Medium", "extra": 1})
    # Framing and action checks still apply.
    unsupported = ep.receive(frame(2, "2", "BootNotification", {}), now=0.0)
    assert isinstance(unsupported, Rejected)
    assert unsupported.code == errors.NOT_SUPPORTED
    not_object = ep.receive(frame(2, "3", "Reset", []), now=0.0)
    assert isinstance(not_object, Rejected)
    assert not_object.code == errors.FORMATION_VIOLATION


def test_setchargingprofile_decimal_limits() -> None:
    def profile(limit: float) -> dict[str, Any]:
        return {
            "connectorId": 1,
            "csChargingProfiles": {
                "chargingProfileId": 1,
                "stackLevel": 0,
                "chargingProfilePurpose": "TxDefaultProfile",
                "chargingProfileKind": "Absolute",
                "chargingSchedule": {
                    "chargingRateUnit": "A",
                    "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit}],
                },
            },
        }

    ep = endpoint()
    for i, limit in enumerate((6, 16.3, 0.3, 32.1, 7400.7)):
        assert isinstance(
            ep.receive(frame(2, str(i), "SetChargingProfile", profile(limit)), 0), IncomingCall
        )
    bad = ep.receive(frame(2, "bad", "SetChargingProfile", profile(6.05)), 0)
    assert isinstance(bad, Rejected)
    assert bad.code == errors.PROPERTY_CONSTRAINT_VIOLATION


# -- fuzz --------------------------------------------------------------------------

KNOWN_IDS = ["1", "2", UID, "", "x" * 37]
ACTIONS = sorted(SUPPORTED | {"BootNotification", "Heartbeat", "CertificateSigned", "Foo"})
VALID_PAYLOADS: list[Any] = [
    {},
    {"type": "Hard"},
    {"connectorId": 1},
    {"connectorId": 0, "type": "Inoperative"},
    {"idTag": "ABC"},
    {"key": ["HeartbeatInterval"]},
    {"key": "HeartbeatInterval", "value": "60"},
    {"requestedMessage": "Heartbeat"},
    {"vendorId": "Schneider"},
    {"currentTime": "2026-01-01T00:00:00Z"},
    {"status": "Accepted"},
    BOOT_OK,
]

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=15,
)
message_types = st.sampled_from([2, 3, 4]) | json_scalars
unique_ids = st.sampled_from(KNOWN_IDS) | st.text(max_size=40) | json_scalars
actions = st.sampled_from(ACTIONS) | st.text(max_size=30) | json_scalars
payloads = st.sampled_from(VALID_PAYLOADS) | json_values
# [type, id, action, payload, extra...] cut to any length, most often the right one.
shaped = st.builds(
    lambda kind, uid, action, payload, extra, cut: [kind, uid, action, payload, *extra][:cut],
    message_types,
    unique_ids,
    actions,
    payloads,
    st.lists(json_scalars, max_size=2),
    st.just(4) | st.integers(min_value=0, max_value=6),
)
# CALLs that are well framed, with a supported (or OCPP) action: mostly answerable.
calls = st.builds(
    lambda uid, action, payload: [2, uid, action, payload],
    st.text(min_size=1, max_size=36),
    st.sampled_from(ACTIONS),
    payloads,
)
replies = st.builds(
    lambda kind, uid, rest: [kind, uid, *rest],
    st.sampled_from([3, 4]),
    st.sampled_from(["1", "2"]),
    st.lists(payloads | st.sampled_from(sorted(errors.ERROR_CODES)), max_size=4),
)
messages = (
    st.binary(max_size=80)
    | json_values.map(orjson.dumps)
    | shaped.map(orjson.dumps)
    | calls.map(orjson.dumps)
    | replies.map(orjson.dumps)
    | st.one_of(shaped, calls).map(lambda m: orjson.dumps(m).decode())
)

FUZZ = settings(
    max_examples=400,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def check_one_event(ep: RpcEndpoint, data: str | bytes) -> None:
    event = ep.receive(data, now=1.0)
    assert isinstance(event, EVENT_TYPES)
    try:
        message = orjson.loads(data)
    except orjson.JSONDecodeError:
        message = None
    if isinstance(event, Rejected):
        uid = message[1] if isinstance(message, list) and len(message) > 1 else None
        expected = uid if isinstance(uid, str) and 1 <= len(uid) <= 36 else "-1"
        assert_call_error(event.reply, expected, event.code)
        assert event.code in errors.ERROR_CODES
    if (
        isinstance(message, list)
        and len(message) > 1
        and message[0] == 2
        and isinstance(message[1], str)
    ):
        # An incoming CALL: exactly one answer will go out.
        assert isinstance(event, IncomingCall | Rejected)
        if isinstance(event, IncomingCall):
            assert event.unique_id == message[1]
            assert event.action in SUPPORTED
            assert isinstance(event.payload, dict)
    if isinstance(event, Dropped | Answered) or (isinstance(event, Failed) and not event.timeout):
        assert isinstance(message, list)
        assert message[0] in (3, 4)


@FUZZ
@given(data=messages)
def test_fuzz_receive_never_raises_and_yields_one_event(data: str | bytes) -> None:
    check_one_event(endpoint(), data)


@FUZZ
@given(data=messages, validate=st.booleans())
def test_fuzz_receive_with_an_outstanding_call(data: str | bytes, validate: bool) -> None:
    ep = endpoint(validate=validate)
    ep.call("Heartbeat", {}, now=0.0)  # unique id "1"
    check_one_event(ep, data)
    # The endpoint stays usable whatever it was fed.
    ep.reset()
    ep.call("Heartbeat", {}, now=2.0)
