"""The station's meter and the EV on the other end of the cable.

Power is piecewise constant between events, so energy is integrated lazily:
whenever something changes (or a sample is taken) the meter first integrates up
to ``now`` with the old currents, then takes the new ones. That keeps the model
exact without a periodic tick per station.
"""

from __future__ import annotations

from dataclasses import dataclass

NOMINAL_VOLTAGE = 230.0
"""Phase-to-neutral volts (and phase-to-phase on an IT grid), as in Europe."""

MIN_CHARGING_CURRENT = 6.0
"""IEC 61851: below 6 A a Mode 3 EV cannot charge, so the station suspends."""

# PhasesConnection (guide, vendor key table): which grid lines the connector uses.
# Tri/mono values name the line order; IT wiring feeds one phase across two lines.
WIRING: dict[int, tuple[tuple[int, ...], bool]] = {
    1: ((0, 1, 2), False),  # Tri123
    2: ((1, 2, 0), False),  # Tri231
    3: ((2, 0, 1), False),  # Tri312
    4: ((0,), False),  # Mono1
    5: ((1,), False),  # Mono2
    6: ((2,), False),  # Mono3
    7: ((0, 1), True),  # IT12
    8: ((1, 2), True),  # IT23
    9: ((2, 0), True),  # IT31
    10: ((2, 0), True),  # IT312: single phase between L3 and L1 on a 3-line IT grid
    11: ((1, 0), True),  # IT213: single phase between L2 and L1 on a 3-line IT grid
}


@dataclass(slots=True)
class EvModel:
    """A simple EV: how much it can take and how full it is."""

    battery_wh: float = 60_000.0
    max_current: float = 32.0
    phases: int = 3
    soc: float = 0.3
    target_soc: float = 1.0

    @property
    def full(self) -> bool:
        return self.soc >= self.target_soc


class Meter:
    """Energy register (Wh, monotonic for the life of the station) and line currents."""

    __slots__ = ("currents", "energy_wh", "offered", "power_w", "since")

    def __init__(self, energy_wh: float = 0.0, now: float = 0.0) -> None:
        self.energy_wh = energy_wh
        self.offered = 0.0
        self.currents = (0.0, 0.0, 0.0)
        self.power_w = 0.0
        self.since = now  # when energy was last integrated

    def integrate(self, now: float) -> float:
        """Advance the register to ``now``; return the Wh added."""
        dt = now - self.since
        self.since = now
        if dt <= 0.0 or self.power_w == 0.0:
            return 0.0
        added = self.power_w * dt / 3600.0
        self.energy_wh += added
        return added

    def draw(self, current: float, wiring: int, ev_phases: int) -> None:
        """Set what the EV draws now (call integrate() first)."""
        lines, it_grid = WIRING.get(wiring, WIRING[1])
        if current <= 0.0:
            self.currents = (0.0, 0.0, 0.0)
            self.power_w = 0.0
            return
        if it_grid:
            used = lines  # one phase across two lines: the same current on both
            self.power_w = current * NOMINAL_VOLTAGE
        else:
            used = lines[: max(1, min(ev_phases, len(lines)))]
            self.power_w = current * NOMINAL_VOLTAGE * len(used)
        self.currents = (
            current if 0 in used else 0.0,
            current if 1 in used else 0.0,
            current if 2 in used else 0.0,
        )
