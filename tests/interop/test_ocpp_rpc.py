"""Stations on the real engine against a second, independent OCPP-J implementation.

The reference CSMS (``fleet/csms``) is Python, like the stations; here the other end
is ``ocpp-rpc`` (Node, ``ws``, ``ajv``) in strict mode, run by ``csms.js`` in a child
process: it validates every CALL a station sends and every CALLRESULT a station
answers against its own bundled copy of the OCPP 1.6 schemas, and parses every frame
with its own OCPP-J framing rules. The test talks to it over stdin/stdout in JSON
lines, drives three stations through sessions and CSMS-initiated calls, then checks
that ocpp-rpc saw no validation failure and no bad frame, that every message arrived
in the expected order, and that the station answered every CSMS call correctly,
including deliberately invalid ones.

Needs ``node`` (skipped without it) and ``tests/interop/node_modules`` (``make test``
installs it with ``npm ci``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from support import HANG_GUARD, until

from fleet.engine.fleet import Fleet
from fleet.engine.link import StationLink
from fleet.model.config import ConfigStore
from fleet.model.faults import VENDOR_ERRORS
from fleet.model.station import Station

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "csms.js"
NODE = shutil.which("node")

pytestmark = pytest.mark.skipif(
    NODE is None, reason="node is not installed: the ocpp-rpc interop test needs Node.js >= 18"
)

FAST = {
    "MinimumStatusDuration": 0,
    "MeterValueSampleInterval": 1,
    "WebSocketPingInterval": 1,  # the station pings ws; ocpp-rpc pings the station too
}
HEARTBEAT = 300  # the interval csms.js answers BootNotification with
CSMS_PING_MS = 500  # ocpp-rpc drops a station that misses one pong
OCPP16_ERROR_CODES = {
    "NotImplemented",
    "NotSupported",
    "InternalError",
    "ProtocolError",
    "SecurityError",
    "FormationViolation",
    "PropertyConstraintViolation",
    "OccurenceConstraintViolation",
    "TypeConstraintViolation",
    "GenericError",
}


def _require_node_modules() -> None:
    installed = HERE / "node_modules" / "ocpp-rpc" / "package.json"
    if not installed.exists():
        pytest.fail(
            "tests/interop/node_modules is missing: run `make test` "
            "(it runs `npm ci --prefix tests/interop`)",
            pytrace=False,
        )
    pinned = json.loads((HERE / "package.json").read_text())["dependencies"]["ocpp-rpc"]
    version = json.loads(installed.read_text())["version"]
    if version != pinned:
        pytest.fail(
            f"tests/interop/node_modules has ocpp-rpc {version}, package.json pins {pinned}: "
            "run `make test` to reinstall",
            pytrace=False,
        )


class NodeCsms:
    """``csms.js`` in a child process: commands in on stdin, events out on stdout."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.port = 0
        self.stderr = b""
        self._proc: asyncio.subprocess.Process | None = None
        self._refs = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        assert NODE is not None
        self._proc = proc = await asyncio.create_subprocess_exec(
            NODE,
            str(SCRIPT),
            "0",
            "--ping-ms",
            str(CSMS_PING_MS),
            "--heartbeat",
            str(HEARTBEAT),
            cwd=HERE,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        assert proc.stdout is not None and proc.stderr is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 10)
        if not line:
            await proc.wait()
            self.stderr = await proc.stderr.read()
            raise AssertionError(f"csms.js did not start:\n{self.stderr.decode(errors='replace')}")
        first = json.loads(line)
        assert first["event"] == "listening", first
        self.port = first["port"]
        self._tasks = [
            asyncio.create_task(self._read_events()),
            asyncio.create_task(self._read_stderr()),
        ]

    async def _read_events(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        async for line in self._proc.stdout:
            event = json.loads(line)
            self.events.append(event)
            future = self._waiting.pop(event.get("ref") or 0, None)
            if future is not None and not future.done():
                future.set_result(event)

    async def _read_stderr(self) -> None:
        assert self._proc is not None and self._proc.stderr is not None
        self.stderr = await self._proc.stderr.read()

    async def _command(self, cmd: dict[str, Any], timeout: float = 5.0) -> dict[str, Any]:
        assert self._proc is not None and self._proc.stdin is not None
        ref = next(self._refs)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[ref] = future
        self._proc.stdin.write(json.dumps({**cmd, "ref": ref}).encode() + b"\n")
        await self._proc.stdin.drain()
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            raise AssertionError(f"no answer from csms.js to {cmd}") from None

    async def call(
        self, station: str, action: str, params: dict[str, Any], *, unchecked: bool = False
    ) -> dict[str, Any]:
        """A CSMS-initiated CALL; the reply event (``ok``, ``result`` or ``code``)."""
        return await self._command(
            {
                "cmd": "call",
                "station": station,
                "action": action,
                "params": params,
                "unchecked": unchecked,
            }
        )

    async def result(self, station: str, action: str, params: dict[str, Any]) -> dict[str, Any]:
        reply = await self.call(station, action, params)
        assert reply["ok"], f"{action} {params} to {station}: {reply}"
        result: dict[str, Any] = reply["result"]
        return result

    async def raw(self, station: str, text: str, expect_id: str) -> list[Any]:
        """Send a raw websocket message; the station's answer frame with ``expect_id``."""
        reply = await self._command(
            {"cmd": "raw", "station": station, "text": text, "expect_id": expect_id}
        )
        frame: list[Any] = reply["frame"]
        return frame

    async def ledger(self) -> dict[str, Any]:
        return await self._command({"cmd": "ledger"})

    async def stop(self) -> None:
        proc = self._proc
        if proc is None:
            return
        if proc.returncode is None and proc.stdin is not None:
            with contextlib.suppress(ConnectionError):
                proc.stdin.write(b'{"cmd": "quit"}\n')
                await proc.stdin.drain()
                proc.stdin.close()
            try:
                await asyncio.wait_for(proc.wait(), 5)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*self._tasks), 2)

    # -- reading the events ------------------------------------------------------------

    def of(self, kind: str, station: str | None = None, **match: Any) -> list[dict[str, Any]]:
        return [
            e
            for e in self.events
            if e["event"] == kind
            and (station is None or e.get("station") == station)
            and all(e.get(k) == v for k, v in match.items())
        ]

    def calls(self, station: str, action: str | None = None, **params: Any) -> list[dict[str, Any]]:
        """CALLs the station sent, in arrival order (optionally with these params)."""
        return [
            e
            for e in self.of("call", station)
            if (action is None or e["action"] == action)
            and all(e["params"].get(k) == v for k, v in params.items())
        ]

    def status(self, station: str, connector: int, status: str) -> list[dict[str, Any]]:
        return self.calls(station, "StatusNotification", connectorId=connector, status=status)

    def transaction_id(self, station: str, nth: int = 0) -> int | None:
        started = self.of("handled", station, action="StartTransaction")
        return started[nth]["result"]["transactionId"] if len(started) > nth else None

    def diagnostics(self, last: int = 40) -> str:
        """What to print when the scenario fails: ocpp-rpc's complaints first."""
        complaints = [
            e
            for e in self.events
            if e["event"] in ("validation", "problem")
            or (e["event"] == "bad-message" and not e["expected"])
        ]
        lines = [
            f"ocpp-rpc strict-mode failures, bad frames, ledger problems: {len(complaints)}",
            *(json.dumps(e)[:1000] for e in complaints),
            f"csms.js events (last {last}):",
            *(json.dumps(e)[:400] for e in self.events[-last:]),
            "csms.js stderr:",
            self.stderr.decode(errors="replace"),
        ]
        return "\n".join(lines)


