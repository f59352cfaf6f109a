"""The embedded reference CSMS: an independent OCPP 1.6J central system.

It is built on the ``ocpp`` library's central-system side on purpose: the fleet's own
protocol stack is a separate implementation, so a station that works against this CSMS
has been checked by code that shares none of its assumptions. Every CALL a station
sends is answered and written to a :class:`~fleet.csms.ledger.Ledger`, which is the
oracle the tests and the demo run read.

:class:`ReferenceCsms` lives on an asyncio loop; :class:`CsmsThread` gives it a loop of
its own in a daemon thread for synchronous callers (CLI, tests).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from http import HTTPStatus
from types import TracebackType
from typing import Any, TypeVar, cast
from urllib.parse import unquote, urlsplit

from ocpp.charge_point import snake_to_camel_case
from ocpp.exceptions import OCPPError
from ocpp.messages import Call
from ocpp.routing import on
from ocpp.v16 import ChargePoint, call_result
from ocpp.v16.datatypes import IdTagInfo
from ocpp.v16.enums import (
    Action,
    AuthorizationStatus,
    DataTransferStatus,
    RegistrationStatus,
)
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from fleet.csms.ledger import Ledger

__all__ = ["CsmsThread", "ReferenceCsms", "serve_forever"]

logger = logging.getLogger(__name__)

SUBPROTOCOL = Subprotocol("ocpp1.6")

# How long stop() waits for stations to finish the closing handshake. Simulated
# stations answer at once; a station that does not is not worth holding shutdown for.
_CLOSE_TIMEOUT = 2.0
_STOP_TIMEOUT = 5.0

_REGISTRATION_STATUSES = frozenset(status.value for status in RegistrationStatus)


_Handler = TypeVar("_Handler", bound=Callable[..., Any])


def _on(action: Action) -> Callable[[_Handler], _Handler]:
    """``ocpp.routing.on`` with a type, so handlers keep their signatures for mypy."""
    return cast(Callable[[_Handler], _Handler], on(action))


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _station_id(path: str) -> str:
    """Charge points append their identity to the configured URL, so take the last segment."""
    return unquote(urlsplit(path).path.rstrip("/").rpartition("/")[2])


def _quiet_ocpp_logger() -> None:
    """The library logs every frame at INFO; with 100+ stations that is the whole console.

    Only a logger nobody configured is touched, so ``logging.getLogger("ocpp")
    .setLevel(logging.DEBUG)`` before starting the CSMS still shows the frames.
    """
    ocpp_logger = logging.getLogger("ocpp")
    if ocpp_logger.level == logging.NOTSET:
        ocpp_logger.setLevel(logging.WARNING)


class _Station(ChargePoint):  # type: ignore[misc]  # the ocpp library is untyped
    """The CSMS end of one station's websocket; handlers answer and write the ledger."""

    def __init__(self, station_id: str, connection: ServerConnection, csms: ReferenceCsms) -> None:
        super().__init__(station_id, connection)
        self._csms = csms
        self._ledger = csms.ledger

    async def _handle_call(self, msg: Call) -> Any:
        # Overrides a private hook of ocpp.ChargePoint: it is the only place that sees
        # every CALL, including the ones its schema validation then rejects, and those
        # are exactly what the ledger must not miss.
        self._ledger.record_message(self.id, msg.action)
        try:
            return await super()._handle_call(msg)
        except OCPPError as error:
            cause = error.details.get("cause") if isinstance(error.details, dict) else None
            self._ledger.record_anomaly(
                self.id,
                f"{msg.action} answered with CallError {error.code}: {cause or error.description}",
            )
            raise

    def _id_tag_info(self, id_tag: str) -> IdTagInfo:
        return IdTagInfo(status=self._csms.authorization_status(id_tag))

    @_on(Action.boot_notification)
    def on_boot_notification(self, **payload: Any) -> call_result.BootNotification:
        status = self._csms.boot_status
        self._ledger.record_boot(self.id, snake_to_camel_case(payload), status)
        return call_result.BootNotification(
            current_time=_now(),
            interval=self._csms.heartbeat_interval,
            status=RegistrationStatus(status),
        )

    @_on(Action.heartbeat)
    def on_heartbeat(self) -> call_result.Heartbeat:
        self._ledger.record_heartbeat(self.id)
        return call_result.Heartbeat(current_time=_now())

    @_on(Action.status_notification)
    def on_status_notification(
        self,
        connector_id: int,
        error_code: str,
        status: str,
        info: str | None = None,
        vendor_error_code: str | None = None,
        **_: Any,
    ) -> call_result.StatusNotification:
        self._ledger.record_status(
            self.id, connector_id, status, error_code, info, vendor_error_code
        )
        return call_result.StatusNotification()

    @_on(Action.authorize)
    def on_authorize(self, id_tag: str) -> call_result.Authorize:
        self._ledger.record_authorize(self.id, id_tag)
        return call_result.Authorize(id_tag_info=self._id_tag_info(id_tag))

    @_on(Action.start_transaction)
    def on_start_transaction(
        self,
        connector_id: int,
        id_tag: str,
        meter_start: int,
        timestamp: str,
        reservation_id: int | None = None,
    ) -> call_result.StartTransaction:
        # OCPP 1.6 assigns a transaction id even when the tag is refused: the station
        # needs it to send the StopTransaction that ends the refused session.
        transaction_id = self._ledger.start_transaction(
            self.id, connector_id, id_tag, meter_start, timestamp, reservation_id
        )
        return call_result.StartTransaction(
            transaction_id=transaction_id, id_tag_info=self._id_tag_info(id_tag)
        )

    @_on(Action.stop_transaction)
    def on_stop_transaction(
        self,
        meter_stop: int,
        timestamp: str,
        transaction_id: int,
        reason: str | None = None,
        id_tag: str | None = None,
        transaction_data: list[dict[str, Any]] | None = None,
    ) -> call_result.StopTransaction:
        self._ledger.stop_transaction(
            self.id,
            transaction_id,
            meter_stop,
            timestamp,
            reason=reason,
            id_tag=id_tag,
            transaction_data=(
                None if transaction_data is None else snake_to_camel_case(transaction_data)
            ),
        )
        return call_result.StopTransaction(
            id_tag_info=None if id_tag is None else self._id_tag_info(id_tag)
        )

    @_on(Action.meter_values)
    def on_meter_values(
        self,
        connector_id: int,
        meter_value: list[dict[str, Any]],
        transaction_id: int | None = None,
    ) -> call_result.MeterValues:
        self._ledger.record_meter_values(
            self.id, connector_id, transaction_id, snake_to_camel_case(meter_value)
        )
        return call_result.MeterValues()

    @_on(Action.data_transfer)
    def on_data_transfer(self, **payload: Any) -> call_result.DataTransfer:
        self._ledger.record_data_transfer(self.id, snake_to_camel_case(payload))
        return call_result.DataTransfer(status=DataTransferStatus.unknown_vendor_id)

    @_on(Action.diagnostics_status_notification)
    def on_diagnostics_status_notification(
        self, status: str
    ) -> call_result.DiagnosticsStatusNotification:
        self._ledger.record_diagnostics_status(self.id, status)
        return call_result.DiagnosticsStatusNotification()

    @_on(Action.firmware_status_notification)
    def on_firmware_status_notification(
        self, status: str
    ) -> call_result.FirmwareStatusNotification:
        self._ledger.record_firmware_status(self.id, status)
        return call_result.FirmwareStatusNotification()


