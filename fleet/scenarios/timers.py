"""What the fleet-wide scenario directors (fault storms, grid outages) share: timers in
model seconds on the fleet's loop, all cancelled at once when the run stops."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

__all__ = ["Director"]


class Director:
    """A scenario run on the fleet's loop (loop thread only) with ``call_later`` timers."""

    def __init__(self, fleet: Any, rng: Any) -> None:
        self.fleet = fleet
        self.rng = rng
        self.handles: set[asyncio.TimerHandle] = set()
        self.stopped = False

    def stop(self) -> None:
        """Cancel what is scheduled (what a timer already did stays done)."""
        self.stopped = True
        for handle in self.handles:
            handle.cancel()
        self.handles.clear()

    def _real(self, model_seconds: float) -> float:
        """Model seconds in loop seconds (the fleet may run a compressed clock)."""
        factor = float(getattr(self.fleet, "time_compression", 1.0) or 1.0)
        return model_seconds / factor

    def _later(self, model_seconds: float, fn: Callable[..., None], *args: Any) -> None:
        holder: list[asyncio.TimerHandle] = []

        def fire() -> None:
            self.handles.discard(holder[0])
            if not self.stopped:
                fn(*args)

        holder.append(self.fleet.loop.call_later(self._real(model_seconds), fire))
        self.handles.add(holder[0])
