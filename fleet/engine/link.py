"""One station's connection: websocket, OCPP-J endpoint and model, on the loop.

Each station is an ``asyncio.Protocol`` that drives websockets' sans-I/O
``ClientProtocol`` directly. There is no task and no ``await`` per message: bytes
arrive in ``data_received``, frames become OCPP events, the model decides, and
replies are written to the transport before the callback returns. Time-driven work
(heartbeats, meter samples, retries, RPC timeouts) shares one timer handle per
station, set to the model's next wake-up. This is what keeps a station at a few
tens of microseconds per exchange and a few tens of KB idle.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import ssl
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, cast

import orjson
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode, apply_mask  # apply_mask: C speedup if built
from websockets.http11 import Response
from websockets.protocol import State
from websockets.typing import Subprotocol
from websockets.uri import WebSocketURI, parse_uri

from fleet.engine.limits import connect_from
from fleet.engine.security import (
    CLIENT_LOGGER,
    Security,
    SecurityConfigError,
    redact_url,
    split_userinfo,
)
from fleet.model.messages import Reason
from fleet.model.records import NullObserver, Reboot, Reconnect, Standalone
from fleet.model.rng import Rng, StationRandom
from fleet.model.station import CSMS_ACTIONS, Station
from fleet.protocol import errors
from fleet.protocol.errors import OcppError
from fleet.protocol.rpc import Answered, Dropped, Failed, IncomingCall, Rejected, RpcEndpoint

RawReply = Callable[[str, "list[Any] | str"], None]
"""Where :meth:`StationLink.send_raw` sends a reply: ``(unique id, frame)``, or
``(unique id, "closed" | "abandoned")`` when the connection ends first."""

if TYPE_CHECKING:
    from fleet.metrics.stats import FleetStats

log = logging.getLogger("fleet.link")

SUBPROTOCOL = Subprotocol("ocpp1.6")
MAX_MESSAGE = 1 << 20
TIMER_SLACK = 0.05
"""Model seconds: the model's wake-ups are rounded up to this grid (see _set_timer).
OCPP's intervals are whole seconds; 50 ms later is nothing to a CSMS, and at a
realistic rate (10,000 stations, one message a minute each) it lets ~8 stations share
each wake-up. Measured: 10 ms -> 50 ms took a Heartbeat exchange from ~70 to ~53 us."""
_MASKS = random.Random()  # websocket masking keys (RFC 6455 5.3): see StationLink._write
_TEXT_FIN = 0x81  # a whole text frame, no RSV bits: the one kind parsed here (_frames_in)
BACKOFF_BASE = 1.0
BACKOFF_CAP = 60.0

_IDLE, _CONNECTING, _OPEN, _REBOOTING, _STOPPED, _STANDALONE = range(6)

CONNECT = "connect"
"""The sample name of a connection attempt (TCP, TLS and the websocket handshake): no
OCPP action is lower-case, so the sample outlet can tell it from an exchange."""

CUT_MODES = ("drop", "refuse", "tls", "hang")
"""How :meth:`StationLink.cut` takes the CSMS away: ``drop`` closes the socket and
connecting fails as the network being unreachable; ``refuse`` closes it and connections
are refused; ``tls`` closes it and connections fail in the TLS handshake; ``hang`` keeps
the socket open with nothing getting through either way (the WebSocketPingInterval ping
times out and closes it) and connection attempts time out."""


def _rejection(action: str, payload: dict[str, Any]) -> str | None:
    """A CALLRESULT whose status means the CSMS said no (a failure for Locust)."""
    if action == "BootNotification":
        status = payload.get("status")
        return None if status != "Rejected" else "BootNotification Rejected"
    if action in ("Authorize", "StartTransaction"):
        status = payload.get("idTagInfo", {}).get("status")
        return None if status == "Accepted" else f"idTagInfo {status}"
    if action == "DataTransfer":
        status = payload.get("status")
        return None if status == "Accepted" else f"DataTransfer {status}"
    return None


def _outcome(payload: dict[str, Any]) -> str:
    status = payload.get("status")
    return status if isinstance(status, str) else "Answered"


def _connect_error(reason: str, exc: BaseException | None) -> str:
    """A failed attempt as Locust's failures table shows it: the reason, and the socket
    error where there is one (``refused: Connection refused``, ``HTTP 401 Unauthorized``).
    Few distinct texts, so the table groups them."""
    if reason.startswith("HTTP "):
        phrase = getattr(getattr(exc, "response", None), "reason_phrase", "")
        return f"{reason} {phrase}" if isinstance(phrase, str) and phrase else reason
    if exc is None:
        return reason
    detail = getattr(exc, "strerror", None) or getattr(exc, "reason", None)
    if isinstance(exc, OSError) and exc.errno and not isinstance(exc, ssl.SSLError):
        # asyncio's "Connect call failed ('host', port)" says less than the errno's name.
        detail = os.strerror(exc.errno)
    if isinstance(exc, ssl.SSLCertVerificationError):
        detail = exc.verify_message
    if not detail:
        detail = str(exc) or type(exc).__name__
    return f"{reason}: {detail}"


class Wakeups:
    """The model wake-ups of a fleet's stations, by loop time: one loop timer per time.

    Wake-ups land on the TIMER_SLACK grid (StationLink._set_timer), so at any realistic
    rate many stations wait for the same loop time. They wait in one slot (an ordered
    set) under one loop timer instead of a timer each: arming is a dict insert, not a
    TimerHandle (a Python object, a libuv timer in the heap, a context copy), and a
    re-arm or cancel is a dict delete, not a cancelled handle left to close. The slot's
    stations run in the order they were armed, as their own timers would have."""

    __slots__ = ("_loop", "_slots")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._slots: dict[float, dict[StationLink, None]] = {}

    def arm(self, link: StationLink, at: float) -> dict[StationLink, None]:
        """``link`` wakes at loop time ``at``; returns the slot it waits in (a cancel
        deletes it from there)."""
        slot = self._slots.get(at)
        if slot is None:
            slot = self._slots[at] = {}
            self._loop.call_at(at, self._due, at)
        slot[link] = None
        return slot

    def _due(self, at: float) -> None:
        slot = self._slots.pop(at)
        # A copy: a station's step may cancel another's wake-up in this slot.
        for link in tuple(slot):
            if link._timer is not slot:
                continue
            link._timer = None
            try:
                link._pump()
            except Exception as exc:  # one station's bug must not skip the others
                self._loop.call_exception_handler(
                    {"message": "station wake-up failed", "exception": exc}
                )


class _BlackHole:
    """A transport that swallows what is written: the network path is hung. Closing
    or aborting it does so to the real transport underneath."""

    __slots__ = ("real",)

    def __init__(self, real: asyncio.Transport) -> None:
        self.real = real

    def write(self, data: bytes) -> None:
        pass

    def can_write_eof(self) -> bool:
        return False

    def write_eof(self) -> None:
        pass

    def close(self) -> None:
        self.real.close()

    def abort(self) -> None:
        self.real.abort()


class _Wire(asyncio.Protocol):
    """One TCP connection of a link. A link outlives its connections (reconnects,
    reboots); events from a connection that is no longer the link's are dropped."""

    __slots__ = ("link",)

    def __init__(self, link: StationLink) -> None:
        self.link = link

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.link._wire_made(self, cast(asyncio.Transport, transport))

    def data_received(self, data: bytes) -> None:
        if self.link.wire is self:
            self.link._wire_data(data)

    def eof_received(self) -> bool | None:
        link = self.link
        if link.wire is self and link.ws is not None:
            link.ws.receive_eof()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if self.link.wire is self:
            self.link._wire_lost(exc)


