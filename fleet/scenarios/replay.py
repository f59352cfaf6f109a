"""Where sessions come from: a trace file, or a seeded synthetic generator.

Both give each station a schedule of :class:`Session` (arrival offset from the start
of the run and plug-in duration, in model seconds; the energy the EV wants or the EV
model; the idTag), which :class:`fleet.scenarios.behaviour.Behaviour` plays.

Trace format (CSV with a header row, or JSON: a list of objects or
``{"sessions": [...]}``), one session per row:

``station``
    The station number in the run (1 is the first station started: ``CP00001``), or a
    station id (``CP00042``).
``arrival``
    Seconds from the start of the run (model time) when the EV plugs in.
``dwell``
    Seconds the EV stays plugged in (> 0).
``energy_kwh``
    Energy the EV takes (optional): it is full, and suspends (SuspendedEV), once it has
    had this much. Empty: the EV's state of charge decides.
``ev``
    An EV model name from the profile's ``evs`` (optional; empty: one by weight).
``id_tag``
    The idTag the driver badges with (optional; empty: one of the profile's).

A station's rows are played in arrival order; a row that arrives while the previous
session is still plugged in starts when that one ends (counted as ``late``).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fleet.model.rng import Rng

FIELDS = ("station", "arrival", "dwell", "energy_kwh", "ev", "id_tag")
DAY = 86_400.0


class TraceError(ValueError):
    """One line naming the trace file, the row's line and the field."""


@dataclass(frozen=True, slots=True)
class Session:
    arrival: float  # model seconds from the start of the run
    dwell: float  # model seconds plugged in
    energy_kwh: float | None = None
    ev: str | None = None
    id_tag: str | None = None


@dataclass(frozen=True, slots=True)
class Trace:
    path: Path
    by_station: dict[str, tuple[Session, ...]]

    def for_station(self, number: int | None, identity: str) -> tuple[Session, ...]:
        """The schedule of the ``number``-th station (1-based) or of ``identity``."""
        if identity in self.by_station:
            return self.by_station[identity]
        if number is not None:
            return self.by_station.get(str(number), ())
        return ()

    @property
    def sessions(self) -> int:
        return sum(len(s) for s in self.by_station.values())

    def ev_names(self) -> set[str]:
        return {s.ev for rows in self.by_station.values() for s in rows if s.ev}


# -- distributions ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Dist:
    """``uniform`` over [a, b], or ``lognormal`` with median a and sigma b; then clamped."""

    kind: str
    a: float
    b: float
    lo: float = 0.0
    hi: float = math.inf

    def draw(self, rng: Rng) -> float:
        if self.kind == "uniform":
            x = rng.uniform(self.a, self.b)
        else:
            x = rng.lognormvariate(math.log(self.a), self.b)
        return min(self.hi, max(self.lo, x))


@dataclass(frozen=True, slots=True)
class Synthetic:
    """``sessions.synthetic``: arrivals per station and hour of day (hour 0 is the run's
    first hour), dwell (seconds) and energy (kWh; None: the EV's state of charge)."""

    arrivals_per_hour: tuple[float, ...]
    dwell: Dist
    energy: Dist | None
    gap: float = 300.0  # at least this long between one departure and the next arrival
    horizon: float = math.inf  # no arrivals after this many seconds


