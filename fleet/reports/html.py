"""The fleet report: the HTML page ``fleet run --html`` writes beside Locust's own.

Locust's report knows requests only; a CSMS team also asks whether the SLOs held, how
the fleet behaved over the run, why stations could not connect, and whether the
reference CSMS's ledger agrees with what the fleet sent. This page answers those from
the run's JSON summary (:mod:`fleet.reports.summary`, with verdicts and ledger) and the
fleet's totals sampled over the run (``history``: the samples of
:class:`fleet.locust.fleet_rows.History`).

The charts are inline SVG drawn here in Python, and the same function
(:func:`charts_html`) draws the web UI's Fleet tab: one drawing, so the report shows
exactly what the tab showed, and the file is self-contained (no script, no font, no
network), which is what a CI artifact or a mail attachment needs.

Everything is a pure function of plain data: no Locust, no clock.
"""

from __future__ import annotations

import html
import itertools
import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HISTORY_KEY = "history"
"""The key of the samples in the summary file the Locust child writes: ``fleet run``
takes them out (the JSON summary it writes for the user stays as documented) and
draws the report's charts from them."""

LAG_KEY = "generator"
"""The totals' key of the generator's health (``fleet.locust.metrics.fleet_totals``); a
sample keeps its ``recent_lag_p99_ms`` (the event-loop lag p99 of the last seconds, the
number the lag warning judges) and ``lag_threshold_ms``. When samples carry it, the
"Generator lag p99" chart appears, the threshold beside it."""

LAG_ADVICE = "this machine, not the CSMS, limits the latency figures (add --processes or workers)"
"""What the console, the Fleet tab and this report say when the generator's lag p99 is
past the threshold."""

# Locust's chart palette first (its Charts tab: RPS green, failures red, users blue).
# The statuses in OCPP 1.6's order (ChargePointStatus), the stacking order.
_GREEN, _RED, _BLUE, _ORANGE, _PURPLE = "#00ca5a", "#ff6d6d", "#0099ff", "#ff9f00", "#9966cc"
_STATUS_COLORS = {
    "Available": _GREEN,
    "Preparing": "#7fd4ff",
    "Charging": _BLUE,
    "SuspendedEV": "#ffd166",
    "SuspendedEVSE": _ORANGE,
    "Finishing": _PURPLE,
    "Reserved": "#c8a2c8",
    "Unavailable": "#9e9e9e",
    "Faulted": _RED,
}


@dataclass(frozen=True)
class Series:
    name: str
    color: str
    values: list[float | None]


@dataclass(frozen=True)
class Chart:
    """One chart over the run: series sharing the sample times; ``stacked`` draws them
    as areas on top of each other (their sum is the top line)."""

    key: str
    title: str
    series: list[Series]
    stacked: bool = False
    y_format: str = "{:,.0f}"


def charts(history: Sequence[Mapping[str, Any]]) -> tuple[list[float], list[Chart]]:
    """Sample times and the charts of the fleet's totals over the run.

    Rates come from neighbouring samples (counters never go backwards; a drop, as
    after a restart, counts as nothing), so samples may be unevenly spaced, as they
    are once a long run's history has been thinned. Charging power is the energy
    delivered per model hour: with time compression the meters run faster than the
    wall clock, and a user reads power as the stations would draw it.
    """
    ts = [float(s["t"]) for s in history]

    def level(key: str) -> list[float | None]:
        return [_number(s.get(key)) for s in history]

    def rate(key: str, scale: Callable[[Mapping[str, Any]], float]) -> list[float | None]:
        out: list[float | None] = [None] if history else []
        for prev, cur in itertools.pairwise(history):
            a, b = _number(prev.get(key)), _number(cur.get(key))
            dt = float(cur["t"]) - float(prev["t"])
            if a is None or b is None or dt <= 0:
                out.append(None)
            else:
                out.append(max(0.0, b - a) / dt * scale(cur))
        return out

    def per_model_hour_kw(sample: Mapping[str, Any]) -> float:
        # Wh per wall second -> kW: * 3600 s/h / 1000 W/kW, divided by the clock speed-up.
        return 3.6 / float(sample.get("time_compression") or 1.0)

    seen_any = {k for s in history for k in s.get("connectors") or {}}
    statuses = [*_STATUS_COLORS, *sorted(seen_any - _STATUS_COLORS.keys())]
    seen = [st for st in dict.fromkeys(statuses) if any(_count(s, st) for s in history)]
    out = [
        Chart(
            "stations",
            "Stations connected",
            [Series("Connected", _BLUE, level("stations_connected"))],
        ),
        Chart(
            "transactions",
            "Transactions active",
            [Series("Transactions", _GREEN, level("transactions_active"))],
        ),
        Chart(
            "power",
            "Charging power (kW)",
            [Series("kW", _ORANGE, rate("energy_wh", per_model_hour_kw))],
            y_format="{:,.1f}",
        ),
        Chart(
            "connectors",
            "Connectors by status",
            [
                Series(st, _STATUS_COLORS.get(st, _PURPLE), [float(_count(s, st)) for s in history])
                for st in seen
            ],
            stacked=True,
        ),
        Chart(
            "errors",
            "Reconnects and timeouts per second",
            [
                Series("Reconnects/s", _ORANGE, rate("reconnects", lambda _: 1.0)),
                Series("Timeouts/s", _RED, rate("timeouts", lambda _: 1.0)),
            ],
            y_format="{:,.2f}",
        ),
        Chart(
            "offline_queue",
            "Offline queue (messages)",
            [Series("Queued", _PURPLE, level("offline_queue_depth"))],
        ),
    ]
    if any(LAG_KEY in s for s in history):
        out.append(_lag_chart(history))
    return ts, out