def _key(call: dict[str, Any]) -> tuple[Any, ...]:
    """What identifies a CALL in an expected sequence."""
    action, params = call["action"], call["params"]
    if action == "StatusNotification":
        return (action, params["connectorId"], params["status"])
    if action == "StopTransaction":
        return (action, params.get("reason", "Local"))
    if action == "MeterValues":
        return (action, "transactionId" in params)
    return (action,)


def _assert_in_order(csms: NodeCsms, station: str, expected: Sequence[tuple[Any, ...]]) -> None:
    """Every expected CALL arrived, in this order (others may come in between)."""
    got = [_key(c) for c in csms.calls(station)]
    position = 0
    for want in expected:
        try:
            position = got.index(want, position) + 1
        except ValueError:
            raise AssertionError(
                f"{station}: {want} missing after position {position} in {got}"
            ) from None


def _check_framing(csms: NodeCsms) -> None:
    """Every frame a station sent is OCPP-J 1.6, and its CALL ids are never reused."""
    call_ids: dict[str, set[str]] = {}
    for event in csms.of("frame", dir="in"):
        station, text = event["station"], event["text"]
        frame = json.loads(text)
        assert isinstance(frame, list) and frame, text
        kind, unique_id = frame[0], frame[1]
        assert kind in (2, 3, 4), text
        assert isinstance(unique_id, str) and 1 <= len(unique_id) <= 36, text
        if kind == 2:
            assert len(frame) == 4 and isinstance(frame[2], str), text
            assert isinstance(frame[3], dict), text
            ids = call_ids.setdefault(station, set())
            assert unique_id not in ids, f"{station} reused CALL id {unique_id!r}: {text}"
            ids.add(unique_id)
        elif kind == 3:
            assert len(frame) == 3 and isinstance(frame[2], dict), text
        else:
            assert len(frame) == 5, text
            assert frame[2] in OCPP16_ERROR_CODES, text
            assert isinstance(frame[3], str) and isinstance(frame[4], dict), text


