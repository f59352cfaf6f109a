"""Run in a subprocess by test_shapes.py (importing Locust monkey-patches the process
with gevent, which would break the asyncio tests that follow): prints the tick()
sequences of the load shapes as JSON."""

from __future__ import annotations

import json
from typing import Any

from fleet.locust.shapes import BootStormShape, FleetShape, RampShape, StepsShape
from fleet.scenarios.profile import Load


def ticks(shape: FleetShape, times: list[float]) -> list[Any]:
    out = []
    for t in times:
        shape.get_run_time = lambda t=t: t  # type: ignore[method-assign]
        out.append(shape.tick())
    return out


class _Opts:
    fleet_profile = "boot-storm"
    num_users = None
    spawn_rate = None
    run_time = None


class _Env:
    parsed_options = _Opts()


class _Runner:
    environment = _Env()


def main() -> None:
    out: dict[str, Any] = {}
    out["ramp"] = ticks(
        RampShape(Load("ramp", 100, over=50.0, hold=10.0)), [0, 0.4, 10, 25, 49.9, 50, 59, 60]
    )
    out["ramp_forever"] = ticks(RampShape(Load("ramp", 10, over=5.0)), [1000.0])
    out["steps"] = ticks(
        StepsShape(Load("steps", 25, step=10, every=30.0, hold=30.0)),
        [0, 29.9, 30, 59, 60, 89, 90],
    )
    out["boot_storm"] = ticks(
        BootStormShape(
            Load("boot-storm", 200, spawn_rate=50.0, outage_at=60.0, outage=20.0, hold=30.0)
        ),
        [0, 59.9, 60, 79.9, 80, 109.9, 110],
    )
    specs = {}
    for cls in (RampShape, StepsShape, BootStormShape):
        shape = cls()
        shape.runner = _Runner()
        s = shape.spec
        specs[cls.__name__] = [s.shape, s.stations, s.outage]
    out["specs"] = specs
    _Opts.run_time = 30  # type: ignore[assignment]
    shape = RampShape(Load("ramp", 10, over=5.0))
    shape.runner = _Runner()
    out["run_time"] = ticks(shape, [29.0, 30.0])
    print(json.dumps(out))


if __name__ == "__main__":
    main()
