"""Schema violations are told apart from other errors (fleet_ocpp_schema_violations_total).

A payload from the CSMS that breaks the official schema is a finding about the CSMS
("received"); a CALLERROR the CSMS chose to send, or an action we do not support, is
not a schema violation.
"""

from __future__ import annotations

import orjson

from fleet.protocol.rpc import Failed, Rejected, RpcEndpoint

ACTIONS = frozenset({"ChangeConfiguration", "GetConfiguration"})


def _endpoint() -> RpcEndpoint:
    return RpcEndpoint(ACTIONS, timeout=10.0, validate=True)


def test_a_call_whose_payload_breaks_the_schema() -> None:
    event = _endpoint().receive(
        orjson.dumps([2, "1", "ChangeConfiguration", {"key": 5, "value": "x"}]), 0.0
    )
    assert isinstance(event, Rejected) and event.schema
    assert event.code == "TypeConstraintViolation"


def test_a_call_we_do_not_support_is_no_schema_violation() -> None:
    event = _endpoint().receive(orjson.dumps([2, "1", "Reset", {"type": "Hard"}]), 0.0)
    assert isinstance(event, Rejected) and not event.schema


def test_a_callresult_that_breaks_the_schema() -> None:
    rpc = _endpoint()
    uid = orjson.loads(rpc.call("Authorize", {"idTag": "T1"}, 0.0))[1]
    event = rpc.receive(orjson.dumps([3, uid, {"idTagInfo": {"status": "Maybe"}}]), 0.1)
    assert isinstance(event, Failed) and event.schema and not event.timeout


def test_a_callerror_from_the_csms_is_no_schema_violation() -> None:
    rpc = _endpoint()
    uid = orjson.loads(rpc.call("Authorize", {"idTag": "T1"}, 0.0))[1]
    event = rpc.receive(orjson.dumps([4, uid, "InternalError", "no", {}]), 0.1)
    assert isinstance(event, Failed) and not event.schema
    assert event.code == "InternalError"