def _lag_chart(history: Sequence[Mapping[str, Any]]) -> Chart:
    def of(key: str) -> list[float | None]:
        return [_number((s.get(LAG_KEY) or {}).get(key)) for s in history]

    return Chart(
        "generator_lag",
        "Generator lag p99 (ms)",
        [
            Series("Loop lag p99", _RED, of("recent_lag_p99_ms")),
            Series("Threshold", _ORANGE, of("lag_threshold_ms")),
        ],
    )


def lag_banner(history: Sequence[Mapping[str, Any]]) -> str:
    """A warning above the Fleet tab's charts while the newest sample's generator lag
    p99 is past its threshold (the tab's table has the same warning as its first row,
    below the charts); empty otherwise."""
    generator: Mapping[str, Any] = (history[-1].get(LAG_KEY) or {}) if history else {}
    p99 = _number(generator.get("recent_lag_p99_ms"))
    limit = _number(generator.get("lag_threshold_ms"))
    if p99 is None or limit is None or p99 <= limit:
        return ""
    return (
        '<div class="fleet-lag-warning" role="alert" style="padding:8px 12px;margin:0 0 8px;'
        'border-radius:4px;background:#fde8e8;color:#b00;font-weight:bold">'
        f"Generator lag p99 {ms_text(p99)} &gt; {ms_text(limit)}: {html.escape(LAG_ADVICE)}."
        "</div>"
    )


def charts_html(history: Sequence[Mapping[str, Any]]) -> str:
    """Every chart as inline SVG, in a ``div.fleet-charts``; a hint while there are no
    samples yet (before the first run, or in its first two seconds)."""
    if not history:
        return (
            '<div class="fleet-charts fleet-charts-empty">'
            "No samples yet: the fleet's totals are sampled every two seconds while a run"
            " goes on.</div>"
        )
    ts, all_charts = charts(history)
    # Two charts a row on a wide page, one on a narrow one: seven charts stacked one
    # under the other would push the table of exact figures out of sight.
    grid = "display:grid;grid-template-columns:repeat(auto-fill,minmax(480px,1fr));gap:8px 24px"
    return (
        f'<div class="fleet-charts" style="{grid}">'
        + "".join(svg(ts, c) for c in all_charts)
        + "</div>"
    )


# -- drawing -------------------------------------------------------------------------

_W, _H = 600, 300
_LEFT, _RIGHT, _TOP, _BOTTOM = 60, 40, 60, 30  # Locust's grid: left 60, right 40