def _station(identity: str, fleet: Fleet, **config: Any) -> Station:
    return Station(identity, fleet.now(), config=ConfigStore({**FAST, **config}))


# IOP1 samples every measurand the Charge Pro has, and (as a unit configured with a
# StopTxnSampledDataMaxLength would) puts transactionData in its StopTransaction.
RICH_METER = {
    "MeterValuesSampledData": (
        "Energy.Active.Import.Register,Current.Offered,"
        "Current.Import.L1,Current.Import.L2,Current.Import.L3"
    ),
    "StopTxnSampledDataMaxLength": 4,
    "StopTxnSampledData": "Energy.Active.Import.Register,Current.Import.L1",
}


async def _badge_session(csms: NodeCsms, link: StationLink) -> None:
    """Plug in, badge, charge, badge again to stop, unplug."""
    station, sid = link.station, link.station.identity
    link.hardware(station.plug_in)
    await until(lambda: csms.status(sid, 1, "Preparing"), what=f"{sid} Preparing")
    link.hardware(lambda now: station.present_tag("TAG-1", now))
    await until(lambda: csms.transaction_id(sid), what=f"{sid} StartTransaction")
    tx = csms.transaction_id(sid)
    await until(
        lambda: len(csms.calls(sid, "MeterValues", transactionId=tx)) >= 2, what=f"{sid} samples"
    )
    link.hardware(station.ev_suspend)
    await until(lambda: csms.status(sid, 1, "SuspendedEV"), what=f"{sid} SuspendedEV")
    charging = len(csms.status(sid, 1, "Charging"))
    link.hardware(station.ev_resume)
    await until(lambda: len(csms.status(sid, 1, "Charging")) > charging, what=f"{sid} resumed")
    link.hardware(lambda now: station.present_tag("TAG-1", now))
    await until(lambda: csms.calls(sid, "StopTransaction"), what=f"{sid} StopTransaction")
    await until(lambda: csms.status(sid, 1, "Finishing"), what=f"{sid} Finishing")
    available = len(csms.status(sid, 1, "Available"))
    link.hardware(station.unplug)
    await until(lambda: len(csms.status(sid, 1, "Available")) > available, what=f"{sid} Available")

    _assert_in_order(
        csms,
        sid,
        [
            ("BootNotification",),
            ("StatusNotification", 1, "Available"),
            ("StatusNotification", 1, "Preparing"),
            ("Authorize",),
            ("StartTransaction",),
            ("StatusNotification", 1, "Charging"),
            ("MeterValues", True),
            ("MeterValues", True),
            ("StatusNotification", 1, "SuspendedEV"),
            ("StatusNotification", 1, "Charging"),
            ("StopTransaction", "Local"),
            ("StatusNotification", 1, "Finishing"),
            ("StatusNotification", 1, "Available"),
        ],
    )
    (stop,) = csms.calls(sid, "StopTransaction")
    assert stop["params"]["transactionId"] == tx
    assert stop["params"]["idTag"] == "TAG-1"
    contexts = [m["sampledValue"][0]["context"] for m in stop["params"]["transactionData"]]
    assert contexts[0] == "Transaction.Begin" and contexts[-1] == "Transaction.End"
    sample = csms.calls(sid, "MeterValues", transactionId=tx)[0]["params"]["meterValue"][0]
    phases = {v.get("phase") for v in sample["sampledValue"] if v["measurand"] == "Current.Import"}
    assert phases == {"L1", "L2", "L3"}
    (start,) = csms.calls(sid, "StartTransaction")
    assert stop["params"]["meterStop"] >= start["params"]["meterStart"]


