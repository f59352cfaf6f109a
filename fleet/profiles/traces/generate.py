"""Regenerate the sample trace ``commuter-day.csv`` (seeded: the same file every time).

    python profiles/traces/generate.py [--seed 20261124] [--stations 300]

A commuter depot's working day: most EVs arrive between 7:00 and 10:00 and stay about
eight hours, a few come at midday or in the evening for shorter stays. Each row's
energy is what the EV wants, capped at 85 % of what its charger could deliver in the
dwell (at the EV's own rate on a 32 A three-phase Charge Pro, less ten minutes), so a
replay delivers exactly the trace's energy: the EV fills up (SuspendedEV) before the
driver returns.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2]))  # the checkout: fleet/profiles/traces/../../..

from fleet.scenarios.replay import Dist, Session, Synthetic, generate, write_csv  # noqa: E402

# EV models of profiles/commuter-depot.yaml: (name, weight, charging power kW).
EVS = (("city-car", 3, 16 * 230 / 1000), ("sedan", 4, 3 * 32 * 230 / 1000), ("van", 1, 11.04))
# Arrivals per station in each hour of the day (hour 0 = midnight = the run's start).
HOURLY = (
    [0.0] * 6
    + [0.1, 0.7, 0.9, 0.4, 0.1, 0.08]
    + [0.12, 0.1, 0.08, 0.08, 0.1, 0.12]
    + [0.12, 0.1, 0.06, 0.03, 0.0, 0.0]
)
SPEC = Synthetic(
    arrivals_per_hour=tuple(HOURLY),
    dwell=Dist("lognormal", 8 * 3600.0, 0.35, 30 * 60.0, 11 * 3600.0),
    energy=Dist("lognormal", 14.0, 0.5, 2.0, 60.0),
    gap=600.0,
    horizon=86_400.0 - 3600.0,
)


def rows(seed: int, stations: int) -> list[tuple[str, Session]]:
    rng = random.Random(seed)
    out = []
    for number in range(1, stations + 1):
        srng = random.Random(rng.getrandbits(64))
        for s in generate(SPEC, srng):
            name, _, kw = srng.choices(EVS, weights=[w for _, w, _ in EVS])[0]
            short_stay = s.dwell < 4 * 3600.0
            dwell = s.dwell / 3 if short_stay and srng.random() < 0.5 else s.dwell
            dwell = min(dwell, 86_400.0 - s.arrival - 60.0)  # everyone leaves by midnight
            if dwell < 20 * 60.0:
                continue
            cap = 0.85 * kw * (dwell - 600.0) / 3600.0
            energy = round(min(s.energy_kwh or 0.0, cap), 2)
            tag = f"DEPOT{srng.randrange(1, 401):04d}"
            out.append((str(number), Session(s.arrival, round(dwell, 1), energy, name, tag)))
    return sorted(out, key=lambda r: (r[1].arrival, int(r[0])))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=20261124)
    parser.add_argument("--stations", type=int, default=300)
    parser.add_argument("--out", type=Path, default=HERE / "commuter-day.csv")
    args = parser.parse_args()
    data = rows(args.seed, args.stations)
    header = (
        f"Sample trace: a commuter depot's day, {args.stations} stations, seed {args.seed}.\n"
        "Made by profiles/traces/generate.py; format: see README, Session replay."
    )
    write_csv(args.out, data, header)
    total = sum(s.energy_kwh or 0.0 for _, s in data)
    print(f"{args.out}: {len(data)} sessions, {total:.1f} kWh", file=sys.stderr)


if __name__ == "__main__":
    main()
