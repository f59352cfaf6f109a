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
import hmac
import logging
import re
import ssl
import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from http import HTTPStatus
from types import TracebackType
from typing import Any, TypeVar, cast
from urllib.parse import unquote, urlsplit

from ocpp.charge_point import snake_to_camel_case
from ocpp.exceptions import InternalError, OCPPError
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
from websockets.exceptions import ConnectionClosed, InvalidHeader
from websockets.headers import build_www_authenticate_basic, parse_authorization_basic
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from fleet.csms.ledger import Ledger
from fleet.engine.security import SERVER_LOGGER

__all__ = ["BasicAuth", "CsmsThread", "ReferenceCsms", "serve_forever", "tls_context"]

BasicAuth = Mapping[str, str] | Callable[[str, str], bool]
"""Who may connect: station id -> password, or a predicate (station id, password)."""

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
    if _redact_authorization_key not in ocpp_logger.filters:
        ocpp_logger.addFilter(_redact_authorization_key)
    if _no_traceback_for_invalid_input not in ocpp_logger.filters:
        ocpp_logger.addFilter(_no_traceback_for_invalid_input)


def _no_traceback_for_invalid_input(record: logging.LogRecord) -> bool:
    """The library logs every CALL it refuses with a CallError, and every frame it cannot
    parse, as an ERROR with a traceback: twenty lines per invalid message, which is the
    whole console once stations misbehave on purpose (fleet.scenarios.misbehave). A
    refused CALL is in the ledger (an anomaly naming the code), so its line goes; an
    unparsable frame keeps one line, without the traceback. InternalError (a bug in a
    handler here) keeps everything."""
    exc = record.exc_info[1] if record.exc_info else None
    if not isinstance(exc, OCPPError) or isinstance(exc, InternalError):
        return True
    if str(record.msg).startswith("Error while handling request"):
        return False
    record.exc_info = None
    record.exc_text = None
    return True


_JSON_VALUE = re.compile(r'("value"\s*:\s*)"(?:[^"\\]|\\.)*"')