async def _csms_operations(csms: NodeCsms, link: StationLink) -> None:
    """GetConfiguration, ChangeConfiguration, TriggerMessage, DataTransfer, remote start/stop."""
    station, sid = link.station, link.station.identity

    everything = await csms.result(sid, "GetConfiguration", {})
    keys = {k["key"]: k for k in everything["configurationKey"]}
    assert len(keys) > 50 and "unknownKey" not in everything
    assert keys["HeartbeatInterval"]["value"] == str(HEARTBEAT)  # taken from the boot answer
    assert keys["NumberOfConnectors"]["readonly"] is True
    named = await csms.result(
        sid, "GetConfiguration", {"key": ["MeterValueSampleInterval", "NoSuchKey"]}
    )
    assert named == {
        "configurationKey": [{"key": "MeterValueSampleInterval", "readonly": False, "value": "1"}],
        "unknownKey": ["NoSuchKey"],
    }

    change = "ChangeConfiguration"
    assert await csms.result(sid, change, {"key": "HeartbeatInterval", "value": "120"}) == {
        "status": "Accepted"
    }
    assert await csms.result(sid, change, {"key": "NumberOfConnectors", "value": "2"}) == {
        "status": "Rejected"
    }
    assert await csms.result(sid, change, {"key": "NoSuchKey", "value": "1"}) == {
        "status": "NotSupported"
    }
    assert (await csms.result(sid, "GetConfiguration", {"key": ["HeartbeatInterval"]}))[
        "configurationKey"
    ][0]["value"] == "120"

    triggers: list[tuple[dict[str, Any], tuple[Any, ...]]] = [
        ({"requestedMessage": "Heartbeat"}, ("Heartbeat",)),
        ({"requestedMessage": "StatusNotification", "connectorId": 1}, ("StatusNotification",)),
        ({"requestedMessage": "MeterValues", "connectorId": 1}, ("MeterValues",)),
        ({"requestedMessage": "DiagnosticsStatusNotification"}, ("DiagnosticsStatusNotification",)),
        ({"requestedMessage": "FirmwareStatusNotification"}, ("FirmwareStatusNotification",)),
        ({"requestedMessage": "BootNotification"}, ("BootNotification",)),
    ]
    for params, (action,) in triggers:
        before = len(csms.calls(sid, action))
        assert await csms.result(sid, "TriggerMessage", params) == {"status": "Accepted"}
        await until(
            lambda a=action, n=before: len(csms.calls(sid, a)) > n,
            what=f"{sid} triggered {action}",
        )
    (triggered_mv,) = csms.calls(sid, "MeterValues")
    assert triggered_mv["params"]["meterValue"][0]["sampledValue"][0]["context"] == "Trigger"

    assert await csms.result(
        sid, "DataTransfer", {"vendorId": "org.example.interop", "messageId": "Ping"}
    ) == {"status": "UnknownVendorId"}

    # Remote start: AuthorizeRemoteTxRequests (True by default) makes it Authorize first;
    # the driver plugs in after the answer.
    assert await csms.result(
        sid, "RemoteStartTransaction", {"idTag": "TAG-2", "connectorId": 1}
    ) == {"status": "Accepted"}
    await until(lambda: csms.calls(sid, "Authorize", idTag="TAG-2"), what=f"{sid} Authorize")
    await until(
        lambda: station.connectors[1].authorized or station.transaction, what=f"{sid} authorized"
    )
    link.hardware(station.plug_in)
    await until(lambda: csms.transaction_id(sid), what=f"{sid} StartTransaction")
    tx = csms.transaction_id(sid)
    assert tx is not None
    await until(lambda: csms.calls(sid, "MeterValues", transactionId=tx), what=f"{sid} sample")
    assert await csms.result(sid, "RemoteStopTransaction", {"transactionId": tx + 999}) == {
        "status": "Rejected"
    }
    assert await csms.result(sid, "RemoteStopTransaction", {"transactionId": tx}) == {
        "status": "Accepted"
    }
    await until(lambda: csms.calls(sid, "StopTransaction"), what=f"{sid} StopTransaction")
    await until(lambda: csms.status(sid, 1, "Finishing"), what=f"{sid} Finishing")
    available = len(csms.status(sid, 1, "Available"))
    link.hardware(station.unplug)
    await until(lambda: len(csms.status(sid, 1, "Available")) > available, what=f"{sid} Available")

    _assert_in_order(
        csms,
        sid,
        [
            ("BootNotification",),
            ("Heartbeat",),
            ("StatusNotification", 1, "Available"),
            ("MeterValues", False),
            ("DiagnosticsStatusNotification",),
            ("FirmwareStatusNotification",),
            ("BootNotification",),
            ("Authorize",),
            ("StatusNotification", 1, "Preparing"),
            ("StartTransaction",),
            ("StatusNotification", 1, "Charging"),
            ("MeterValues", True),
            ("StopTransaction", "Remote"),
            ("StatusNotification", 1, "Finishing"),
            ("StatusNotification", 1, "Available"),
        ],
    )
    (stop,) = csms.calls(sid, "StopTransaction")
    assert stop["params"]["transactionId"] == tx

    # Reset: the station closes the websocket itself (1000), reboots, reconnects on a
    # new connection and boots again.
    station.reboot_seconds = 0.3
    boots = len(csms.calls(sid, "BootNotification"))
    assert await csms.result(sid, "Reset", {"type": "Soft"}) == {"status": "Accepted"}
    await until(lambda: csms.of("disconnected", sid), what=f"{sid} closed for the reset")
    await until(lambda: len(csms.of("connected", sid)) == 2, what=f"{sid} reconnected")
    await until(
        lambda: len(csms.calls(sid, "BootNotification")) > boots, what=f"{sid} boot after reset"
    )
    await until(lambda: station.boot_status == "Accepted", what=f"{sid} accepted again")
    assert csms.of("disconnected", sid)[0]["code"] == 1000


