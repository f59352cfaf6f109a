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
from collections.abc import Callable
from typing import Any

import gevent
import gevent.lock
from locust import events
from locust.env import Environment
from locust.runners import WorkerRunner

from fleet.engine.fleet import Fleet
from fleet.engine.link import CONNECT, StationLink
from fleet.engine.loop import LoopThread
from fleet.engine.security import TlsSettings
from fleet.engine.state_store import StateStore
from fleet.locust import batch, current, distributed, misbehave
from fleet.metrics.stats import FleetStats
from fleet.model.station import Station
from fleet.scenarios import behaviour, network, power, storms
from fleet.scenarios.profile import Profile
from fleet.scenarios.stations import StationBuilder

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
DEFAULT_END_TIMEOUT = 10.0
"""Seconds the stations have at the end of a run to deliver their StopTransactions
(``--fleet-end-timeout``)."""
END_SLACK = 5.0
"""Seconds test_stop waits beyond the end timeout before giving up on the loop."""
END_MODES = ("stop", "power-off")
END_POLL = 0.05
"""Seconds between two looks at whether the stations have ended."""
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
        self.builder = StationBuilder(self.profile)
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
            message_ids=self.profile.message_ids,
        )
        self.fleet.overrides.update(self.overrides)
        # How the run ends (issue 17): "stop" ends every session and closes cleanly,
        # "power-off" leaves at once; with a state directory the stations' durable
        # state is saved at the end and loaded when they start.
        self.end_mode: str = getattr(opts, "fleet_end", None) or "stop"
        self.end_timeout = _float_or_none(getattr(opts, "fleet_end_timeout", None))
        if self.end_timeout is None:
            self.end_timeout = DEFAULT_END_TIMEOUT
        state_dir = getattr(opts, "fleet_state_dir", None) or None
        self.store = StateStore(state_dir) if state_dir else None
        self._ended = True  # no station yet: nothing to end (see _on_test_stop)
        self._quit = False  # the loop thread is stopped (quitting)
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
        self._ended = False
        profile = self.profile
        try:
            leaving = self.fleet.links.get(identity)
            if leaving is not None:
                leaving.stop()  # still ending (a ramp down and up): it parks at once
            parked = self._parked.pop(identity, None)
            if parked is not None:
                # Power is back (a boot storm after an outage, a ramp back up): the same
                # station reboots with what survives a power cycle (configuration, energy
                # register, queued transaction messages, a transaction in progress).
                parked.rebooted(self.fleet.now())
                self.fleet.add(parked, url, behaviour.factory(profile, number=number))
                return
            station = self.builder.build(identity, number, self.fleet.now(), self.fleet.rng)
            saved = self.store.load(identity) if self.store is not None else None
            if saved is not None:
                # The same unit as in the last run: its memory as it was, power returns.
                station.power_on(saved, self.fleet.now())
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
        """On the loop thread: the station leaves (kept, to come back the same): as at
        the end of the run, it ends its session first unless the run ends by power-off."""
        link = self.fleet.links.get(identity)
        if link is None:
            return
        # A boot-storm shape's ramp down is a grid outage: no goodbye, sessions stay open.
        outage = getattr(self.env.shape_class, "shape", None) == "boot-storm"
        if self.end_mode == "stop" and not outage:
            link.end(self.profile.end_reason, float(self.end_timeout or 0), self._park)
        else:
            link.stop()
            self._park(link)

    def _park(self, link: StationLink) -> None:
        self._parked[link.station.identity] = link.station

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
        """The run is over (the run time, STOP in the web UI): end it as ``--fleet-end``
        says, save the durable state with ``--fleet-state-dir``, and wait (bounded, on
        the gevent hub) so that the summary written at ``quitting`` counts it all."""
        if self._quit:
            return  # the loop is gone: quitting ended the run already
        self._ended = True
        done: list[bool] = []
        self.thread.call(self._end_run, done.append)
        deadline = (self.end_timeout or 0.0) + END_SLACK
        waited = 0.0
        while not done and waited < deadline:
            gevent.sleep(END_POLL)
            waited += END_POLL
        self._last_batch()

    def _end_run(self, finished: Callable[[bool], None]) -> None:
        """On the loop thread: end every station, then save what survives."""
        stations = [link.station for link in self.fleet.links.values()]
        stations += self._parked.values()

        def save() -> None:
            if self.store is not None and stations:
                now = self.fleet.now()
                try:
                    self.store.save(
                        (st.snapshot(now), st.unfinished_transactions) for st in stations
                    )
                except Exception:
                    log.exception("could not save the stations' state in %s", self.store.path)
            finished(True)

        if self.end_mode == "stop":
            self.fleet.end_all(self.profile.end_reason, float(self.end_timeout or 0), save)
        else:
            self.fleet.stop_all()
            save()

    def _on_quitting(self, **_: Any) -> None:
        if self._quit:
            return
        if not self._ended:
            # A signal (SIGTERM to a worker) quits before test_stop: end the run now.
            self._on_test_stop()
        self._quit = True
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
            "fleet_end",
            "fleet_end_timeout",
            "fleet_state_dir",
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
    parser.add_argument(
        "--fleet-end",
        choices=END_MODES,
        default="stop",
        include_in_web_ui=True,
        help="How stations leave at the end (or a ramp down): stop = end each session "
        "(StopTransaction) and close cleanly; power-off = leave at once, sessions open",
    )
    parser.add_argument(
        "--fleet-end-timeout",
        type=float,
        default=DEFAULT_END_TIMEOUT,
        include_in_web_ui=True,
        help="Seconds the stations have at the end to deliver their StopTransactions",
    )
    group = parser.add_argument_group("chargepro-fleet")
    group.add_argument(
        "--fleet-state-dir",
        default=None,
        help="Directory of the stations' durable state (SQLite): saved at the end, "
        "loaded at the next run's start, so a run continues where the last stopped",
    )
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
