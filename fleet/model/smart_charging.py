"""Smart charging, sans-I/O: installed charging profiles and what limit applies when.

The rules are OCPP 1.6 section 3.13 and the SetChargingProfile / ClearChargingProfile /
GetCompositeSchedule definitions, restricted to what the Charge Pro guide's Smart
Charging table supports:

* A profile applies only inside ``[validFrom, validTo)``; its schedule starts at
  ``startSchedule`` (Absolute), at the latest daily/weekly recurrence of it (Recurring),
  or at the transaction's start (Relative); it lasts ``duration`` seconds when given.
  Each period holds from its ``startPeriod`` until the next one's.
* Within one purpose the profile with the highest ``stackLevel`` that has a limit at
  that instant wins; where it has none (outside its validity or duration) the next
  lower one shows through. TxProfile overrules TxDefaultProfile. ChargePointMaxProfile
  caps the result.
* Limits in W are converted to A per phase with a nominal voltage and the number of
  phases the station is wired for (``PhasesConnection``): the guide marks the period's
  ``numberPhases`` as "not used", so it is accepted and ignored (many CSMSs always send
  it); ``Limits.reject_number_phases`` restores the guide's "rejected" reading.
* ``minChargingRate`` ("Parameter used") is what OCPP 1.6 defines: the EV's minimum
  charging rate, below which charging is inefficient. A limit below the minimum of a
  profile that shapes it is not offered as such: the station offers 0 (charging is
  suspended) until the limit is back at or above the minimum.

The limit of the composite is a step function of time. Every instant where it can
change is a *breakpoint* (a period start, a schedule end, a recurrence, a validity
bound), so the composite over a window is the limit evaluated at each breakpoint,
with equal neighbours merged: exact, and cheap to evaluate again whenever the
station needs the next change.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fleet.model.meter import NOMINAL_VOLTAGE, WIRING

CHARGE_POINT_MAX = "ChargePointMaxProfile"
TX_DEFAULT = "TxDefaultProfile"
TX = "TxProfile"

_RECURRENCE_SECONDS = {"Daily": 86_400, "Weekly": 7 * 86_400}
_FAR = float("inf")


def parse_time(text: str) -> float:
    """OCPP dateTime (RFC 3339) to Unix seconds."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def wired_phases(phases_connection: int) -> int:
    """How many phases carry current on this wiring (an IT wiring feeds one phase)."""
    lines, it_grid = WIRING.get(phases_connection, WIRING[1])
    return 1 if it_grid else len(lines)


@dataclass(frozen=True, slots=True)
class Period:
    start: int
    limit: float


@dataclass(frozen=True, slots=True)
class ChargingProfile:
    """An installed profile, parsed from the OCPP ``csChargingProfiles`` object."""

    profile_id: int
    connector_id: int
    stack_level: int
    purpose: str
    kind: str
    recurrency: str | None
    valid_from: float | None
    valid_to: float | None
    transaction_id: int | None
    unit: str
    periods: tuple[Period, ...]
    duration: int | None
    start_schedule: float | None
    min_rate: float | None
    installed_at: float

    def schedule_start(self, t: float, tx_start: float | None) -> float | None:
        """Where the schedule in force at ``t`` started, or None if it has not started."""
        if self.kind == "Relative":
            return tx_start
        anchor = self.start_schedule if self.start_schedule is not None else self.installed_at
        if self.kind == "Recurring" and self.recurrency in _RECURRENCE_SECONDS:
            every = _RECURRENCE_SECONDS[self.recurrency]
            if t < anchor:
                return None
            return anchor + math.floor((t - anchor) / every) * every
        return anchor

    def limit_at(self, t: float, tx_start: float | None) -> float | None:
        """This profile's limit at ``t`` in its own unit, or None where it sets none."""
        if self.valid_from is not None and t < self.valid_from:
            return None
        if self.valid_to is not None and t >= self.valid_to:
            return None
        start = self.schedule_start(t, tx_start)
        if start is None or t < start:
            return None
        offset = t - start
        if self.duration is not None and offset >= self.duration:
            return None
        limit = None
        for period in self.periods:
            if period.start <= offset:
                limit = period.limit
            else:
                break
        return limit

    def breakpoints(self, begin: float, end: float, tx_start: float | None) -> Iterator[float]:
        """Every instant in (begin, end) where this profile's limit may change."""
        for bound in (self.valid_from, self.valid_to):
            if bound is not None and begin < bound < end:
                yield bound
        if self.kind == "Recurring" and self.recurrency in _RECURRENCE_SECONDS:
            every = _RECURRENCE_SECONDS[self.recurrency]
            anchor = self.start_schedule if self.start_schedule is not None else self.installed_at
            first = anchor + max(0, math.floor((begin - anchor) / every) - 1) * every
            starts: Iterable[float] = _steps(first, end, every)
        else:
            start = self.schedule_start(begin, tx_start)
            starts = () if start is None else (start,)
        for start in starts:
            for offset in self._offsets():
                t = start + offset
                if begin < t < end:
                    yield t

    def _offsets(self) -> Iterator[float]:
        yield 0.0
        for period in self.periods:
            yield float(period.start)
        if self.duration is not None:
            yield float(self.duration)


