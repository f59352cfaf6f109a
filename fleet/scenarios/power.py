"""Grid outages: the mains supply lost on a share of the fleet, then restored.

A profile's ``power:`` section lists outages::

    power:
      outages:
        # A regional blackout: 40% of the stations lose power together 5 minutes into
        # the run and get it back together 2 minutes later.
        - {at: 300, duration: 120, share: 0.4}
        # A short dip over the whole fleet, its length drawn once in [5, 20] s.
        - {at: 900, duration: [5, 20]}

Fields of an outage:

``at``
    Seconds after the run starts (default 0).
``duration``
    How long the power stays off, seconds: a number or ``[min, max]`` (uniform, drawn
    once per outage: a region's supply comes back everywhere at the same instant, which
    is what ``RestoreTimeout`` spreads out).
``share``
    Share of the stations running at ``at`` that lose power (0 < share <= 1, default 1;
    at least one station).

What a station does is the model's (``Station.power_lost``): it goes dark at once (its
TCP connection drops without a websocket close frame, the CALL in flight is never
answered), the engine keeps it dark for ``duration``, then it boots; a transaction that
was running is stopped with reason ``PowerLoss``, the queue of transaction messages and
the energy register survive, a fault latched until a power cycle clears, and the load
resumes no sooner than the station's ``RestoreTimeout``. Unlike a Locust shape's outage
(boot-storm), the stations stay users of the run: only their supply goes.

Times are model seconds (divided by the fleet's ``time_compression``, if any); one timer
per outage, none per station. Power cuts are counted in ``OutageDirector.cuts``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fleet.scenarios.director import Director, common_fields

__all__ = ["Outage", "OutageDirector", "PowerPlan", "parse", "start"]

_FIELDS = {"at", "duration", "share"}


@dataclass(frozen=True, slots=True)
class Outage:
    at: float
    duration: tuple[float, float]
    share: float = 1.0


@dataclass(frozen=True, slots=True)
class PowerPlan:
    outages: tuple[Outage, ...]


# -- validation ------------------------------------------------------------------------


def parse(reader: Any, value: Any) -> PowerPlan | None:
    """Validate the ``power`` section (``reader``: the profile's _Reader); None when absent."""
    if value is None:
        return None
    section = reader.mapping(value, "power", {"outages"})
    outages = section.get("outages")
    if not isinstance(outages, list) or not outages:
        raise reader.fail("power.outages", "expected a list of outages")
    return PowerPlan(tuple(_outage(reader, o, f"power.outages.{i}") for i, o in enumerate(outages)))


def _outage(reader: Any, value: Any, where: str) -> Outage:
    _, common = common_fields(reader, value, where, _FIELDS, " (seconds without power)")
    return Outage(at=common.at, duration=common.duration, share=common.share)


# -- running ---------------------------------------------------------------------------


class OutageDirector(Director):
    """Runs a plan's outages on the fleet's loop (loop thread only)."""

    def __init__(self, fleet: Any, plan: PowerPlan, rng: Any) -> None:
        super().__init__(fleet, rng, plan.outages)
        self.plan = plan
        self.cuts = 0  # stations that lost power

    def _begin(self, outage: Outage) -> None:
        chosen = self._pick(outage.share)
        if not chosen:
            return
        seconds = self.rng.uniform(*outage.duration)
        for sid in chosen:
            link = self.fleet.links.get(sid)
            if link is None:
                continue
            self.cuts += 1
            link.hardware(lambda now, st=link.station: st.power_lost(seconds, now))


def start(fleet: Any, plan: PowerPlan | None, rng: Any) -> OutageDirector | None:
    """Run the plan on the fleet's loop (call on the loop thread); None without outages."""
    if plan is None:
        return None
    director = OutageDirector(fleet, plan, rng)
    director.start()
    return director
