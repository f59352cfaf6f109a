"""Bad input from a CSMS, item by item, over real loopback websockets.

Each test points one real station (Fleet + StationLink on this test's asyncio loop) at
:class:`EvilCsms`, makes it misbehave once, and asserts three things:

* the answer: the CALLERROR (id and code) OCPP-J 1.6 §4.2.3 and our RPC layer give, or
  no answer where OCPP asks none (a reply to an unknown id is ignored);
* the metric: the Prometheus family and labels that count it, read from a real
  exposition of the fleet's collector;
* the station still runs: a following normal exchange in both directions works
  (TriggerMessage Heartbeat -> Accepted, then the station's Heartbeat CALL is
  answered), on the same connection where the fault did not have to close it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import pytest
import trustme
from evil_csms import EvilCsms
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from fleet.engine import link as link_module
from fleet.engine.fleet import Fleet
from fleet.engine.link import MAX_MESSAGE, StationLink
from fleet.metrics.exporter import FleetCollector
from fleet.model.config import ConfigStore
from fleet.model.station import Station

FAST = {
    "MinimumStatusDuration": 0,
    "WebSocketPingInterval": 0,
    "HeartbeatInterval": 3600,
    "WebsocketRequestTimeout": 5,
}


def run(scenario: Callable[[], Awaitable[None]], timeout: float = 30) -> None:
    asyncio.run(asyncio.wait_for(scenario(), timeout))


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Reconnect backoff starts at 50 ms here (the law is the same, only shorter)."""
    monkeypatch.setattr(link_module, "BACKOFF_BASE", 0.05)


def metric(fleet: Fleet, family: str, **labels: str) -> float:
    """One sample of the fleet's /metrics exposition (0 if absent)."""
    registry = CollectorRegistry()
    registry.register(FleetCollector(fleet.stats))
    text = generate_latest(registry).decode()
    for fam in text_string_to_metric_families(text):
        for sample in fam.samples:
            if sample.name == family and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


async def online(csms: EvilCsms, **config: Any) -> tuple[Fleet, StationLink]:
    """One station, booted (BootNotification Accepted) on ``csms``."""
    fleet = Fleet(asyncio.get_running_loop(), seed=11)
    station = Station("EV1", fleet.now(), config=ConfigStore({**FAST, **config}))
    link = fleet.add(station, csms.url)
    await csms.wait(lambda: station.boot_status == "Accepted", 5, "boot")
    await csms.wait(lambda: len(csms.calls("StatusNotification")) >= 2, 5, "statuses")
    return fleet, link


_probe = 0


async def still_running(csms: EvilCsms, fleet: Fleet) -> None:
    """A normal exchange both ways: TriggerMessage(Heartbeat) -> Accepted, Heartbeat -> answered."""
    global _probe
    _probe += 1
    beats = len(csms.calls("Heartbeat"))
    answered = fleet.stats.messages[("Heartbeat", "received", "station")]
    uid = f"probe-{_probe}"
    await csms.call(uid, "TriggerMessage", {"requestedMessage": "Heartbeat"})
    reply = await csms.reply(uid)
    assert reply == [3, uid, {"status": "Accepted"}]
    await csms.wait(lambda: len(csms.calls("Heartbeat")) > beats, 5, "the triggered Heartbeat")
    await csms.wait(
        lambda: fleet.stats.messages[("Heartbeat", "received", "station")] > answered,
        5,
        "its answer",
    )
    assert fleet.stats.stations_connected == 1


# -- frames on an open connection that get a CALLERROR -------------------------------

ANSWERED = [
    # (what, frame, answer id, code, metric action label)
    ("malformed JSON", '[2, "j1", "Reset", {', "-1", "FormationViolation", ""),
    ("not an array", '{"messageTypeId": 2}', "-1", "FormationViolation", ""),
    ("an empty array", "[]", "-1", "FormationViolation", ""),
    ("no unique id", '[2, 17, "Reset", {"type": "Soft"}]', "-1", "FormationViolation", ""),
    ("unknown message type", '[5, "t1", "Reset", {"type": "Soft"}]', "t1", "ProtocolError", ""),
    ("unknown action", '[2, "a1", "FlyMeToTheMoon", {}]', "a1", "NotImplemented", "unknown"),
    (
        "an action OCPP 1.6 has that a station does not take",
        '[2, "a2", "BootNotification", {"chargePointVendor": "x", "chargePointModel": "y"}]',
        "a2",
        "NotSupported",
        "BootNotification",
    ),
    (
        "a security-extension action the Charge Pro does not support",
        '[2, "a3", "ExtendedTriggerMessage", {"requestedMessage": "Heartbeat"}]',
        "a3",
        "NotSupported",
        "ExtendedTriggerMessage",
    ),
    ("payload not an object", '[2, "s1", "Reset", "Soft"]', "s1", "FormationViolation", "Reset"),
    (
        "enum value out of range",
        '[2, "s2", "Reset", {"type": "Sideways"}]',
        "s2",
        "PropertyConstraintViolation",
        "Reset",
    ),
    (
        "wrong type",
        '[2, "s3", "RemoteStopTransaction", {"transactionId": "x"}]',
        "s3",
        "TypeConstraintViolation",
        "RemoteStopTransaction",
    ),
    (
        "required field missing",
        '[2, "s4", "RemoteStopTransaction", {}]',
        "s4",
        "OccurenceConstraintViolation",
        "RemoteStopTransaction",
    ),
    (
        "CALL with a fifth element",
        '[2, "f1", "Reset", {"type": "Soft"}, 1]',
        "f1",
        "FormationViolation",
        "",
    ),
]