def _steps(first: float, end: float, every: int) -> Iterator[float]:
    t = first
    while t < end:
        yield t
        t += every


class ProfileRejected(ValueError):
    """Why a SetChargingProfile is answered Rejected."""


@dataclass(frozen=True, slots=True)
class Limits:
    """What the station's configuration says about profiles."""

    max_stack_level: int = 200
    max_periods: int = 100
    max_installed: int = 200
    allowed_units: tuple[str, ...] = ("Current",)
    reject_number_phases: bool = False


def parse_profile(
    connector_id: int, raw: dict[str, Any], now: float, limits: Limits
) -> ChargingProfile:
    """Check a schema-valid ``csChargingProfiles`` against the Charge Pro; raise ProfileRejected."""
    schedule = raw["chargingSchedule"]
    unit = schedule["chargingRateUnit"]
    if {"A": "Current", "W": "Power"}[unit] not in limits.allowed_units:
        raise ProfileRejected(
            f"chargingRateUnit {unit} not in ChargingScheduleAllowedChargingRateUnit"
        )
    raw_periods = schedule["chargingSchedulePeriod"]
    if len(raw_periods) > limits.max_periods:
        raise ProfileRejected(f"{len(raw_periods)} periods > ChargingScheduleMaxPeriods")
    if limits.reject_number_phases and any("numberPhases" in p for p in raw_periods):
        # The guide: numberPhases "Parameter not used", and "Messages which are
        # containing not supported attributes are rejected by the charging station".
        raise ProfileRejected("numberPhases is not supported by the Charge Pro")
    if raw["stackLevel"] > limits.max_stack_level:
        raise ProfileRejected("stackLevel above ChargeProfileMaxStackLevel")
    starts = [int(p["startPeriod"]) for p in raw_periods]
    if starts != sorted(set(starts)) or starts[0] != 0:
        raise ProfileRejected("startPeriod must start at 0 and increase")
    kind = raw["chargingProfileKind"]
    recurrency = raw.get("recurrencyKind")
    if kind == "Recurring" and (recurrency is None or "startSchedule" not in schedule):
        raise ProfileRejected("a Recurring profile needs recurrencyKind and startSchedule")
    purpose = raw["chargingProfilePurpose"]
    if purpose == CHARGE_POINT_MAX and connector_id != 0:
        raise ProfileRejected("ChargePointMaxProfile is set on connector 0 only")
    if purpose == TX and connector_id == 0:
        raise ProfileRejected("TxProfile is set on a connector, not on connector 0")
    if "minChargingRate" in schedule and schedule["minChargingRate"] < 0:
        raise ProfileRejected("minChargingRate is negative")
    return ChargingProfile(
        profile_id=raw["chargingProfileId"],
        connector_id=connector_id,
        stack_level=raw["stackLevel"],
        purpose=purpose,
        kind=kind,
        recurrency=recurrency if kind == "Recurring" else None,
        valid_from=parse_time(raw["validFrom"]) if "validFrom" in raw else None,
        valid_to=parse_time(raw["validTo"]) if "validTo" in raw else None,
        transaction_id=raw.get("transactionId"),
        unit=unit,
        periods=tuple(
            Period(s, float(p["limit"])) for s, p in zip(starts, raw_periods, strict=True)
        ),
        duration=schedule.get("duration"),
        start_schedule=parse_time(schedule["startSchedule"])
        if "startSchedule" in schedule
        else None,
        min_rate=schedule.get("minChargingRate"),
        installed_at=now,
    )


