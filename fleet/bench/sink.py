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

It prints ``ready`` on stdout once it listens. Each line ``stats`` on its stdin gets one
JSON line back: ``{"calls": C, "connections": N}``, the CALLs answered and the connections
open, summed over its processes: what the all-in benchmark (``fleet bench --all-in``)
measures a fleet against, from outside the fleet.

``--processes K``: K processes accept on the one port (``SO_REUSEPORT``: the kernel
spreads new connections over their listening sockets), so the sink holds 100,000
connections (one process holds at most the open-file limit, ~20,000 here) and keeps up
with them on every core. The counters live in shared memory, one slot per process and
counter: each process writes only its own, so no lock.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import multiprocessing
import os
import signal
import struct
import sys
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
    # Shared-memory counters (see the module docstring): calls at [slot], open
    # connections at [slot + 1]; a plain list when the sink is used in-process.
    counters: Any = [0, 0]
    slot = 0

    def __init__(self, answers: dict[str, bytes]) -> None:
        self.answers = answers
        self.buffer = b""
        self.open = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        SinkConnection.counters[SinkConnection.slot + 1] += 1

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
        SinkConnection.counters[SinkConnection.slot] += 1
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
        SinkConnection.counters[SinkConnection.slot + 1] -= 1


async def serve(
    port: int, interval: int, host: str = "127.0.0.1", reuse_port: bool = False
) -> asyncio.Server:
    loop = asyncio.get_running_loop()
    answers = canned(interval)
    return await loop.create_server(
        lambda: SinkConnection(answers),
        host,
        port,
        backlog=8192,
        reuse_address=True,
        reuse_port=reuse_port or None,
    )


def _worker(port: int, interval: int, counters: Any, slot: int, ready: Any) -> None:
    """One accepting process (forked before any event loop exists)."""
    SinkConnection.counters, SinkConnection.slot = counters, slot
    raise_open_file_limit()
    loop = new_event_loop()
    asyncio.set_event_loop(loop)
    loop.run_until_complete(serve(port, interval, reuse_port=True))
    ready.release()
    loop.run_forever()


def totals(counters: Any) -> dict[str, int]:
    return {"calls": sum(counters[0::2]), "connections": sum(counters[1::2])}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m fleet.bench.sink", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--heartbeat-interval", type=int, default=3600)
    parser.add_argument("--processes", type=int, default=1, help="accepting processes")
    args = parser.parse_args(argv)
    k = max(1, args.processes)
    ctx = multiprocessing.get_context("fork")
    counters = ctx.RawArray("q", 2 * k)
    ready = ctx.Semaphore(0)
    workers = [
        ctx.Process(
            target=_worker,
            args=(args.port, args.heartbeat_interval, counters, 2 * i, ready),
            daemon=True,
        )
        for i in range(k)
    ]
    for w in workers:
        w.start()
    for _ in workers:
        ready.acquire()

    def stop(*_: Any) -> None:
        for w in workers:
            w.terminate()
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    print("ready", flush=True)
    # The parent only answers "stats": its workers hold every connection.
    for line in sys.stdin:
        if line.strip() == "stats":
            print(json.dumps(totals(counters)), flush=True)
    while True:  # stdin closed (e.g. started in the background): serve until SIGTERM
        signal.pause()


if __name__ == "__main__":
    main()
