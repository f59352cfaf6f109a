"""The energy meter and the EV on the cable (fleet.model.meter)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fleet.model.meter import NOMINAL_VOLTAGE, EvModel, Meter

T0 = 1_700_000_000.0

# PhasesConnection (guide, vendor keys): 1 Tri123, 2 Tri231, 3 Tri312, 4 Mono1,
# 5 Mono2, 6 Mono3, 7 IT12, 8 IT23, 9 IT31, 10 IT312, 11 IT213. For each: the grid
# lines (L1, L2, L3) that carry current when the EV draws 10 A, for a three-phase,
# a two-phase and a single-phase EV, and the power in W.
#   Tri: the EV's phases 1, 2, 3 go to the lines in the order named.
#   Mono: one line and neutral, whatever the EV could take.
#   IT: no neutral; one 230 V phase across two lines, the same current on both.
#   IT312 and IT213 are read as L3-L1 and L2-L1 (the model's documented choice).
WIRING_TABLE: dict[int, tuple[str, dict[int, tuple[tuple[float, float, float], float]]]] = {
    1: ("Tri123", {3: ((10, 10, 10), 6900), 2: ((10, 10, 0), 4600), 1: ((10, 0, 0), 2300)}),
    2: ("Tri231", {3: ((10, 10, 10), 6900), 2: ((0, 10, 10), 4600), 1: ((0, 10, 0), 2300)}),
    3: ("Tri312", {3: ((10, 10, 10), 6900), 2: ((10, 0, 10), 4600), 1: ((0, 0, 10), 2300)}),
    4: ("Mono1", {3: ((10, 0, 0), 2300), 2: ((10, 0, 0), 2300), 1: ((10, 0, 0), 2300)}),
    5: ("Mono2", {3: ((0, 10, 0), 2300), 2: ((0, 10, 0), 2300), 1: ((0, 10, 0), 2300)}),
    6: ("Mono3", {3: ((0, 0, 10), 2300), 2: ((0, 0, 10), 2300), 1: ((0, 0, 10), 2300)}),
    7: ("IT12", {3: ((10, 10, 0), 2300), 2: ((10, 10, 0), 2300), 1: ((10, 10, 0), 2300)}),
    8: ("IT23", {3: ((0, 10, 10), 2300), 2: ((0, 10, 10), 2300), 1: ((0, 10, 10), 2300)}),
    9: ("IT31", {3: ((10, 0, 10), 2300), 2: ((10, 0, 10), 2300), 1: ((10, 0, 10), 2300)}),
    10: ("IT312", {3: ((10, 0, 10), 2300), 2: ((10, 0, 10), 2300), 1: ((10, 0, 10), 2300)}),
    11: ("IT213", {3: ((10, 10, 0), 2300), 2: ((10, 10, 0), 2300), 1: ((10, 10, 0), 2300)}),
}


def expected_power(current: float, wiring: int, ev_phases: int) -> float:
    return WIRING_TABLE[wiring][1][ev_phases][1] * current / 10.0


def test_the_table_covers_every_phases_connection_value() -> None:
    assert sorted(WIRING_TABLE) == list(range(1, 12))


@pytest.mark.parametrize("ev_phases", [3, 2, 1])
@pytest.mark.parametrize("wiring", sorted(WIRING_TABLE))
def test_wiring(wiring: int, ev_phases: int) -> None:
    currents, power = WIRING_TABLE[wiring][1][ev_phases]
    m = Meter(0.0, T0)
    m.draw(10.0, wiring, ev_phases)
    assert m.currents == currents
    assert m.power_w == power
    assert m.integrate(T0 + 3600) == pytest.approx(power)  # one hour: Wh == W


@pytest.mark.parametrize("wiring", sorted(WIRING_TABLE))
def test_no_current_means_no_power_whatever_the_wiring(wiring: int) -> None:
    m = Meter(100.0, T0)
    m.draw(16.0, wiring, 3)
    m.integrate(T0 + 10)
    m.draw(0.0, wiring, 3)
    assert m.currents == (0.0, 0.0, 0.0) and m.power_w == 0.0
    before = m.energy_wh
    assert m.integrate(T0 + 1000) == 0.0
    assert m.energy_wh == before


def test_energy_is_the_integral_of_power() -> None:
    m = Meter(0.0, T0)
    m.draw(32.0, 1, 3)
    assert m.power_w == 32 * 3 * NOMINAL_VOLTAGE == 22_080
    assert m.integrate(T0 + 600) == 3680.0  # 32 A x 3 x 230 V for 600 s, exactly
    assert m.energy_wh == 3680.0


def test_integrating_in_small_steps_gives_the_same_energy() -> None:
    whole, steps = Meter(0.0, T0), Meter(0.0, T0)
    for m in (whole, steps):
        m.draw(32.0, 1, 3)
    whole.integrate(T0 + 600)
    for k in range(1, 601):
        steps.integrate(T0 + k)
    assert steps.energy_wh == pytest.approx(whole.energy_wh, rel=1e-12)


def test_a_change_of_current_applies_from_the_last_integration_on() -> None:
    m = Meter(1000.0, T0)
    m.integrate(T0 + 100)  # nothing drawn yet: nothing added, but the clock moves
    assert m.energy_wh == 1000.0
    m.draw(32.0, 1, 3)
    m.integrate(T0 + 160)
    assert m.energy_wh == 1000.0 + 368.0
    m.draw(16.0, 4, 3)  # Mono1: 3680 W
    m.integrate(T0 + 220)
    assert m.energy_wh == pytest.approx(1000.0 + 368.0 + 61.333333333)


def test_integrating_twice_at_the_same_time_adds_nothing() -> None:
    m = Meter(0.0, T0)
    m.draw(32.0, 1, 3)
    m.integrate(T0 + 10)
    assert m.integrate(T0 + 10) == 0.0


SEGMENTS = st.lists(
    st.tuples(
        st.floats(0.0, 7200.0, allow_nan=False),  # seconds at this draw
        st.floats(0.0, 80.0, allow_nan=False),  # amps
        st.integers(1, 11),  # PhasesConnection
        st.integers(1, 3),  # EV phases
    ),
    max_size=30,
)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(start=st.floats(0.0, 1e6), segments=SEGMENTS)
def test_register_is_monotonic_and_exact(
    start: float, segments: list[tuple[float, float, int, int]]
) -> None:
    m = Meter(start, T0)
    now, expected, previous = T0, start, start
    for seconds, current, wiring, phases in segments:
        m.draw(current, wiring, phases)
        later = now + seconds
        elapsed, now = later - now, later  # what the clock can tell apart at T0
        added = m.integrate(now)
        assert added >= 0.0
        assert m.energy_wh >= previous
        assert m.energy_wh == pytest.approx(previous + added)
        previous = m.energy_wh
        expected += expected_power(current, wiring, phases) * elapsed / 3600.0
    assert math.isclose(m.energy_wh, expected, rel_tol=1e-9, abs_tol=1e-6)


def test_ev_is_full_at_its_target_soc() -> None:
    ev = EvModel(soc=0.79, target_soc=0.8)
    assert not ev.full
    ev.soc = 0.8
    assert ev.full
    assert EvModel(soc=1.0).full


@pytest.mark.parametrize(
    "seconds",
    [
        # Within one second, the next, back in time (a clock set back), a jump of years.
        [0.0, 0.25, 0.999, 1.0, 1.001, 0.5, 86_400 * 400 + 0.042, 59.9999],
        [12.5, 12.5, 13.0, 12.999, 3_600.0],
    ],
)
def test_timestamps_are_the_second_and_millisecond_of_each_time(seconds: list[float]) -> None:
    """iso8601 keeps the text of the last second it formatted: each timestamp must still
    be its own second's, whatever order the times come in."""
    from datetime import UTC, datetime

    from fleet.model.records import iso8601

    for offset in seconds:
        now = T0 + offset
        whole = int(now)
        expected = datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        assert iso8601(now) == f"{expected}.{int((now - whole) * 1000):03d}Z"


