"""What the people around a station do: drivers arriving, badging, plugging, leaving.

A behaviour turns a profile into hardware events on one station, scheduled on the
event loop (``loop.call_later``: no task per station). It reacts to what the model
reports: a RemoteStartTransaction brings a driver who plugs in a few seconds later,
a session stopped by the CSMS ends with the driver unplugging.

Every delay is in model seconds (see Fleet's ``time_compression``). With a session
source (``sessions.source: trace`` or ``synthetic``) each station plays its own
schedule: at each arrival the driver plugs in and badges, the EV charges until the
dwell ends (or it is full: SuspendedEV), the driver badges out (``Local``) or just
unplugs (``EVDisconnected``) and leaves; then the next arrival.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from fleet.model.meter import EvModel
from fleet.model.rng import Rng, StationRandom
from fleet.model.station import Station
from fleet.scenarios import replay
from fleet.scenarios.profile import Profile, Range


class Clock(Protocol):
    """The model clock (engine.fleet.Fleet): model seconds to loop timers."""

    def now(self) -> float: ...

    def real(self, model_seconds: float) -> float: ...

    def call_at_model(self, model_time: float, fn: Callable[[], None]) -> Any: ...


class Driven(Protocol):
    """What a behaviour needs of a station's link (see engine.link.StationLink)."""

    station: Station

    def hardware(self, event: Callable[[float], None]) -> None: ...


