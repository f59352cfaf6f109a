"""The fleet of this Locust process, published for the modules beside the bridge.

The :class:`~fleet.locust.bridge.Bridge` builds the fleet and publishes itself here;
the metrics (worker reports, ``/metrics``, the Fleet tab and the run summary), the
misbehave drain and the bench's hub check read it back. They know this module and the
small protocol below, not the bridge, so the bridge can start them (it attaches
misbehave) without an import cycle. One per process: the web UI's start form may
replace it between runs, and a reader that held the old one sees it is no longer
current.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from locust.env import Environment

    from fleet.engine.fleet import Fleet
    from fleet.metrics.stats import FleetStats


class RunningFleet(Protocol):
    """What the readers use: the Locust environment it runs in, its counters, and the
    fleet (its links, for per-station rows)."""

    env: Environment
    stats: FleetStats
    fleet: Fleet


_running: RunningFleet | None = None


def publish(running: RunningFleet) -> None:
    """``running`` is this process's fleet from now on (it replaces any other)."""
    global _running
    _running = running


def running() -> RunningFleet | None:
    """The fleet published last, whatever its environment."""
    return _running


def of(environment: Environment) -> RunningFleet | None:
    """This environment's fleet; None before the first station starts (or on a master,
    which runs none)."""
    found = _running
    return found if found is not None and found.env is environment else None