def test_sampled_values_follow_the_measurands_asked_for_each_time() -> None:
    """Each MeterValuesSampledData list gives its own values, in its order, whichever
    list came before (meter_value keeps a plan per list)."""
    from types import SimpleNamespace

    from fleet.model.features.metering import ENERGY, meter_value

    meter = Meter(12_345.6, T0)
    meter.offered = 32.0
    meter.currents = (16.0, 8.0, 0.0)
    st = SimpleNamespace(meter=meter)

    def sample(*measurands: str) -> list[tuple[str, str | None, str, str]]:
        value = meter_value(st, T0 + 1.5, "Sample.Periodic", measurands)  # type: ignore[arg-type]
        assert value["timestamp"].endswith(".500Z")
        return [
            (s["measurand"], s.get("phase"), s["value"], s["unit"]) for s in value["sampledValue"]
        ]

    all_of_them = [
        (ENERGY, None, "12345", "Wh"),
        ("Current.Import", "L1", "16.0", "A"),
        ("Current.Import", "L2", "8.0", "A"),
        ("Current.Import", "L3", "0.0", "A"),
        ("Current.Offered", None, "32.0", "A"),
    ]
    assert sample(ENERGY, "Current.Import", "Current.Offered") == all_of_them
    assert sample("Current.Offered", "Current.Import.L2") == [
        ("Current.Offered", None, "32.0", "A"),
        ("Current.Import", "L2", "8.0", "A"),
    ]
    assert sample("Current.Import.L3", ENERGY) == [
        ("Current.Import", "L3", "0.0", "A"),
        (ENERGY, None, "12345", "Wh"),
    ]
    assert sample() == []
    meter.energy_wh = 20_000.9
    assert sample(ENERGY, "Current.Import", "Current.Offered")[0] == (ENERGY, None, "20000", "Wh")
