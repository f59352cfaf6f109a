"""The bench's sink CSMS on several processes (issue 16): one port (SO_REUSEPORT), the
CALLs answered and the connections open counted over every process, from outside."""

from __future__ import annotations

import asyncio

import pytest
import websockets

from fleet.bench.benchmark import Sink


@pytest.mark.timeout(60)
def test_calls_and_connections_are_counted_over_every_process() -> None:
    sink = Sink(processes=3)
    try:
        assert sink.stats() == {"calls": 0, "connections": 0}

        async def exchange() -> tuple[list[str], dict[str, int]]:
            conns = [
                await websockets.connect(f"{sink.url}/S{i}", subprotocols=["ocpp1.6"])
                for i in range(12)
            ]
            answers = []
            for i, ws in enumerate(conns):
                await ws.send(f'[2,"{i}","Heartbeat",{{}}]')
                answers.append(str(await ws.recv()))
            during = sink.stats()
            for ws in conns:
                await ws.close()
            return answers, during

        answers, during = asyncio.run(exchange())
        assert answers == [f'[3,"{i}",{{"currentTime":"2026-01-01T00:00:00Z"}}]' for i in range(12)]
        assert during == {"calls": 12, "connections": 12}
        for _ in range(100):
            if sink.stats()["connections"] == 0:
                break
            asyncio.run(asyncio.sleep(0.05))
        assert sink.stats() == {"calls": 12, "connections": 0}
    finally:
        sink.close()