class LinkOwner(Protocol):
    """What a link needs from the fleet that owns it, and all it may use of it.

    The link receives its owner (:class:`fleet.engine.fleet.Fleet` is one) and never
    imports it: the fleet knows its links, a link knows only this. Its loop and its
    model clock (``now``, ``loop_time``; ``t0``, ``real`` and ``call_at_model`` for the
    behaviours that reach the clock through ``link.fleet``), the counters and the sample
    outlet, the shared TLS state, and where the effects go that a link does not carry out
    itself (file transfers), and where it says it is gone.
    """

    loop: asyncio.AbstractEventLoop
    stats: FleetStats
    validate: bool
    validate_outgoing: bool
    message_ids: str
    security: Security
    time_compression: float
    ping_scale: float
    clock_offset: float
    t0: float
    connect_grace: float
    wakeups: Wakeups

    def now(self) -> float: ...

    def loop_time(self, model_time: float) -> float: ...

    def real(self, model_seconds: float) -> float: ...

    def call_at_model(self, model_time: float, fn: Callable[[], Any]) -> asyncio.TimerHandle: ...

    def sample(self, action: str, seconds: float, size: int, error: str | None) -> None: ...

    def run_effect(self, link: StationLink, effect: object) -> None: ...

    def forget(self, link: StationLink) -> None: ...


