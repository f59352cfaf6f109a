"""Between Locust (gevent) and the fleet's event loop (asyncio, its own OS thread).

One :class:`Bridge` per Locust process, created by the first user that starts, so
after ``--processes`` has forked. Locust to loop: ``loop.call_soon_threadsafe``.
Loop to Locust: the loop thread aggregates samples into batches
(:mod:`fleet.locust.batch`) handed over through a deque (thread-safe appends) that a
greenlet merges into Locust's statistics, which are not thread-safe and must be
touched on the gevent hub only. Nothing in the loop thread touches a gevent object.
"""

from __future__ import annotations

import logging
import random
import time
from typing import Any

import gevent
import gevent.lock
from locust import events
from locust.env import Environment
from locust.runners import WorkerRunner

from fleet.engine.fleet import Fleet
from fleet.engine.link import CONNECT
from fleet.engine.loop import LoopThread
from fleet.engine.security import TlsSettings
from fleet.locust import batch, current, distributed, misbehave
from fleet.metrics.stats import FleetStats
from fleet.model.config import ConfigStore
from fleet.model.records import BootInfo
from fleet.model.station import Station
from fleet.scenarios import behaviour, network, power, storms
from fleet.scenarios.profile import Profile

log = logging.getLogger("fleet.locust")

REQUEST_TYPE = "OCPP"
CONNECT_TYPE = "WS"
"""Connection attempts (TCP, TLS, websocket handshake) are Locust requests ``WS connect``:
a failed one names the HTTP status or socket error, a successful one its handshake time.
They are rare (one per connection), so the cost is nothing beside the exchanges."""
DRAIN_EVERY = 1.0
"""Seconds between two merges of the loop thread's batches into Locust's statistics
(the batches come every ``batch.HAND_OVER_EVERY``; Locust reports every 2-3 s)."""
LAST_BATCH_WAIT = 1.0
"""At ``test_stop``, at most this long for the loop thread's last batch."""
_BUILDING = gevent.lock.Semaphore()  # one Bridge built at a time (see Bridge.get)


class OcppFailure(Exception):
    """How a failed exchange shows in Locust's failure table (grouped by message)."""


class ConnectFailure(Exception):
    """How a failed connection attempt shows there: the HTTP status or socket error."""