class SmartCharging:
    """The profiles installed on one station and the limits they impose."""

    __slots__ = ("profiles",)

    def __init__(self) -> None:
        self.profiles: dict[int, ChargingProfile] = {}

    # -- installing and clearing ------------------------------------------------

    def install(self, profile: ChargingProfile, limits: Limits) -> None:
        """Install, replacing a profile with the same id, or with the same stack level
        and purpose on the same connector (OCPP 1.6 3.13.2)."""
        replaced = [
            pid
            for pid, p in self.profiles.items()
            if pid == profile.profile_id
            or (
                p.stack_level == profile.stack_level
                and p.purpose == profile.purpose
                and p.connector_id == profile.connector_id
            )
        ]
        if len(self.profiles) - len(replaced) >= limits.max_installed:
            raise ProfileRejected("MaxChargingProfilesInstalled reached")
        for pid in replaced:
            del self.profiles[pid]
        self.profiles[profile.profile_id] = profile

    def clear(
        self,
        profile_id: int | None = None,
        connector_id: int | None = None,
        purpose: str | None = None,
        stack_level: int | None = None,
    ) -> bool:
        """Remove the profile ``profile_id`` (whatever the other criteria say: OCPP 1.6
        ClearChargingProfile.req uses them only without an id), or else every profile
        matching all the given criteria; True if any was removed."""
        if profile_id is not None:
            return self.profiles.pop(profile_id, None) is not None
        doomed = [
            pid
            for pid, p in self.profiles.items()
            if (connector_id is None or p.connector_id == connector_id)
            and (purpose is None or p.purpose == purpose)
            and (stack_level is None or p.stack_level == stack_level)
        ]
        for pid in doomed:
            del self.profiles[pid]
        return bool(doomed)

    def transaction_ended(self, transaction_id: int | None) -> None:
        """TxProfiles live as long as their transaction."""
        for pid in [pid for pid, p in self.profiles.items() if p.purpose == TX]:
            p = self.profiles[pid]
            if p.transaction_id is None or p.transaction_id == transaction_id:
                del self.profiles[pid]

    # -- evaluating -------------------------------------------------------------

    def _applicable(
        self, connector_id: int, transaction_id: int | None, in_transaction: bool
    ) -> list[ChargingProfile]:
        """The profiles that can limit a connector. A TxProfile needs a running
        transaction (whose CSMS id may not be known yet) and, if it names one, that one."""

        def applies(p: ChargingProfile) -> bool:
            if p.purpose == CHARGE_POINT_MAX:
                return True
            if p.purpose == TX_DEFAULT:
                return p.connector_id in (0, connector_id)
            return (
                in_transaction
                and p.connector_id == connector_id
                and p.transaction_id in (None, transaction_id)
            )

        out = [p for p in self.profiles.values() if applies(p)]
        # Highest stack first; at equal stack a connector's own profile before connector 0's.
        out.sort(key=lambda p: (p.stack_level, p.connector_id), reverse=True)
        return out

    def limit(
        self,
        t: float,
        connector_id: int,
        *,
        unit: str,
        phases: int,
        tx_start: float | None,
        transaction_id: int | None,
        voltage: float = NOMINAL_VOLTAGE,
    ) -> float | None:
        """The limit in ``unit`` at ``t`` on a connector, or None if no profile sets one;
        0 where it is below the ``minChargingRate`` of a profile that shapes it.

        ``tx_start`` is the running transaction's start (None: no transaction): it
        anchors Relative schedules and admits TxProfiles.
        """
        profiles = self._applicable(connector_id, transaction_id, tx_start is not None)
        limit, minimum = self._bounds(profiles, t, unit, phases, tx_start, voltage)
        return None if limit is None else _honour_minimum(limit, minimum)

    @staticmethod
    def _bounds(
        profiles: list[ChargingProfile],
        t: float,
        unit: str,
        phases: int,
        tx_start: float | None,
        voltage: float,
    ) -> tuple[float | None, float]:
        """The limit the profiles set at ``t`` (None: none) and the highest
        ``minChargingRate`` among the profiles that shape it (0: none), in ``unit``."""
        cap: float | None = None
        tx_limit: float | None = None
        default_limit: float | None = None
        minimums = {CHARGE_POINT_MAX: 0.0, TX: 0.0, TX_DEFAULT: 0.0}
        for p in profiles:  # sorted by stack level, highest first
            if p.purpose == CHARGE_POINT_MAX:
                if cap is not None:
                    continue
            elif p.purpose == TX:
                if tx_limit is not None:
                    continue
            elif default_limit is not None:
                continue
            raw = p.limit_at(t, tx_start)
            if raw is None:
                continue
            value = _convert(raw, p.unit, unit, phases, voltage)
            if p.min_rate:
                minimums[p.purpose] = _convert(p.min_rate, p.unit, unit, phases, voltage)
            if p.purpose == CHARGE_POINT_MAX:
                cap = value
            elif p.purpose == TX:
                tx_limit = value
            else:
                default_limit = value
        chosen = tx_limit if tx_limit is not None else default_limit
        minimum = minimums[TX] if tx_limit is not None else minimums[TX_DEFAULT]
        if cap is None:
            return chosen, minimum
        minimum = max(minimum, minimums[CHARGE_POINT_MAX])
        return (cap if chosen is None else min(cap, chosen)), minimum

    def composite(
        self,
        start: float,
        duration: int,
        connector_id: int,
        *,
        unit: str,
        phases: int,
        tx_start: float | None,
        transaction_id: int | None,
        ceiling: float,
        voltage: float = NOMINAL_VOLTAGE,
    ) -> list[tuple[int, float]]:
        """(startPeriod, limit) steps over ``[start, start + duration)``.

        Where no profile sets a limit the station's own ``ceiling`` applies, so the
        composite is always what will actually be offered. Offsets are whole seconds:
        a change at a fractional instant takes effect from the next whole second.
        """
        end = start + duration
        profiles = self._applicable(connector_id, transaction_id, tx_start is not None)
        anchor = tx_start if tx_start is not None else start
        points = {0}
        for p in profiles:
            for t in p.breakpoints(start, end, anchor):
                offset = math.ceil(t - start)
                if 0 < offset < duration:
                    points.add(offset)
        steps: list[tuple[int, float]] = []
        for offset in sorted(points):
            limit, minimum = self._bounds(profiles, start + offset, unit, phases, anchor, voltage)
            value = _honour_minimum(ceiling if limit is None else min(limit, ceiling), minimum)
            if not steps or steps[-1][1] != value:
                steps.append((offset, value))
        return steps

    def next_change(
        self, now: float, connector_id: int, *, tx_start: float | None, transaction_id: int | None
    ) -> float | None:
        """The next instant after ``now`` where the limit on a connector may change."""
        best = _FAR
        for p in self._applicable(connector_id, transaction_id, tx_start is not None):
            for t in p.breakpoints(now, min(best, now + 8 * 86_400), tx_start):
                best = min(best, t)
        return None if best == _FAR else best


def _honour_minimum(limit: float, minimum: float) -> float:
    """A limit below the EV's minimum charging rate suspends charging (0), OCPP 1.6
    ChargingSchedule.minChargingRate; it is never offered as a lower rate."""
    return 0.0 if limit < minimum else limit


def _convert(value: float, src: str, dst: str, phases: int, voltage: float) -> float:
    if src == dst:
        return value
    if src == "W":  # W -> A per phase
        return value / (voltage * phases)
    return value * voltage * phases  # A per phase -> W