def generate(
    spec: Synthetic, rng: Rng, start: float = 0.0, count: int | None = None
) -> Iterator[Session]:
    """One station's sessions: a non-homogeneous Poisson process (thinning) over the
    hourly rates; arrivals while the station is occupied (the previous session's dwell
    plus ``gap``) go elsewhere, as at a real charger. Lazy and endless unless
    ``spec.horizon`` or ``count`` ends it."""
    peak = max(spec.arrivals_per_hour) / 3600.0
    if peak <= 0:
        return
    t = start
    made = 0
    while count is None or made < count:
        t += rng.expovariate(peak)
        if t >= spec.horizon:
            return
        hour = int(t // 3600.0) % 24
        if rng.random() * peak * 3600.0 >= spec.arrivals_per_hour[hour]:
            continue
        dwell = max(60.0, spec.dwell.draw(rng))
        energy = spec.energy.draw(rng) if spec.energy is not None else None
        yield Session(round(t, 1), round(dwell, 1), energy)
        made += 1
        t += dwell + spec.gap


# -- trace files -------------------------------------------------------------------


def load_trace(path: Path, ev_names: set[str] | None = None) -> Trace:
    """Read and check a CSV or JSON trace; raise TraceError with one line on a mistake."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TraceError(f"{path}: cannot read trace ({exc.strerror or exc})") from None
    rows: list[tuple[str, dict[str, Any]]] = []
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise TraceError(f"{path}:{exc.lineno}: invalid JSON: {exc.msg}") from None
        if isinstance(data, dict):
            data = data.get("sessions")
        if not isinstance(data, list):
            raise TraceError(f"{path}: expected a list of sessions or {{'sessions': [...]}}")
        for i, item in enumerate(data):
            if not isinstance(item, dict):
                raise TraceError(f"{path}: sessions.{i}: expected an object")
            rows.append((f"{path}: sessions.{i}", item))
    else:
        kept = [
            (n + 1, line)
            for n, line in enumerate(text.splitlines())
            if line.strip() and not line.lstrip().startswith("#")
        ]
        reader = csv.DictReader(line for _, line in kept)
        lines = [n for n, _ in kept]
        missing = {"station", "arrival", "dwell"} - set(reader.fieldnames or ())
        if missing:
            raise TraceError(f"{path}: header needs columns {', '.join(sorted(missing))}")
        for n, row in enumerate(reader, start=1):
            line = lines[n] if n < len(lines) else n + 1
            rows.append((f"{path}:{line}", row))
    out: dict[str, list[Session]] = {}
    for where, row in rows:
        for key in row:
            if key not in FIELDS:
                raise TraceError(f"{where}: {key}: unknown field (expected {', '.join(FIELDS)})")
        station = str(row.get("station") or "").strip()
        if not station:
            raise TraceError(f"{where}: station: missing")
        arrival = _number(row.get("arrival"), where, "arrival", 0.0)
        dwell = _number(row.get("dwell"), where, "dwell", 0.0)
        if dwell <= 0:
            raise TraceError(f"{where}: dwell: must be > 0, got {dwell:g}")
        energy_raw = row.get("energy_kwh")
        energy = None
        if energy_raw not in (None, ""):
            energy = _number(energy_raw, where, "energy_kwh", 0.0)
        ev = str(row.get("ev") or "").strip() or None
        if ev is not None and ev_names is not None and ev not in ev_names:
            raise TraceError(
                f"{where}: ev: unknown EV model {ev!r} (profile has: {', '.join(sorted(ev_names))})"
            )
        tag = str(row.get("id_tag") or "").strip() or None
        if tag is not None and len(tag) > 20:
            raise TraceError(f"{where}: id_tag: an idTag is 1..20 characters, got {tag!r}")
        out.setdefault(station, []).append(Session(arrival, dwell, energy, ev, tag))
    return Trace(
        path, {k: tuple(sorted(v, key=lambda s: s.arrival)) for k, v in sorted(out.items())}
    )


def _number(value: Any, where: str, name: str, minimum: float) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise TraceError(f"{where}: {name}: expected a number, got {value!r}") from None
    if not math.isfinite(x) or x < minimum:
        raise TraceError(f"{where}: {name}: must be >= {minimum:g}, got {value!r}")
    return x


def write_csv(path: Path, rows: list[tuple[str, Session]], header: str = "") -> None:
    """Write ``(station, session)`` rows in the trace format (what generate.py ships)."""
    with path.open("w", newline="", encoding="utf-8") as fh:
        for line in header.splitlines():
            fh.write(f"# {line}\n".replace("# \n", "#\n"))
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(FIELDS)
        for station, s in rows:
            w.writerow(
                [
                    station,
                    f"{s.arrival:g}",
                    f"{s.dwell:g}",
                    "" if s.energy_kwh is None else f"{s.energy_kwh:.2f}",
                    s.ev or "",
                    s.id_tag or "",
                ]
            )