def svg(ts: Sequence[float], chart: Chart) -> str:
    """One chart in the look of Locust's Charts tab (ECharts defaults): title top
    left, a legend of round markers above, dashed grid, wall-clock times below.
    Colours of text and grid follow the page's text colour, so the chart reads in
    Locust's dark theme as in its light one."""
    esc = html.escape
    iw, ih = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM
    tops = _stack(chart) if chart.stacked else [s.values for s in chart.series]
    values = [v for ys in tops for v in ys if v is not None]
    y_ticks = _ticks(max(values, default=0.0), whole=chart.y_format.endswith(".0f}"))
    y_hi = y_ticks[-1]
    t0, t1 = (ts[0], ts[-1]) if ts else (0.0, 1.0)
    span = (t1 - t0) or 1.0

    def px(t: float) -> float:
        return _LEFT + iw * (t - t0) / span

    def py(v: float) -> float:
        return _TOP + ih * (1 - v / y_hi)

    # What a pointer over the chart reads (the web UI's tooltip): each sample's x, its
    # time, and every series' own value there (not its stacked top).
    tip = json.dumps(
        {
            "x": [round(px(t), 1) for t in ts],
            "time": [_hms(t) for t in ts],
            "series": [
                {"name": s.name, "color": s.color, "values": [_round(v) for v in s.values]}
                for s in chart.series
            ],
        },
        separators=(",", ":"),
    )
    parts = [
        f'<svg class="fleet-chart" data-chart="{esc(chart.key)}" xmlns="http://www.w3.org/2000/svg"'
        f' viewBox="0 0 {_W} {_H}" width="100%" role="img" aria-label="{esc(chart.title)}"'
        f' font-family="sans-serif" fill="currentColor" data-tip="{esc(tip)}">',
        f'<text x="5" y="22" font-size="18" font-weight="bold">{esc(chart.title)}</text>',
    ]
    # The legend, centred like ECharts': a round marker and the name per series.
    widths = [26 + 7 * len(s.name) for s in chart.series]
    x = (_W - sum(widths)) / 2
    for s, w in zip(chart.series, widths, strict=True):
        parts.append(
            f'<circle cx="{x + 7:.0f}" cy="39" r="6" fill="{s.color}"/>'
            f'<text x="{x + 17:.0f}" y="43" font-size="12">{esc(s.name)}</text>'
        )
        x += w
    for v in y_ticks:
        y = py(v)
        parts.append(
            f'<line x1="{_LEFT}" y1="{y:.1f}" x2="{_W - _RIGHT}" y2="{y:.1f}" stroke="currentColor"'
            f' stroke-opacity=".18" stroke-dasharray="4,4"/><text x="{_LEFT - 8}" y="{y + 4:.1f}"'
            f' font-size="12" text-anchor="end">{esc(chart.y_format.format(v))}</text>'
        )
    parts.append(
        f'<line x1="{_LEFT}" y1="{_TOP + ih}" x2="{_W - _RIGHT}" y2="{_TOP + ih}"'
        ' stroke="currentColor" stroke-opacity=".6"/>'
    )
    for t in _time_ticks(t0, t1):
        parts.append(
            f'<text x="{px(t):.1f}" y="{_H - 8}" font-size="12" text-anchor="middle">'
            f"{_hms(t)}</text>"
        )
    below: list[float | None] = [0.0] * len(ts)
    for s, top in zip(chart.series, tops, strict=True):
        runs = _runs(ts, top)
        for run in runs:
            line = " ".join(f"{px(t):.1f},{py(v):.1f}" for t, v in run)
            if chart.stacked:  # stacked tops have no gaps: one run over every sample
                back = " ".join(
                    f"{px(t):.1f},{py(b or 0.0):.1f}"
                    for t, b in reversed(list(zip(ts, below, strict=True)))
                )
                parts.append(
                    f'<polygon class="area" data-series="{esc(s.name)}" points="{line} {back}"'
                    f' fill="{s.color}" fill-opacity=".55" stroke="none"/>'
                )
            parts.append(
                f'<polyline class="series" data-series="{esc(s.name)}" data-points="{len(run)}"'
                f' points="{line}" fill="none" stroke="{s.color}" stroke-width="2"'
                ' stroke-linejoin="round"/>'
            )
        if len(ts) == 1 and runs:  # one sample: a dot, not an invisible line
            ((t, v),) = runs[0]
            parts.append(f'<circle cx="{px(t):.1f}" cy="{py(v):.1f}" r="3" fill="{s.color}"/>')
        below = top
    parts.append("</svg>")
    return "".join(parts)