class Bridge:
    """The fleet of one Locust process (published in :mod:`fleet.locust.current`)."""

    def __init__(self, environment: Environment) -> None:
        self.env = environment
        opts = environment.parsed_options
        self.key = options_key(opts)
        # On a Locust worker, the master's copy (the file may not exist on this host).
        self.profile: Profile = distributed.profile(
            environment, getattr(opts, "fleet_profile", None) or "demo"
        )
        self.prefix: str = getattr(opts, "fleet_station_prefix", None) or "CP"
        seed = _int_or_none(getattr(opts, "fleet_seed", None))
        compression = _float_or_none(getattr(opts, "fleet_time_compression", None))
        self.time_compression = compression or self.profile.time_compression
        # Knobs for the fleet-wide directors (offline waves, fault storms): None keeps
        # the profile's value. The directors read them from here.
        self.overrides: dict[str, float | None] = {
            "offline_share": _float_or_none(getattr(opts, "fleet_offline_share", None)),
            "fault_rate": _float_or_none(getattr(opts, "fleet_fault_rate", None)),
        }
        runner = environment.runner
        self.worker_index = runner.worker_index if isinstance(runner, WorkerRunner) else None
        self.rng = random.Random(
            None if seed is None else (seed, self.worker_index or 0).__hash__()
        )
        self.stats = FleetStats()
        self.thread = LoopThread(self.stats)  # its lag probe writes into our stats
        self.fleet = Fleet(
            self.thread.loop,
            stats=self.stats,
            validate=not getattr(opts, "fleet_no_validate", False),
            seed=self.rng.getrandbits(64),
            tls=tls_settings(opts),
            time_compression=self.time_compression,
            connect_grace=_float_or_none(getattr(opts, "fleet_connect_grace", None)) or 10.0,
            clocks=self.profile.sessions.clocks,
        )
        self.fleet.overrides.update(self.overrides)
        self.batcher = batch.Batcher()
        self.fleet.on_sample = self.batcher.add
        self.thread.start()
        self.thread.call(self.batcher.start, self.thread.loop)
        # Fleet-wide scenario directors (fault storms, grid outages, offline waves) run
        # on the loop.
        self.thread.call(storms.start, self.fleet, self.profile.faults, self.fleet.rng)
        self.thread.call(power.start, self.fleet, self.profile.power, self.fleet.rng)
        self.thread.call(network.start, self.fleet, self.profile.network, self.fleet.rng)
        self.misbehave = misbehave.attach(self)  # misbehaving stations, if the profile says
        # Station numbers, unique in the whole run (distributed.py: on a worker, the
        # master hands them out); identity -> number of the stations running here.
        self.numbers = distributed.numbers(environment)
        if isinstance(self.numbers, distributed.WorkerSide):
            self.numbers.forget = self._forget
        self._numbers: dict[str, int] = {}
        # Stations a shape took away (powered off), by id: the same station comes back.
        self._parked: dict[str, Station] = {}
        self._failures: dict[str, OcppFailure] = {}
        self._closed = False
        self._drainer = gevent.spawn(self._drain)
        events.test_stop.add_listener(self._on_test_stop)
        events.quitting.add_listener(self._on_quitting)

    @classmethod
    def get(cls, environment: Environment) -> Bridge:
        """This process's fleet; a new one when the web UI's start form changed the
        profile or a knob since the last run (and no station of the old one runs).

        Many users start at once and building a fleet may wait (a worker asks the
        master for the profile): one builds it under the lock while the others wait,
        then find it published; the old fleet is closed only after that, because its
        close waits too."""
        with _BUILDING:
            old = current.running()
            if isinstance(old, Bridge) and old.env is environment:
                if old.key == options_key(environment.parsed_options) or old._numbers:
                    return old
            else:
                old = None
            bridge = cls(environment)
            current.publish(bridge)
        if old is not None:
            old.close()
        return bridge

    # -- stations --------------------------------------------------------------

    def next_identity(self) -> str:
        """``{prefix}{number:05d}``, the number unique in the whole run (on a Locust
        worker it comes from the master: see distributed.py; the user's greenlet may
        wait briefly for it). The lowest free number goes first, and the numbers of
        stations taken offline are reused, so a station that comes back (a boot storm
        after an outage, a ramp down and up) is the same station id, on the same
        process as its parked state."""
        number = self.numbers.take()
        identity = f"{self.prefix}{number:05d}"
        self._numbers[identity] = number
        return identity

    def add_station(self, identity: str, host: str) -> None:
        """Bring a station online; it connects to ``<host>/<identity>``."""
        self.thread.call(self._add, identity, host, self._numbers.get(identity))

    def _add(self, identity: str, url: str, number: int | None = None) -> None:
        """On the loop thread: build the station from the profile and bring it up."""
        profile = self.profile
        try:
            parked = self._parked.pop(identity, None)
            if parked is not None:
                # Power is back (a boot storm after an outage, a ramp back up): the same
                # station reboots with what survives a power cycle (configuration, energy
                # register, queued transaction messages, a transaction in progress).
                parked.rebooted(self.fleet.now())
                self.fleet.add(parked, url, behaviour.factory(profile, number=number))
                return
            model, firmware, config = profile.station_setup(number or 1)
            station = Station(
                identity,
                self.fleet.now(),
                config=ConfigStore(config),
                ev=profile.pick_ev(self.fleet.rng),
                boot_info=BootInfo(model=model, serial=identity[-25:], firmware=firmware),
            )
            station.reboot_seconds = profile.reboot_seconds
            station.reject_number_phases = profile.reject_number_phases
            station.enabled_faults = profile.faults.enabled if profile.faults else frozenset()
            network.configure(station, profile.network)
            self.fleet.add(station, url, behaviour.factory(profile, number=number))
        except Exception:
            log.exception("%s: could not start", identity)

    def remove_station(self, identity: str) -> None:
        number = self._numbers.pop(identity, None)
        self.thread.call(self._remove, identity)
        if number is not None:
            self.numbers.release(number)

    def _forget(self, numbers: list[int]) -> None:
        """The master gave these numbers to another worker: their parked stations
        here must not come back (the station now lives there)."""
        identities = [f"{self.prefix}{number:05d}" for number in numbers]
        self.thread.call(self._drop_parked, identities)

    def _drop_parked(self, identities: list[str]) -> None:
        for identity in identities:
            self._parked.pop(identity, None)

    def _remove(self, identity: str) -> None:
        """On the loop thread: power the station off (kept, to come back the same)."""
        link = self.fleet.links.get(identity)
        self.fleet.remove(identity)
        if link is not None:
            self._parked[identity] = link.station

    # -- samples into Locust -----------------------------------------------------

    def _drain(self) -> None:
        while True:
            self.drain()
            gevent.sleep(DRAIN_EVERY)

    def drain(self) -> bool:
        """Merge the batches handed over so far into Locust's statistics (per sample
        when other listeners want every request event); True when the last batch
        (:meth:`_last_batch`) was among them."""
        self.batcher.raw = not batch.only_locust_stats(self.env.events.request._handlers)
        ready = self.batcher.ready
        last = False
        while ready:
            item = ready.popleft()
            if item is None:
                last = True
            elif len(item) == 2:
                when, batched = item
                batch.merge(self.env.stats, when, batched, _method, self._exception)
            else:
                self._fire(*item)
        return last

    def _exception(self, action: str, error: str) -> Exception:
        """One exception object per error text, as Locust's failures table groups them."""
        exc = self._failures.get(error)
        if exc is None:
            kind = ConnectFailure if action == CONNECT else OcppFailure
            exc = self._failures[error] = kind(error)
        return exc

    def _fire(self, action: str, seconds: float, size: int, error: str | None) -> None:
        self.env.events.request.fire(
            request_type=_method(action),
            name=action,
            response_time=seconds * 1000.0,
            response_length=size,
            exception=None if error is None else self._exception(action, error),
            context={},
        )

    def _last_batch(self) -> None:
        """The loop thread's open batch now, then the marker :meth:`drain` looks for;
        wait for both (bounded), so the run's last exchanges are in the final stats."""
        ready = self.batcher.ready

        def hand_over() -> None:
            self.batcher.hand_over()
            ready.append(None)

        self.thread.call(hand_over)
        deadline = time.monotonic() + LAST_BATCH_WAIT
        while not self.drain() and time.monotonic() < deadline:
            gevent.sleep(0.02)

    # -- the end ---------------------------------------------------------------

    def _on_test_stop(self, **_: Any) -> None:
        self.thread.call(self.fleet.stop_all)
        self._last_batch()

    def _on_quitting(self, **_: Any) -> None:
        self.thread.call(self.fleet.stop_all)
        gevent.sleep(0.2)  # let close frames go out
        self._drainer.kill(block=False)
        self.thread.stop()

    def close(self) -> None:
        """Shut this fleet down for good (a new one replaces it)."""
        if self._closed:
            return
        self._closed = True
        events.test_stop.remove_listener(self._on_test_stop)
        events.quitting.remove_listener(self._on_quitting)
        self._on_quitting()