class Behaviour:
    """Sessions a station runs by itself (``sessions``), or only on request (``idle``)."""

    def __init__(
        self,
        link: Driven,
        profile: Profile,
        loop: asyncio.AbstractEventLoop,
        rng: Rng,
        *,
        clock: Clock | None = None,
        schedule: Iterator[replay.Session] | None = None,
        start: float | None = None,
    ) -> None:
        """``schedule``: this station's sessions (arrival offsets from ``start``, model
        time); None: back-to-back random sessions from the profile's ranges."""
        self.link = link
        self.profile = profile
        self.loop = loop
        self.rng = rng
        self.clock = clock
        self.self_started = profile.behaviour == "sessions"
        self.schedule = schedule
        self.start = start if start is not None else (clock.now() if clock else loop.time())
        self.session: replay.Session | None = None
        self.played = 0  # scheduled sessions that plugged in
        self.late = 0  # ... that arrived while the previous one was still plugged in
        self._handle: asyncio.TimerHandle | None = None
        self._tag: str | None = None
        self._stopped = False

    # -- scheduling ------------------------------------------------------------

    def _after(self, delay: Range, fn: Callable[[], None]) -> None:
        if self._stopped:
            return
        if self._handle is not None:
            self._handle.cancel()
        seconds = self.rng.uniform(*delay)
        if self.clock is not None:
            seconds = self.clock.real(seconds)
        self._handle = self.loop.call_later(seconds, fn)

    def _at(self, model_time: float, fn: Callable[[], None]) -> None:
        if self._stopped:
            return
        if self._handle is not None:
            self._handle.cancel()
        if self.clock is None:
            self._handle = self.loop.call_at(model_time, fn)
        else:
            self._handle = self.clock.call_at_model(model_time, fn)

    def tags(self) -> tuple[str, ...]:
        """The badges this station's drivers carry: its own (the default) or a shared pool."""
        return self.profile.id_tags.for_station(self.link.station.identity)

    def _do(self, event: Callable[[Station, float], None]) -> None:
        station = self.link.station
        self.link.hardware(lambda now: event(station, now))

    def stop(self) -> None:
        self._stopped = True
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    # -- model notices ---------------------------------------------------------

    def booted(self) -> None:
        tx = self.link.station.transaction
        if tx is not None and tx.stop_reason is None and self._tag is None:
            # Back from a power cut with a transaction still running: its driver returns.
            self._tag = tx.id_tag
            self._after(self.profile.sessions.duration, self._end)
            return
        if self.self_started and self._tag is None and self.session is None:
            if self.schedule is not None:
                self._next_scheduled()
            else:
                self._after(self.profile.sessions.first_after, self._arrive)

    def remote_start(self, id_tag: str) -> None:
        station = self.link.station
        if not station.connectors[1].plugged:
            self._tag = id_tag
            self._after(self.profile.plug_after_remote_start, self._plug_for_remote)

    def authorization(self, id_tag: str, status: str) -> None:
        if status != "Accepted" and id_tag == self._tag:
            # Refused at the reader: the driver gives up and leaves.
            self._after(self.profile.sessions.unplug_after_stop, self._leave)

    def transaction_stopped(self, reason: str) -> None:
        if reason in ("EVDisconnected",):
            self._after(self.profile.sessions.idle_between, self._next)
        else:
            # Stopped at the station (badge, CSMS, fault): the driver unplugs.
            self._after(self.profile.sessions.unplug_after_stop, self._leave)

    # -- a session -------------------------------------------------------------

    def _arrive(self) -> None:
        """A driver parks, plugs the EV in, and badges a moment later."""
        station = self.link.station
        if station.transaction is not None or station.connectors[1].plugged:
            self._after(self.profile.sessions.idle_between, self._arrive)
            return
        self._tag = self.rng.choice(self.tags())
        station.ev = self.profile.pick_ev(self.rng)
        self._do(lambda s, now: s.plug_in(now))
        self._after(self.profile.sessions.badge_after_plug, self._badge)

    def _badge(self) -> None:
        tag = self._tag
        if tag is None:
            return
        self._do(lambda s, now: s.present_tag(tag, now))
        session = self.session
        if session is not None:
            self._at(self.start + session.arrival + session.dwell, self._end)
        else:
            self._after(self.profile.sessions.duration, self._end)

    # -- scheduled sessions (trace or synthetic) ---------------------------------

    def _next_scheduled(self) -> None:
        assert self.schedule is not None
        self.session = session = next(self.schedule, None)
        if session is None:
            return
        self._at(self.start + session.arrival, self._arrive_scheduled)

    def _arrive_scheduled(self) -> None:
        station = self.link.station
        session = self.session
        if session is None:
            return
        if station.transaction is not None or station.connectors[1].plugged:
            # Still occupied (a remote start, or the previous driver is late): wait.
            self.late += 1
            self._after((60.0, 60.0), self._arrive_scheduled)
            return
        self.played += 1
        self._tag = session.id_tag or self.rng.choice(self.tags())
        station.ev = self.ev_for(session)
        self._do(lambda s, now: s.plug_in(now))
        self._after(self.profile.sessions.badge_after_plug, self._badge)

    def ev_for(self, session: replay.Session) -> EvModel:
        """The session's EV; with an energy, one that is full once it has had that much."""
        profile = self.profile
        if session.ev is not None:
            ev = profile.ev_named(session.ev).build(self.rng)
        else:
            ev = profile.pick_ev(self.rng)
        wh = session.energy_kwh
        if wh is not None:
            wh *= 1000.0
            if wh >= ev.battery_wh:
                ev.battery_wh = wh / 0.9
            if ev.soc + wh / ev.battery_wh > 1.0:
                ev.soc = 1.0 - wh / ev.battery_wh
            ev.target_soc = ev.soc + wh / ev.battery_wh
        return ev

    def _plug_for_remote(self) -> None:
        station = self.link.station
        station.ev = self.profile.pick_ev(self.rng)
        self._do(lambda s, now: s.plug_in(now))

    def _end(self) -> None:
        """The driver comes back: badge to stop, or just unplug."""
        station = self.link.station
        tx = station.transaction
        if tx is None:
            self._leave()
            return
        if self.rng.random() < self.profile.sessions.stop_by_badge:
            tag = tx.id_tag
            self._do(lambda s, now: s.present_tag(tag, now))
        else:
            self._leave()

    def _leave(self) -> None:
        station = self.link.station
        if station.connectors[1].plugged:
            self._do(lambda s, now: s.unplug(now))
        if station.transaction is None:
            self._tag = None
            self._after(self.profile.sessions.idle_between, self._next)

    def _next(self) -> None:
        self._tag = None
        if not self.self_started:
            return
        if self.schedule is not None:
            self._next_scheduled()
        else:
            self._arrive()


def schedule_for(
    profile: Profile, number: int | None, identity: str, rng: Rng
) -> Iterator[replay.Session] | None:
    """The station's sessions from the profile's source; None for ``random``."""
    sessions = profile.sessions
    if sessions.source == "trace" and sessions.trace is not None:
        return iter(sessions.trace.for_station(number, identity))
    if sessions.source == "synthetic" and sessions.synthetic is not None:
        return replay.generate(sessions.synthetic, StationRandom(rng.getrandbits(64)))
    return None


def factory(
    profile: Profile, seed: Any = None, number: int | None = None, start: float | None = None
) -> Callable[[Any], Behaviour]:
    """A per-station behaviour maker for Fleet.add (each gets its own seeded RNG).

    ``number``: the station's number in the run (1-based; picks its trace rows);
    ``start``: the model time arrival offsets count from (default: the fleet's start).
    """

    def make(link: Any) -> Behaviour:
        rng = StationRandom(link.rng.getrandbits(64))
        fleet = link.fleet
        schedule = schedule_for(profile, number, link.station.identity, rng)
        return Behaviour(
            link,
            profile,
            fleet.loop,
            rng,
            clock=fleet,
            schedule=schedule,
            start=start if start is not None else fleet.t0,
        )

    return make
