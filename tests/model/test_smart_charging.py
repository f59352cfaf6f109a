"""Composite schedules: hand-computed tables, and properties against a brute force."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fleet.model.smart_charging import (
    CHARGE_POINT_MAX,
    TX,
    TX_DEFAULT,
    Limits,
    ProfileRejected,
    SmartCharging,
    parse_profile,
)

MONDAY = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday, 00:00 UTC
T = MONDAY.timestamp()
BOTH = Limits(allowed_units=("Current", "Power"))
CEIL = 32.0


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def profile(
    pid: int,
    periods: list[tuple[int, float]],
    *,
    purpose: str = TX_DEFAULT,
    stack: int = 0,
    kind: str = "Absolute",
    start: float | None = T,
    duration: int | None = None,
    recurrency: str | None = None,
    valid_from: float | None = None,
    valid_to: float | None = None,
    unit: str = "A",
    tx: int | None = None,
) -> dict[str, Any]:
    schedule: dict[str, Any] = {
        "chargingRateUnit": unit,
        "chargingSchedulePeriod": [{"startPeriod": s, "limit": lim} for s, lim in periods],
    }
    if start is not None:
        schedule["startSchedule"] = iso(start)
    if duration is not None:
        schedule["duration"] = duration
    raw: dict[str, Any] = {
        "chargingProfileId": pid,
        "stackLevel": stack,
        "chargingProfilePurpose": purpose,
        "chargingProfileKind": kind,
        "chargingSchedule": schedule,
    }
    if recurrency:
        raw["recurrencyKind"] = recurrency
    if valid_from is not None:
        raw["validFrom"] = iso(valid_from)
    if valid_to is not None:
        raw["validTo"] = iso(valid_to)
    if tx is not None:
        raw["transactionId"] = tx
    return raw


def installed(*raws: tuple[int, dict[str, Any]], limits: Limits = BOTH) -> SmartCharging:
    sc = SmartCharging()
    for connector, raw in raws:
        sc.install(parse_profile(connector, raw, T, limits), limits)
    return sc


def composite(sc: SmartCharging, start: float, duration: int, **kw: Any) -> list[tuple[int, float]]:
    args: dict[str, Any] = {
        "unit": "A",
        "phases": 3,
        "tx_start": None,
        "transaction_id": None,
        "ceiling": CEIL,
    }
    args.update(kw)
    return sc.composite(start, duration, 1, **args)


# -- hand-computed tables ---------------------------------------------------------------


def test_absolute_with_duration() -> None:
    sc = installed((1, profile(1, [(0, 16), (3600, 10)], duration=7200)))
    assert composite(sc, T, 10_800) == [(0, 16), (3600, 10), (7200, CEIL)]


def test_daily_recurrence_across_midnight() -> None:
    # Every day 22:00-04:00: 8 A until midnight, then 20 A.
    sc = installed(
        (
            1,
            profile(
                1,
                [(0, 8), (7200, 20)],
                kind="Recurring",
                recurrency="Daily",
                start=T - 2 * 3600,
                duration=6 * 3600,
            ),
        ),
    )
    start = T + 21 * 3600  # Monday 21:00, for 9 hours (to Tuesday 06:00)
    assert composite(sc, start, 9 * 3600) == [
        (0, CEIL),  # 21:00 no profile
        (3600, 8),  # 22:00
        (3 * 3600, 20),  # 00:00
        (7 * 3600, CEIL),  # 04:00 the day's schedule has ended
    ]


def test_weekly_recurrence() -> None:
    # Mondays 08:00-18:00 at 10 A.
    sc = installed(
        (
            1,
            profile(
                1,
                [(0, 10)],
                kind="Recurring",
                recurrency="Weekly",
                start=T + 8 * 3600 - 7 * 86_400,
                duration=10 * 3600,
            ),
        ),
    )
    start = T - 86_400  # Sunday 00:00, for two days
    assert composite(sc, start, 2 * 86_400) == [(0, CEIL), (32 * 3600, 10), (42 * 3600, CEIL)]


def test_validity_window_inside_the_requested_window() -> None:
    sc = installed((1, profile(1, [(0, 12)], valid_from=T + 600, valid_to=T + 1800)))
    assert composite(sc, T, 3600) == [(0, CEIL), (600, 12), (1800, CEIL)]


def test_relative_schedule_starts_at_transaction_start() -> None:
    sc = installed((1, profile(1, [(0, 6), (600, 16)], kind="Relative", start=None)))
    assert composite(sc, T, 1200, tx_start=T - 300, transaction_id=7) == [(0, 6), (300, 16)]


def test_three_stack_levels_and_a_charge_point_max_cap() -> None:
    base = profile(1, [(0, 32)], stack=0)
    middle = profile(2, [(0, 20)], stack=1, valid_from=T + 100, valid_to=T + 500)
    top = profile(3, [(0, 10)], stack=2, start=T + 300, duration=200)
    sc = installed((1, base), (1, middle), (1, top))
    assert composite(sc, T, 1000) == [(0, 32), (100, 20), (300, 10), (500, 32)]
    sc.install(parse_profile(0, profile(4, [(0, 16)], purpose=CHARGE_POINT_MAX), T, BOTH), BOTH)
    assert composite(sc, T, 1000) == [(0, 16), (300, 10), (500, 16)]


def test_tx_profile_overrules_tx_default_even_at_a_lower_stack() -> None:
    sc = installed(
        (1, profile(1, [(0, 10)], stack=5)),
        (1, profile(2, [(0, 25)], purpose=TX, stack=0, tx=42)),
    )
    assert composite(sc, T, 60, tx_start=T, transaction_id=42) == [(0, 25)]
    assert composite(sc, T, 60, tx_start=T, transaction_id=41) == [(0, 10)]  # not its tx
    assert composite(sc, T, 60) == [(0, 10)]  # no transaction: the default applies
    sc.transaction_ended(42)
    assert composite(sc, T, 60, tx_start=T, transaction_id=42) == [(0, 10)]


def test_tx_profile_applies_before_the_csms_has_assigned_the_transaction_id() -> None:
    sc = installed((1, profile(1, [(0, 10)])), (1, profile(2, [(0, 20)], purpose=TX)))
    assert composite(sc, T, 60, tx_start=T, transaction_id=None) == [(0, 20)]


@pytest.mark.parametrize(
    ("wiring_phases", "watts", "amps"), [(3, 7360, 7360 / 690), (1, 7360, 32.0), (1, 2300, 10.0)]
)
def test_power_schedules_convert_with_the_wired_phases(
    wiring_phases: int, watts: float, amps: float
) -> None:
    sc = installed((1, profile(1, [(0, watts)], unit="W")))
    ((_, limit),) = composite(sc, T, 60, phases=wiring_phases, ceiling=1e9)
    assert limit == pytest.approx(amps)
    ((_, in_watts),) = composite(sc, T, 60, unit="W", phases=wiring_phases, ceiling=1e9)
    assert in_watts == pytest.approx(watts)


def test_replacement_by_id_and_by_stack_and_purpose() -> None:
    sc = installed((1, profile(1, [(0, 10)], stack=1)), (1, profile(2, [(0, 12)], stack=2)))
    sc.install(parse_profile(1, profile(1, [(0, 11)], stack=3), T, BOTH), BOTH)  # same id
    assert sorted(sc.profiles) == [1, 2]
    sc.install(parse_profile(1, profile(9, [(0, 8)], stack=2), T, BOTH), BOTH)  # same stack+purpose
    assert sorted(sc.profiles) == [1, 9]


def test_clear_by_criteria() -> None:
    sc = installed(
        (1, profile(1, [(0, 10)], stack=1)),
        (1, profile(2, [(0, 12)], stack=2)),
        (0, profile(3, [(0, 16)], purpose=CHARGE_POINT_MAX)),
    )
    assert not sc.clear(profile_id=99)
    # With an id, that profile goes whatever the other criteria say (OCPP 1.6
    # ClearChargingProfile.req: they apply when no id is given).
    assert sc.clear(profile_id=3, connector_id=1, purpose=TX, stack_level=7)
    sc.install(parse_profile(0, profile(3, [(0, 16)], purpose=CHARGE_POINT_MAX), T, BOTH), BOTH)
    assert sc.clear(purpose=TX_DEFAULT, stack_level=2)
    assert sorted(sc.profiles) == [1, 3]
    assert sc.clear(connector_id=0)
    assert sorted(sc.profiles) == [1]
    assert sc.clear()
    assert not sc.profiles


@pytest.mark.parametrize(
    ("connector", "raw", "limits", "reason"),
    [
        (1, profile(1, [(0, 10)], unit="W"), Limits(), "chargingRateUnit"),
        (1, profile(1, [(0, 10)], stack=201), Limits(), "stackLevel"),
        (1, profile(1, [(i, 10) for i in range(101)]), Limits(), "periods"),
        (1, profile(1, [(0, 10)], purpose=CHARGE_POINT_MAX), Limits(), "connector 0"),
        (0, profile(1, [(0, 10)], purpose=TX), Limits(), "TxProfile"),
        (1, profile(1, [(5, 10)]), Limits(), "startPeriod"),
        (1, profile(1, [(0, 10)], kind="Recurring", recurrency=None), Limits(), "Recurring"),
    ],
)
def test_rejections(connector: int, raw: dict[str, Any], limits: Limits, reason: str) -> None:
    with pytest.raises(ProfileRejected, match=reason):
        parse_profile(connector, raw, T, limits)


def test_number_phases_is_ignored_unless_configured_to_reject() -> None:
    """Guide: numberPhases "Parameter not used": accepted and ignored by default (many
    CSMSs always send it); rejecting it stays available as an option."""
    raw = profile(1, [(0, 10)])
    raw["chargingSchedule"]["chargingSchedulePeriod"][0]["numberPhases"] = 1
    parsed = parse_profile(1, raw, T, Limits())
    assert parse_profile(1, profile(1, [(0, 10)]), T, Limits()).periods == parsed.periods
    with pytest.raises(ProfileRejected, match="numberPhases"):
        parse_profile(1, raw, T, Limits(reject_number_phases=True))


def _with_minimum(raw: dict[str, Any], minimum: float) -> dict[str, Any]:
    raw["chargingSchedule"]["minChargingRate"] = minimum
    return raw


def test_a_limit_below_min_charging_rate_suspends_instead() -> None:
    """OCPP 1.6 ChargingSchedule.minChargingRate: the EV's minimum charging rate. A
    limit under it is not offered (the EV would charge inefficiently, or not at all):
    the station offers 0 and resumes once the limit is back at or above it."""
    sc = installed((1, _with_minimum(profile(1, [(0, 16), (600, 8), (1200, 10)]), 10.0)))
    kw: Any = {"unit": "A", "phases": 3, "tx_start": None, "transaction_id": None}
    assert sc.limit(T + 1, 1, **kw) == 16
    assert sc.limit(T + 700, 1, **kw) == 0.0
    assert sc.limit(T + 1300, 1, **kw) == 10
    steps = sc.composite(T, 1800, 1, ceiling=CEIL, **kw)
    assert steps == [(0, 16), (600, 0.0), (1200, 10)]


def test_min_charging_rate_in_watts_is_converted_and_holds_against_a_cap() -> None:
    """The minimum is in the schedule's unit; a ChargePointMaxProfile capping the
    limit below the EV's minimum suspends too."""
    kw: Any = {"unit": "A", "phases": 3, "tx_start": None, "transaction_id": None}
    # 11040 W on three phases at 230 V is 16 A; minimum 6900 W is 10 A.
    sc = installed((1, _with_minimum(profile(1, [(0, 11040)], unit="W"), 6900)))
    assert sc.limit(T + 1, 1, **kw) == pytest.approx(16)
    sc.install(parse_profile(0, profile(2, [(0, 8)], purpose=CHARGE_POINT_MAX), T, BOTH), BOTH)
    assert sc.limit(T + 1, 1, **kw) == 0.0
    # The composite schedule says the same.
    assert sc.composite(T, 60, 1, ceiling=CEIL, **kw) == [(0, 0.0)]


