"""Fault storms: vendor errors raised on a share of the fleet, then recovery.

A profile's ``faults:`` section lists storms::

    faults:
      storms:
        # The same DEM communication loss on 20% of the stations at once, for a minute.
        - {at: 30, duration: 60, share: 0.2, codes: [0x30000B], correlated: true}
        # Independent faults arriving at 0.5 per second over the whole fleet for two
        # minutes, each lasting 20..90 s, drawn from a mix of codes.
        - {at: 10, window: 120, duration: [20, 90], rate: 0.5, share: 1.0,
           codes: [0x100101, 0x200206]}

Fields of a storm:

``at``
    Seconds after the run starts (default 0).
``duration``
    How long each fault lasts, seconds: a number or ``[min, max]`` (uniform). Then the
    condition ends and the station reports the recovery (errorCode NoError). For the
    codes the catalogue says need a reboot or stay until repaired, the duration stands
    for the time until that happens.
``share``
    Share of the stations running at ``at`` the storm may hit (0 < share <= 1, default
    1; at least one station).
``codes``
    Vendor error codes (``0x30000B``, a hex number or a string) or the guide's info
    names; one is drawn per fault (uniformly). NoError (0x0) is not an error.
``correlated``
    true: every chosen station gets the same code at ``at`` and keeps it for the same
    duration (a DEM outage seen by a whole site). false (default): independent faults.
``rate``
    Independent storms only (required): faults per second over the storm's stations,
    Poisson arrivals. A station already carrying a storm fault on that connector is
    skipped. The run's ``--fleet-fault-rate`` (faults per station per hour, in
    ``fleet.overrides["fault_rate"]``) replaces it for every independent storm.
``window``
    Independent storms only: seconds during which faults arrive (default: the whole run).
``connector``
    0 or 1: report on this connector instead of the catalogue's (fleet.model.faults).

Times are model seconds (divided by the fleet's ``time_compression``, if any). Timers
run on the fleet's loop with ``call_later``: one per storm start, one for the next
arrival of an independent storm and one per active fault, never a task per station.
Raised and active faults are counted in ``FleetStats.faults_raised`` /
``faults_active`` by vendor code.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fleet.model.faults import UnknownVendorError, VendorError, lookup

__all__ = ["FaultPlan", "Storm", "StormDirector", "parse", "start"]

_FIELDS = {"at", "duration", "share", "codes", "correlated", "rate", "window", "connector"}


@dataclass(frozen=True, slots=True)
class Storm:
    at: float
    duration: tuple[float, float]
    share: float
    codes: tuple[VendorError, ...]
    correlated: bool = False
    rate: float | None = None
    window: float | None = None
    connector: int | None = None

    def connector_for(self, error: VendorError) -> int:
        return self.connector if self.connector is not None else error.behaviour.connector


@dataclass(frozen=True, slots=True)
class FaultPlan:
    storms: tuple[Storm, ...]


# -- validation ------------------------------------------------------------------------


def parse(reader: Any, value: Any) -> FaultPlan | None:
    """Validate the ``faults`` section (``reader``: the profile's _Reader); None when absent."""
    if value is None:
        return None
    section = reader.mapping(value, "faults", {"storms"})
    storms = section.get("storms")
    if not isinstance(storms, list) or not storms:
        raise reader.fail("faults.storms", "expected a list of storms")
    return FaultPlan(tuple(_storm(reader, s, f"faults.storms.{i}") for i, s in enumerate(storms)))


def _storm(reader: Any, value: Any, where: str) -> Storm:
    if not isinstance(value, dict):
        raise reader.fail(where, f"expected a mapping, got {type(value).__name__}")
    item = reader.mapping(value, where, _FIELDS)
    if "duration" not in item:
        raise reader.fail(where, "missing field 'duration'")
    duration = reader.range(item["duration"], f"{where}.duration", (0.0, 0.0))
    if duration[0] <= 0:
        raise reader.fail(f"{where}.duration", "must be > 0 seconds")
    share = reader.number(item.get("share", 1.0), f"{where}.share", 0.0, 1.0)
    if share <= 0:
        raise reader.fail(f"{where}.share", "must be > 0")
    correlated = item.get("correlated", False)
    if not isinstance(correlated, bool):
        raise reader.fail(f"{where}.correlated", "expected true or false")
    rate = window = None
    if correlated:
        for name in ("rate", "window"):
            if name in item:
                raise reader.fail(
                    f"{where}.{name}", "only for independent storms (correlated: false)"
                )
    else:
        if "rate" not in item:
            raise reader.fail(where, "missing field 'rate' (faults per second, fleet-wide)")
        rate = reader.number(item["rate"], f"{where}.rate", 0.0)
        if rate <= 0:
            raise reader.fail(f"{where}.rate", "must be > 0")
        if "window" in item:
            window = reader.number(item["window"], f"{where}.window", 0.0)
            if window <= 0:
                raise reader.fail(f"{where}.window", "must be > 0")
    connector = item.get("connector")
    if connector is not None and (isinstance(connector, bool) or connector not in (0, 1)):
        raise reader.fail(f"{where}.connector", f"must be 0 or 1, got {connector!r}")
    return Storm(
        at=reader.number(item.get("at", 0.0), f"{where}.at", 0.0),
        duration=duration,
        share=share,
        codes=_codes(reader, item.get("codes"), f"{where}.codes"),
        correlated=correlated,
        rate=rate,
        window=window,
        connector=connector,
    )


def _codes(reader: Any, value: Any, where: str) -> tuple[VendorError, ...]:
    if not isinstance(value, list) or not value:
        raise reader.fail(where, "expected a list of vendor error codes, e.g. [0x30000B]")
    out = []
    for i, code in enumerate(value):
        here = f"{where}.{i}"
        if isinstance(code, bool) or not isinstance(code, int | str):
            raise reader.fail(here, f"expected a vendor error code such as 0x30000B, got {code!r}")
        # YAML reads 0x30000B as the number 3145739: give it back its hex spelling.
        name = f"0x{code:X}" if isinstance(code, int) else code
        try:
            error = lookup(name)
        except UnknownVendorError as exc:
            raise reader.fail(here, str(exc)) from None
        if not error.is_error:
            raise reader.fail(here, f"{error.vendor_code} (NoError) is not an error")
        out.append(error)
    return tuple(out)


# -- running ---------------------------------------------------------------------------


class StormDirector:
    """Runs a plan's storms on the fleet's loop (loop thread only)."""

    def __init__(self, fleet: Any, plan: FaultPlan, rng: Any) -> None:
        self.fleet = fleet
        self.plan = plan
        self.rng = rng
        self.busy: set[tuple[str, int]] = set()  # (station id, connector) with a storm fault
        self.handles: set[asyncio.TimerHandle] = set()
        self.stopped = False

    def start(self) -> None:
        for storm in self.plan.storms:
            self._later(storm.at, self._begin, storm)

    def stop(self) -> None:
        """Cancel what is scheduled (active faults stay raised)."""
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

    def _begin(self, storm: Storm) -> None:
        ids = sorted(self.fleet.links)
        if not ids:
            return
        count = min(len(ids), max(1, round(storm.share * len(ids))))
        chosen = self.rng.sample(ids, count)
        if storm.correlated:
            error = self.rng.choice(storm.codes)
            duration = self.rng.uniform(*storm.duration)
            for sid in chosen:
                self._raise(sid, error, storm.connector_for(error), duration)
            return
        assert storm.rate is not None
        end = (
            math.inf if storm.window is None else self.fleet.loop.time() + self._real(storm.window)
        )
        self._next_arrival(storm, chosen, end)

    def rate(self, storm: Storm, pool: list[str]) -> float:
        """Faults per (model) second of an independent storm: the profile's ``rate``, or
        the run's ``fault_rate`` override (``--fleet-fault-rate``: faults per station per
        hour, over the storm's stations)."""
        override = getattr(self.fleet, "overrides", {}).get("fault_rate")
        if override is not None and override >= 0:
            return float(override) * len(pool) / 3600.0
        assert storm.rate is not None
        return storm.rate

    def _next_arrival(self, storm: Storm, pool: list[str], end: float) -> None:
        rate = self.rate(storm, pool)
        if rate > 0:
            self._later(self.rng.expovariate(rate), self._arrive, storm, pool, end)

    def _arrive(self, storm: Storm, pool: list[str], end: float) -> None:
        if self.fleet.loop.time() > end:
            return
        error = self.rng.choice(storm.codes)
        cid = storm.connector_for(error)
        free = [s for s in pool if (s, cid) not in self.busy and s in self.fleet.links]
        if free:
            self._raise(self.rng.choice(free), error, cid, self.rng.uniform(*storm.duration))
        self._next_arrival(storm, pool, end)

    def _raise(self, sid: str, error: VendorError, cid: int, duration: float) -> None:
        link = self.fleet.links.get(sid)
        if link is None or (sid, cid) in self.busy:
            return
        self.busy.add((sid, cid))
        stats = self.fleet.stats
        stats.faults_raised[error.vendor_code] += 1
        stats.faults_active[error.vendor_code] += 1
        link.storm_faults.append(error.vendor_code)  # a station that stops takes it out
        link.hardware(lambda now: link.station.raise_fault(error, now, connector_id=cid))
        self._later(duration, self._clear, link, sid, error, cid)

    def _clear(self, link: Any, sid: str, error: VendorError, cid: int) -> None:
        self.busy.discard((sid, cid))
        if error.vendor_code in link.storm_faults:  # not if the station stopped since
            link.storm_faults.remove(error.vendor_code)
            self.fleet.stats.faults_active[error.vendor_code] -= 1
        # The station may have been powered off and come back on a new link since.
        link = self.fleet.links.get(sid, link)
        fault = link.station.connectors[cid].fault
        if fault is not None and fault.vendor_error_code == error.vendor_code:
            link.hardware(lambda now: link.station.clear_fault(now, connector_id=cid))


def start(fleet: Any, plan: FaultPlan | None, rng: Any) -> StormDirector | None:
    """Run the plan on the fleet's loop (call on the loop thread); None without storms."""
    if plan is None:
        return None
    director = StormDirector(fleet, plan, rng)
    director.start()
    return director