async def _unplug_session_and_bad_calls(csms: NodeCsms, link: StationLink) -> None:
    """A session ended by unplugging, a security event, then invalid CSMS calls."""
    station, sid = link.station, link.station.identity
    link.hardware(station.plug_in)
    await until(lambda: csms.status(sid, 1, "Preparing"), what=f"{sid} Preparing")
    link.hardware(lambda now: station.present_tag("TAG-3", now))
    await until(lambda: csms.transaction_id(sid), what=f"{sid} StartTransaction")
    tx = csms.transaction_id(sid)
    await until(lambda: csms.calls(sid, "MeterValues", transactionId=tx), what=f"{sid} sample")
    link.hardware(
        lambda now: station.security_event("ReconfigurationOfSecurityParameters", now, "interop")
    )
    await until(lambda: csms.calls(sid, "SecurityEventNotification"), what=f"{sid} security event")
    link.hardware(station.unplug)
    await until(lambda: csms.calls(sid, "StopTransaction"), what=f"{sid} StopTransaction")
    _assert_in_order(
        csms,
        sid,
        [
            ("BootNotification",),
            ("StatusNotification", 1, "Preparing"),
            ("Authorize",),
            ("StartTransaction",),
            ("MeterValues", True),
            ("SecurityEventNotification",),
            ("StopTransaction", "EVDisconnected"),
        ],
    )
    (event,) = [
        c["params"]
        for c in csms.calls(sid, "SecurityEventNotification")
        if c["params"]["type"] == "ReconfigurationOfSecurityParameters"
    ]
    assert event["techInfo"] == "interop"

    # Every vendor error of the guide (0x0 "NoError" is a report, not a fault), raised
    # and cleared on connector 1: StatusNotifications with the guide's errorCode, info
    # and vendorErrorCode, each validated by ocpp-rpc; Faulted for the catalogue's
    # faulting errors, the status unchanged (Available) for the others; the recovery is
    # an Available with NoError either way.
    errors = [e for e in VENDOR_ERRORS if e.is_error]
    # The three detections the guide ships disabled are enabled here, as a profile's
    # `faults.enable` would: every row of the catalogue is to reach ocpp-rpc.
    station.enabled_faults = frozenset(e.vendor_code for e in errors)

    def recoveries() -> int:
        ok = {"connectorId": 1, "status": "Available", "errorCode": "NoError"}
        return len(csms.calls(sid, "StatusNotification", **ok))

    for error in errors:
        link.hardware(lambda now, e=error: station.raise_fault(e, now))
        await until(
            lambda e=error: csms.calls(sid, "StatusNotification", vendorErrorCode=e.vendor_code),
            what=f"{sid} reported {error.vendor_code}",
        )
        before = recoveries()
        link.hardware(station.clear_fault)
        await until(lambda n=before: recoveries() > n, what=f"{sid} cleared {error.vendor_code}")
    reported = [
        c["params"]
        for c in csms.calls(sid, "StatusNotification")
        if c["params"]["connectorId"] == 1 and c["params"]["errorCode"] != "NoError"
    ]
    assert [(p["errorCode"], p.get("info"), p["status"]) for p in reported] == [
        (e.ocpp_code, e.info, "Faulted" if e.faults else "Available") for e in errors
    ]

    # CALLs that break OCPP, sent through ocpp-rpc with its own validation skipped.
    bad_calls = [
        ("RemoteStopTransaction", {}, "OccurenceConstraintViolation"),
        ("RemoteStopTransaction", {"transactionId": "1"}, "TypeConstraintViolation"),
        ("TriggerMessage", {"requestedMessage": "Nope"}, "PropertyConstraintViolation"),
        ("GetConfiguration", {"key": "HeartbeatInterval"}, "TypeConstraintViolation"),
        ("NoSuchAction", {}, "NotImplemented"),
        ("BootNotification", {"chargePointVendor": "x", "chargePointModel": "y"}, "NotSupported"),
    ]
    for action, params, code in bad_calls:
        reply = await csms.call(sid, action, params, unchecked=True)
        assert not reply["ok"] and reply["code"] == code, f"{action} {params}: {reply}"
        # The frame itself, not only ocpp-rpc's reading of it: [4, id, code, text, {}].
        frame = reply["frame"]
        assert frame[:3] == [4, reply["messageId"], code], f"{action} {params}: {frame}"
        assert isinstance(frame[3], str) and frame[4] == {}, frame
    # Frames ocpp-rpc would never send, written raw.
    frame = await csms.raw(sid, '[2, "raw-1", "Reset"]', expect_id="raw-1")
    assert frame[:3] == [4, "raw-1", "FormationViolation"], frame
    frame = await csms.raw(sid, "this is not json", expect_id="-1")
    assert frame[:3] == [4, "-1", "FormationViolation"], frame
    frame = await csms.raw(sid, '[2, "raw-2", "Reset", "Hard"]', expect_id="raw-2")
    assert frame[:3] == [4, "raw-2", "FormationViolation"], frame
    # ... and the station is still there, answering.
    assert (await csms.result(sid, "GetConfiguration", {"key": ["HeartbeatInterval"]}))[
        "configurationKey"
    ][0]["value"] == str(HEARTBEAT)