class StationLink:
    """Connects a :class:`Station` to its CSMS and keeps it connected."""

    # One per station: slots hold its ~40 attributes in ~0.4 KB instead of a ~1.6 KB
    # dict (issue 16); an attribute not listed here still works (in ``__dict__``).
    __slots__ = (
        "__dict__",
        "_attempt",
        "_attempt_at",
        "_auth",
        "_aux_timer",
        "_awaiting_pong",
        "_backlog",
        "_base_url",
        "_boot_status",
        "_check_own",
        "_cut_timer",
        "_delivered",
        "_end_timer",
        "_ending",
        "_ever_connected",
        "_fragments",
        "_grace_timer",
        "_head_tail",
        "_lost_reason",
        "_opening",
        "_overdue",
        "_ping_timer",
        "_rx",
        "_security_reported",
        "_timer",
        "_timer_at",
        "_userinfo",
        "behaviour",
        "cut_mode",
        "fleet",
        "local_ip",
        "raw_calls",
        "rng",
        "rpc",
        "ssl_context",
        "state",
        "station",
        "storm_faults",
        "transport",
        "uri",
        "url",
        "wire",
        "ws",
    )

    def __init__(
        self,
        fleet: LinkOwner,
        station: Station,
        url: str,
        *,
        ssl_context: ssl.SSLContext | None = None,
        rng: Rng | None = None,
        local_ip: str | None = None,
    ) -> None:
        self.fleet = fleet
        self.local_ip = local_ip  # source address of its connections (None: the kernel's)
        self.station = station
        # The station's own configuration says where it connects: SupervisionUrl (the
        # CSMS base URL) + "/" + BoxIdentifier (its id), as on the real device. So a
        # ChangeConfiguration of either takes effect at the next connection.
        # A password in the URL stays out of the configuration (GetConfiguration would
        # show it): it is kept here and sent while SupervisionUrl is still this URL.
        base, self._userinfo = split_userinfo(url.rstrip("/"))
        self._base_url = base[:255]
        station.config.set_internal("SupervisionUrl", self._base_url)
        self.ssl_context = ssl_context
        self.rng = rng or StationRandom()
        self.rpc = RpcEndpoint(
            CSMS_ACTIONS,
            # Model seconds: scaled so a compressed clock still waits the real seconds.
            timeout=float(station.config.get_int("WebsocketRequestTimeout"))
            * fleet.time_compression,
            validate=fleet.validate,
            message_ids=fleet.message_ids,
        )
        self._check_own = fleet.validate_outgoing  # our CALLs too (see Fleet)
        self.state = _IDLE
        self.ws: ClientProtocol | None = None
        self.wire: _Wire | None = None
        self.transport: asyncio.Transport | None = None
        self.behaviour: Any = None
        # The model's next wake-up: the shared slot it waits in (Wakeups) and its time.
        self._timer: dict[StationLink, None] | None = None
        self._timer_at = 0.0
        self._aux_timer: asyncio.TimerHandle | None = None  # connect/handshake/backoff
        self._ping_timer: asyncio.TimerHandle | None = None
        self._awaiting_pong = False
        self._fragments: list[bytes] = []
        # Frames of an open connection are split here (_frames_in): bytes of a frame
        # not complete yet; None while websockets parses everything (the handshake).
        self._rx: bytes | None = None
        self._head_tail = b""  # the handshake response's last bytes so far
        self._lost_reason: str | None = None  # why we are dropping an open connection
        self._attempt = 0
        self._ever_connected = False
        self._attempt_at = 0.0  # loop time the connection attempt under way began
        # Counted in stats.stations_never_connected: started connect_grace ago, no
        # connection yet (the handle of that check while it is pending).
        self._overdue = False
        self._grace_timer: asyncio.TimerHandle | None = None
        self._boot_status: str | None = None
        self._auth: str | None = None  # this connection's Authorization header; never logged
        self._security_reported: str | None = None  # one security event per failure streak
        station.observer = self
        self.url = ""
        self.uri: WebSocketURI | None = None
        self.cut_mode: str | None = None  # a network fault under way (see cut())
        self._cut_timer: asyncio.TimerHandle | None = None
        # This station's share of the fleet's offline-queue figures, as last added to
        # FleetStats (see _queue_figures).
        self._backlog = 0
        self._delivered = 0
        # unique id -> callback for replies to frames sent with send_raw (the
        # misbehaving-station mode); empty, and so free on the hot path, otherwise.
        self.raw_calls: dict[str, RawReply] = {}
        self._opening: asyncio.Task[None] | None = None  # a connection attempt under way
        # The end of the run (end()): each called once with this link when it has stopped.
        self._ending: list[Callable[[StationLink], None]] | None = None
        self._end_timer: asyncio.TimerHandle | None = None
        # Vendor codes of the fault-storm faults active here and counted in
        # ``stats.faults_active`` (fleet.scenarios.storms); stop() takes them out.
        self.storm_faults: list[str] = []

    # -- lifecycle -------------------------------------------------------------

    def start(self) -> None:
        # The live gauges count running stations only: what a station brings (a
        # transaction in progress, when a parked station comes back) is added here and
        # taken out again by stop().
        stats = self.fleet.stats
        stats.stations_started += 1
        for conn in self.station.connectors:
            stats.connectors[(conn.connector_id, conn.status)] += 1
        if self.station.transaction is not None:
            stats.transactions_active += 1
        self._grace_timer = self.fleet.loop.call_later(self.fleet.connect_grace, self._grace_over)
        self._connect()

    def _grace_over(self) -> None:
        self._grace_timer = None
        self._not_connecting()

    def _not_connecting(self) -> None:
        """The station has not connected since it started, and an attempt failed or its
        grace period is over (an attempt still under way then is not a slow start, it is
        a CSMS not taking it): it counts in ``stations_never_connected`` (a headless run
        fails on it) until it connects or stops."""
        if not self._overdue and self.state != _STOPPED and not self._ever_connected:
            self._overdue = True
            self.fleet.stats.stations_never_connected += 1

    def _not_overdue(self) -> None:
        if self._grace_timer is not None:
            self._grace_timer.cancel()
            self._grace_timer = None
        if self._overdue:
            self._overdue = False
            self.fleet.stats.stations_never_connected -= 1

    def stop(self) -> None:
        """Take the station offline cleanly (close frame 1000) and forget it."""
        if self.state == _STOPPED:
            return
        was_open = self.state == _OPEN
        self.state = _STOPPED
        self._cancel_timers()
        if self._cut_timer is not None:
            self._cut_timer.cancel()
            self._cut_timer = None
        if self._end_timer is not None:
            self._end_timer.cancel()
            self._end_timer = None
        opening, self._opening = self._opening, None
        if opening is not None:
            opening.cancel()  # a connection attempt not made yet is never made
        self.wire = None  # one made meanwhile is aborted (_wire_made)
        if self.behaviour is not None:
            self.behaviour.stop()
            self.behaviour = None
        ws, transport = self.ws, self.transport
        if ws is not None and transport is not None and was_open:
            try:
                ws.send_close(1000, "station stopped")
                self._flush()
            except Exception:  # the peer may already be gone
                pass
        if transport is not None:
            transport.close()
        if was_open:
            self._went_offline()
        self._not_overdue()
        stats = self.fleet.stats
        stats.stations_started -= 1
        for conn in self.station.connectors:
            stats.connectors[(conn.connector_id, conn.status)] -= 1
        if self._boot_status is not None:
            stats.boot_status[self._boot_status] -= 1
        if self.station.transaction is not None:
            stats.transactions_active -= 1  # a stopped station's transaction is not live
        for code in self.storm_faults:
            stats.faults_active[code] -= 1
        self.storm_faults.clear()
        if self.station.observer is self:
            # A powered-off station kept for later (a boot storm) reboots before its next
            # link exists: what it reports then must not reach this link's gauges.
            self.station.observer = NullObserver()
        stats.offline_queue_depth -= self._backlog  # its deliveries stay counted
        self._backlog = 0
        self.fleet.forget(self)
        ending, self._ending = self._ending, None
        if ending is not None:
            stats.unfinished_transactions += self.station.unfinished_transactions
            for done in ending:
                done(self)

    def end(self, reason: str, timeout: float, done: Callable[[StationLink], None]) -> None:
        """End the run for this station cleanly: stop its transaction with ``reason``
        (OCPP's StopTransaction reason, e.g. Local), deliver what is queued, then close
        with 1000; at the latest after ``timeout`` real seconds. It opens no new
        connection from here on (a station that is offline or connecting stops at once:
        it cannot deliver). ``done(link)`` is called once it has stopped; what the CSMS
        was not told the end of is added to ``stats.unfinished_transactions``."""
        if self.state == _STOPPED:
            done(self)
            return
        if self._ending is not None:
            self._ending.append(done)  # already ending: one end, told to both
            return
        self._ending = [done]
        if self.behaviour is not None:
            self.behaviour.stop()  # no more sessions: the drivers go home
            self.behaviour = None
        self.station.end_of_run(cast(Reason, reason), self.fleet.now())
        if self.state != _OPEN:
            self.stop()
            return
        self._end_timer = self.fleet.loop.call_later(timeout, self.stop)
        self._pump()

    def _ended(self) -> bool:
        """Ending, and nothing left to deliver: the link may close now."""
        return (
            self._ending is not None and not self.rpc.busy and self.station.transaction_backlog == 0
        )

    def _cancel_timers(self) -> None:
        self._set_timer(None)
        for handle in (self._aux_timer, self._ping_timer):
            if handle is not None:
                handle.cancel()
        self._aux_timer = self._ping_timer = None

    # -- connecting ------------------------------------------------------------

    def _connect(self) -> None:
        if self.state == _STOPPED:
            return
        if self._ending is not None:
            self.stop()  # the run is over: no new connection (issue 17)
            return
        self.state = _CONNECTING
        self._opening = self.fleet.loop.create_task(self._open())

    async def _open(self) -> None:
        try:
            await self._open_connection()
        finally:
            if self._opening is asyncio.current_task():
                self._opening = None

    async def _open_connection(self) -> None:
        if self.state != _CONNECTING:
            return  # stopped before the attempt began
        self._attempt_at = self.fleet.loop.time()
        config = self.station.config
        supervision_url = config.get("SupervisionUrl")
        self.url = f"{supervision_url}/{config.get('BoxIdentifier')}"
        try:
            uri = self.uri = parse_uri(self.url)
        except Exception as exc:
            self._connect_failed("bad url", exc)
            return
        # Security profile, TLS context (cached per setting) and Basic credentials are
        # read from the configuration at every connection, like the URL.
        userinfo = self._userinfo if supervision_url == self._base_url else None
        try:
            context, self._auth = self.fleet.security.prepare(
                uri, self.station.identity, config, userinfo
            )
        except SecurityConfigError as exc:
            # Usually fleet-wide (a ws:// URL for profile 2): one line, not one per station.
            self.fleet.security.warn_once(f"cannot connect: {exc}")
            self._connect_failed("config", exc, quiet=True)
            return
        if self.ssl_context is not None and context is not None:
            context = self.ssl_context
        timeout = float(config.get_int("WebsocketConnectionTimeout"))
        loop = self.fleet.loop
        self._aux_timer = loop.call_later(timeout, self._handshake_timeout)
        if self.cut_mode is not None:
            self._cut_connect()
            return
        self.wire = wire = _Wire(self)
        try:
            # From a --local-ips address: a socket connected by connect_from (not
            # local_addr, which binds to port 0 first).
            where: dict[str, Any] = (
                {"host": uri.host, "port": uri.port}
                if self.local_ip is None
                else {"sock": await connect_from(loop, self.local_ip, uri.host, uri.port)}
            )
            await loop.create_connection(
                lambda: wire,
                **where,
                ssl=context,
                server_hostname=uri.host if context is not None else None,
                ssl_handshake_timeout=timeout if context is not None else None,
            )
        except ssl.SSLError as exc:
            if self.wire is wire:  # not an attempt given up on already (timeout, stop)
                self._tls_failed(exc)
        except OSError as exc:
            if self.wire is wire:
                if isinstance(exc, ConnectionRefusedError):
                    reason = "refused"
                elif context is not None and isinstance(exc, ConnectionResetError):
                    reason = "tls"  # connected, then closed in the TLS handshake
                else:
                    reason = "network"
                self._connect_failed(reason, exc)
        except asyncio.CancelledError:
            pass

    # -- network faults (offline waves) -------------------------------------------

    def cut(self, seconds: float, mode: str = "drop") -> None:
        """Take the CSMS away from this station for ``seconds`` (loop seconds), as
        ``mode`` says (see CUT_MODES). The station notices as a real one would, keeps
        charging offline, and reconnects with its usual backoff once the cut is over.
        A cut during a cut extends it and takes the new mode."""
        if mode not in CUT_MODES:
            raise ValueError(f"unknown cut mode {mode!r} (expected one of {CUT_MODES})")
        if self.state == _STOPPED:
            return
        self.cut_mode = mode
        if self._cut_timer is not None:
            self._cut_timer.cancel()
        self._cut_timer = self.fleet.loop.call_later(seconds, self._cut_over)
        transport = self.transport
        if self.state == _CONNECTING and self.wire is not None:
            # An attempt under way; one not started yet (or hung) sees cut_mode itself.
            self._cut_connect_failed()
        elif self.state == _OPEN and transport is not None:
            if mode == "hang":
                if not isinstance(transport, _BlackHole):
                    transport.pause_reading()
                    self.transport = cast(asyncio.Transport, _BlackHole(transport))
            else:
                transport.abort()  # connection_lost: offline, then retries with backoff

    def _cut_over(self) -> None:
        self._cut_timer = None
        self.cut_mode = None
        transport = self.transport
        if isinstance(transport, _BlackHole):
            # The path is back, the hung TCP connection is not: it gets reset.
            transport.abort()

    def _cut_connect(self) -> None:
        """A connection attempt during a cut; ``hang`` waits for the handshake timeout."""
        if self.cut_mode != "hang":
            self._cut_connect_failed()

    def _cut_connect_failed(self) -> None:
        mode = self.cut_mode
        if mode == "refuse":
            self._connect_failed("refused", ConnectionRefusedError("cut"), quiet=True)
        elif mode == "tls":
            self._connect_failed("tls", ssl.SSLError("cut"), quiet=True)
        elif mode == "hang":
            self._connect_failed("timeout", None, quiet=True)
        else:
            self._connect_failed("network", OSError("network unreachable (cut)"), quiet=True)

    def _tls_failed(self, exc: ssl.SSLError) -> None:
        if (
            isinstance(exc, ssl.SSLCertVerificationError)
            and self.station.config.get_int("SecurityProfile") >= 2
        ):
            self._security_event("InvalidCentralSystemCertificate", exc.verify_message)
        self._connect_failed("tls", exc)

    def _security_event(self, kind: str, tech_info: str | None = None) -> None:
        """Tell the model (it queues a SecurityEventNotification), once per failure streak:
        a station retrying with backoff must not pile up one event per attempt."""
        if self._security_reported != kind:
            self._security_reported = kind
            self.station.security_event(kind, self.fleet.now(), tech_info)

    def _handshake_timeout(self) -> None:
        self._aux_timer = None
        if self.state == _CONNECTING:
            if self.transport is not None:
                self.transport.abort()
            seconds = self.station.config.get_int("WebsocketConnectionTimeout")
            self._connect_failed(
                "timeout", TimeoutError(f"no websocket handshake within {seconds} s")
            )

    def _connect_failed(
        self, reason: str, exc: BaseException | None, *, quiet: bool = False
    ) -> None:
        if self.state != _CONNECTING:
            return
        fleet = self.fleet
        fleet.stats.connect_failures[reason] += 1
        if self.cut_mode is None:  # a simulated network cut is no failure of the CSMS
            fleet.sample(CONNECT, self._attempt_seconds(), 0, _connect_error(reason, exc))
            self._not_connecting()
        if self._attempt == 0 and not quiet:
            log.warning(
                "%s: cannot connect to %s (%s)",
                self.station.identity,
                redact_url(self.url),
                _connect_error(reason, exc),
            )
        self._retry_later()

    def _attempt_seconds(self) -> float:
        return max(0.0, self.fleet.loop.time() - self._attempt_at) if self._attempt_at else 0.0

    def _retry_later(self) -> None:
        if self.state == _STOPPED:
            return
        if self._ending is not None:
            self.stop()  # the run is over: no reconnect (issue 17)
            return
        self.state = _IDLE
        if self.transport is not None:
            self.transport.abort()
        self.transport = None
        self.ws = None
        self.wire = None
        if self._aux_timer is not None:
            self._aux_timer.cancel()
        delay = min(BACKOFF_CAP, BACKOFF_BASE * (2.0**self._attempt)) * self.rng.uniform(0.5, 1.0)
        self._attempt += 1
        self._aux_timer = self.fleet.loop.call_later(delay, self._connect)
        self._pump()  # the model keeps running offline (meter samples, timeouts)

    def _wire_made(self, wire: _Wire, transport: asyncio.Transport) -> None:
        if wire is not self.wire or self.state != _CONNECTING or self.uri is None:
            transport.abort()
            return
        self.transport = transport
        self._rx, self._head_tail = None, b""
        ws = self.ws = ClientProtocol(
            self.uri,
            subprotocols=[SUBPROTOCOL],
            max_size=MAX_MESSAGE,
            logger=CLIENT_LOGGER,  # websockets' DEBUG header dump, minus credentials
        )
        request = ws.connect()
        request.headers["User-Agent"] = "chargepro-fleet"
        # websockets adds Basic auth from a URL's userinfo; the security profile decides.
        if "Authorization" in request.headers:
            del request.headers["Authorization"]
        if self._auth is not None:
            request.headers["Authorization"] = self._auth
            self._auth = None  # made again from the config at the next connection
        ws.send_request(request)
        self._flush()

    def _wire_lost(self, exc: Exception | None) -> None:
        self.wire = None
        if self.state == _STOPPED:
            return
        if self.state == _CONNECTING:
            if isinstance(exc, ssl.SSLError):
                self._tls_failed(exc)
            else:
                self._connect_failed("closed during handshake", exc)
            return
        if self.state == _OPEN:
            self._lost()
            self._went_offline()
            self._retry_later()

    def _lost(self) -> None:
        """An open connection went away without us asking: count why, and fail the CALL
        in flight for Locust (the model keeps a transaction message to send again)."""
        fleet = self.fleet
        ws = self.ws
        reason = self._lost_reason
        self._lost_reason = None
        if reason is None:
            reason = "connection lost"
            if ws is not None:
                sent, rcvd = ws.close_sent, ws.close_rcvd
                if sent is not None and (rcvd is None or not ws.close_rcvd_then_sent):
                    # websockets failed the connection: 1009 for a message over max_size.
                    reason = "message too big" if sent.code == 1009 else "protocol error"
                elif rcvd is not None:
                    reason = "closed by CSMS"
        fleet.stats.disconnects[reason] += 1
        outstanding = self.rpc.outstanding
        if outstanding is not None:
            action, sent_at = outstanding
            seconds = (fleet.now() - sent_at) / fleet.time_compression
            fleet.sample(action, seconds, 0, "connection lost")

    def _went_offline(self) -> None:
        if self.raw_calls:
            self._raw_lost()
        stats = self.fleet.stats
        stats.stations_connected -= 1
        if self._ping_timer is not None:
            self._ping_timer.cancel()
            self._ping_timer = None
        self._awaiting_pong = False  # or the next connection's first ping "times out"
        self.rpc.reset()
        self.station.disconnected(self.fleet.now())

    def _opened(self, response: Response) -> None:
        ws = self.ws
        assert ws is not None
        if ws.handshake_exc is not None or ws.subprotocol != SUBPROTOCOL:
            reason = (
                f"HTTP {response.status_code}"
                if ws.handshake_exc is not None and response.status_code != 101
                else "no ocpp1.6 subprotocol"  # none, or one we did not offer
            )
            log.debug("%s: handshake refused: %s", self.station.identity, reason)
            if self.transport is not None:
                self.transport.abort()
            if ws.handshake_exc is not None and response.status_code in (401, 403):
                self._security_event(
                    "FailedToAuthenticateAtCentralSystem", f"HTTP {response.status_code}"
                )
            self._connect_failed(reason, ws.handshake_exc)
            return
        if self._aux_timer is not None:
            self._aux_timer.cancel()
            self._aux_timer = None
        self.state = _OPEN
        self._attempt = 0
        self._security_reported = None
        # websockets' handshake parser keeps the Response (~1.5 KB of headers) alive in
        # its generator for the whole connection; websockets stands at a frame boundary
        # here (_wire_data), so a fresh parser (frames only, now OPEN) replaces it.
        ws.parser = ws.parse()
        next(ws.parser)
        fleet = self.fleet
        fleet.sample(CONNECT, self._attempt_seconds(), 0, None)
        self._not_overdue()
        stats = fleet.stats
        stats.stations_connected += 1
        if self._ever_connected:
            stats.reconnects += 1
        self._ever_connected = True
        self._schedule_ping()
        self.station.connected(self.fleet.now())
        self._pump()

    # -- keepalive (WebSocketPingInterval) --------------------------------------

    def _schedule_ping(self) -> None:
        interval = self.station.config.get_int("WebSocketPingInterval")
        if interval > 0:
            # Real seconds, or model seconds with the ping on the model clock (Fleet.clocks).
            delay = interval * self.fleet.ping_scale
            self._ping_timer = self.fleet.loop.call_later(delay, self._ping)

    def _ping(self) -> None:
        self._ping_timer = None
        if self.state != _OPEN or self.ws is None:
            return
        if self._awaiting_pong:
            # A whole interval without a pong: the link is dead even if TCP is not.
            self.fleet.stats.connect_failures["ping timeout"] += 1
            self._lost_reason = "ping timeout"
            if self.transport is not None:
                self.transport.abort()
            return
        self._awaiting_pong = True
        self.ws.send_ping(b"")
        self._flush()
        self._schedule_ping()

    # -- bytes in --------------------------------------------------------------

    def _wire_data(self, data: bytes) -> None:
        ws = self.ws
        if ws is None:
            return
        if self._rx is not None:
            self._frames_in(data)
            return
        if ws.state is State.CONNECTING:
            # websockets gets the HTTP response and nothing after it, so that it stands
            # at a frame boundary when the connection opens and _frames_in takes over.
            probe = self._head_tail + data
            end = probe.find(b"\r\n\r\n")
            if end >= 0:
                cut = end + 4 - len(self._head_tail)
                self._ws_receive(ws, data[:cut])
                rest = data[cut:]
                if self.ws is ws and self.state == _OPEN and ws.state is State.OPEN:
                    self._rx = b""
                    if rest:
                        self._frames_in(rest)
                elif rest and self.ws is ws:
                    self._ws_receive(ws, rest)
                return
            self._head_tail = probe[-3:]
        self._ws_receive(ws, data)

    def _frames_in(self, data: bytes) -> None:
        """The hot path for bytes of an open connection: each whole, unmasked, ASCII text
        frame (what a CSMS sends: OCPP-J is JSON text) goes straight to _message;
        every other frame (ping, close, binary, fragments, non-ASCII UTF-8), whole, goes
        to websockets, which stays at a frame boundary and does what RFC 6455 says. It
        saves websockets' generator parser and a Frame object per message."""
        ws = self.ws
        assert ws is not None
        buf = self._rx + data if self._rx else data
        pos, size = 0, len(buf)
        while size - pos >= 2:
            n = buf[pos + 1]
            head = 2
            if n & 0x80 or n == 127:
                break  # masked (a protocol error) or >= 64 KiB: websockets takes over
            if n == 126:
                if size - pos < 4:
                    self._rx = buf[pos:]
                    return
                n = (buf[pos + 2] << 8) | buf[pos + 3]
                head = 4
            end = pos + head + n
            if end > size:
                self._rx = buf[pos:]
                return
            payload = buf[pos + head : end]
            if (
                buf[pos] == _TEXT_FIN
                and not self._fragments
                and ws.state is State.OPEN
                and payload.isascii()
            ):
                if self.state == _OPEN:
                    self._message(payload)
            else:
                self._ws_receive(ws, buf[pos:end])
            pos = end
            if self.ws is not ws or self._rx is None:
                return  # the connection ended while handling (reboot, close, cut)
        if size - pos >= 2:
            self._rx = None  # a frame websockets must judge: it parses from here on
            self._ws_receive(ws, buf[pos:])
        else:
            self._rx = buf[pos:]

    def _ws_receive(self, ws: ClientProtocol, data: bytes) -> None:
        """Bytes websockets parses: the handshake, and frames _frames_in leaves to it."""
        ws.receive_data(data)
        for event in ws.events_received():
            if isinstance(event, Frame):
                self._frame(event)
            elif isinstance(event, Response):
                self._opened(event)
        self._flush()
        if ws.state is State.CLOSED and self.transport is not None:
            self.transport.close()

    def _frame(self, frame: Frame) -> None:
        opcode = frame.opcode
        if opcode is Opcode.TEXT or opcode is Opcode.BINARY or opcode is Opcode.CONT:
            if not frame.fin:
                self._fragments.append(frame.data)
                return
            data = frame.data
            if self._fragments:
                self._fragments.append(data)
                data = b"".join(self._fragments)
                self._fragments.clear()
                opcode = Opcode.TEXT if opcode is Opcode.CONT else opcode
            if self.state != _OPEN:
                return
            if opcode is Opcode.BINARY:
                self._binary(data)
            else:
                self._message(data)
        elif opcode is Opcode.PONG:
            self._awaiting_pong = False

    def _binary(self, data: bytes) -> None:
        """OCPP-J is text only: a binary message is refused, never executed, and counted."""
        event = self.rpc.refuse_binary(data)
        stats = self.fleet.stats
        if isinstance(event, Rejected):
            stats.inbound_errors[(event.action, event.code)] += 1
            self._write(event.reply)
        else:
            stats.ignored[event.reason] += 1

    def _message(self, data: bytes) -> None:
        if self.raw_calls and self._raw_reply(data):
            return  # the answer to a raw frame (send_raw), not the RpcEndpoint's business
        fleet = self.fleet
        stats = fleet.stats
        now = fleet.now()
        event = self.rpc.receive(data, now)
        station = self.station
        if isinstance(event, IncomingCall):
            action = event.action
            stats.messages[(action, "received", "csms")] += 1
            if station.boot_status == "Rejected":
                # OCPP 1.6 4.2: a rejected station sends nothing until its next boot.
                stats.ignored["call while boot rejected"] += 1
            else:
                self._write(self._answer(event, now))
        elif isinstance(event, Answered):
            action = event.action
            stats.messages[(action, "received", "station")] += 1
            round_trip = event.round_trip
            if fleet.time_compression != 1.0:
                round_trip /= fleet.time_compression  # real seconds
            stats.round_trip[action].observe(round_trip)
            before = station.boot_status
            station.on_answer(event.payload, now)
            if action == "BootNotification":
                self._boot_answered(before)
            fleet.sample(action, round_trip, len(data), _rejection(action, event.payload))
        elif isinstance(event, Failed):
            self._failed(event, now)
        elif isinstance(event, Rejected):
            # An action OCPP does not define is any string the CSMS likes: one label.
            label = "unknown" if event.code == errors.NOT_IMPLEMENTED else event.action
            stats.inbound_errors[(label, event.code)] += 1
            if event.schema:
                stats.schema_violations[(event.action, "received")] += 1
            self._write(event.reply)
        elif isinstance(event, Dropped):
            stats.ignored[event.reason] += 1
        self._pump()

    def _answer(self, event: IncomingCall, now: float) -> bytes:
        """The one answer to a CSMS CALL: a CALLRESULT, or a CALLERROR with OCPP's code."""
        stats = self.fleet.stats
        action = event.action
        stats.messages[(action, "sent", "csms")] += 1
        try:
            result = self.station.handle_call(action, event.payload, now)
        except OcppError as exc:
            stats.csms_calls[(action, exc.code)] += 1
            return self.rpc.reply_error(event, exc)
        except Exception as exc:  # a model bug must not kill the station
            log.exception("%s: %s handler failed", self.station.identity, action)
            return self._internal_error(event, type(exc).__name__)
        try:
            out = self.rpc.reply(event, result)
        except OcppError as exc:
            # Our own answer broke the schema: our bug, not the CSMS's.
            stats.schema_violations[(action, "sent")] += 1
            log.error("%s: invalid %s answer: %s", self.station.identity, action, exc)
            return self._internal_error(event, f"invalid answer: {exc.description}")
        stats.csms_calls[(action, _outcome(result))] += 1
        return out

    def _internal_error(self, event: IncomingCall, description: str) -> bytes:
        self.fleet.stats.csms_calls[(event.action, errors.INTERNAL_ERROR)] += 1
        return self.rpc.reply_error(event, OcppError(errors.INTERNAL_ERROR, description))

    def _failed(self, event: Failed, now: float) -> None:
        stats = self.fleet.stats
        if event.timeout:
            stats.timeouts[event.action] += 1
            error = "timeout"
        else:
            stats.messages[(event.action, "received", "station")] += 1
            stats.callerrors[(event.action, event.code)] += 1
            if event.schema:
                stats.schema_violations[(event.action, "received")] += 1
            error = f"CALLERROR {event.code}"
        round_trip = event.round_trip / self.fleet.time_compression  # real seconds
        stats.round_trip[event.action].observe(round_trip)
        self.station.on_failure(event.timeout, now)
        self.fleet.sample(event.action, round_trip, 0, error)

    def _boot_answered(self, before: str | None) -> None:
        after = self.station.boot_status
        stats = self.fleet.stats
        if self._boot_status is not None:
            stats.boot_status[self._boot_status] -= 1
        if after is not None:
            stats.boot_status[after] += 1
        self._boot_status = after
        if after == "Accepted" and before != "Accepted" and self.behaviour is not None:
            self.behaviour.booted()

    # -- bytes out -------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        """Send one OCPP-J message as one text frame, framed here: websockets'
        send_text costs ~3 us more and draws each mask from os.urandom. The mask is
        there to stop a hostile page's script from steering a proxy's cache (RFC 6455
        10.3); a simulator's masks only need to vary, so a PRNG draws them."""
        ws, transport = self.ws, self.transport
        if ws is None or ws.state is not State.OPEN or transport is None:
            return
        if ws.writes:
            self._flush()  # a pong or close websockets queued goes first
        n = len(data)
        mask = _MASKS.getrandbits(32).to_bytes(4, "big")
        if n < 126:
            head = bytes((_TEXT_FIN, 0x80 | n))
        elif n < 65536:
            head = struct.pack("!BBH", _TEXT_FIN, 0xFE, n)
        else:
            head = struct.pack("!BBQ", _TEXT_FIN, 0xFF, n)
        transport.write(head + mask + apply_mask(data, mask))

    # -- raw frames (fleet.scenarios.misbehave) ----------------------------------

    def send_raw(
        self, data: bytes, unique_id: str | None = None, on_reply: RawReply | None = None
    ) -> bool:
        """Send ``data`` as one text frame, as is, outside the RpcEndpoint: its ordering
        and its one outstanding CALL are untouched (the misbehaving-station mode sends
        invalid CALLs this way). A CALLRESULT / CALLERROR with ``unique_id`` then goes to
        ``on_reply(unique_id, frame)``, once, instead of the endpoint; if the connection
        ends first, to ``on_reply(unique_id, reason)``: ``"closed"`` (the CSMS or the
        network closed it) or ``"abandoned"`` (the station went offline itself).
        Returns False, sending nothing, unless the websocket is open."""
        ws = self.ws
        if self.state != _OPEN or ws is None or ws.state is not State.OPEN:
            return False
        if unique_id is not None and on_reply is not None:
            self.raw_calls[unique_id] = on_reply
        ws.send_text(data)
        self._flush()
        return True

    def _raw_reply(self, data: bytes) -> bool:
        """Hand a reply to a raw frame to its callback; False for anything else."""
        try:
            frame = orjson.loads(data)
        except orjson.JSONDecodeError:
            return False
        if not isinstance(frame, list) or len(frame) < 3 or frame[0] not in (3, 4):
            return False
        unique_id = frame[1]
        on_reply = self.raw_calls.pop(unique_id, None) if isinstance(unique_id, str) else None
        if on_reply is None:
            return False
        on_reply(unique_id, frame)
        return True

    def _raw_lost(self) -> None:
        calls, self.raw_calls = self.raw_calls, {}
        reason = "closed" if self.state == _OPEN and self.cut_mode is None else "abandoned"
        for unique_id, on_reply in calls.items():
            on_reply(unique_id, reason)

    def _flush(self) -> None:
        ws, transport = self.ws, self.transport
        if ws is None or transport is None:
            return
        for chunk in ws.data_to_send():
            if chunk:
                transport.write(chunk)
            elif transport.can_write_eof():
                transport.write_eof()

    # -- the model's clock -----------------------------------------------------

    def _pump(self) -> None:
        """Let the model act: time-driven work, then as many CALLs as it may send."""
        if self.state == _STOPPED:
            return
        fleet = self.fleet
        now = fleet.now()
        station = self.station
        station.advance(now)
        rpc = self.rpc
        if self.state == _OPEN:
            failed = rpc.check_timeout(now)
            if failed is not None:
                self._failed(failed, now)
            if not rpc.busy:
                msg = station.next_message(now)
                if msg is not None:
                    self.fleet.stats.messages[(msg.action, "sent", "station")] += 1
                    try:
                        # The model's own payloads: schema-checked by its tests (issue 7),
                        # and here when the fleet says so (the engine tests do).
                        self._write(rpc.call(msg.action, msg.payload, now, check=self._check_own))
                    except OcppError:
                        # Our own payload broke the schema: a model bug; fail it loudly.
                        self.fleet.stats.schema_violations[(msg.action, "sent")] += 1
                        log.exception("%s: invalid %s", station.identity, msg.action)
                        station.on_failure(False, now)
        while station.effects:
            self._effect(station.effects.popleft())
            if self.state == _REBOOTING:
                self._queue_figures()
                return
        self._queue_figures()
        if self._ending is not None and self._ended():
            self.stop()
            return
        wake = station.next_wakeup()
        deadline = rpc.deadline
        if deadline is not None and (wake is None or deadline < wake):
            wake = deadline
        self._set_timer(wake)

    def _queue_figures(self) -> None:
        """Keep the fleet's offline-queue figures current by this station's changes.

        Every change to a station's outbox happens in a model step, and every model step
        ends in _pump: so the fleet-wide sums are maintained here, per change, instead of
        walked over every station periodically (an O(stations) pause each second: ~0.1 s
        at 100,000 stations, issue 16). An empty outbox with nothing in flight and
        nothing counted (almost every station, almost always) costs two reads."""
        outbox = self.station.outbox
        if outbox.inflight is not None or len(outbox) or self._backlog:
            backlog = outbox.backlog
            if backlog != self._backlog:
                self.fleet.stats.offline_queue_depth += backlog - self._backlog
                self._backlog = backlog
        delivered = outbox.offline_delivered
        if delivered != self._delivered:
            self.fleet.stats.offline_messages_delivered += delivered - self._delivered
            self._delivered = delivered

    # -- effects: what the model asks of the engine --------------------------------

    def _effect(self, effect: object) -> None:
        if isinstance(effect, Reboot):
            self._go_dark(abort=effect.abrupt)
            self.state = _REBOOTING
            # Model seconds (a power cut's duration, reboot_seconds), like every
            # scenario time: on a compressed clock the unit is dark for fewer real ones.
            dark = self.fleet.real(effect.seconds)
            self._aux_timer = self.fleet.loop.call_later(dark, self._power_back)
        elif isinstance(effect, Reconnect):
            self._go_dark()
            self._attempt = 0
            self._connect()
        elif isinstance(effect, Standalone):
            # No supervision link until the model's next reboot (a Reboot effect); the
            # model keeps running (local charging), woken by its timer and hardware().
            self._go_dark()
            self.state = _STANDALONE
        else:
            # File transfers and anything else that moves bytes outside OCPP.
            self.fleet.run_effect(self, effect)

    def _go_dark(self, *, abort: bool = False) -> None:
        """Close the websocket on purpose (close code 1000) and stop all timers;
        ``abort`` (a power cut): drop the TCP connection without a close frame."""
        was_open = self.state == _OPEN
        self._cancel_timers()
        ws, transport = self.ws, self.transport
        self.state = _IDLE  # connection_lost of the old transport is then ignored
        if abort:
            if transport is not None:
                transport.abort()
        elif was_open and ws is not None and transport is not None:
            try:
                ws.send_close(1000)
                self._flush()
            except Exception:
                pass
        if transport is not None:
            transport.close()
        self.ws = self.transport = self.wire = None
        if was_open:
            self._went_offline()

    def _power_back(self) -> None:
        self._aux_timer = None
        if self.state != _REBOOTING:
            return
        self.station.rebooted(self.fleet.now())
        self.state = _IDLE
        self._pump()  # the boot's effects first: a standalone unit opens no link
        if self.state == _IDLE:
            self._attempt = 0
            self._connect()

    def _set_timer(self, wake: float | None) -> None:
        slot = self._timer
        if wake is None:
            if slot is not None:
                del slot[self]
                self._timer = None
            return
        fleet = self.fleet
        if fleet.time_compression == 1.0:
            loop_at = wake - fleet.clock_offset
        else:
            loop_at = fleet.loop_time(wake)
        # Timer slack: wake-ups land on a TIMER_SLACK grid (rounded up), so stations due
        # within the same few ms share one loop wake-up (one epoll return, one GIL
        # hand-over) instead of one each: a third of an exchange's CPU (issue 7).
        slack = TIMER_SLACK / fleet.time_compression  # in loop (real) seconds
        slacked = -(-loop_at // slack) * slack
        loop_at = slacked if slacked >= loop_at else slacked + slack  # never early
        if slot is not None:
            if self._timer_at == loop_at:
                return
            # Earlier or later, re-arm: an earlier one left in place (the RPC deadline of
            # a CALL answered since) would wake the station for nothing (issue 7).
            del slot[self]
        self._timer_at = loop_at
        self._timer = fleet.wakeups.arm(self, loop_at)

    # -- hardware events from scenarios -----------------------------------------

    def hardware(self, event: Callable[[float], None]) -> None:
        """Apply a hardware event (``station.plug_in`` and the like) now, then act on it."""
        if self.state == _STOPPED:
            return
        event(self.fleet.now())
        self._pump()

    # -- Observer: what the model reports ---------------------------------------

    def status_changed(self, connector_id: int, old: str, new: str) -> None:
        connectors = self.fleet.stats.connectors
        connectors[(connector_id, old)] -= 1
        connectors[(connector_id, new)] += 1

    def transaction_started(self, connector_id: int, id_tag: str) -> None:
        stats = self.fleet.stats
        stats.transactions_active += 1
        stats.transactions_started += 1

    def transaction_stopped(self, connector_id: int, reason: str, energy_wh: float) -> None:
        stats = self.fleet.stats
        stats.transactions_active -= 1
        stats.transactions_stopped += 1
        if self.behaviour is not None:
            self.behaviour.transaction_stopped(reason)

    def energy_delivered(self, wh: float) -> None:
        self.fleet.stats.energy_wh += wh

    def remote_start(self, connector_id: int, id_tag: str) -> None:
        if self.behaviour is not None:
            self.behaviour.remote_start(id_tag)

    def message_dropped(self, action: str) -> None:
        self.fleet.stats.transaction_messages_dropped[action] += 1

    def authorization(self, id_tag: str, status: str) -> None:
        if self.behaviour is not None:
            self.behaviour.authorization(id_tag, status)
