"""How a station's connection ends, seen from the CSMS side over real loopback
websockets (issue 17): the end of a run stops every transaction and opens no new
connection; a Reset closes cleanly a moment after its answer; a power cut drops the
TCP connection without a close frame."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from support import until
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from fleet.csms.server import ReferenceCsms
from fleet.engine.fleet import Fleet
from fleet.engine.link import StationLink
from fleet.model.config import ConfigStore
from fleet.model.station import Station

FAST = {"MinimumStatusDuration": 0, "MeterValueSampleInterval": 5, "WebSocketPingInterval": 0}
NOW = "2026-01-01T00:00:00Z"


def run(coro: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(coro(), 30))


class MiniCsms:
    """A bare OCPP-J central system that notes every TCP connection made to it, every
    frame, and how each connection ended (the close code it saw, and when)."""

    def __init__(self) -> None:
        self.connected_at: list[float] = []  # loop time of every TCP connection
        self.frames: list[tuple[float, str, list[Any]]] = []  # (time, station, frame)
        self.ended: dict[str, tuple[float, int | None, bool]] = {}  # id -> (t, code, frame?)
        self.sockets: dict[str, ServerConnection] = {}
        self.drop_on: set[str] = set()  # actions answered by dropping the connection
        self._ids = itertools.count(1000)
        self.port = 0

    def connection_class(self) -> type[ServerConnection]:
        made = self.connected_at

        class Counted(ServerConnection):
            def connection_made(self, transport: Any) -> None:
                made.append(asyncio.get_running_loop().time())
                super().connection_made(transport)

        return Counted

    async def handler(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        station = ws.request.path.rsplit("/", 1)[-1]
        self.sockets[station] = ws
        loop = asyncio.get_running_loop()
        try:
            async for raw in ws:
                frame = orjson.loads(raw)
                self.frames.append((loop.time(), station, frame))
                if frame[0] != 2:
                    continue
                action = frame[2]
                if action in self.drop_on:
                    ws.transport.abort()
                    break
                await ws.send(orjson.dumps([3, frame[1], self._reply(action)]).decode())
        except ConnectionClosed:
            pass
        await ws.wait_closed()
        self.ended[station] = (loop.time(), ws.close_code, ws.protocol.close_rcvd is not None)

    def _reply(self, action: str) -> dict[str, Any]:
        if action == "BootNotification":
            return {"status": "Accepted", "currentTime": NOW, "interval": 300}
        if action == "Heartbeat":
            return {"currentTime": NOW}
        if action == "Authorize":
            return {"idTagInfo": {"status": "Accepted"}}
        if action == "StartTransaction":
            return {"transactionId": next(self._ids), "idTagInfo": {"status": "Accepted"}}
        return {}

    def actions(self, station: str | None = None) -> list[str]:
        return [f[2] for _, s, f in self.frames if f[0] == 2 and station in (None, s)]

    async def call(self, station: str, action: str, payload: dict[str, Any]) -> float:
        """Send a CALL; return the loop time its CALLRESULT arrived."""
        unique_id = f"csms-{next(self._ids)}"
        await self.sockets[station].send(orjson.dumps([2, unique_id, action, payload]).decode())
        await until(
            lambda: any(f[0] == 3 and f[1] == unique_id for _, _, f in self.frames),
            what=f"{action}.conf",
        )
        return next(t for t, _, f in self.frames if f[0] == 3 and f[1] == unique_id)


async def _start(csms: MiniCsms) -> Any:
    server = await serve(
        csms.handler,
        "127.0.0.1",
        0,
        subprotocols=["ocpp1.6"],  # type: ignore[list-item]
        create_connection=csms.connection_class(),
    )
    csms.port = server.sockets[0].getsockname()[1]
    return server


def _add(fleet: Fleet, identity: str, url: str) -> StationLink:
    return fleet.add(Station(identity, fleet.now(), config=ConfigStore(FAST)), url)


def _charge(link: StationLink, tag: str) -> None:
    station = link.station
    link.hardware(station.plug_in)
    link.hardware(lambda now: station.present_tag(tag, now))


async def _ended(fleet: Fleet, reason: str = "Local", timeout: float = 5.0) -> None:
    done = asyncio.Event()
    fleet.end_all(reason, timeout, done.set)
    await asyncio.wait_for(done.wait(), timeout + 5)


def test_the_end_of_a_run_leaves_no_open_transaction_by_default() -> None:
    async def scenario() -> None:
        csms = ReferenceCsms(accepted_tags=[f"TAG{i}" for i in range(4)])
        await csms.start()
        fleet = Fleet(asyncio.get_running_loop(), seed=1)
        links = [_add(fleet, f"END{i}", csms.url) for i in range(4)]
        ledger = csms.ledger
        await until(lambda: len(ledger.station_ids()) == 4, what="boots")
        for i, link in enumerate(links):
            _charge(link, f"TAG{i}")
        await until(lambda: ledger.summary()["transactions_active"] == 4, 8, "4 sessions")
        await _ended(fleet)
        summary = ledger.summary()
        assert summary["transactions_active"] == 0
        assert summary["transactions_stopped"] == 4
        reasons = {
            ledger.transaction(t).stop_reason
            for s in ledger.station_ids()
            for t in ledger.station(s).transactions
        }
        assert reasons == {"Local"}
        assert fleet.stats.unfinished_transactions == 0
        assert fleet.links == {} and fleet.stats.stations_connected == 0
        assert ledger.check() == []
        await csms.stop()

    run(scenario)


def test_no_connection_attempt_starts_after_the_end_began() -> None:
    async def scenario() -> None:
        csms = MiniCsms()
        server = await _start(csms)
        url = f"ws://127.0.0.1:{csms.port}/ocpp"
        fleet = Fleet(asyncio.get_running_loop(), seed=2)
        links = [_add(fleet, f"NEW{i}", url) for i in range(3)]
        await until(lambda: csms.actions().count("BootNotification") == 3, what="boots")
        for i, link in enumerate(links):
            _charge(link, f"TAG{i}")
        await until(lambda: csms.actions().count("StartTransaction") == 3, 8, "sessions")
        # The CSMS drops every connection on the StopTransaction: a station that
        # reconnected (backoff 0.5..1 s) to deliver it would open a new connection.
        csms.drop_on = {"StopTransaction"}
        loop = asyncio.get_running_loop()
        began = loop.time()
        await _ended(fleet)
        assert csms.actions().count("StopTransaction") == 3
        await asyncio.sleep(2.5)
        assert [t for t in csms.connected_at if t >= began] == []
        assert fleet.stats.unfinished_transactions == 3  # never answered
        server.close()

    run(scenario)


async def _one_station(csms: MiniCsms, identity: str) -> tuple[Any, Fleet, StationLink]:
    """The CSMS serving, one station connected to it and booted."""
    server = await _start(csms)
    fleet = Fleet(asyncio.get_running_loop(), seed=3)
    link = _add(fleet, identity, f"ws://127.0.0.1:{csms.port}/ocpp")
    await until(lambda: "StatusNotification" in csms.actions(), what="boot")
    return server, fleet, link


def test_a_reset_is_answered_then_closed_cleanly_after_reset_close_delay() -> None:
    async def scenario() -> None:
        csms = MiniCsms()
        server, fleet, link = await _one_station(csms, "RST1")
        link.station.reset_close_delay = 0.5
        answered = await csms.call("RST1", "Reset", {"type": "Hard"})
        await until(lambda: "RST1" in csms.ended, what="close")
        closed_at, code, close_frame = csms.ended["RST1"]
        assert close_frame and code == 1000
        assert closed_at - answered >= 0.5
        fleet.stop_all()
        server.close()

    run(scenario)


def test_a_power_cut_drops_the_connection_without_a_close_frame() -> None:
    async def scenario() -> None:
        csms = MiniCsms()
        server, fleet, link = await _one_station(csms, "CUT1")
        station = link.station
        link.hardware(lambda now: station.power_lost(30.0, now))
        await until(lambda: "CUT1" in csms.ended, what="connection gone")
        _, code, close_frame = csms.ended["CUT1"]
        assert not close_frame and code == 1006
        fleet.stop_all()
        server.close()

    run(scenario)
