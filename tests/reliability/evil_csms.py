"""A CSMS that misbehaves on purpose, scripted by the test that uses it.

It is a real ``websockets`` server on loopback. By default it behaves: it accepts the
``ocpp1.6`` subprotocol and answers the station's CALLs with valid CALLRESULTs
(BootNotification Accepted, Heartbeat with the time, the rest minimal), so a station
boots and runs. The test then makes it misbehave:

* at the HTTP upgrade: ``http_status`` (401, 404, 500 ...) instead of 101; ``subprotocol``
  ``None`` (none selected) or another name; ``ssl`` for a TLS server the station may not
  trust;
* on an open connection: :meth:`send` any text or binary frame, :meth:`close` or
  :meth:`abort` the socket, ``hold`` actions it will not answer (and answer them later,
  late, with :meth:`answer_held`), ``on_call`` hooks to answer a CALL its own way.

Everything the station sends is recorded in ``frames`` (parsed, in order); ``calls``
and ``errors`` are handy views. The tests wait with bounded waits only.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl as ssl_module
from collections.abc import Callable
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

import orjson
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def default_answer(action: str, payload: dict[str, Any]) -> dict[str, Any]:
    """A valid CALLRESULT payload for a station-initiated action."""
    if action == "BootNotification":
        return {"status": "Accepted", "interval": 300, "currentTime": _now()}
    if action == "Heartbeat":
        return {"currentTime": _now()}
    if action == "Authorize":
        return {"idTagInfo": {"status": "Accepted"}}
    if action == "StartTransaction":
        return {"transactionId": 1, "idTagInfo": {"status": "Accepted"}}
    if action == "DataTransfer":
        return {"status": "Accepted"}
    return {}


class EvilCsms:
    """A scriptable, deliberately bad CSMS (see the module docstring)."""

    def __init__(
        self,
        *,
        http_status: int | None = None,
        subprotocol: str | None = "ocpp1.6",
        ssl: ssl_module.SSLContext | None = None,
        max_size: int | None = 1 << 22,
    ) -> None:
        self.http_status = http_status
        self.subprotocol = subprotocol
        self.ssl = ssl
        self.max_size = max_size
        self.frames: list[Any] = []  # every message from a station, parsed (or raw)
        self.handshakes = 0  # upgrade requests seen, refused or not
        self.connections = 0  # websockets opened
        self.hold: set[str] = set()  # station actions not answered (for now)
        self.held: list[tuple[ServerConnection, list[Any]]] = []
        # action -> hook(frame) returning the messages to send instead of the answer
        self.on_call: dict[str, Callable[[list[Any]], list[str | bytes]]] = {}
        self.conn: ServerConnection | None = None
        self._server: Server | None = None
        self._changed = asyncio.Event()

    # -- lifecycle ---------------------------------------------------------------

    async def start(self) -> EvilCsms:
        self._server = await serve(
            self._handler,
            "127.0.0.1",
            0,
            process_request=self._process_request,
            select_subprotocol=self._select,
            ping_interval=None,
            compression=None,
            ssl=self.ssl,
            max_size=self.max_size,
        )
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await asyncio.wait_for(self._server.wait_closed(), 5)
            self._server = None

    async def __aenter__(self) -> EvilCsms:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        return f"{'wss' if self.ssl else 'ws'}://127.0.0.1:{self.port}/ocpp"

    # -- the upgrade ---------------------------------------------------------------

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        self.handshakes += 1
        self._changed.set()
        if self.http_status is not None:
            return connection.respond(HTTPStatus(self.http_status), "no.\n")
        return None

    def _select(self, connection: ServerConnection, offered: Any) -> Subprotocol | None:
        if self.subprotocol is None:
            return None
        return Subprotocol(self.subprotocol)

    # -- an open connection --------------------------------------------------------

    async def _handler(self, ws: ServerConnection) -> None:
        self.connections += 1
        self.conn = ws
        self._changed.set()
        try:
            async for message in ws:
                try:
                    frame = orjson.loads(message)
                except orjson.JSONDecodeError:
                    frame = message
                self.frames.append(frame)
                self._changed.set()
                if isinstance(frame, list) and frame and frame[0] == 2:
                    await self._answer(ws, frame)
        except Exception:
            pass
        finally:
            if self.conn is ws:
                self.conn = None
            self._changed.set()

    async def _answer(self, ws: ServerConnection, frame: list[Any]) -> None:
        action = frame[2]
        hook = self.on_call.get(action)
        if hook is not None:
            for out in hook(frame):
                await ws.send(out)
            return
        if action in self.hold:
            self.held.append((ws, frame))
            return
        await ws.send(orjson.dumps([3, frame[1], default_answer(action, frame[3])]).decode())

    async def answer_held(self) -> int:
        """Answer what was held (late: the station may have given up on them)."""
        held, self.held = self.held, []
        for ws, frame in held:
            with contextlib.suppress(Exception):  # that connection may be gone
                await ws.send(
                    orjson.dumps([3, frame[1], default_answer(frame[2], frame[3])]).decode()
                )
        return len(held)

    async def send(self, data: str | bytes) -> None:
        """One websocket message to the connected station (bytes: a binary frame)."""
        assert self.conn is not None, "no station connected"
        await self.conn.send(data)

    async def call(self, unique_id: str, action: str, payload: dict[str, Any]) -> None:
        await self.send(orjson.dumps([2, unique_id, action, payload]).decode())

    def abort(self) -> None:
        """Drop the TCP connection without a closing handshake (a crash, a cut)."""
        assert self.conn is not None and self.conn.transport is not None
        self.conn.transport.abort()

    # -- waiting -------------------------------------------------------------------

    def replies_to(self, unique_id: str) -> list[list[Any]]:
        """CALLRESULTs and CALLERRORs the station sent for ``unique_id``."""
        return [
            f
            for f in self.frames
            if isinstance(f, list) and len(f) >= 2 and f[0] in (3, 4) and f[1] == unique_id
        ]

    def calls(self, action: str) -> list[list[Any]]:
        return [f for f in self.frames if isinstance(f, list) and f[:1] == [2] and f[2] == action]

    async def wait(self, check: Callable[[], Any], timeout: float = 5.0, what: str = "") -> Any:
        """Wait until ``check()`` is truthy (returned), for at most ``timeout`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            value = check()
            if value:
                return value
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"timed out waiting for {what or check}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.05))

    async def reply(self, unique_id: str, timeout: float = 5.0) -> list[Any]:
        """The station's one answer to our CALL ``unique_id``."""
        replies = await self.wait(lambda: self.replies_to(unique_id), timeout, f"reply {unique_id}")
        return list(replies[0])
