"""picows against the engine's own websocket framing (issue 16): CPU per exchange.

    python -m fleet.bench.picows_compare [--connections 200] [--seconds 10]

Both clients do the same, in this one process (uvloop), against the bench's sink CSMS
(its own process): ``--connections`` connections, each with one OCPP CALL (a MeterValues
with five sampled values) outstanding at all times; the CALLRESULT's arrival sends the
next. Nothing else runs (no model, no validation, no JSON parsing): what differs is the
framing and the I/O path. CPU per exchange = process CPU time over the window / CALLs
answered in it.

* ``own``: the hot path of :class:`fleet.engine.link.StationLink` (the handshake by
  websockets' sans-I/O ClientProtocol; then each frame written as ``_write`` does and
  split as ``_frames_in``'s fast path does) in a bare ``asyncio.Protocol`` (``Own``):
  StationLink itself brings the model and validation along, which picows would not
  replace;
* ``picows``: picows' ``ws_connect`` and a ``WSListener`` whose ``on_ws_frame`` sends
  the next CALL (``WSTransport.send``: picows masks and frames in Cython).

Prints one JSON line per client and a verdict line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import struct
import time
from typing import Any

from websockets.client import ClientProtocol
from websockets.frames import apply_mask
from websockets.typing import Subprotocol
from websockets.uri import parse_uri

CALL = (
    b'[2,"%d","MeterValues",{"connectorId":1,"transactionId":1,"meterValue":[{"timestamp":'
    b'"2026-01-01T00:00:00.000Z","sampledValue":[{"value":"100","context":"Sample.Periodic",'
    b'"measurand":"Energy.Active.Import.Register","location":"Outlet","unit":"Wh"},'
    b'{"value":"32.0","context":"Sample.Periodic","measurand":"Current.Offered",'
    b'"location":"Outlet","unit":"A"},{"value":"31.8","context":"Sample.Periodic",'
    b'"measurand":"Current.Import","phase":"L1","location":"Outlet","unit":"A"},'
    b'{"value":"31.8","context":"Sample.Periodic","measurand":"Current.Import","phase":"L2",'
    b'"location":"Outlet","unit":"A"},{"value":"31.8","context":"Sample.Periodic",'
    b'"measurand":"Current.Import","phase":"L3","location":"Outlet","unit":"A"}]}]}]'
)
_MASKS = random.Random(1)
_TEXT_FIN = 0x81


class Counter:
    answered = 0


class Own(asyncio.Protocol):
    """The engine's framing (StationLink._write / _frames_in's fast path), bare."""

    def __init__(self, url: str, opened: asyncio.Future[None]) -> None:
        self.ws = ClientProtocol(parse_uri(url), subprotocols=[Subprotocol("ocpp1.6")])
        self.opened = opened
        self.rx: bytes | None = None
        self.transport: asyncio.Transport | None = None
        self.n = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.ws.send_request(self.ws.connect())
        for data in self.ws.data_to_send():
            self.transport.write(data)

    def data_received(self, data: bytes) -> None:
        if self.rx is None:  # the handshake response (the sink sends nothing after it)
            self.ws.receive_data(data)
            self.ws.events_received()
            self.rx = b""
            self.opened.set_result(None)
            return
        buf = self.rx + data if self.rx else data
        pos, size = 0, len(buf)
        while size - pos >= 2:
            n = buf[pos + 1]
            head = 2
            if n == 126:
                if size - pos < 4:
                    break
                n = (buf[pos + 2] << 8) | buf[pos + 3]
                head = 4
            end = pos + head + n
            if end > size:
                break
            payload = buf[pos + head : end]
            if buf[pos] == _TEXT_FIN and payload.isascii():
                self.message(payload)
            pos = end
        self.rx = buf[pos:]

    def message(self, payload: bytes) -> None:
        Counter.answered += 1
        self.send()

    def send(self) -> None:
        self.n += 1
        data = CALL % self.n
        n = len(data)
        mask = _MASKS.getrandbits(32).to_bytes(4, "big")
        head = struct.pack("!BBH", _TEXT_FIN, 0xFE, n)  # the CALL is 126..65535 bytes
        assert self.transport is not None
        self.transport.write(head + mask + apply_mask(data, mask))


async def run_own(url: str, connections: int, seconds: float) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    uri = parse_uri(url)
    protos = []
    for _ in range(connections):
        opened: asyncio.Future[None] = loop.create_future()
        _, proto = await loop.create_connection(lambda o=opened: Own(url, o), uri.host, uri.port)
        await opened
        protos.append(proto)
    return await _window(lambda: [p.send() for p in protos], seconds, "own (link.py framing)")


async def run_picows(url: str, connections: int, seconds: float) -> dict[str, Any]:
    from picows import WSListener, WSMsgType, ws_connect

    class Listener(WSListener):  # type: ignore[misc]
        def __init__(self) -> None:
            self.transport: Any = None
            self.n = 0

        def on_ws_connected(self, transport: Any) -> None:
            self.transport = transport

        def on_ws_frame(self, transport: Any, frame: Any) -> None:
            if frame.msg_type == WSMsgType.TEXT:
                frame.get_payload_as_bytes()  # what the engine would hand to the RPC layer
                Counter.answered += 1
                self.send()

        def send(self) -> None:
            self.n += 1
            self.transport.send(WSMsgType.TEXT, CALL % self.n)

    listeners = []
    for _ in range(connections):
        _, listener = await ws_connect(
            Listener, url, extra_headers={"Sec-WebSocket-Protocol": "ocpp1.6"}
        )
        listeners.append(listener)
    return await _window(lambda: [lst.send() for lst in listeners], seconds, "picows")


async def _window(start: Any, seconds: float, name: str) -> dict[str, Any]:
    start()
    await asyncio.sleep(1.0)  # warm up
    a0, c0, w0 = Counter.answered, time.process_time(), time.monotonic()
    await asyncio.sleep(seconds)
    a1, c1, w1 = Counter.answered, time.process_time(), time.monotonic()
    done = a1 - a0
    return {
        "client": name,
        "exchanges": done,
        "exchanges_per_second": round(done / (w1 - w0)),
        "cpu_us_per_exchange": round((c1 - c0) / done * 1e6, 2) if done else None,
    }


def main(argv: list[str] | None = None) -> None:
    from fleet.bench.benchmark import Sink
    from fleet.engine.loop import new_event_loop

    parser = argparse.ArgumentParser(prog="python -m fleet.bench.picows_compare")
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=2, help="own, picows, own, picows...")
    args = parser.parse_args(argv)
    results = []
    for _ in range(args.rounds):
        for fn in (run_own, run_picows):
            sink = Sink()  # a fresh sink and loop per client: nothing carried over
            loop = new_event_loop()
            try:
                results.append(
                    loop.run_until_complete(fn(sink.url, args.connections, args.seconds))
                )
            finally:
                loop.close()
                sink.close()
            print(json.dumps(results[-1]), flush=True)
    best: dict[str, float] = {}
    for r in results:
        us = r["cpu_us_per_exchange"]
        if us is not None:
            best[r["client"]] = min(best.get(r["client"], us), us)
    print(json.dumps({"best_cpu_us_per_exchange": best}), flush=True)


if __name__ == "__main__":
    main()
