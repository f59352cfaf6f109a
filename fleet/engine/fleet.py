"""The stations of one process, their shared clock, counters and sample outlet."""

from __future__ import annotations

import asyncio
import gc
import itertools
import os
import random
import ssl
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from fleet.engine.limits import LOCAL_IPS_ENV, parse_local_ips
from fleet.engine.link import StationLink, Wakeups
from fleet.engine.security import Security, TlsSettings
from fleet.engine.transfer import TransferRunner
from fleet.metrics.stats import FleetStats
from fleet.model.features.firmware import Download, Upload
from fleet.model.rng import StationRandom
from fleet.model.station import Station

VALIDATE_OUTGOING_ENV = "FLEET_VALIDATE_OUTGOING"
"""Set to 1 (tests/engine and tests/scenarios do) to schema-check every CALL the
stations send, which the hot path otherwise leaves to the model's tests."""

FREEZE_EVERY = 500
"""Fleet.add moves the process's objects to the GC's permanent generation (gc.freeze)
every this many stations."""

Sample = tuple[str, float, int, str | None]
"""(action, round trip in seconds, response size in bytes, error or None)."""

CLOCKS = {"heartbeat": "real", "meter_values": "model", "ping": "real"}
"""Which clock the protocol's own timers run on when the model clock is compressed.

``heartbeat`` (HeartbeatInterval, and the retry interval of a Pending/Rejected boot) and
``ping`` (WebSocketPingInterval) keep a connection alive: a CSMS sees one heartbeat per
interval per idle station in production, whatever the sessions do, so they keep real
time. ``meter_values`` (MeterValueSampleInterval, disconnectedMeterValueSampleInterval)
belong to a session: on the model clock every replayed session carries the samples it
would in production, only sooner. ``model`` puts a timer on the compressed clock,
``real`` keeps it in real seconds (profiles: ``sessions.clocks``)."""


