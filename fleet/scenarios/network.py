"""Network behaviour of a profile: the offline queue's limit and offline waves.

The profile section::

    network:
      queue_limit: 10000          # Station.queue_limit (messages held offline)
      offline_waves:
        - {at: 20, duration: 60, share: 0.3, mode: drop, charging_only: true}

An offline wave takes the CSMS away from a seeded share of the stations ``at``
seconds after the run starts (model seconds: with time compression the wave comes
sooner in real time), for ``duration`` seconds, the way ``mode`` says (see
:data:`fleet.engine.link.CUT_MODES`: ``drop``, ``refuse``, ``tls``, ``hang``). With
``charging_only`` the share is of the stations charging at that moment. Afterwards
each station reconnects with its own backoff and jitter, and delivers what it queued.

The offline-queue figures of :class:`FleetStats` (``offline_queue_depth``,
``offline_messages_delivered``) are kept current by each station's link as its outbox
changes (:meth:`fleet.engine.link.StationLink._queue_figures`), not summed here.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from typing import Any

from fleet.engine.link import CUT_MODES


@dataclass(frozen=True, slots=True)
class Wave:
    at: float
    duration: float
    share: float
    mode: str = "drop"
    charging_only: bool = False


@dataclass(frozen=True, slots=True)
class NetworkPlan:
    queue_limit: int | None = None
    waves: tuple[Wave, ...] = ()


def parse(reader: Any, value: Any) -> NetworkPlan | None:
    """Validate the profile section; None when absent."""
    if value is None:
        return None
    section = reader.mapping(value, "network", {"queue_limit", "offline_waves"})
    limit: int | None = None
    if section.get("queue_limit") is not None:
        raw = section["queue_limit"]
        if isinstance(raw, bool) or not isinstance(raw, int) or raw < 1:
            raise reader.fail("network.queue_limit", f"expected an integer >= 1, got {raw!r}")
        limit = raw
    waves_raw = section.get("offline_waves")
    if waves_raw is None:
        waves_raw = []
    if not isinstance(waves_raw, list):
        raise reader.fail(
            "network.offline_waves", f"expected a list, got {type(waves_raw).__name__}"
        )
    waves = []
    for i, item in enumerate(waves_raw):
        where = f"network.offline_waves.{i}"
        wave = reader.mapping(item, where, {"at", "duration", "share", "mode", "charging_only"})
        for required in ("at", "duration", "share"):
            if required not in wave:
                raise reader.fail(where, f"missing field {required!r}")
        mode = wave.get("mode", "drop")
        if mode not in CUT_MODES:
            raise reader.fail(
                f"{where}.mode", f"expected one of: {', '.join(CUT_MODES)}, got {mode!r}"
            )
        charging_only = wave.get("charging_only", False)
        if not isinstance(charging_only, bool):
            raise reader.fail(
                f"{where}.charging_only", f"expected true or false, got {charging_only!r}"
            )
        duration = reader.number(wave["duration"], f"{where}.duration")
        if duration <= 0:
            raise reader.fail(f"{where}.duration", f"must be > 0, got {wave['duration']!r}")
        waves.append(
            Wave(
                at=reader.number(wave["at"], f"{where}.at"),
                duration=duration,
                share=reader.number(wave["share"], f"{where}.share", 0.0, 1.0),
                mode=mode,
                charging_only=charging_only,
            )
        )
    return NetworkPlan(queue_limit=limit, waves=tuple(waves))


def configure(station: Any, plan: NetworkPlan | None) -> None:
    """Apply the plan to a station being built (its offline queue's limit)."""
    if plan is not None and plan.queue_limit is not None:
        station.queue_limit = plan.queue_limit


def _real(fleet: Any, model_seconds: float) -> float:
    real = getattr(fleet, "real", None)
    return float(real(model_seconds)) if real is not None else model_seconds


def pick(fleet: Any, wave: Wave, rng: random.Random) -> list[Any]:
    """The links a wave cuts: a seeded share of the (charging) stations, by identity."""
    links = [fleet.links[k] for k in sorted(fleet.links)]
    if wave.charging_only:
        links = [link for link in links if link.station.transaction is not None]
    count = round(wave.share * len(links))
    return rng.sample(links, count)


def fire(fleet: Any, wave: Wave, rng: random.Random) -> list[Any]:
    """Cut the wave's share of the fleet now; returns the links cut. A run-wide
    ``fleet.overrides["offline_share"]`` (``--offline-share``) replaces the share."""
    share = getattr(fleet, "overrides", {}).get("offline_share")
    if share is not None:
        wave = replace(wave, share=min(1.0, max(0.0, float(share))))
    chosen = pick(fleet, wave, rng)
    seconds = _real(fleet, wave.duration)
    for link in chosen:
        link.cut(seconds, wave.mode)
    return chosen


def start(fleet: Any, plan: NetworkPlan | None, rng: random.Random) -> None:
    """Run the plan on the fleet's loop (called on the loop thread)."""
    if plan is None:
        return
    loop = fleet.loop
    for wave in plan.waves:
        wave_rng = random.Random(rng.getrandbits(64))
        loop.call_later(_real(fleet, wave.at), fire, fleet, wave, wave_rng)
