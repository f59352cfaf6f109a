"""The benchmark's sink CSMS: answers every CALL at once, as cheaply as possible.

    python -m fleet.bench.sink --port P [--heartbeat-interval 60]

It runs in its own process (its CPU is not the station process's) and must keep up
with 10,000+ stations on the other core of a 2-core machine, so it is not built on
websockets' asyncio server (~60 us per message) but on a bare ``asyncio.Protocol``:
the HTTP upgrade is parsed by hand (RFC 6455 section 4.2, subprotocol ``ocpp1.6``),
client frames are unmasked with websockets' C ``apply_mask``, and each CALL gets a
canned CALLRESULT in one unmasked text frame. Pings get pongs, a close gets a close.
Anything it does not understand closes the connection: it is a sink, not a CSMS
(the reference CSMS in fleet.csms is the one that checks what stations send).

It prints ``ready`` on stdout once it listens, then, every second, nothing: the
benchmark reads the station side's counters.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import struct
from typing import Any

import orjson
from websockets.speedups import apply_mask

from fleet.engine.limits import raise_open_file_limit
from fleet.engine.loop import new_event_loop

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_NOW = "2026-01-01T00:00:00Z"


def canned(interval: int) -> dict[str, bytes]:
    """The CALLRESULT payload (JSON) per action; anything else gets ``{}``."""
    answers: dict[str, Any] = {
        "BootNotification": {"status": "Accepted", "interval": interval, "currentTime": _NOW},
        "Heartbeat": {"currentTime": _NOW},
        "Authorize": {"idTagInfo": {"status": "Accepted"}},
        "StopTransaction": {"idTagInfo": {"status": "Accepted"}},
        "DataTransfer": {"status": "Accepted"},
    }
    return {action: orjson.dumps(payload) for action, payload in answers.items()}


def _frame(opcode: int, payload: bytes) -> bytes:
    """One unmasked server frame (FIN set)."""
    n = len(payload)
    if n < 126:
        return bytes((0x80 | opcode, n)) + payload
    if n < 65536:
        return struct.pack("!BBH", 0x80 | opcode, 126, n) + payload
    return struct.pack("!BBQ", 0x80 | opcode, 127, n) + payload


class SinkConnection(asyncio.Protocol):
    """One station's connection to the sink."""

    __slots__ = ("answers", "buffer", "open", "transport")

    transactions = 0  # shared by every connection of the process

    def __init__(self, answers: dict[str, bytes]) -> None:
        self.answers = answers
        self.buffer = b""
        self.open = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        buf = self.buffer + data if self.buffer else data
        if not self.open:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                self.buffer = buf
                return
            if not self._upgrade(buf[:end]):
                return
            buf = buf[end + 4 :]
        self.buffer = self._frames(buf)

    def _upgrade(self, head: bytes) -> bool:
        key = None
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"sec-websocket-key":
                key = value.strip()
        assert self.transport is not None
        if key is None:
            self.transport.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            self.transport.close()
            return False
        accept = base64.b64encode(hashlib.sha1(key + _GUID).digest())
        self.transport.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n"
            b"Sec-WebSocket-Protocol: ocpp1.6\r\n\r\n"
        )
        self.open = True
        return True

    def _frames(self, buf: bytes) -> bytes:
        """Handle every complete frame in ``buf``; return what is left over."""
        transport = self.transport
        assert transport is not None
        pos, size = 0, len(buf)
        while size - pos >= 6:
            b0, b1 = buf[pos], buf[pos + 1]
            n = b1 & 0x7F
            head = pos + 2
            if n == 126:
                if size - pos < 8:
                    break
                n = struct.unpack_from("!H", buf, head)[0]
                head += 2
            elif n == 127:
                if size - pos < 14:
                    break
                n = struct.unpack_from("!Q", buf, head)[0]
                head += 8
            if not b1 & 0x80:  # clients must mask (RFC 6455 5.1)
                transport.close()
                return b""
            start = head + 4
            if size < start + n:
                break
            payload = apply_mask(buf[start : start + n], buf[head:start])
            pos = start + n
            opcode = b0 & 0x0F
            if opcode == 1:
                self._message(payload)
            elif opcode == 9:
                transport.write(_frame(10, payload))
            elif opcode == 8:
                transport.write(_frame(8, payload[:2]))
                transport.close()
                return b""
            elif opcode != 10:  # binary or fragments: not from our stations
                transport.close()
                return b""
        return buf[pos:]

    def _message(self, payload: bytes) -> None:
        msg = orjson.loads(payload)
        if msg[0] != 2:
            return  # our own CALLs: none
        action = msg[2]
        if action == "StartTransaction":
            SinkConnection.transactions += 1
            answer = b'{"transactionId":%d,"idTagInfo":{"status":"Accepted"}}' % (
                SinkConnection.transactions
            )
        else:
            answer = self.answers.get(action, b"{}")
        assert self.transport is not None
        self.transport.write(_frame(1, b'[3,"%s",%s]' % (msg[1].encode(), answer)))

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


async def serve(port: int, interval: int, host: str = "127.0.0.1") -> asyncio.Server:
    loop = asyncio.get_running_loop()
    answers = canned(interval)
    return await loop.create_server(
        lambda: SinkConnection(answers), host, port, backlog=8192, reuse_address=True
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m fleet.bench.sink", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--heartbeat-interval", type=int, default=3600)
    args = parser.parse_args(argv)
    raise_open_file_limit()
    loop = new_event_loop()
    asyncio.set_event_loop(loop)
    loop.run_until_complete(serve(args.port, args.heartbeat_interval))
    print("ready", flush=True)
    loop.run_forever()


if __name__ == "__main__":
    main()
