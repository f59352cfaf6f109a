"""Locust load shapes for the fleet: ramp, steps, boot storm.

Each shape takes its numbers from the profile's ``load:`` section when that names the
same shape, else from Locust's ``--users`` / ``--spawn-rate`` (``use_common_options``)
with the :class:`~fleet.scenarios.profile.Load` defaults. ``at(t)`` is the pure
schedule (user count, spawn rate, or None to end the test); ``tick()`` applies it to
the run time.

Locust uses the first shape class a locustfile defines, so the fleet's locustfile only
exports them on request: ``fleet run --shape NAME`` (or a profile with ``load:``) sets
``FLEET_SHAPE``; ``--class-picker`` exports all of them for the web UI's picker.

- ``ramp``: up to ``stations`` linearly over ``over`` seconds, then hold.
- ``steps``: ``step`` more stations every ``every`` seconds up to ``stations``.
- ``boot-storm``: ``stations`` come up at ``spawn_rate``; ``outage_at`` seconds after
  the whole fleet is connected the grid goes down (every station goes offline) for
  ``outage`` seconds; then power returns and every station boots and connects at once
  (the same station ids come back).
- ``capacity``: ``fleet capacity``'s steps, measured one by one, ending at the first
  step that breaks an SLO (exported only when ``FLEET_SHAPE=capacity``).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

from locust import LoadTestShape

from fleet.locust.metrics import fleet_totals
from fleet.scenarios.profile import Load, ProfileError, load

Tick = tuple[int, float] | None


class FleetShape(LoadTestShape):
    """Base: finds its :class:`Load` in the profile or the common options."""

    abstract: ClassVar[bool] = True
    use_common_options: ClassVar[bool] = True
    shape: ClassVar[str] = ""

    def __init__(self, spec: Load | None = None) -> None:
        super().__init__()
        self._spec = spec

    @property
    def spec(self) -> Load:
        if self._spec is None:
            self._spec = self._from_options()
        return self._spec

    def _from_options(self) -> Load:
        runner = getattr(self, "runner", None)
        opts: Any = getattr(getattr(runner, "environment", None), "parsed_options", None)
        profile_load = None
        if opts is not None:
            try:
                profile_load = load(getattr(opts, "fleet_profile", None) or "demo").load
            except ProfileError:
                profile_load = None
        if profile_load is not None and profile_load.shape == self.shape:
            return profile_load
        users = getattr(opts, "num_users", None) or (
            profile_load.stations if profile_load is not None else 100
        )
        rate = getattr(opts, "spawn_rate", None) or 10.0
        return Load(self.shape, int(users), spawn_rate=float(rate))

    def tick(self) -> Tick:
        t = self.get_run_time()
        # Headless, Locust waits for the shape to end before it arms --run-time.
        if self.run_time is not None and t >= self.run_time:
            return None
        return self.at(t)

    @property
    def run_time(self) -> float | None:
        runner = getattr(self, "runner", None)
        opts: Any = getattr(getattr(runner, "environment", None), "parsed_options", None)
        value = getattr(opts, "run_time", None)
        return float(value) if value else None

    def at(self, t: float) -> Tick:
        raise NotImplementedError

    def _held(self, t: float, done_at: float) -> bool:
        hold = self.spec.hold
        return hold is not None and t >= done_at + hold


class RampShape(FleetShape):
    """Linear ramp to ``stations`` over ``over`` seconds, then hold."""

    shape = "ramp"

    def at(self, t: float) -> Tick:
        s = self.spec
        if self._held(t, s.over):
            return None
        users = s.stations if t >= s.over else max(1, math.ceil(s.stations * t / s.over))
        return users, max(s.stations / s.over, 0.01)


class StepsShape(FleetShape):
    """``step`` more stations every ``every`` seconds up to ``stations``."""

    shape = "steps"

    def at(self, t: float) -> Tick:
        s = self.spec
        steps = math.ceil(s.stations / s.step)
        if self._held(t, (steps - 1) * s.every):
            return None
        users = min(s.stations, s.step * (int(t // s.every) + 1))
        return users, float(max(s.step, 1))  # each step within about a second


class BootStormShape(FleetShape):
    """Up at ``spawn_rate``, a grid outage, then every station back at once.

    ``outage_at`` counts from the moment the whole fleet is connected, not from the start
    of the run: a storm is about a fleet that is up, and a load generator or a CSMS slower
    than the planned ramp must not turn it into a partial one (stations powered off
    before they ever connected, a test that depends on the machine's speed). A fleet
    that never connects in full is taken down :data:`READY_WAIT` seconds after the ramp
    should have ended. Without a runner (the pure schedule) the clock starts at once.
    """

    shape = "boot-storm"
    READY_WAIT: ClassVar[float] = 60.0
    _ready_at: float | None = None

    def tick(self) -> Tick:
        t = self.get_run_time()
        if self.run_time is not None and t >= self.run_time:
            return None
        if self._ready_at is None:
            s = self.spec
            connected = self._connected()
            late = t >= s.stations / max(s.spawn_rate, 0.001) + self.READY_WAIT
            if connected is not None and connected < s.stations and not late:
                return self.at(0.0)  # still coming up
            self._ready_at = t if connected is not None else 0.0
        return self.at(t - self._ready_at)

    def _connected(self) -> int | None:
        """Stations connected now (summed over the workers on a master); None without a
        runner."""
        runner = getattr(self, "runner", None)
        environment = getattr(runner, "environment", None)
        if runner is None or environment is None or not hasattr(runner, "user_count"):
            return None
        return int(fleet_totals(environment).get("stations_connected", 0))

    def at(self, t: float) -> Tick:
        s = self.spec
        back = s.outage_at + s.outage
        if self._held(t, back):
            return None
        if t < s.outage_at:
            return s.stations, s.spawn_rate
        if t < back:
            return 0, float(s.stations)  # power gone: every station drops at once
        return s.stations, float(s.stations)  # power back: all boot together


class CapacityShape(StepsShape):
    """``fleet capacity``: steps of stations, each held long enough to measure, ending
    at the first step that breaks an SLO (the plan and the per-step measurement are
    :class:`fleet.locust.summary.CapacityProbe`'s). Without a plan, plain steps."""

    shape = "capacity"
    _probe: Any = None

    def tick(self) -> Tick:
        if self._probe is None:
            from fleet.locust.summary import CapacityProbe

            self._probe = CapacityProbe.from_options(self.runner.environment) or False
        if self._probe is False:
            return super().tick()
        result: Tick = self._probe.tick(self.get_run_time())
        return result


SHAPES: dict[str, type[FleetShape]] = {
    "ramp": RampShape,
    "steps": StepsShape,
    "capacity": CapacityShape,
    "boot-storm": BootStormShape,
}