def test_no_min_charging_rate_keeps_low_limits() -> None:
    sc = installed((1, profile(1, [(0, 3)])))
    kw: Any = {"unit": "A", "phases": 3, "tx_start": None, "transaction_id": None}
    assert sc.limit(T + 1, 1, **kw) == 3


def test_max_installed() -> None:
    limits = Limits(max_installed=2, allowed_units=("Current", "Power"))
    sc = installed((1, profile(1, [(0, 10)], stack=1)), (1, profile(2, [(0, 10)], stack=2)))
    with pytest.raises(ProfileRejected, match="MaxChargingProfilesInstalled"):
        sc.install(parse_profile(1, profile(3, [(0, 10)], stack=3), T, limits), limits)
    sc.install(parse_profile(1, profile(2, [(0, 9)], stack=2), T, limits), limits)  # replaces


def test_next_change() -> None:
    sc = installed((1, profile(1, [(0, 16), (600, 10)], duration=1200)))
    assert sc.next_change(T + 1, 1, tx_start=None, transaction_id=None) == T + 600
    assert sc.next_change(T + 600, 1, tx_start=None, transaction_id=None) == T + 1200
    assert sc.next_change(T + 1200, 1, tx_start=None, transaction_id=None) is None


# -- properties against an independent brute force ---------------------------------------