@pytest.mark.parametrize(
    ("frame", "uid", "code", "label"),
    [pytest.param(*case[1:], id=case[0]) for case in ANSWERED],
)
def test_bad_frame_gets_its_callerror_is_counted_and_the_station_runs_on(
    frame: str, uid: str, code: str, label: str
) -> None:
    async def scenario() -> None:
        async with EvilCsms() as csms:
            fleet, link = await online(csms)
            before = len(csms.replies_to(uid))
            await csms.send(frame)
            await csms.wait(lambda: len(csms.replies_to(uid)) > before, 5, "the CALLERROR")
            reply = csms.replies_to(uid)[-1]
            assert reply[0] == 4 and reply[1] == uid and reply[2] == code, reply
            assert isinstance(reply[3], str) and isinstance(reply[4], dict)
            assert metric(fleet, "fleet_inbound_errors_total", action=label, code=code) == 1
            await still_running(csms, fleet)
            assert csms.connections == 1  # answered, not disconnected
            assert link.station.boot_status == "Accepted"
            fleet.stop_all()

    run(scenario)


def test_schema_breaking_calls_are_counted_as_the_csms_schema_violations() -> None:
    async def scenario() -> None:
        async with EvilCsms() as csms:
            fleet, _ = await online(csms)
            await csms.send('[2, "v1", "Reset", {"type": "Sideways"}]')
            await csms.send('[2, "v2", "RemoteStopTransaction", {}]')
            await csms.reply("v2")
            assert (
                metric(
                    fleet,
                    "fleet_ocpp_schema_violations_total",
                    action="Reset",
                    direction="received",
                )
                == 1
            )
            await still_running(csms, fleet)
            fleet.stop_all()

    run(scenario)


def test_unknown_action_names_do_not_become_metric_labels() -> None:
    """A CSMS sending random action names must not grow /metrics without bound."""

    async def scenario() -> None:
        async with EvilCsms() as csms:
            fleet, _ = await online(csms)
            for i in range(20):
                await csms.send(f'[2, "n{i}", "Made-Up-{i}-{"x" * 200}", {{}}]')
            await csms.reply("n19")
            assert all(csms.replies_to(f"n{i}")[0][2] == "NotImplemented" for i in range(20))
            labels = {a for a, _ in fleet.stats.inbound_errors}
            assert labels == {"unknown"}
            assert metric(fleet, "fleet_inbound_errors_total", code="NotImplemented") == 20
            fleet.stop_all()

    run(scenario)


# -- frames OCPP says to ignore ---------------------------------------------------------


@pytest.mark.parametrize(
    "frame",
    [
        pytest.param('[3, "nobody", {"currentTime": "2026-01-01T00:00:00Z"}]', id="CALLRESULT"),
        pytest.param('[4, "nobody", "GenericError", "", {}]', id="CALLERROR"),
    ],
)
def test_reply_for_an_unknown_id_is_ignored_and_counted(frame: str) -> None:
    async def scenario() -> None:
        async with EvilCsms() as csms:
            fleet, _ = await online(csms)
            sent = len(csms.frames)
            await csms.send(frame)
            reason = "reply to an unknown or expired id"
            await csms.wait(lambda: fleet.stats.ignored[reason] == 1, 5, "counted")
            assert metric(fleet, "fleet_ignored_frames_total", reason=reason) == 1
            await still_running(csms, fleet)
            # Nothing was sent back for it: only the probe's exchange followed.
            after = [f for f in csms.frames[sent:] if f[1] == "nobody"]
            assert after == []
            fleet.stop_all()

    run(scenario)


