"""The link's own websocket framing (issue 7's hot path) against a real socket.

StationLink parses whole unmasked ASCII text frames itself and hands every other
frame, whole, to websockets; it frames and masks what it sends itself. A scripted
CSMS on loopback (a bare asyncio server, so it can cut its bytes anywhere) sends
CALLs split at every byte, several per TCP segment, with 16-bit lengths, pings, and
non-ASCII text between them; the station must answer each CALL, in order, with a
correctly masked frame, and answer the ping with a pong.
"""

from __future__ import annotations

import asyncio
import struct

import orjson
import pytest
from support import until
from websockets.frames import apply_mask

from fleet.bench.sink import SinkConnection, canned
from fleet.engine.fleet import Fleet
from fleet.engine.loop import new_event_loop
from fleet.model.config import ConfigStore
from fleet.model.station import Station


def server_frame(opcode: int, payload: bytes) -> bytes:
    n = len(payload)
    if n < 126:
        return bytes((0x80 | opcode, n)) + payload
    return struct.pack("!BBH", 0x80 | opcode, 126, n) + payload


def call(uid: str, *keys: str) -> bytes:
    return server_frame(1, orjson.dumps([2, uid, "GetConfiguration", {"key": list(keys)}]))


class ScriptedCsms(SinkConnection):
    """The sink's handshake and CALLRESULTs, plus a record of every frame received."""

    def __init__(self) -> None:
        super().__init__(canned(3600))
        self.received: list[tuple[int, bytes]] = []
        self.booted = asyncio.Event()

    def _frames(self, buf: bytes) -> bytes:
        pos = 0
        while len(buf) - pos >= 6:
            b0, n = buf[pos], buf[pos + 1] & 0x7F
            assert buf[pos + 1] & 0x80, "client frames must be masked"
            head = pos + 2
            if n == 126:
                n = struct.unpack_from("!H", buf, head)[0]
                head += 2
            if len(buf) < head + 4 + n:
                break
            payload = apply_mask(buf[head + 4 : head + 4 + n], buf[head : head + 4])
            self.received.append((b0 & 0x0F, payload))
            if b0 & 0x0F == 1:
                msg = orjson.loads(payload)
                if msg[0] == 2:
                    self._message(payload)
                    if msg[2] == "StatusNotification":
                        self.booted.set()
            pos = head + 4 + n
        return buf[pos:]

    def results(self) -> list[list]:
        return [orjson.loads(p) for op, p in self.received if op == 1 and orjson.loads(p)[0] == 3]


async def _run(free_port: int) -> tuple[ScriptedCsms, list]:
    loop = asyncio.get_running_loop()
    peers: list[ScriptedCsms] = []

    def factory() -> ScriptedCsms:
        peers.append(ScriptedCsms())
        return peers[-1]

    server = await loop.create_server(factory, "127.0.0.1", free_port)
    fleet = Fleet(loop, keep_samples=False, seed=1)
    config = {"WebSocketPingInterval": 0, "MinimumStatusDuration": 0}
    fleet.add(Station("CPFRAME1", fleet.now(), config=ConfigStore(config)),
              f"ws://127.0.0.1:{free_port}/ocpp")  # fmt: skip
    await until(lambda: bool(peers), timeout=5)
    csms = peers[0]
    await asyncio.wait_for(csms.booted.wait(), 5)
    transport = csms.transport
    assert transport is not None

    long_keys = [f"{i}" * 50 for i in range(4)]  # a frame with a 16-bit length
    script = (
        call("a1", "HeartbeatInterval")
        + server_frame(9, b"ping!")
        + call("a2", *long_keys)
        + server_frame(1, orjson.dumps([2, "a3", "GetConfiguration", {"key": ["Zähler"]}]))
        + call("a4", "MeterValueSampleInterval")
        + call("a5", "HeartbeatInterval")
    )
    # Byte by byte for the first two frames (every split of a header and a payload),
    # then the rest in two segments (several frames per read).
    cut = len(call("a1", "HeartbeatInterval")) + len(server_frame(9, b"ping!"))
    for i in range(cut):
        transport.write(script[i : i + 1])
        await asyncio.sleep(0.002)
    middle = (len(script) + cut) // 2
    transport.write(script[cut:middle])
    await asyncio.sleep(0.01)
    transport.write(script[middle:])
    await until(lambda: len(csms.results()) >= 5, timeout=5, what="five CALLRESULTs")
    fleet.stop_all()
    server.close()
    return csms, csms.results()


@pytest.mark.timeout(30)
def test_every_split_and_frame_kind_is_answered_in_order(free_port: int) -> None:
    loop = new_event_loop()
    try:
        csms, answers = loop.run_until_complete(_run(free_port))
    finally:
        loop.close()
    # The CALLRESULTs of our five CALLs, in order (the boot exchanges came before).
    ours = [a for a in answers if a[1].startswith("a")]
    assert [a[1] for a in ours] == ["a1", "a2", "a3", "a4", "a5"]
    assert ours[0][2]["configurationKey"][0]["key"] == "HeartbeatInterval"
    assert ours[1][2]["unknownKey"] == [f"{i}" * 50 for i in range(4)]
    assert ours[2][2]["unknownKey"] == ["Zähler"]  # non-ASCII: websockets' path
    assert ours[3][2]["configurationKey"][0]["key"] == "MeterValueSampleInterval"
    # The ping got its pong, between the first and the second answer.
    kinds = [op for op, _ in csms.received]
    assert (10, b"ping!") in csms.received
    first, pong = kinds.index(1, 0), kinds.index(10)
    assert first < pong
    # Every frame the station sent was masked (ScriptedCsms asserts it) and whole.
    assert all(op in (1, 8, 10) for op in kinds)