def naive_limit(raw: dict[str, Any], t: float, tx_start: float) -> float | None:
    """One profile's limit at t, written from the spec text, the slow way."""
    if "validFrom" in raw and t < _ts(raw["validFrom"]):
        return None
    if "validTo" in raw and t >= _ts(raw["validTo"]):
        return None
    sched = raw["chargingSchedule"]
    if raw["chargingProfileKind"] == "Relative":
        start = tx_start
    else:
        start = _ts(sched["startSchedule"])
        if raw["chargingProfileKind"] == "Recurring":
            step = 86_400 if raw["recurrencyKind"] == "Daily" else 604_800
            while start + step <= t:
                start += step
    if t < start:
        return None
    if "duration" in sched and t - start >= sched["duration"]:
        return None
    current = None
    for p in sched["chargingSchedulePeriod"]:
        if start + p["startPeriod"] <= t:
            current = p["limit"]
    return current


def _ts(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


def naive_composite_at(raws: list[tuple[int, dict[str, Any]]], t: float, tx_start: float) -> float:
    def best(purpose: str) -> float | None:
        ranked = sorted(
            (r for _, r in raws if r["chargingProfilePurpose"] == purpose),
            key=lambda r: -r["stackLevel"],
        )
        for r in ranked:
            value = naive_limit(r, t, tx_start)
            if value is not None:
                return float(value)
        return None

    tx = best(TX)
    chosen = tx if tx is not None else best(TX_DEFAULT)
    cap = best(CHARGE_POINT_MAX)
    limits = [v for v in (chosen, cap, CEIL) if v is not None]
    return min(limits)


@st.composite
def profile_sets(draw: st.DrawFn) -> tuple[list[tuple[int, dict[str, Any]]], float, int]:
    window_start = T + draw(st.integers(0, 3 * 86_400))
    raws: list[tuple[int, dict[str, Any]]] = []
    used: set[tuple[str, int]] = set()
    for pid in range(1, draw(st.integers(1, 5)) + 1):
        purpose = draw(st.sampled_from([TX_DEFAULT, TX_DEFAULT, TX, CHARGE_POINT_MAX]))
        stack = draw(st.integers(0, 3))
        if (purpose, stack) in used:
            continue
        used.add((purpose, stack))
        kind = draw(st.sampled_from(["Absolute", "Recurring", "Relative"]))
        n = draw(st.integers(1, 4))
        starts = sorted({0, *draw(st.lists(st.integers(1, 5000), min_size=n - 1, max_size=n - 1))})
        periods = [(s, float(draw(st.integers(0, 40)))) for s in starts]
        start = window_start + draw(st.integers(-90_000, 4000))
        kw: dict[str, Any] = {"purpose": purpose, "stack": stack, "kind": kind}
        kw["start"] = None if kind == "Relative" else start
        if kind == "Recurring":
            kw["recurrency"] = draw(st.sampled_from(["Daily", "Weekly"]))
        if draw(st.booleans()):
            kw["duration"] = draw(st.integers(1, 8000))
        if draw(st.booleans()):
            kw["valid_from"] = window_start + draw(st.integers(-3000, 3000))
        if draw(st.booleans()):
            kw["valid_to"] = window_start + draw(st.integers(1, 6000))
        raws.append((0 if purpose == CHARGE_POINT_MAX else 1, profile(pid, periods, **kw)))
    return raws, window_start, draw(st.integers(1, 3600))


@settings(
    max_examples=120, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(profile_sets())
def test_composite_equals_brute_force_and_is_contiguous(
    case: tuple[list[tuple[int, dict[str, Any]]], float, int],
) -> None:
    raws, start, duration = case
    sc = installed(*raws)
    tx_start = start - 120
    steps = sc.composite(
        start, duration, 1, unit="A", phases=3, tx_start=tx_start, transaction_id=1, ceiling=CEIL
    )
    offsets = [s for s, _ in steps]
    assert offsets[0] == 0 and offsets == sorted(set(offsets)) and offsets[-1] < duration
    assert all(a[1] != b[1] for a, b in itertools.pairwise(steps))  # merged
    caps = [r for _, r in raws if r["chargingProfilePurpose"] == CHARGE_POINT_MAX]
    i = 0
    for k in range(duration):
        while i + 1 < len(steps) and steps[i + 1][0] <= k:
            i += 1
        t = start + k
        expected = naive_composite_at(raws, t, tx_start)
        assert steps[i][1] == pytest.approx(expected), (k, steps)
        assert steps[i][1] <= CEIL
        top_cap = next(
            (
                v
                for r in sorted(caps, key=lambda r: -r["stackLevel"])
                if (v := naive_limit(r, t, tx_start)) is not None
            ),
            None,
        )
        if top_cap is not None:
            assert steps[i][1] <= top_cap + 1e-9


def test_timedelta_sanity() -> None:
    assert iso(T + timedelta(hours=1).total_seconds()) == "2026-01-05T01:00:00Z"