def test_a_reply_sent_twice_is_taken_once_and_the_second_ignored() -> None:
    async def scenario() -> None:
        async with EvilCsms() as csms:
            fleet, _ = await online(csms)

            def twice(frame: list[Any]) -> list[str | bytes]:
                answer = orjson.dumps([3, frame[1], {"currentTime": "2026-01-01T00:00:00Z"}])
                return [answer.decode(), answer.decode()]

            csms.on_call["Heartbeat"] = twice
            await csms.call("tw", "TriggerMessage", {"requestedMessage": "Heartbeat"})
            reason = "reply to an unknown or expired id"
            await csms.wait(lambda: fleet.stats.ignored[reason] == 1, 5, "second one ignored")
            assert fleet.stats.messages[("Heartbeat", "received", "station")] == 1
            del csms.on_call["Heartbeat"]
            await still_running(csms, fleet)
            fleet.stop_all()

    run(scenario)


def test_a_duplicate_call_id_is_answered_once_and_refused_the_second_time() -> None:
    """OCPP-J: a CALL's id is unique on its connection. The second CALL with a used id
    gets a CALLERROR (and is not executed twice); the first keeps its answer."""

    async def scenario() -> None:
        async with EvilCsms() as csms:
            fleet, _ = await online(csms)
            call = '[2, "dup", "GetConfiguration", {"key": ["HeartbeatInterval"]}]'
            await csms.send(call)
            await csms.send(call)
            await csms.wait(lambda: len(csms.replies_to("dup")) == 2, 5, "two answers")
            first, second = csms.replies_to("dup")
            assert first[0] == 3 and first[2]["configurationKey"][0]["key"] == "HeartbeatInterval"
            assert second[0] == 4 and second[2] == "GenericError"
            assert "duplicate" in second[3]
            assert (
                metric(
                    fleet,
                    "fleet_inbound_errors_total",
                    action="GetConfiguration",
                    code="GenericError",
                )
                == 1
            )
            await still_running(csms, fleet)
            fleet.stop_all()

    run(scenario)


def test_binary_frames_are_refused_not_executed() -> None:
    """OCPP-J is text only: a CALL in a binary frame gets FormationViolation, unexecuted."""

    async def scenario() -> None:
        async with EvilCsms() as csms:
            fleet, link = await online(csms)
            await csms.send(b'[2, "bin1", "Reset", {"type": "Hard"}]')
            reply = await csms.reply("bin1")
            assert reply[0] == 4 and reply[2] == "FormationViolation"
            assert "binary" in reply[3]
            await csms.send(b"\x00\xff\x10")
            await csms.wait(lambda: len(csms.replies_to("-1")) == 1, 5, "garbage refused")
            assert (
                metric(fleet, "fleet_inbound_errors_total", action="", code="FormationViolation")
                == 2
            )
            await asyncio.sleep(0.2)
            assert csms.connections == 1  # no Reset happened
            assert link.station.boot_status == "Accepted"
            await still_running(csms, fleet)
            fleet.stop_all()

    run(scenario)


# -- size, time and the socket --------------------------------------------------------


def test_a_frame_over_the_size_limit_closes_1009_is_counted_and_the_station_reconnects() -> None:
    async def scenario() -> None:
        async with EvilCsms() as csms:
            fleet, _ = await online(csms)
            # Exactly at the limit is fine (and answered: it is not valid OCPP).
            at_limit = '[2, "big", "DataTransfer", {"vendorId": "x", "data": "%s"}]'
            at_limit = at_limit % ("y" * (MAX_MESSAGE - len(at_limit) + 2))
            assert len(at_limit) == MAX_MESSAGE
            await csms.send(at_limit)
            assert (await csms.reply("big"))[0] in (3, 4)
            conn = csms.conn
            assert conn is not None
            await csms.send("z" * (MAX_MESSAGE + 1))
            await csms.wait(lambda: csms.connections == 2, 5, "reconnect")
            assert conn.close_code == 1009
            assert metric(fleet, "fleet_disconnects_total", reason="message too big") == 1
            assert metric(fleet, "fleet_reconnects_total") == 1
            await csms.wait(lambda: fleet.stats.stations_connected == 1, 5, "online")
            await still_running(csms, fleet)
            fleet.stop_all()

    run(scenario)


def test_a_reply_after_the_timeout_is_a_timeout_then_ignored() -> None:
    async def scenario() -> None:
        async with EvilCsms() as csms:
            fleet, link = await online(csms)
            link.rpc.timeout = 1.0  # WebsocketRequestTimeout's minimum is 5 s: spare them
            csms.hold.add("Heartbeat")
            await csms.call("late", "TriggerMessage", {"requestedMessage": "Heartbeat"})
            await csms.wait(lambda: fleet.stats.timeouts["Heartbeat"] == 1, 5, "timeout")
            assert metric(fleet, "fleet_ocpp_timeouts_total", action="Heartbeat") == 1
            csms.hold.clear()
            assert await csms.answer_held() == 1
            reason = "reply to an unknown or expired id"
            await csms.wait(lambda: fleet.stats.ignored[reason] == 1, 5, "late reply ignored")
            await still_running(csms, fleet)
            assert csms.connections == 1
            fleet.stop_all()

    run(scenario)