def _redact_authorization_key(record: logging.LogRecord) -> bool:
    """With frame logging on, a ChangeConfiguration of AuthorizationKey would print the
    new key: replace the values of any frame that names it (only runs for records that
    are logged at all)."""
    message = record.getMessage()
    if "AuthorizationKey" in message:
        record.msg = _JSON_VALUE.sub(r'\1"[redacted]"', message)
        record.args = None
    return True


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
        if self._csms.service_time > 0:
            await self._csms.serve_slowly()
        try:
            return await super()._handle_call(msg)
        except OCPPError as error:
            cause = error.details.get("cause") if isinstance(error.details, dict) else None
            self._ledger.record_anomaly(
                self.id,
                f"{msg.action} answered with CallError {error.code}: {cause or error.description}",
            )
            raise

    def _id_tag_info(self, id_tag: str, status: AuthorizationStatus | None = None) -> IdTagInfo:
        status = status or self._csms.authorization_status(id_tag)
        parent = self._csms.parent_id_tag if status == AuthorizationStatus.accepted else None
        return IdTagInfo(status=status, parent_id_tag=parent)

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
        status = self._csms.authorization_status(id_tag)
        if (
            self._csms.one_transaction_per_tag
            and status == AuthorizationStatus.accepted
            and self._ledger.tag_in_transaction(id_tag, self.id, connector_id)
        ):
            status = AuthorizationStatus.concurrent_tx
        transaction_id = self._ledger.start_transaction(
            self.id,
            connector_id,
            id_tag,
            meter_start,
            timestamp,
            reservation_id,
            status=status.value,
        )
        return call_result.StartTransaction(
            transaction_id=transaction_id, id_tag_info=self._id_tag_info(id_tag, status)
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

    @_on(Action.security_event_notification)
    def on_security_event_notification(
        self, type: str, timestamp: str, tech_info: str | None = None
    ) -> call_result.SecurityEventNotification:
        event = {"type": type, "timestamp": timestamp}
        if tech_info is not None:
            event["techInfo"] = tech_info
        self._ledger.record_security_event(self.id, event)
        return call_result.SecurityEventNotification()


class ReferenceCsms:
    """An OCPP 1.6J central system that accepts any station and records what it sends.

    Which idTags it accepts: ``accept_all_tags``, ``accepted_tags`` (a set) or
    ``accepts_tag`` (a predicate: a profile's per-station tags, see
    ``fleet.scenarios.profile.IdTags.accepts``); accepted ones carry ``parent_id_tag``.
    ``one_transaction_per_tag`` answers a StartTransaction with ConcurrentTx while the
    idTag has a transaction running at another connector, as database-backed CSMSs do.

    ``boot_status``, ``heartbeat_interval``, ``accept_all_tags`` and ``accepted_tags``
    may be changed while it runs (e.g. to let a fleet boot into Pending and then
    accept it); they apply to the next message that needs them.

    Security profiles: ``ssl_context`` (a server context, see :func:`tls_context`)
    serves wss://; one that requires client certificates is profile 3. ``basic_auth``
    makes every upgrade request carry HTTP Basic credentials whose user is the station
    id of the URL (profiles 1 and 2), answering 401 otherwise; a verified client
    certificate whose subject CN is the station id (profile 3) is accepted instead.
    Both the mapping (which may be mutated while running) and ``basic_auth`` itself may
    change while it runs.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        accepted_tags: Iterable[str] | None = None,
        accept_all_tags: bool = False,
        accepts_tag: Callable[[str], bool] | None = None,
        parent_id_tag: str | None = None,
        one_transaction_per_tag: bool = False,
        boot_status: str = "Accepted",
        heartbeat_interval: int = 60,
        ledger: Ledger | None = None,
        ssl_context: ssl.SSLContext | None = None,
        basic_auth: BasicAuth | None = None,
        service_time: float = 0.0,
    ) -> None:
        self.host = host
        self.accepts_tag = accepts_tag
        self.parent_id_tag = parent_id_tag
        self.one_transaction_per_tag = one_transaction_per_tag
        self._port = port
        self.ssl_context = ssl_context
        self.basic_auth = basic_auth
        self.auth_failures = 0  # upgrade requests answered 401
        self.accepted_tags = frozenset(accepted_tags or ())
        self.accept_all_tags = accept_all_tags
        self.boot_status = boot_status
        self.heartbeat_interval = heartbeat_interval
        # Capacity tests: every CALL waits its turn and takes this many seconds, one at
        # a time across all stations, so throughput is capped at 1/service_time.
        self.service_time = service_time
        self._service_lock: asyncio.Lock | None = None
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
        if (
            self.accept_all_tags
            or id_tag.casefold() in self._accepted_tags
            or (self.accepts_tag is not None and self.accepts_tag(id_tag))
        ):
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
        scheme = "wss" if self.ssl_context is not None else "ws"
        return f"{scheme}://{host}:{self.port}/ocpp"

    def connected_stations(self) -> list[str]:
        # dict.copy() is atomic under the GIL, so other threads may call this too.
        return sorted(self._stations.copy())

    async def serve_slowly(self) -> None:
        """Hold one CALL for ``service_time`` seconds, one CALL at a time (FIFO): a
        single server of fixed speed, whose knee a capacity search must find."""
        if self._service_lock is None:
            self._service_lock = asyncio.Lock()  # on the loop that serves
        async with self._service_lock:
            await asyncio.sleep(self.service_time)

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
            ssl=self.ssl_context,
            # With DEBUG on, websockets logs request headers: not the Authorization one.
            logger=SERVER_LOGGER,
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
        station_id = _station_id(request.path)
        if not station_id:
            return connection.respond(
                HTTPStatus.NOT_FOUND, "Append the charge point identity to the URL.\n"
            )
        if (
            self.basic_auth is not None
            and not _certified(connection, station_id)
            and not self._authenticated(station_id, request)
        ):
            self.auth_failures += 1
            response = connection.respond(HTTPStatus.UNAUTHORIZED, "Unauthorized.\n")
            response.headers["WWW-Authenticate"] = build_www_authenticate_basic("OCPP")
            return response
        return None

    def _authenticated(self, station_id: str, request: Request) -> bool:
        """HTTP Basic, as the security whitepaper asks: the user is the station id of
        the URL, the password its AuthorizationKey. Nothing here logs the header."""
        values = request.headers.get_all("Authorization")
        if len(values) != 1:
            return False
        try:
            user, password = parse_authorization_basic(values[0])
        except InvalidHeader:  # its message quotes the header: never log it
            return False
        if user != station_id:
            return False
        auth = self.basic_auth
        if callable(auth):
            return bool(auth(station_id, password))
        expected = None if auth is None else auth.get(station_id)
        if expected is None:
            return False
        given = password.encode("utf-8", "surrogateescape")
        return hmac.compare_digest(given, expected.encode("utf-8", "surrogateescape"))

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


def _certified(connection: ServerConnection, station_id: str) -> bool:
    """Profile 3: a client certificate the TLS layer verified, issued to this station
    (subject CN = station id), stands in for Basic auth."""
    transport = connection.transport
    cert = transport.get_extra_info("peercert") if transport is not None else None
    if not cert:
        return False
    subject = [item for rdn in cert.get("subject", ()) for item in rdn]
    return ("commonName", station_id) in subject


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
        ssl_context: ssl.SSLContext | None = None,
        basic_auth: BasicAuth | None = None,
        service_time: float = 0.0,
        **tag_options: Any,
    ) -> None:
        """``tag_options``: ``accepts_tag``, ``parent_id_tag``, ``one_transaction_per_tag``
        of :class:`ReferenceCsms`."""
        self.csms = ReferenceCsms(
            host,
            port,
            accepted_tags=accepted_tags,
            accept_all_tags=accept_all_tags,
            **tag_options,
            boot_status=boot_status,
            heartbeat_interval=heartbeat_interval,
            ledger=ledger,
            ssl_context=ssl_context,
            basic_auth=basic_auth,
            service_time=service_time,
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


def tls_context(cert: str, key: str | None = None, client_ca: str | None = None) -> ssl.SSLContext:
    """A server context for wss:// (profile 2); with ``client_ca``, stations must present a
    certificate signed by it (mutual TLS, profile 3)."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    if client_ca is not None:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(client_ca)
    return ctx


async def serve_forever(host: str, port: int, **kwargs: Any) -> None:
    """Run a reference CSMS until cancelled (the ``fleet csms`` command)."""
    csms = ReferenceCsms(host, port, **kwargs)
    await csms.start()
    print(f"reference CSMS listening on {csms.url}", flush=True)
    try:
        await asyncio.Future()
    finally:
        await csms.stop()
