"""What the people around a station do: drivers arriving, badging, plugging, leaving.

A behaviour turns a profile into hardware events on one station, scheduled on the
event loop (``loop.call_later``: no task per station). It reacts to what the model
reports: a RemoteStartTransaction brings a driver who plugs in a few seconds later,
a session stopped by the CSMS ends with the driver unplugging.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Any, Protocol

from fleet.model.station import Station
from fleet.scenarios.profile import Profile, Range


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
        rng: random.Random,
    ) -> None:
        self.link = link
        self.profile = profile
        self.loop = loop
        self.rng = rng
        self.self_started = profile.behaviour == "sessions"
        self._handle: asyncio.TimerHandle | None = None
        self._tag: str | None = None
        self._stopped = False

    # -- scheduling ------------------------------------------------------------

    def _after(self, delay: Range, fn: Callable[[], None]) -> None:
        if self._stopped:
            return
        if self._handle is not None:
            self._handle.cancel()
        self._handle = self.loop.call_later(self.rng.uniform(*delay), fn)

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
        if self.self_started and self._tag is None:
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
        self._tag = self.rng.choice(self.profile.id_tags)
        station.ev = self.profile.pick_ev(self.rng)
        self._do(lambda s, now: s.plug_in(now))
        self._after(self.profile.sessions.badge_after_plug, self._badge)

    def _badge(self) -> None:
        tag = self._tag
        if tag is None:
            return
        self._do(lambda s, now: s.present_tag(tag, now))
        self._after(self.profile.sessions.duration, self._end)

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
        if self.self_started:
            self._arrive()


def factory(profile: Profile, seed: Any = None) -> Callable[[Any], Behaviour]:
    """A per-station behaviour maker for Fleet.add (each gets its own seeded RNG)."""

    def make(link: Any) -> Behaviour:
        rng = random.Random(link.rng.getrandbits(64))
        return Behaviour(link, profile, link.fleet.loop, rng)

    return make