def _stack(chart: Chart) -> list[list[float | None]]:
    """Cumulative tops of stacked series (a missing value counts as zero)."""
    tops: list[list[float | None]] = []
    running: list[float] = []
    for s in chart.series:
        running = [(running[i] if running else 0.0) + (v or 0.0) for i, v in enumerate(s.values)]
        tops.append(list(running))
    return tops


def _runs(ts: Sequence[float], ys: Sequence[float | None]) -> list[list[tuple[float, float]]]:
    """The unbroken stretches of a series (a gap where a value is missing)."""
    runs: list[list[tuple[float, float]]] = []
    current: list[tuple[float, float]] = []
    for t, y in zip(ts, ys, strict=False):
        if y is None:
            if current:
                runs.append(current)
            current = []
        else:
            current.append((t, y))
    if current:
        runs.append(current)
    return runs


def _ticks(top: float, whole: bool, count: int = 5) -> list[float]:
    """Round y-axis ticks from 0 covering ``top``: steps of 1, 2 or 5 times a power
    of ten, about ``count`` of them; ``whole``: counts, so no step below 1."""
    if top <= 0:
        return [0.0, 1.0]
    raw = top / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    if whole:
        step = max(step, 1)
    n = math.ceil(top / step - 1e-9)
    return [i * step for i in range(n + 1)]


