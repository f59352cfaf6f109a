"""Fault storms: vendor errors raised on a share of the fleet, then recovery.

A profile's ``faults:`` section lists storms, and switches on the detections the guide
ships disabled::

    faults:
      # GroundFailure, WeakSignal and Front cover opened are "disabled by default" on the
      # Charge Pro: a storm may raise them only once they are listed here.
      enable: [GroundFailure]
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
    condition ends and the station reports the recovery (errorCode NoError). That is for
    the codes the catalogue says clear by themselves (``AUTO``): a fault latched until a
    power cycle stays until the station loses power (a ``power`` outage), one that stays
    until repaired stays until ``repair_after``; no timer clears either.
``repair_after``
    Seconds (a number or ``[min, max]``) until a technician repairs a fault that stays
    until repaired (``STAYS`` in fleet.model.faults); without it such faults stay for
    the rest of the run. Only for storms with such a code.
``share``
    Share of the stations running at ``at`` the storm may hit (0 < share <= 1, default
    1; at least one station).
``codes``
    Vendor error codes (``0x30000B``, a hex number or a string) or the guide's info
    names; one is drawn per fault (uniformly). NoError (0x0) is not an error; a
    detection disabled by default must be listed in ``faults.enable``.
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

import math
from dataclasses import dataclass
from typing import Any

from fleet.model.faults import (
    AUTO,
    DISABLED_BY_DEFAULT,
    STAYS,
    UnknownVendorError,
    VendorError,
    enabled_codes,
    lookup,
)
from fleet.scenarios.director import Director, common_fields

__all__ = ["FaultPlan", "Storm", "StormDirector", "parse", "start"]

_FIELDS = {
    "at",
    "duration",
    "share",
    "codes",
    "correlated",
    "rate",
    "window",
    "connector",
    "repair_after",
}


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
    repair_after: tuple[float, float] | None = None

    def connector_for(self, error: VendorError) -> int:
        return self.connector if self.connector is not None else error.behaviour.connector


@dataclass(frozen=True, slots=True)
class FaultPlan:
    storms: tuple[Storm, ...]
    enabled: frozenset[str] = frozenset()
    """Vendor codes of the disabled-by-default detections the profile switches on."""


# -- validation ------------------------------------------------------------------------


def parse(reader: Any, value: Any) -> FaultPlan | None:
    """Validate the ``faults`` section (``reader``: the profile's _Reader); None when absent."""
    if value is None:
        return None
    section = reader.mapping(value, "faults", {"storms", "enable"})
    enabled = _enabled(reader, section.get("enable", []))
    storms = section.get("storms")
    if storms is None and "enable" in section:
        return FaultPlan((), enabled)
    if not isinstance(storms, list) or not storms:
        raise reader.fail("faults.storms", "expected a list of storms")
    return FaultPlan(
        tuple(_storm(reader, s, f"faults.storms.{i}", enabled) for i, s in enumerate(storms)),
        enabled,
    )


def _enabled(reader: Any, value: Any) -> frozenset[str]:
    if not isinstance(value, list):
        raise reader.fail("faults.enable", "expected a list of vendor codes or names")
    out: set[str] = set()
    for i, code in enumerate(value):
        try:
            out |= enabled_codes([_code_name(reader, code, f"faults.enable.{i}")])
        except (UnknownVendorError, ValueError) as exc:
            raise reader.fail(f"faults.enable.{i}", str(exc)) from None
    return frozenset(out)


def _code_name(reader: Any, code: Any, where: str) -> str:
    if isinstance(code, bool) or not isinstance(code, int | str):
        raise reader.fail(where, f"expected a vendor error code such as 0x30000B, got {code!r}")
    # YAML reads 0x30000B as the number 3145739: give it back its hex spelling.
    return f"0x{code:X}" if isinstance(code, int) else code


def _storm(reader: Any, value: Any, where: str, enabled: frozenset[str]) -> Storm:
    item, common = common_fields(reader, value, where, _FIELDS)
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
    codes = _codes(reader, item.get("codes"), f"{where}.codes", enabled)
    repair_after = None
    if "repair_after" in item:
        if not any(e.behaviour.clears == STAYS for e in codes):
            raise reader.fail(
                f"{where}.repair_after", "only for faults that stay until repaired (none in codes)"
            )
        repair_after = reader.range(item["repair_after"], f"{where}.repair_after", (0.0, 0.0))
        if repair_after[0] <= 0:
            raise reader.fail(f"{where}.repair_after", "must be > 0 seconds")
    return Storm(
        at=common.at,
        duration=common.duration,
        share=common.share,
        codes=codes,
        correlated=correlated,
        rate=rate,
        window=window,
        connector=connector,
        repair_after=repair_after,
    )


def _codes(reader: Any, value: Any, where: str, enabled: frozenset[str]) -> tuple[VendorError, ...]:
    if not isinstance(value, list) or not value:
        raise reader.fail(where, "expected a list of vendor error codes, e.g. [0x30000B]")
    out = []
    for i, code in enumerate(value):
        here = f"{where}.{i}"
        try:
            error = lookup(_code_name(reader, code, here))
        except UnknownVendorError as exc:
            raise reader.fail(here, str(exc)) from None
        if not error.is_error:
            raise reader.fail(here, f"{error.vendor_code} (NoError) is not an error")
        if error.vendor_code in DISABLED_BY_DEFAULT and error.vendor_code not in enabled:
            raise reader.fail(
                here,
                f"{error.vendor_code} ({error.info}) is disabled by default on the Charge Pro: "
                "list it in faults.enable to raise it",
            )
        out.append(error)
    return tuple(out)


# -- running ---------------------------------------------------------------------------


class StormDirector(Director):
    """Runs a plan's storms on the fleet's loop (loop thread only)."""

    def __init__(self, fleet: Any, plan: FaultPlan, rng: Any) -> None:
        super().__init__(fleet, rng, plan.storms)
        self.plan = plan
        self.busy: set[tuple[str, int]] = set()  # (station id, connector) with a storm fault

    def _begin(self, storm: Storm) -> None:
        chosen = self._pick(storm.share)
        if not chosen:
            return
        if storm.correlated:
            error = self.rng.choice(storm.codes)
            duration = self.rng.uniform(*storm.duration)
            for sid in chosen:
                self._raise(sid, error, storm.connector_for(error), duration, storm)
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
            sid = self.rng.choice(free)
            self._raise(sid, error, cid, self.rng.uniform(*storm.duration), storm)
        self._next_arrival(storm, pool, end)

    def _raise(self, sid: str, error: VendorError, cid: int, duration: float, storm: Storm) -> None:
        """Raise ``error``; it ends as the catalogue says: an AUTO one after ``duration``,
        a STAYS one at the storm's ``repair_after`` (if any), a latched one at the next
        power cycle. ``duration`` also paces the check that notices the latter two gone."""
        link = self.fleet.links.get(sid)
        if link is None or (sid, cid) in self.busy:
            return
        self.busy.add((sid, cid))
        stats = self.fleet.stats
        stats.faults_raised[error.vendor_code] += 1
        stats.faults_active[error.vendor_code] += 1
        link.storm_faults.append(error.vendor_code)  # a station that stops takes it out
        link.hardware(lambda now: link.station.raise_fault(error, now, connector_id=cid))
        clears = error.behaviour.clears
        if clears == AUTO:
            self._later(duration, self._clear, link, sid, error, cid)
            return
        if clears == STAYS and storm.repair_after is not None:
            self._later(self.rng.uniform(*storm.repair_after), self._clear, link, sid, error, cid)
            return
        self._later(duration, self._watch, link, sid, error, cid, duration)

    def _active(self, link: Any, error: VendorError, cid: int) -> bool:
        fault = link.station.connectors[cid].fault
        return fault is not None and fault.vendor_error_code == error.vendor_code

    def _watch(self, link: Any, sid: str, error: VendorError, cid: int, every: float) -> None:
        """A fault no timer clears: count it active until something else (a power cycle,
        a repair) has cleared it on the station."""
        if self._active(link, error, cid) and self.fleet.links.get(sid) is link:
            self._later(every, self._watch, link, sid, error, cid, every)
            return
        self.busy.discard((sid, cid))
        self._uncount(link, error)

    def _uncount(self, link: Any, error: VendorError) -> None:
        """The storm's fault leaves the live gauge, unless it already did when its station
        stopped (a stopped station's faults are not live)."""
        if error.vendor_code in link.storm_faults:
            link.storm_faults.remove(error.vendor_code)
            self.fleet.stats.faults_active[error.vendor_code] -= 1

    def _clear(self, link: Any, sid: str, error: VendorError, cid: int) -> None:
        self.busy.discard((sid, cid))
        self._uncount(link, error)
        # The station may have been powered off and come back on a new link since.
        link = self.fleet.links.get(sid, link)
        if self._active(link, error, cid):
            link.hardware(lambda now: link.station.clear_fault(now, connector_id=cid))


def start(fleet: Any, plan: FaultPlan | None, rng: Any) -> StormDirector | None:
    """Run the plan on the fleet's loop (call on the loop thread); None without storms."""
    if plan is None:
        return None
    director = StormDirector(fleet, plan, rng)
    director.start()
    return director
