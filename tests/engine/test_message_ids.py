"""Message ids on the wire (issue 17, item 4): by default no two CALLs share an id,
across stations, reconnects and processes, so a CSMS that correlates answers by id
alone cannot mix them up; ``station.message_ids: counter`` numbers them 1, 2, ... per
station, as before.

A real websockets server on 127.0.0.1 records every CALL id and answers it; it drops
each station's first connection after three CALLs, so every station reconnects.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

import pytest
from support import until
from websockets.asyncio.server import ServerConnection, serve

from fleet.engine.fleet import Fleet
from fleet.model.config import ConfigStore
from fleet.model.station import Station
from fleet.protocol.rpc import new_call_id

STATIONS = 4


def _answer(action: str) -> dict[str, Any]:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if action == "BootNotification":
        return {"currentTime": now, "interval": 1, "status": "Accepted"}
    if action == "Heartbeat":
        return {"currentTime": now}
    return {}


async def _run(message_ids: str) -> dict[str, list[list[str]]]:
    """station id -> the CALL ids of each of its connections, in order."""
    seen: dict[str, list[list[str]]] = defaultdict(list)

    async def handle(ws: ServerConnection) -> None:
        assert ws.request is not None
        ids: list[str] = []
        seen[ws.request.path.rsplit("/", 1)[1]].append(ids)
        first = len(seen[ws.request.path.rsplit("/", 1)[1]]) == 1
        async for raw in ws:
            frame = json.loads(raw)
            if frame[0] != 2:
                continue
            ids.append(frame[1])
            await ws.send(json.dumps([3, frame[1], _answer(frame[2])]))
            if first and len(ids) == 3:
                await ws.close()

    server = await serve(handle, "127.0.0.1", 0, subprotocols=["ocpp1.6"])  # type: ignore[list-item]
    port = server.sockets[0].getsockname()[1]
    fleet = Fleet(asyncio.get_running_loop(), seed=3, message_ids=message_ids)
    for n in range(STATIONS):
        config = ConfigStore({"HeartbeatInterval": 1, "MinimumStatusDuration": 0})
        fleet.add(Station(f"ID{n}", fleet.now(), config=config), f"ws://127.0.0.1:{port}/ocpp")

    def enough() -> bool:
        return len(seen) == STATIONS and all(
            len(conns) >= 2 and len(conns[1]) >= 2 for conns in seen.values()
        )

    await until(enough, timeout=20.0, what="every station reconnected and sent CALLs")
    fleet.stop_all()
    server.close()
    await server.wait_closed()
    return {sid: [list(ids) for ids in conns] for sid, conns in seen.items()}


def test_ids_are_unique_across_stations_and_reconnects_by_default() -> None:
    seen = asyncio.run(_run("unique"))
    ids = [i for conns in seen.values() for ids in conns for i in ids]
    assert len(ids) >= STATIONS * 5
    assert len(set(ids)) == len(ids)
    for i in ids:
        assert len(i) == 36 and uuid.UUID(i).version == 4  # a CSMS storing UUIDs takes it


def test_counter_option_numbers_calls_per_station() -> None:
    seen = asyncio.run(_run("counter"))
    for conns in seen.values():
        ids = [i for c in conns for i in c]
        assert ids == [str(n) for n in range(1, len(ids) + 1)]
    assert len({conns[0][0] for conns in seen.values()}) == 1  # "1" at every station


def test_a_forked_process_does_not_repeat_its_parents_ids() -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # Locust --processes forks its workers after importing the fleet
        os.write(write, new_call_id().encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read, 64).decode()
    os.close(read)
    os.close(write)
    mine = new_call_id()
    assert child[:24] != mine[:24]


def test_unknown_message_ids_setting_is_refused(tmp_path: Any) -> None:
    from support import assert_profile_error

    assert_profile_error(
        tmp_path, "station:\n  message_ids: sequential\n", 2, "station.message_ids", "counter"
    )


@pytest.mark.parametrize("mode", ["unique", "counter"])
def test_profile_field_names_the_mode(tmp_path: Any, mode: str) -> None:
    from fleet.scenarios.profile import load

    path = tmp_path / "p.yaml"
    path.write_text(f"station:\n  message_ids: {mode}\n")
    assert load(str(path)).message_ids == mode
