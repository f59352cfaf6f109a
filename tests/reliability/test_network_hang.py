"""The network hangs (nothing gets through, nothing closes), then heals.

A real TCP proxy on loopback sits between the stations and ``fleet csms`` (its own
process, ledger journaled). At some point the proxy stops forwarding in both directions
without closing anything, as a broken path does: bytes are held (TCP would retransmit
them), FINs and RSTs too, and new connections are accepted but go nowhere. Asserted:

* the stations' WebSocketPingInterval pings time out and that is how they notice
  (``fleet_disconnects_total{reason="ping timeout"}``), with no help from TCP;
* connection attempts during the hang time out (WebsocketConnectionTimeout) and are
  retried with backoff;
* when the proxy forwards again every station reconnects, delivers what it queued
  offline, and the ledger shows nothing lost and nothing duplicated.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from fleet_harness import (
    CsmsProcess,
    add_stations,
    ledger_proof,
    settled,
    start_sessions,
    stop_sessions,
)
from support import until

from fleet.engine.fleet import Fleet
from fleet.engine.link import StationLink

STATIONS = 40
HANG = 12.0
CONFIG = {
    "MinimumStatusDuration": 0,
    "WebSocketPingInterval": 1,
    "WebsocketConnectionTimeout": 3,
    "HeartbeatInterval": 3600,
    "MeterValueSampleInterval": 2,
    "disconnectedMeterValueSampleInterval": 5,
}


class HangingProxy:
    """TCP proxy 127.0.0.1:<port> -> 127.0.0.1:<target> that can hang and heal."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.forwarding = asyncio.Event()
        self.forwarding.set()
        self.accepted = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", 0)

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"ws://127.0.0.1:{self._server.sockets[0].getsockname()[1]}/ocpp"

    def hang(self) -> None:
        self.forwarding.clear()

    def heal(self) -> None:
        self.forwarding.set()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.accepted += 1
        try:
            await self.forwarding.wait()  # accepted during a hang: goes nowhere until it heals
            try:
                up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
            except OSError:
                writer.close()
                return
            await asyncio.gather(self._pump(reader, up_writer), self._pump(up_reader, writer))
        finally:
            self._tasks.discard(task)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    data = await reader.read(65536)
                except OSError:
                    data = b""  # a reset: passed on (as a close) once the path works
                await self.forwarding.wait()
                if not data:
                    break
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()


def test_a_hung_network_is_noticed_by_pings_and_loses_nothing(
    tmp_path: Path, free_port: int
) -> None:
    csms = CsmsProcess(free_port, tmp_path / "ledger.jsonl", "--heartbeat-interval", "3600")
    csms.start()
    links: list[StationLink] = []

    async def scenario() -> Fleet:
        proxy = HangingProxy(free_port)
        await proxy.start()
        fleet = Fleet(asyncio.get_running_loop(), seed=8)
        links.extend(add_stations(fleet, proxy.url, STATIONS, "H", CONFIG))
        await until(lambda: fleet.stats.boot_status["Accepted"] == STATIONS, 20, "boots")
        start_sessions(links)
        await until(
            lambda: all(
                lk.station.transaction and lk.station.transaction.transaction_id for lk in links
            ),
            20,
            "every station charging",
        )
        await asyncio.sleep(3)  # MeterValues flowing
        accepted = proxy.accepted

        proxy.hang()
        loop = asyncio.get_running_loop()
        hung_at = loop.time()
        # Two ping intervals without a pong: every station drops its connection.
        await until(lambda: fleet.stats.stations_connected == 0, 6, "pings time out")
        assert loop.time() - hung_at <= 2 * CONFIG["WebSocketPingInterval"] + 1.5
        assert fleet.stats.disconnects["ping timeout"] == STATIONS
        assert fleet.stats.connect_failures["ping timeout"] == STATIONS
        # Half end their session and start another one while the path is down.
        half = links[: STATIONS // 2]
        stop_sessions(half)
        for link in half:
            link.hardware(link.station.unplug)
        start_sessions(half, suffix="-2")
        # New attempts reach the proxy and hang there until WebsocketConnectionTimeout.
        await until(
            lambda: fleet.stats.connect_failures["timeout"] >= STATIONS // 2,
            HANG,
            "connection attempts time out",
        )
        assert proxy.accepted > accepted
        await asyncio.sleep(max(0.0, hung_at + HANG - loop.time()))
        assert fleet.stats.stations_connected == 0

        proxy.heal()
        await until(lambda: settled(fleet, links), 45, "back and delivered")
        assert fleet.stats.reconnects == STATIONS
        stop_sessions(links)
        await until(
            lambda: settled(fleet, links) and all(lk.station.transaction is None for lk in links),
            20,
            "every session stopped and delivered",
        )
        fleet.stop_all()
        await asyncio.sleep(0.3)
        await proxy.stop()
        return fleet

    try:
        asyncio.run(asyncio.wait_for(scenario(), 110))
    finally:
        csms.stop()
    summary = ledger_proof(csms.ledger(), links)
    assert summary["transactions_started"] == summary["transactions_stopped"] == STATIONS * 3 // 2
    assert sum(lk.station.offline_delivered for lk in links) >= STATIONS