class Fleet:
    """Owns every :class:`StationLink` on one event loop; lives on the loop thread.

    Each link gets the fleet as its :class:`~fleet.engine.link.LinkOwner` (and the
    transfer runner as its :class:`~fleet.engine.transfer.TransferOwner`): they know
    the few things of it they use, and import nothing of this module.

    Samples of station-initiated exchanges go to ``samples``, a deque that another
    thread (Locust's greenlet) may drain: deque appends and pops are thread-safe.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        *,
        stats: FleetStats | None = None,
        validate: bool = True,
        keep_samples: bool = True,
        seed: int | None = None,
        ssl_context: ssl.SSLContext | None = None,
        tls: TlsSettings | None = None,
        time_compression: float = 1.0,
        local_ips: list[str] | None = None,
        validate_outgoing: bool | None = None,
        connect_grace: float = 10.0,
        clocks: Mapping[str, str] | None = None,
        message_ids: str = "unique",
    ) -> None:
        """``time_compression``: the model's clock runs this many times faster than the
        loop's (144: a day in ten minutes). Meter energy, sample intervals, heartbeats and
        scenario schedules are in model time; network timeouts (the RPC timeout, scaled
        here so it stays WebsocketRequestTimeout real seconds), round trips reported to
        Locust and Prometheus, pings and reconnect backoff stay in real seconds.

        ``connect_grace``: real seconds a station may take to connect after it starts;
        one still not connected then, or whose attempt failed before, counts in
        ``stats.stations_never_connected`` until it connects (a headless run fails on
        it: the CSMS was not exercised).

        ``tls``: CA store, client certificate(s) and the insecure opt-out for every
        station's wss:// connections (see :mod:`fleet.engine.security`). ``ssl_context``,
        if given, is used as is for every TLS connection instead.

        ``validate`` checks what the CSMS sends and the stations' answers. The CALLs the
        stations send are typed and schema-checked by the model's tests, so they are
        checked only with ``validate_outgoing`` (default: the environment variable
        FLEET_VALIDATE_OUTGOING=1), a debugging aid the engine tests switch on.
        ``clocks``: timer -> ``"real"`` or ``"model"``, over :data:`CLOCKS`."""
        self.loop = loop
        self.stats = stats if stats is not None else FleetStats()
        self.validate = validate
        if validate_outgoing is None:
            validate_outgoing = os.environ.get(VALIDATE_OUTGOING_ENV, "") not in ("", "0")
        self.validate_outgoing = validate and validate_outgoing
        # How stations number their CALLs (fleet.protocol.rpc.MESSAGE_IDS; a profile's
        # station.message_ids).
        self.message_ids = message_ids
        self.samples: deque[Sample] | None = deque() if keep_samples else None
        # Where samples go instead, if set (on the loop thread: Locust's batches, see
        # fleet.locust.batch).
        self.on_sample: Callable[[str, float, int, str | None], None] | None = None
        self.rng = random.Random(seed)
        self.ssl_context = ssl_context
        self.tls = tls if tls is not None else TlsSettings()
        # One SSLContext per distinct setting (server-only; each client certificate),
        # built at the first connection that needs it and shared by all stations.
        self.security = Security(self.tls, ssl_context=ssl_context)
        self.links: dict[str, StationLink] = {}
        self.wakeups = Wakeups(loop)  # every station's model wake-up (StationLink._set_timer)
        self.connect_grace = float(connect_grace)
        # Run-wide knobs from the command line / web UI for the scenario directors
        # (e.g. "offline_share", "fault_rate"); None or absent: the profile's value.
        self.overrides: dict[str, Any] = {}
        # Made by run_effect at the first file transfer.
        self.transfer_runner: TransferRunner | None = None
        # The model works in Unix time (timestamps in messages); timers use the
        # loop's monotonic clock. One offset, taken once, maps between them (factor 1);
        # compressed, model time = t0 + (loop time - l0) * factor.
        if not time_compression > 0:
            raise ValueError(f"time_compression must be > 0, got {time_compression!r}")
        self.time_compression = float(time_compression)
        self.t0 = time.time()
        self.l0 = loop.time()
        self.clock_offset = self.t0 - self.l0
        if self.time_compression != 1.0:
            self.now = self._compressed_now  # type: ignore[method-assign]
        self.clocks = {**CLOCKS, **(clocks or {})}
        unknown = set(self.clocks) - set(CLOCKS) or set(self.clocks.values()) - {"real", "model"}
        if unknown:
            raise ValueError(f"clocks: unknown timer or clock {sorted(unknown)!r}")
        # Configured seconds -> seconds on the clock each timer is scheduled on (the model
        # clock for heartbeats and samples, the loop's real clock for pings).
        real = {name: clock == "real" for name, clock in self.clocks.items()}
        self.heartbeat_scale = self.time_compression if real["heartbeat"] else 1.0
        self.sample_scale = self.time_compression if real["meter_values"] else 1.0
        self.ping_scale = 1.0 if real["ping"] else 1.0 / self.time_compression
        # Source addresses for the stations' connections, one per station in turn
        # (``fleet run --local-ips``, passed to the Locust processes as FLEET_LOCAL_IPS):
        # past the ~28,000 ephemeral ports of one source address (see limits).
        if local_ips is None and os.environ.get(LOCAL_IPS_ENV):
            local_ips = parse_local_ips(os.environ[LOCAL_IPS_ENV])
        self._sources = itertools.cycle(local_ips) if local_ips else None
        # What exists before the first station is the program itself (in a Locust
        # worker: Locust, gevent, Flask...): out of the cyclic GC's sight too (see add).
        gc.freeze()

    def now(self) -> float:
        """Unix time (model time), read from the loop's monotonic clock."""
        return self.loop.time() + self.clock_offset

    def _compressed_now(self) -> float:
        return self.t0 + (self.loop.time() - self.l0) * self.time_compression

    def loop_time(self, model_time: float) -> float:
        """The loop time at which the model clock reads ``model_time``."""
        if self.time_compression == 1.0:
            return model_time - self.clock_offset
        return self.l0 + (model_time - self.t0) / self.time_compression

    def real(self, model_seconds: float) -> float:
        """A model duration in real (loop) seconds."""
        return model_seconds / self.time_compression

    def call_at_model(self, model_time: float, fn: Callable[[], Any]) -> asyncio.TimerHandle:
        """Run ``fn`` on the loop when the model clock reads ``model_time``."""
        return self.loop.call_at(self.loop_time(model_time), fn)

    def sample(self, action: str, seconds: float, size: int, error: str | None) -> None:
        """``seconds``: the round trip in real seconds (see StationLink, which converts)."""
        if self.on_sample is not None:
            self.on_sample(action, seconds, size, error)
        elif self.samples is not None:
            self.samples.append((action, seconds, size, error))

    def add(
        self,
        station: Station,
        url: str,
        behaviour_factory: Callable[[StationLink], Any] | None = None,
    ) -> StationLink:
        """Bring a station online (call on the loop thread).

        ``url`` is the CSMS base URL; the station connects to ``<url>/<station id>``.
        """
        if station.identity in self.links:
            raise ValueError(f"station {station.identity!r} is already running")
        if (station.heartbeat_scale, station.sample_scale) != (
            self.heartbeat_scale,
            self.sample_scale,
        ):
            station.scale_timers(self.heartbeat_scale, self.sample_scale, self.now())
        link = StationLink(
            self,
            station,
            url,
            ssl_context=self.ssl_context,
            rng=StationRandom(self.rng.getrandbits(64)),  # 48 bytes, not 2.9 KB
            local_ip=next(self._sources) if self._sources is not None else None,
        )
        if behaviour_factory is not None:
            link.behaviour = behaviour_factory(link)
        self.links[station.identity] = link
        link.start()
        if len(self.links) % FREEZE_EVERY == 0:
            # Stations live as long as the run: take everything allocated so far out of
            # the cyclic GC's sight. Without it, each full collection walks every
            # station's objects with the GIL held: at 10,000 stations 40% of a boot
            # storm's CPU and pauses of 0.3 s that the gevent hub (Locust's heartbeats)
            # waits out too (issue 7). Garbage without cycles is still freed at once.
            gc.freeze()
        return link

    def remove(self, identity: str) -> None:
        """Take a station offline cleanly (call on the loop thread)."""
        link = self.links.get(identity)
        if link is not None:
            link.stop()

    def run_effect(self, link: StationLink, effect: object) -> None:
        """Carry out an effect the link does not handle itself (file transfers).

        Upload / Download go to ``transfer_runner`` (a
        :class:`fleet.engine.transfer.TransferRunner`, made at the first transfer; set
        one beforehand to change its pool size, timeouts, TLS context or HTTP method).
        """
        if not isinstance(effect, Upload | Download):
            raise NotImplementedError(f"no runner for {type(effect).__name__}")
        if self.transfer_runner is None:
            self.transfer_runner = TransferRunner(self)
        self.transfer_runner.submit(link, effect)

    def forget(self, link: StationLink) -> None:
        if self.links.get(link.station.identity) is link:
            del self.links[link.station.identity]

    def end_all(self, reason: str, timeout: float, done: Callable[[], None] | None = None) -> None:
        """End the run for every station cleanly (StationLink.end): each stops its
        transaction with ``reason``, delivers its queue within ``timeout`` real seconds
        and closes with 1000; none opens a new connection. ``done()`` once all have."""
        links = list(self.links.values())
        left = [len(links)]

        def one_done(_link: StationLink) -> None:
            left[0] -= 1
            if left[0] == 0 and done is not None:
                done()

        if not links and done is not None:
            done()
        for link in links:
            link.end(reason, timeout, one_done)

    def stop_all(self) -> None:
        for link in list(self.links.values()):
            link.stop()
        if self.transfer_runner is not None:
            # Its threads are real OS threads: let them exit; a later run makes a new one.
            self.transfer_runner.close()
            self.transfer_runner = None