@pytest.mark.parametrize("how", ["abort", "close"])
def test_the_csms_dropping_the_socket_mid_call_loses_nothing(how: str) -> None:
    """The CSMS goes away while a StartTransaction is in flight: counted (disconnect
    reason, the call a failure for Locust), the station reconnects and sends it again."""

    async def scenario() -> None:
        async with EvilCsms() as csms:
            fleet, link = await online(csms, LocalPreAuthorize=True)
            station = link.station
            csms.hold.add("StartTransaction")
            link.hardware(station.plug_in)
            link.hardware(lambda now: station.present_tag("TAG1", now))
            await csms.wait(lambda: csms.held, 5, "StartTransaction in flight")
            first = csms.held[0][1]
            csms.hold.clear()
            if how == "abort":
                csms.abort()
                reason = "connection lost"
            else:
                assert csms.conn is not None
                await csms.conn.close(1011, "going down")
                reason = "closed by CSMS"
            await csms.wait(lambda: csms.connections == 2, 5, "reconnect")
            starts = await csms.wait(
                lambda: [f for f in csms.calls("StartTransaction") if f is not first],
                5,
                "StartTransaction again",
            )
            assert starts[0][3] == first[3]  # the same message, re-sent
            await csms.wait(lambda: station.transaction.transaction_id == 1, 5, "tx id")
            assert metric(fleet, "fleet_disconnects_total", reason=reason) == 1
            assert fleet.samples is not None
            assert ("StartTransaction", "connection lost") in {(s[0], s[3]) for s in fleet.samples}
            await still_running(csms, fleet)
            fleet.stop_all()

    run(scenario)


# -- the upgrade -----------------------------------------------------------------------


@pytest.mark.parametrize("status", [401, 404, 500])
def test_http_errors_on_the_upgrade_are_counted_and_retried_with_backoff(status: int) -> None:
    async def scenario() -> None:
        async with EvilCsms(http_status=status) as csms:
            fleet = Fleet(asyncio.get_running_loop(), seed=12)
            station = Station("EV2", fleet.now(), config=ConfigStore(FAST))
            fleet.add(station, csms.url)
            await csms.wait(lambda: csms.handshakes >= 3, 5, "retries")
            assert metric(fleet, "fleet_connect_failures_total", reason=f"HTTP {status}") >= 3
            assert fleet.stats.stations_connected == 0
            csms.http_status = None  # the CSMS is fixed: the next retry gets in
            await csms.wait(lambda: station.boot_status == "Accepted", 10, "boot")
            await still_running(csms, fleet)
            fleet.stop_all()

    run(scenario)


@pytest.mark.parametrize("subprotocol", [None, "ocpp2.0.1"], ids=["missing", "wrong"])
def test_a_missing_or_wrong_subprotocol_is_a_counted_connect_failure(
    subprotocol: str | None,
) -> None:
    async def scenario() -> None:
        async with EvilCsms(subprotocol=subprotocol) as csms:
            fleet = Fleet(asyncio.get_running_loop(), seed=13)
            station = Station("EV3", fleet.now(), config=ConfigStore(FAST))
            fleet.add(station, csms.url)
            await csms.wait(lambda: csms.handshakes >= 3, 5, "retries")
            reason = "no ocpp1.6 subprotocol"
            assert metric(fleet, "fleet_connect_failures_total", reason=reason) >= 3
            assert not csms.frames  # nothing was sent on a connection without OCPP
            csms.subprotocol = "ocpp1.6"
            await csms.wait(lambda: station.boot_status == "Accepted", 10, "boot")
            await still_running(csms, fleet)
            fleet.stop_all()

    run(scenario)


def _untrusted_server_context() -> Any:
    import ssl

    ca = trustme.CA()  # a CA the station does not know
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(ctx)
    return ctx


@pytest.mark.parametrize("server", ["untrusted certificate", "plain ws at a wss url"])
def test_tls_failures_are_counted_and_retried(server: str) -> None:
    async def scenario() -> None:
        ctx = _untrusted_server_context() if server == "untrusted certificate" else None
        async with EvilCsms(ssl=ctx) as csms:
            fleet = Fleet(asyncio.get_running_loop(), seed=14)
            station = Station("EV4", fleet.now(), config=ConfigStore(FAST))
            url = csms.url.replace("ws://", "wss://")
            fleet.add(station, url)
            await csms.wait(lambda: fleet.stats.connect_failures["tls"] >= 3, 8, "retries")
            assert metric(fleet, "fleet_connect_failures_total", reason="tls") >= 3
            assert csms.connections == 0 and fleet.stats.stations_connected == 0
            assert len(fleet.links) == 1  # still trying
            fleet.stop_all()

    run(scenario)