def test_stations_against_ocpp_rpc_strict_mode() -> None:
    _require_node_modules()

    async def scenario() -> None:
        csms = NodeCsms()
        await csms.start()
        fleet = Fleet(asyncio.get_running_loop(), seed=16)
        try:
            url = f"ws://127.0.0.1:{csms.port}/ocpp"
            ids = ("IOP1", "IOP2", "IOP3")
            links = [
                fleet.add(_station(sid, fleet, **(RICH_METER if sid == "IOP1" else {})), url)
                for sid in ids
            ]
            for sid in ids:
                await until(
                    lambda s=sid: csms.status(s, 0, "Available") and csms.status(s, 1, "Available"),
                    what=f"{sid} boot and statuses",
                )
            for sid in ids:
                (connected,) = csms.of("connected", sid)
                assert connected["endpoint"] == "/ocpp"
                assert connected["protocol"] == "ocpp1.6"
                assert connected["offered"] == ["ocpp1.6"]

            await asyncio.wait_for(
                asyncio.gather(
                    _badge_session(csms, links[0]),
                    _csms_operations(csms, links[1]),
                    _unplug_session_and_bad_calls(csms, links[2]),
                ),
                20,
            )

            ledger = await csms.ledger()
            fleet.stop_all()
            await until(
                lambda: all(
                    len(csms.of("disconnected", s)) == len(csms.of("connected", s)) for s in ids
                ),
                what="clean close",
            )
        except Exception as exc:
            fleet.stop_all()
            await csms.stop()
            raise AssertionError(f"{exc!r}\n{csms.diagnostics()}") from exc
        finally:
            fleet.stop_all()  # idempotent
            await csms.stop()  # idempotent

        # What ocpp-rpc's strict mode and framing said about everything the stations sent.
        assert ledger["validation"] == [], json.dumps(ledger["validation"], indent=1)
        assert ledger["badMessages"] == [], json.dumps(ledger["badMessages"], indent=1)
        assert ledger["problems"] == [], ledger["problems"]
        assert csms.of("validation") == []
        _check_framing(csms)

        # The CSMS's own bookkeeping agrees with the sessions.
        txs = ledger["transactions"].values()
        assert sorted(t["stopReason"] for t in txs) == ["EVDisconnected", "Local", "Remote"]
        assert all(t["meterStop"] is not None and t["meterValues"] >= 1 for t in txs)
        # One connection each, and a second one for IOP2 after its Reset: nobody was
        # dropped (a station that missed one of ocpp-rpc's pings would have been).
        assert {s: r["connections"] for s, r in ledger["stations"].items()} == {
            "IOP1": 1,
            "IOP2": 2,
            "IOP3": 1,
        }
        # Every connection was closed by its station, cleanly.
        assert [e["code"] for e in csms.of("disconnected")] == [1000] * 4
        # Nothing the CSMS answered was a failure on the station's side.
        assert fleet.samples is not None
        failed = [s for s in fleet.samples if s[3] is not None]
        assert failed == []
        assert sum(fleet.stats.callerrors.values()) == 0
        assert sum(fleet.stats.timeouts.values()) == 0

    asyncio.run(asyncio.wait_for(scenario(), HANG_GUARD))
