"""What the fleet-wide scenario directors (fault storms, grid outages) share: the fields
every event of theirs has (``at``, ``duration``, ``share``), timers in model seconds on
the fleet's loop (all cancelled at once when the run stops), and picking the share of
the running stations an event hits."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Common", "Director", "common_fields"]


@dataclass(frozen=True, slots=True)
class Common:
    """The fields of a storm or outage that mean the same in both."""

    at: float
    duration: tuple[float, float]
    share: float


def common_fields(
    reader: Any, value: Any, where: str, fields: set[str], duration_hint: str = ""
) -> tuple[dict[str, Any], Common]:
    """Validate one event's mapping (``fields`` allowed) and its common fields; return the
    mapping, for the caller's own fields, and the common ones."""
    if not isinstance(value, dict):
        raise reader.fail(where, f"expected a mapping, got {type(value).__name__}")
    item = reader.mapping(value, where, fields)
    if "duration" not in item:
        raise reader.fail(where, f"missing field 'duration'{duration_hint}")
    duration = reader.range(item["duration"], f"{where}.duration", (0.0, 0.0))
    if duration[0] <= 0:
        raise reader.fail(f"{where}.duration", "must be > 0 seconds")
    share = reader.number(item.get("share", 1.0), f"{where}.share", 0.0, 1.0)
    if share <= 0:
        raise reader.fail(f"{where}.share", "must be > 0")
    at = reader.number(item.get("at", 0.0), f"{where}.at", 0.0)
    return item, Common(at, duration, share)


class Director:
    """A scenario run on the fleet's loop (loop thread only) with ``call_later`` timers."""

    def __init__(self, fleet: Any, rng: Any, events: tuple[Any, ...]) -> None:
        self.fleet = fleet
        self.rng = rng
        self.events = events  # each with ``at``, begun by _begin(event)
        self.handles: set[asyncio.TimerHandle] = set()
        self.stopped = False

    def start(self) -> None:
        for event in self.events:
            self._later(event.at, self._begin, event)

    def _begin(self, event: Any) -> None:
        raise NotImplementedError

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

    def _pick(self, share: float) -> list[str]:
        """A seeded ``share`` of the stations running now (at least one; none if none)."""
        ids = sorted(self.fleet.links)
        if not ids:
            return []
        count = min(len(ids), max(1, round(share * len(ids))))
        return list(self.rng.sample(ids, count))