def _time_ticks(t0: float, t1: float, count: int = 5) -> list[float]:
    """About ``count`` wall-clock ticks on whole seconds, minutes or hours."""
    span = t1 - t0
    if span <= 0:
        return [t0]
    step = next(
        (s for s in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600) if span / s <= count),
        3600 * math.ceil(span / count / 3600),
    )
    first = math.ceil(t0 / step) * step
    return [first + i * step for i in range(int((t1 - first) // step) + 1)]


def _hms(t: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(t))


def _round(value: float | None) -> float | None:
    """Two decimals below 100, one above: enough for a tooltip, and a short page."""
    return None if value is None else round(value, 2 if abs(value) < 100 else 1)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _count(sample: Mapping[str, Any], status: str) -> int:
    return int((sample.get("connectors") or {}).get(status, 0))


# -- the report ----------------------------------------------------------------------


def report_path(locust_html: str | Path) -> Path:
    """Where the fleet report goes: ``run.html`` -> ``run-fleet.html``, beside it."""
    path = Path(locust_html)
    suffix = path.suffix or ".html"
    return path.with_name(f"{path.stem if path.suffix else path.name}-fleet{suffix}")


def write(locust_html: str | Path, summary: Mapping[str, Any], history: Sequence[Any]) -> Path:
    """Render and write the fleet report beside Locust's; returns its path."""
    target = report_path(locust_html)
    target.write_text(render(summary, history), encoding="utf-8")
    return target


def render(summary: Mapping[str, Any], history: Sequence[Mapping[str, Any]]) -> str:
    """The fleet report of one run as a self-contained HTML page."""
    esc = html.escape
    fleet: Mapping[str, Any] = summary.get("fleet") or {}
    slos: list[Mapping[str, Any]] = list(summary.get("slos") or [])
    passed = bool(summary.get("passed", True))
    verdict = (
        ("PASSED" if passed else "FAILED") + f": {sum(1 for r in slos if r.get('passed'))}"
        f" of {len(slos)} SLOs held"
        if slos
        else "No SLOs were set (pass --slo to have the run judged)"
    )
    started = f" from {_clock(history[0]['t'])} to {_clock(history[-1]['t'])}" if history else ""
    target = summary.get("stations_target")
    head = (
        f"<p>{float(summary.get('wall_s') or 0):,.1f} s of load{started}"
        + (f", {int(target):,} stations asked" if target else "")
        + f"; {int(fleet.get('stations_connected', 0)):,} connected at the end of the load,"
        f" {float(fleet.get('energy_wh', 0.0)) / 1000:,.3f} kWh delivered.</p>"
    )
    slo_rows = "".join(
        f'<tr class="{"ok" if r.get("passed") else "bad"}"><td><code>{esc(str(r.get("slo")))}'
        f"</code></td><td>{esc(str(r.get('measured_text', r.get('measured'))))}</td>"
        f"<td>{'held' if r.get('passed') else 'BROKEN'}</td>"
        f'<td class="text">{esc(str(r.get("message", "")))}</td></tr>'
        for r in slos
    )
    slo_table = (
        _table(("SLO", "measured", "verdict", ""), slo_rows) if slos else "<p>No SLOs set.</p>"
    )
    failures: Mapping[str, int] = fleet.get("connect_failures") or {}
    failure_rows = "".join(
        f"<tr><td>{esc(str(reason))}</td><td>{int(n):,}</td></tr>"
        for reason, n in sorted(failures.items(), key=lambda kv: (-int(kv[1]), str(kv[0])))
    )
    failure_table = (
        _table(("reason", "attempts"), failure_rows)
        if failure_rows
        else "<p>Every connection attempt succeeded.</p>"
    )
    by_code: Mapping[str, int] = summary.get("errors_by_code") or {}
    error_rows = "".join(
        f"<tr><td>{esc(str(code))}</td><td>{int(n):,}</td></tr>" for code, n in by_code.items()
    )
    error_table = (
        _table(("error", "occurrences"), error_rows)
        if error_rows
        else "<p>No failed exchanges.</p>"
    )
    action_rows = "".join(
        f"<tr><td>{esc(name)}</td><td>{a['requests']:,}</td><td>{a['failures']:,}</td>"
        f"<td>{a['rps']:,.2f}</td>"
        + "".join(f"<td>{_ms(a.get(p))}</td>" for p in ("p50_ms", "p95_ms", "p99_ms", "max_ms"))
        + "</tr>"
        for name, a in (summary.get("actions") or {}).items()
    )
    actions_table = _table(
        ("action", "requests", "failures", "req/s", "p50 ms", "p95 ms", "p99 ms", "max ms"),
        action_rows,
    )
    totals_rows = "".join(
        f"<tr><td>{esc(label)}</td><td>{esc(value)}</td></tr>" for label, value in _totals(fleet)
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Fleet report: {esc(verdict)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222;
  padding: 0 1em; }}
table {{ border-collapse: collapse; margin: .5em 0 1em; }}
td, th {{ border: 1px solid #ccc; padding: 4px 8px; text-align: left; }}
td + td {{ text-align: right; }} td.text {{ text-align: left; }}
tr.bad td {{ background: #fde8e8; }}
.ok {{ color: #060; }} .bad, .FAILED {{ color: #b00; }} .PASSED {{ color: #060; }}
.fleet-chart {{ display: block; margin: .5em 0; }}
.generator {{ border: 2px solid #060; border-radius: 6px; padding: .2em 1em; margin: 1em 0; }}
.generator.suspect {{ border-color: #b00; background: #fde8e8; }}
</style></head><body>
<h1>Fleet report</h1>
<h2 id="verdict" class="{"PASSED" if passed else "FAILED"}">{esc(verdict)}</h2>
{head}
{_generator(summary.get("generator"))}
<h2 id="slos">SLO verdicts</h2>
{slo_table}
<h2 id="ledger">Ledger check</h2>
{_ledger(summary.get("ledger"))}
<h2 id="charts">Fleet totals over the run</h2>
{charts_html(history)}
<h2 id="connect-failures">Connection failures by reason</h2>
{failure_table}
<h2 id="errors">Failed exchanges by error</h2>
{error_table}
<h2 id="actions">Round trips per action</h2>
{actions_table}
<h2 id="totals">Fleet totals at the end of the load</h2>
{_table((), totals_rows)}
</body></html>
"""


def _generator(generator: Mapping[str, Any] | None) -> str:
    """The load generator's own health, near the top: a run whose latency figures are
    suspect must say so before anyone reads them."""
    g: Mapping[str, Any] = generator or {}
    if not g.get("lag_samples"):
        return (
            '<div class="generator" id="generator"><p>Generator: no lag probe ran (a run'
            " too short, or workers without it): nothing says it kept up.</p></div>"
        )
    suspect = bool(g.get("latency_suspect"))
    limit = g.get("lag_threshold_ms")
    p99 = g.get("lag_p99_ms")
    verdict = (
        f"Latency figures SUSPECT: the generator's event-loop lag p99 {ms_text(p99)} passed"
        f" {ms_text(limit)}: {LAG_ADVICE}."
        if suspect
        else f"Generator kept up: event-loop lag p99 {ms_text(p99)}, within"
        f" {ms_text(limit)}; the latency figures are the CSMS's."
    )
    cpu = g.get("loop_cpu_ratio")
    rows = "".join(
        f"<tr><td>{label}</td><td>{value}</td></tr>"
        for label, value in (
            ("Event-loop lag p99 (upper bound)", ms_text(p99)),
            ("Event-loop lag, worst", ms_text(g.get("lag_max_ms"))),
            ("Loop thread CPU share (busiest process)", "-" if cpu is None else f"{cpu:.1%}"),
            ("Gevent hub lag p99", ms_text(g.get("hub_lag_p99_ms"))),
            ("Gevent hub lag, worst", ms_text(g.get("hub_lag_max_ms"))),
            ("Threshold (--lag-threshold)", ms_text(limit)),
            ("latency_suspect", "true" if suspect else "false"),
        )
    )
    klass = "generator suspect" if suspect else "generator"
    return (
        f'<div class="{klass}" id="generator"><h2>Load generator</h2>'
        f'<p class="{"bad" if suspect else "ok"}" id="generator-verdict">{html.escape(verdict)}</p>'
        f"{_table((), rows)}</div>"
    )


def ms_text(value: Any) -> str:
    """A duration in milliseconds as the report and the Fleet tab show it: whole
    milliseconds from 10 on, two significant digits below."""
    if value is None:
        return "-"
    ms = float(value)
    return f"{ms:,.0f} ms" if ms >= 10 else f"{ms:.2g} ms"


def _ledger(ledger: Mapping[str, Any] | None) -> str:
    """The reference CSMS's ledger check, or why there is none."""
    if not ledger:
        return (
            '<p class="ledger-none">No ledger: the run targeted an external CSMS (the ledger'
            " is kept by the embedded reference CSMS).</p>"
        )
    esc = html.escape
    problems = [str(p) for p in ledger.get("problems") or []]
    facts: Mapping[str, Any] = ledger.get("summary") or {}
    shown = (
        "stations",
        "boots",
        "transactions_started",
        "transactions_stopped",
        "transaction_messages",
        "redeliveries",
        "duplicates",
        "messages_total",
    )
    rows = "".join(
        f"<tr><td>{esc(k.replace('_', ' '))}</td><td>{int(facts[k]):,}</td></tr>"
        for k in shown
        if isinstance(facts.get(k), int)
    )
    if problems:
        items = "".join(f"<li>{esc(p)}</li>" for p in problems[:200])
        more = f"<li>... and {len(problems) - 200} more</li>" if len(problems) > 200 else ""
        verdict = (
            f'<p class="bad" id="ledger-verdict">Ledger: {len(problems)} problem(s): what the'
            f" fleet sent is not what the CSMS recorded.</p><ul>{items}{more}</ul>"
        )
    else:
        verdict = (
            '<p class="ok" id="ledger-verdict">Ledger consistent: every transaction message'
            " the fleet sent arrived, once, in order.</p>"
        )
    return verdict + (_table((), rows) if rows else "")


def _totals(fleet: Mapping[str, Any]) -> list[tuple[str, str]]:
    simple = (
        ("stations_connected", "Stations connected"),
        ("stations_started", "Stations started"),
        ("transactions_active", "Transactions active"),
        ("transactions_started", "Transactions started"),
        ("transactions_stopped", "Transactions stopped"),
        ("offline_queue_depth", "Offline queue (messages)"),
        ("offline_messages_delivered", "Offline messages delivered"),
        ("transaction_messages_dropped", "Transaction messages dropped"),
        ("reconnects", "Reconnects"),
        ("timeouts", "Timeouts"),
        ("schema_violations", "Schema violations"),
    )
    rows = [
        (label, f"{int(fleet[k]):,}") for k, label in simple if _number(fleet.get(k)) is not None
    ]
    rows.insert(3, ("Energy delivered", f"{float(fleet.get('energy_wh', 0.0)) / 1000:,.3f} kWh"))
    for key, label in (("callerrors", "CALLERROR"), ("faults_active", "Fault active")):
        rows += [
            (f"{label}: {k}", f"{int(n):,}") for k, n in sorted((fleet.get(key) or {}).items())
        ]
    return rows


def _table(header: Sequence[str], rows: str) -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    head = f"<thead><tr>{th}</tr></thead>" if header else ""
    return f"<table>{head}<tbody>{rows}</tbody></table>"


def _ms(value: Any) -> str:
    return "-" if value is None else f"{float(value):,.0f}"


def _clock(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(float(t)))