def _method(action: str) -> str:
    return CONNECT_TYPE if action == CONNECT else REQUEST_TYPE


def _int_or_none(value: Any) -> int | None:
    """Options from the web UI's start form arrive as strings (or empty)."""
    if value is None or value == "":
        return None
    return int(value)


def _float_or_none(value: Any) -> float | None:
    if value is None or value == "":
        return None
    number = float(value)
    return None if number < 0 else number


def options_key(opts: Any) -> tuple[Any, ...]:
    """The options a Bridge is built from (a change from the web UI makes a new one)."""
    return tuple(
        str(getattr(opts, name, None))
        for name in (
            "fleet_profile",
            "fleet_seed",
            "fleet_time_compression",
            "fleet_offline_share",
            "fleet_fault_rate",
        )
    )


def add_arguments(parser: Any) -> None:
    # The main knobs go on the parser itself, with include_in_web_ui: Locust shows them
    # in the web UI's start form (and in ``locust --help``). Stations are Locust's own
    # "Number of users" field.
    parser.add_argument(
        "--fleet-profile",
        default="demo",
        include_in_web_ui=True,
        help="Fleet profile: a name from profiles/ or a YAML path",
    )
    parser.add_argument(
        "--fleet-seed",
        type=int,
        default=None,
        include_in_web_ui=True,
        help="Seed for reproducible runs",
    )
    parser.add_argument(
        "--fleet-time-compression",
        type=float,
        default=0.0,
        include_in_web_ui=True,
        help="Model clock speed-up (144: a day in ten minutes); 0: the profile's",
    )
    parser.add_argument(
        "--fleet-offline-share",
        type=float,
        default=-1.0,
        include_in_web_ui=True,
        help="Share of stations an offline wave cuts off (0..1); -1: the profile's",
    )
    parser.add_argument(
        "--fleet-fault-rate",
        type=float,
        default=-1.0,
        include_in_web_ui=True,
        help="Fault storm rate (faults per station per hour); -1: the profile's",
    )
    group = parser.add_argument_group("chargepro-fleet")
    group.add_argument("--fleet-station-prefix", default="CP", help="Station id prefix")
    group.add_argument(
        "--fleet-connect-grace",
        type=float,
        default=10.0,
        help="Seconds a station may take to connect after it starts; later, it counts as "
        "never connected (a headless fleet run fails on it)",
    )
    group.add_argument(
        "--fleet-metrics-port",
        type=int,
        default=0,
        help="Serve Prometheus /metrics on this port (0: off)",
    )
    group.add_argument(
        "--fleet-metrics-host", default="127.0.0.1", help="Address for /metrics (default loopback)"
    )
    group.add_argument(
        "--fleet-metrics-per-station",
        action="store_true",
        help="Add per-station series to /metrics (small fleets only: at most 1000 stations)",
    )
    group.add_argument(
        "--fleet-no-validate",
        action="store_true",
        help="Skip OCPP schema validation (not recommended: invalid CSMS payloads go unseen)",
    )
    # Options of this group are not shown in Locust's web UI (only the parser's own
    # add_argument marks options for it): TLS settings are start-up configuration.
    group.add_argument(
        "--fleet-ca-file",
        default=None,
        help="PEM CA file (or bundle, or hashed directory) to verify the CSMS's certificate "
        "(wss://); default: the system store",
    )
    group.add_argument(
        "--fleet-client-cert",
        default=None,
        help="PEM client certificate for SecurityProfile 3 (mutual TLS); "
        "'{id}' in the path is replaced by the station id",
    )
    group.add_argument(
        "--fleet-client-key",
        default=None,
        help="PEM private key of --fleet-client-cert, if not in the same file; '{id}' as there",
    )
    group.add_argument(
        "--fleet-insecure",
        action="store_true",
        help="Do not verify the CSMS's TLS certificate (testing only; the run warns)",
    )


def tls_settings(opts: Any) -> TlsSettings:
    """The --fleet-ca-file / --fleet-client-cert / --fleet-client-key / --fleet-insecure
    options as the engine's TlsSettings."""
    return TlsSettings(
        ca_file=getattr(opts, "fleet_ca_file", None) or None,
        client_cert=getattr(opts, "fleet_client_cert", None) or None,
        client_key=getattr(opts, "fleet_client_key", None) or None,
        insecure=bool(getattr(opts, "fleet_insecure", False)),
    )