class ReferenceCsms:
    """An OCPP 1.6J central system that accepts any station and records what it sends.

    ``boot_status``, ``heartbeat_interval``, ``accept_all_tags`` and ``accepted_tags``
    may be changed while it runs (e.g. to let a fleet boot into Pending and then
    accept it); they apply to the next message that needs them.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        accepted_tags: Iterable[str] | None = None,
        accept_all_tags: bool = False,
        boot_status: str = "Accepted",
        heartbeat_interval: int = 60,
        ledger: Ledger | None = None,
    ) -> None:
        self.host = host
        self._port = port
        self.accepted_tags = frozenset(accepted_tags or ())
        self.accept_all_tags = accept_all_tags
        self.boot_status = boot_status
        self.heartbeat_interval = heartbeat_interval
        self._ledger = ledger if ledger is not None else Ledger()
        self._server: Server | None = None
        self._stations: dict[str, _Station] = {}
        self._background: set[asyncio.Task[None]] = set()
        _quiet_ocpp_logger()

    # -- configuration ----------------------------------------------------------------

    @property
    def boot_status(self) -> str:
        return self._boot_status

    @boot_status.setter
    def boot_status(self, status: str) -> None:
        # Fail at configuration time, not with a CallError at the first station's boot.
        if status not in _REGISTRATION_STATUSES:
            raise ValueError(
                f"boot_status must be one of {sorted(_REGISTRATION_STATUSES)}, not {status!r}"
            )
        self._boot_status = status

    @property
    def accepted_tags(self) -> frozenset[str]:
        return self._accepted_tags

    @accepted_tags.setter
    def accepted_tags(self, tags: Iterable[str]) -> None:
        # OCPP 1.6 defines IdToken as case-insensitive.
        self._accepted_tags = frozenset(tag.casefold() for tag in tags)

    def authorization_status(self, id_tag: str) -> AuthorizationStatus:
        if self.accept_all_tags or id_tag.casefold() in self._accepted_tags:
            return AuthorizationStatus.accepted
        return AuthorizationStatus.invalid

    # -- state ------------------------------------------------------------------------

    @property
    def ledger(self) -> Ledger:
        return self._ledger

    @property
    def port(self) -> int:
        """The listening port; with ``port=0`` the real one is known only after start()."""
        if self._server is not None:
            return int(self._server.sockets[0].getsockname()[1])
        return self._port

    @property
    def url(self) -> str:
        """Where stations connect; they append ``/<station id>``."""
        host = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(self.host, self.host)
        if ":" in host:
            host = f"[{host}]"
        return f"ws://{host}:{self.port}/ocpp"

    def connected_stations(self) -> list[str]:
        # dict.copy() is atomic under the GIL, so other threads may call this too.
        return sorted(self._stations.copy())

    # -- lifecycle --------------------------------------------------------------------

    async def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("the reference CSMS is already started")
        self._server = await serve(
            self._handle_connection,
            self.host,
            self._port,
            # websockets rejects a handshake that offers no common subprotocol with
            # HTTP 400, which is what OCPP-J asks of a CSMS.
            subprotocols=[SUBPROTOCOL],
            process_request=self._check_request,
            # Keepalive is the station's job (WebSocketPingInterval); server pings would
            # only turn an overloaded load generator into spurious disconnects.
            ping_interval=None,
            # Deflate costs ~100 KB per connection; OCPP frames are small.
            compression=None,
            close_timeout=_CLOSE_TIMEOUT,
        )
        logger.debug("reference CSMS listening on %s", self.url)

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        try:
            await asyncio.wait_for(server.wait_closed(), _STOP_TIMEOUT)
        except TimeoutError:
            logger.warning("reference CSMS: connections still open after %ss", _STOP_TIMEOUT)
        for task in list(self._background):
            task.cancel()
        self._stations.clear()

    async def call(self, station_id: str, request: Any, timeout: float = 10) -> Any:
        """Send a CSMS-initiated CALL (an ``ocpp.v16.call`` dataclass), return the result.

        A CallError is raised as the matching ``ocpp.exceptions.OCPPError``: the
        library's default would be to return None, which reads like success.
        """
        station = self._stations.get(station_id)
        if station is None:
            raise KeyError(
                f"station {station_id!r} is not connected to the reference CSMS "
                f"({len(self._stations)} stations are)"
            )
        return await asyncio.wait_for(station.call(request, suppress=False), timeout)

    # -- websocket side -----------------------------------------------------------------

    def _check_request(self, connection: ServerConnection, request: Request) -> Response | None:
        if not _station_id(request.path):
            return connection.respond(
                HTTPStatus.NOT_FOUND, "Append the charge point identity to the URL.\n"
            )
        return None

    async def _handle_connection(self, connection: ServerConnection) -> None:
        assert connection.request is not None
        station_id = _station_id(connection.request.path)
        station = _Station(station_id, connection, self)
        previous = self._stations.get(station_id)
        self._stations[station_id] = station
        self._ledger.record_connection(station_id)
        if previous is not None:
            # A charge point that reconnects has lost its old socket (often without
            # the CSMS noticing); calls must go to the new one. Close the old one in
            # the background so the new station's first message is not held up.
            self._spawn(previous._connection.close(reason="replaced by a new connection"))
        try:
            await station.start()
        except ConnectionClosed:
            pass
        finally:
            if self._stations.get(station_id) is station:
                del self._stations[station_id]

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)


class CsmsThread:
    """A :class:`ReferenceCsms` on its own event loop in a daemon thread.

    For synchronous callers only: under gevent monkey-patching ``threading`` becomes
    greenlets and the blocking waits here would block the hub; run
    :class:`ReferenceCsms` on the engine's loop thread there instead.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        accepted_tags: Iterable[str] | None = None,
        accept_all_tags: bool = False,
        boot_status: str = "Accepted",
        heartbeat_interval: int = 60,
        ledger: Ledger | None = None,
        startup_timeout: float = 5.0,
    ) -> None:
        self.csms = ReferenceCsms(
            host,
            port,
            accepted_tags=accepted_tags,
            accept_all_tags=accept_all_tags,
            boot_status=boot_status,
            heartbeat_interval=heartbeat_interval,
            ledger=ledger,
        )
        self._startup_timeout = startup_timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def ledger(self) -> Ledger:
        return self.csms.ledger

    @property
    def url(self) -> str:
        return self.csms.url

    def connected_stations(self) -> list[str]:
        return self.csms.connected_stations()

    def start(self) -> str:
        """Start listening and return the URL stations should connect to."""
        if self._thread is not None:
            raise RuntimeError("the CSMS thread is already started")
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(
            target=self._run, args=(loop,), name="reference-csms", daemon=True
        )
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self.csms.start(), loop)
        try:
            future.result(self._startup_timeout)
        except BaseException:
            future.cancel()
            self.stop()
            raise
        return self.csms.url

    def stop(self, timeout: float = _STOP_TIMEOUT + 1) -> None:
        """Close every connection and end the thread; safe to call twice."""
        loop, thread = self._loop, self._thread
        self._loop = self._thread = None
        if loop is None or thread is None:
            return
        if thread.is_alive():
            future = asyncio.run_coroutine_threadsafe(self.csms.stop(), loop)
            try:
                future.result(timeout)
            except TimeoutError:
                future.cancel()
                logger.warning("reference CSMS did not stop within %ss", timeout)
            except Exception:
                logger.exception("reference CSMS failed to stop cleanly")
            loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)
        if thread.is_alive():
            logger.warning("reference CSMS thread still running after %ss", timeout)

    def call(self, station_id: str, request: Any, timeout: float = 10) -> Any:
        """Blocking :meth:`ReferenceCsms.call`."""
        loop = self._loop
        if loop is None:
            raise RuntimeError("the CSMS thread is not started")
        future = asyncio.run_coroutine_threadsafe(
            self.csms.call(station_id, request, timeout), loop
        )
        try:
            # The coroutine has its own timeout; the margin only covers loop latency.
            return future.result(timeout + 1)
        except TimeoutError:
            future.cancel()
            raise

    def __enter__(self) -> CsmsThread:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @staticmethod
    def _run(loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
            # Connection handlers and the library's validation executor must finish
            # on this loop; leaving them makes "Task was destroyed" noise at exit.
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.wait(pending, timeout=_CLOSE_TIMEOUT))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(
                asyncio.wait_for(loop.shutdown_default_executor(), _CLOSE_TIMEOUT)
            )
        except Exception:
            logger.exception("reference CSMS loop ended with an error")
        finally:
            loop.close()


async def serve_forever(host: str, port: int, **kwargs: Any) -> None:
    """Run a reference CSMS until cancelled (the ``fleet csms`` command)."""
    csms = ReferenceCsms(host, port, **kwargs)
    await csms.start()
    print(f"reference CSMS listening on {csms.url}", flush=True)
    try:
        await asyncio.Future()
    finally:
        await csms.stop()
