"""Capacity search: how many Charge Pros does a CSMS hold?

``fleet capacity`` steps the fleet up (``start``, ``start + step``, ... ``max``),
holds each size ``hold`` seconds, measures it after ``settle`` seconds (the new
stations' connect and boot burst is not the steady load the question is about), and
stops at the first size that breaks an SLO. The Locust side of this is
:class:`fleet.locust.summary.CapacityProbe`; this module (no Locust import) makes the
plan, reads the measured steps back, names the answer, and renders the HTML report:
plain HTML with inline SVG plots, so it needs no plotting library and opens anywhere,
also as a CI artifact.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fleet.reports import slo as slo_mod


def sizes(start: int, step: int, maximum: int) -> list[int]:
    """The fleet sizes to try: ``start`` then ``step`` more each time, up to ``maximum``
    (included, even when the last step is shorter)."""
    if start < 1 or step < 1 or maximum < start:
        raise ValueError("need 1 <= start <= max and step >= 1")
    out = list(range(start, maximum + 1, step))
    if out[-1] != maximum:
        out.append(maximum)
    return out


def default_settle(hold: float, step: int, spawn_rate: float) -> float:
    """Time to let a step's new stations connect and boot before measuring: the ramp
    itself plus a quarter of the hold, leaving at least half the hold to measure."""
    return min(hold / 2, step / spawn_rate + hold / 4)


STEP_START_ACTIONS = frozenset({"BootNotification"})
"""Actions a station sends when it joins: a step's boot storm is its new stations' connects
and boots, all inside the settle time. An SLO on one of them is measured over the whole
step (from the step's first new station to its end); every other SLO after the settle."""


def evaluate_step(
    slos: Sequence[slo_mod.Slo], settled: Mapping[str, Any], whole: Mapping[str, Any] | None
) -> list[slo_mod.SloResult]:
    """The SLOs of one step: each on the window it is about (STEP_START_ACTIONS)."""
    return [
        slo_mod.evaluate(
            slo, whole if whole is not None and slo.action in STEP_START_ACTIONS else settled
        )
        for slo in slos
    ]


def plan(
    sizes_: Sequence[int], hold: float, settle: float, spawn_rate: float, slos: Sequence[str]
) -> dict[str, Any]:
    """The JSON the capacity shape reads (``--fleet-capacity-plan``)."""
    return {
        "sizes": list(sizes_),
        "hold": hold,
        "settle": settle,
        "spawn_rate": spawn_rate,
        "slos": list(slos),
    }


@dataclass(frozen=True)
class Verdict:
    """The answer of a search from its measured steps."""

    largest_passing: int | None  # the largest fleet that held every SLO (None: not even the first)
    breaking: int | None  # the first size that broke an SLO (None: none did)
    broken: list[slo_mod.SloResult]  # what broke there, with the measured values
    complete: bool  # the search reached an answer (a step broke, or max held)
    steps: list[dict[str, Any]]
    # The first size where an SLO had nothing to measure (and none broke): not judged.
    unmeasured: int | None = None
    no_data: tuple[slo_mod.SloResult, ...] = ()

    @property
    def exit_code(self) -> int:
        """0: an answer (a step broke, or --max held); 1: not even the first step held;
        3 (slo.EXIT_NO_DATA): the search stopped at a step an SLO could not measure."""
        if self.unmeasured is not None:
            return slo_mod.EXIT_NO_DATA
        return 0 if self.complete and self.largest_passing is not None else 1

    def lines(self) -> list[str]:
        """The report's text, for the terminal."""
        out = []
        if self.largest_passing is None:
            out.append("no fleet size held every SLO")
        else:
            out.append(f"largest fleet that held every SLO: {self.largest_passing} stations")
        if self.unmeasured is not None:
            out.append(f"no data at {self.unmeasured} stations: the search cannot judge it:")
            out += [f"  {r.message}" for r in self.no_data]
        elif self.breaking is not None:
            out.append(f"broke at {self.breaking} stations:")
            out += [f"  {r.slo.text}: measured {r.measured_text}" for r in self.broken]
        elif self.complete:
            out.append("no step broke an SLO (raise --max to search further)")
        else:
            out.append("the search did not finish (interrupted?); steps measured so far above")
        return out


def verdict(data: Mapping[str, Any]) -> Verdict:
    """Read the steps the capacity shape wrote; re-evaluate the SLOs from each step's
    window summary, so the verdict is this code's and not only the child's flag."""
    slos = slo_mod.parse_all(data.get("plan", {}).get("slos", []))
    steps = list(data.get("steps", []))
    largest = None
    for step in steps:
        results = evaluate_step(slos, step["summary"], step.get("whole"))
        broken = [r for r in results if not r.passed and not r.no_data]
        if broken:
            return Verdict(largest, int(step["stations"]), broken, True, steps)
        missing = tuple(r for r in results if r.no_data)
        if missing:
            return Verdict(largest, None, [], True, steps, int(step["stations"]), missing)
        largest = int(step["stations"])
    complete = bool(data.get("done")) and bool(steps)
    return Verdict(largest, None, [], complete, steps)


def read(path: str | Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(Path(path).read_text())
    return data


def step_rows(steps: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One flat row per step: the numbers the plots and the tables show."""
    rows = []
    for step in steps:
        s = step["summary"]
        total = s.get("total", {})
        rows.append(
            {
                "stations": int(step["stations"]),
                "connected": int(step.get("stations_connected") or 0),
                "rps": float(total.get("rps") or 0.0),
                "requests": int(total.get("requests") or 0),
                "error_rate": float(total.get("error_rate") or 0.0),
                "p50_ms": total.get("p50_ms"),
                "p95_ms": total.get("p95_ms"),
                "p99_ms": total.get("p99_ms"),
                "passed": bool(step.get("passed")),
                "slos": s.get("slos", []),
                # Not held only for want of data (slo.SloResult.no_data).
                "no_data": not step.get("passed")
                and all(r["passed"] or r.get("measured") is None for r in s.get("slos", [])),
            }
        )
    return rows


def table(steps: Sequence[Mapping[str, Any]]) -> str:
    """Steps as a plain-text table, for the terminal."""
    lines = [
        f"{'stations':>8} {'connected':>9} {'req/s':>8} {'p50 ms':>7} {'p95 ms':>7} "
        f"{'p99 ms':>7} {'errors':>7}  SLOs"
    ]
    for r in step_rows(steps):
        lines.append(
            f"{r['stations']:>8} {r['connected']:>9} {r['rps']:>8.1f} {_ms(r['p50_ms']):>7} "
            f"{_ms(r['p95_ms']):>7} {_ms(r['p99_ms']):>7} {r['error_rate'] * 100:>6.2f}%  "
            + ("held" if r["passed"] else "NO DATA" if r["no_data"] else "BROKEN")
        )
    return "\n".join(lines)


def _ms(value: Any) -> str:
    return "-" if value is None else f"{float(value):.0f}"


# -- the HTML report ---------------------------------------------------------------

_W, _H = 640, 300
_PAD_L, _PAD_R, _PAD_T, _PAD_B = 64, 16, 28, 44
_COLORS = ("#1f77b4", "#ff7f0e", "#d62728", "#2ca02c")


def _nice_max(value: float) -> float:
    """A round axis maximum at or above ``value``."""
    if value <= 0:
        return 1.0
    exp = 10 ** math.floor(math.log10(value))
    for m in (1, 2, 2.5, 5, 10):
        if m * exp >= value:
            return float(m * exp)
    return float(10 * exp)


def svg_chart(
    title: str,
    xs: Sequence[float],
    series: Sequence[tuple[str, Sequence[float | None]]],
    y_label: str,
    knee: float | None = None,
    y_max: float | None = None,
    y_format: str = "{:g}",
) -> str:
    """A line chart: fleet size on x, one polyline (with dots) per series; the knee
    (the largest size that held) as a dashed vertical line."""
    x_hi = _nice_max(max(xs) if xs else 1)
    values = [v for _, ys in series for v in ys if v is not None]
    y_hi = y_max if y_max is not None else _nice_max(max(values) if values else 1)
    iw, ih = _W - _PAD_L - _PAD_R, _H - _PAD_T - _PAD_B

    def px(x: float) -> float:
        return _PAD_L + iw * x / x_hi

    def py(y: float) -> float:
        return _PAD_T + ih * (1 - min(y, y_hi) / y_hi)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H}" '
        f'viewBox="0 0 {_W} {_H}" role="img" aria-label="{html.escape(title)}">',
        f'<text x="{_W / 2}" y="18" text-anchor="middle" font-weight="bold">'
        f"{html.escape(title)}</text>",
    ]
    for i in range(6):  # grid and axis labels
        yv = y_hi * i / 5
        y = py(yv)
        parts.append(
            f'<line x1="{_PAD_L}" y1="{y:.1f}" x2="{_W - _PAD_R}" y2="{y:.1f}" stroke="#ddd"/>'
        )
        parts.append(
            f'<text x="{_PAD_L - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11">'
            f"{html.escape(y_format.format(yv))}</text>"
        )
        xv = x_hi * i / 5
        x = px(xv)
        parts.append(
            f'<text x="{x:.1f}" y="{_H - _PAD_B + 16}" text-anchor="middle" font-size="11">'
            f"{xv:g}</text>"
        )
    parts.append(
        f'<line x1="{_PAD_L}" y1="{_PAD_T + ih}" x2="{_W - _PAD_R}" y2="{_PAD_T + ih}" '
        'stroke="#333"/>'
        f'<line x1="{_PAD_L}" y1="{_PAD_T}" x2="{_PAD_L}" y2="{_PAD_T + ih}" stroke="#333"/>'
        f'<text x="{_PAD_L + iw / 2}" y="{_H - 8}" text-anchor="middle" font-size="12">'
        "fleet size (stations)</text>"
        f'<text x="14" y="{_PAD_T + ih / 2}" text-anchor="middle" font-size="12" '
        f'transform="rotate(-90 14 {_PAD_T + ih / 2})">{html.escape(y_label)}</text>'
    )
    if knee is not None:
        parts.append(
            f'<line class="knee" x1="{px(knee):.1f}" y1="{_PAD_T}" x2="{px(knee):.1f}" '
            f'y2="{_PAD_T + ih}" stroke="#2ca02c" stroke-dasharray="5,4"/>'
        )
    for n, (name, ys) in enumerate(series):
        color = _COLORS[n % len(_COLORS)]
        points = [(px(x), py(y)) for x, y in zip(xs, ys, strict=False) if y is not None]
        if points:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
            parts.append(
                f'<polyline class="series" data-name="{html.escape(name)}" points="{path}" '
                f'fill="none" stroke="{color}" stroke-width="2"/>'
            )
            parts += [
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{color}"/>' for x, y in points
            ]
        lx = _PAD_L + 10 + 110 * n
        parts.append(
            f'<rect x="{lx}" y="{_PAD_T + 4}" width="10" height="10" fill="{color}"/>'
            f'<text x="{lx + 14}" y="{_PAD_T + 13}" font-size="11">{html.escape(name)}</text>'
        )
    parts.append("</svg>")
    return "\n".join(parts)


def render_html(data: Mapping[str, Any], result: Verdict, target: str = "") -> str:
    """The capacity report: the answer, three plots against fleet size, the steps."""
    rows = step_rows(result.steps)
    xs = [float(r["stations"]) for r in rows]
    knee = None if result.largest_passing is None else float(result.largest_passing)
    charts = [
        svg_chart(
            "Round trip (all actions)",
            xs,
            [(p, [r[f"{p}_ms"] for r in rows]) for p in ("p50", "p95", "p99")],
            "milliseconds",
            knee,
        ),
        svg_chart(
            "Error rate",
            xs,
            [("failed exchanges", [r["error_rate"] * 100 for r in rows])],
            "% of exchanges",
            knee,
            y_max=_nice_max(max([r["error_rate"] * 100 for r in rows] + [1.0])),
        ),
        svg_chart(
            "Stations connected",
            xs,
            [("fleet size", xs), ("connected", [float(r["connected"]) for r in rows])],
            "stations",
            knee,
        ),
    ]
    esc = html.escape
    plan_ = data.get("plan", {})
    answer = esc(result.lines()[0])
    broke = ""
    if result.unmeasured is not None:
        items = "".join(f"<li>{esc(r.message)}</li>" for r in result.no_data)
        broke = f"<p>No data at <b>{result.unmeasured}</b> stations:</p><ul>{items}</ul>"
    elif result.breaking is not None:
        items = "".join(
            f"<li><code>{esc(r.slo.text)}</code>: measured <b>{esc(r.measured_text)}</b></li>"
            for r in result.broken
        )
        broke = f"<p>Broke at <b>{result.breaking}</b> stations:</p><ul>{items}</ul>"
    elif result.complete:
        broke = "<p>No step broke an SLO: raise <code>--max</code> to search further.</p>"
    else:
        broke = "<p>The search did not finish; the steps measured so far are below.</p>"
    slos = "".join(f"<li><code>{esc(s)}</code></li>" for s in plan_.get("slos", []))
    body_rows = []
    for r in rows:
        verdicts = "<br>".join(
            f'<span class="{"ok" if s["passed"] else "bad"}">{esc(s["message"])}</span>'
            for s in r["slos"]
        )
        body_rows.append(
            f'<tr class="{"ok" if r["passed"] else "bad"}"><td>{r["stations"]}</td>'
            f"<td>{r['connected']}</td><td>{r['rps']:.1f}</td><td>{_ms(r['p50_ms'])}</td>"
            f"<td>{_ms(r['p95_ms'])}</td><td>{_ms(r['p99_ms'])}</td>"
            f"<td>{r['error_rate'] * 100:.2f}%</td><td>{verdicts}</td></tr>"
        )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Capacity search: {answer}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ccc; padding: 4px 8px; }}
td {{ text-align: right; }} td:last-child {{ text-align: left; font-size: 90%; }}
tr.bad td {{ background: #fde8e8; }} .bad {{ color: #b00; }} .ok {{ color: #060; }}
svg {{ margin: 1em 1em 0 0; border: 1px solid #eee; }}
</style></head><body>
<h1>Capacity search</h1>
<p>CSMS: <code>{esc(target)}</code>. Steps of {esc(str(plan_.get("sizes", [])))} stations,
each held {plan_.get("hold", 0):g} s and measured after {plan_.get("settle", 0):g} s.</p>
<h2 id="answer">{answer}</h2>
{broke}
<p>SLOs every step had to hold:</p><ul>{slos}</ul>
<div class="charts">
{"".join(charts)}
</div>
<h2>Steps</h2>
<table><thead><tr><th>stations</th><th>connected</th><th>req/s</th><th>p50 ms</th>
<th>p95 ms</th><th>p99 ms</th><th>errors</th><th>SLOs</th></tr></thead>
<tbody>
{"".join(body_rows)}
</tbody></table>
</body></html>
"""
