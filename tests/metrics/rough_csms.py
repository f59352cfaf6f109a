"""A CSMS that gets some things wrong on purpose, for the dashboards' test.

The reference CSMS answers everything correctly, so a run against it leaves the
CALLERROR, timeout and schema-violation panels empty. This one is a real OCPP-J server
(websockets on 127.0.0.1) that answers most calls properly and, deterministically by
count, a share of them badly:

- every 2nd MeterValues: CALLERROR InternalError (with TransactionMessageAttempts 1,
  the station drops it: the dropped-messages panel);
- every 3rd Authorize: a CALLRESULT that breaks the schema (a received schema
  violation);
- every 5th StatusNotification: no answer at all (a timeout).

After each BootNotification it also calls the station: GetConfiguration and
TriggerMessage (CSMS-initiated calls, answered), a ChangeConfiguration whose payload
breaks the schema (the station rejects it: inbound error, schema violation), and a
CALLRESULT for an id the station never used (OCPP-J says to ignore it: an ignored frame).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z"


class RoughCsms:
    """Run with ``start()`` (returns the ws:// base URL) and ``stop()``."""

    def __init__(self) -> None:
        self.seen: Counter[str] = Counter()
        self._tx = itertools.count(1)
        self._ids = itertools.count(1)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: Server | None = None
        self.port = 0

    def start(self) -> str:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._start(), self._loop)
        future.result(timeout=5)
        return f"ws://127.0.0.1:{self.port}/ocpp"

    async def _start(self) -> None:
        self._server = await serve(
            self._handle, "127.0.0.1", 0, subprotocols=["ocpp1.6"], compression=None
        )
        self.port = self._server.sockets[0].getsockname()[1]

    def stop(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()
                await self._server.wait_closed()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    async def _handle(self, ws: ServerConnection) -> None:
        async for raw in ws:
            frame = json.loads(raw)
            if frame[0] != 2:
                continue  # the station's answers to our calls
            _, unique_id, action, payload = frame
            self.seen[action] += 1
            n = self.seen[action]
            answer = self._answer(action, payload, n)
            if answer is None:
                continue  # left unanswered: the station times out
            await ws.send(json.dumps([answer[0], unique_id, *answer[1:]]))
            if action == "BootNotification":
                await self._call(ws, "GetConfiguration", {"key": ["HeartbeatInterval"]})
                await self._call(
                    ws, "TriggerMessage", {"requestedMessage": "Heartbeat", "connectorId": 0}
                )
                await self._call(ws, "ChangeConfiguration", {"key": 5, "value": "x"})
                await ws.send(json.dumps([3, "nobody-asked", {}]))

    async def _call(self, ws: ServerConnection, action: str, payload: dict[str, Any]) -> None:
        await ws.send(json.dumps([2, f"csms-{next(self._ids)}", action, payload]))

    def _answer(self, action: str, payload: dict[str, Any], n: int) -> list[Any] | None:
        ok = {"idTagInfo": {"status": "Accepted"}}
        if action == "BootNotification":
            return [3, {"status": "Accepted", "currentTime": _now(), "interval": 3600}]
        if action == "Heartbeat":
            return [3, {"currentTime": _now()}]
        if action == "StatusNotification":
            return None if n % 5 == 0 else [3, {}]
        if action == "Authorize":
            return [3, {"idTagInfo": {"status": "Maybe"}}] if n % 3 == 0 else [3, ok]
        if action == "StartTransaction":
            return [3, {**ok, "transactionId": next(self._tx)}]
        if action == "MeterValues":
            if n % 2 == 0:
                return [4, "InternalError", "refused on purpose", {}]
            return [3, {}]
        if action == "StopTransaction":
            return [3, ok]
        if action == "DataTransfer":
            return [3, {"status": "Accepted"}]
        if action in (
            "DiagnosticsStatusNotification",
            "FirmwareStatusNotification",
            "SecurityEventNotification",
        ):
            return [3, {}]
        return [4, "NotImplemented", f"{action} is not implemented here", {}]
