"""The JSON summary of a run: what CI keeps, and what SLOs are evaluated against.

Built from plain numbers (no Locust import: ``fleet run`` reads and completes it in a
process without gevent). The Locust side (:mod:`fleet.locust.summary`) turns Locust's
statistics into :class:`Group` histograms; this module computes the percentiles the
same way Locust does (its response-time buckets, the smallest bucket that covers the
share), so the numbers match Locust's own report.

Layout (``version`` 1)::

    {"version": 1, "wall_s": 180.0, "last_request_s": 178.2, "stations_target": 500,
     "actions": {"BootNotification": {"requests", "failures", "error_rate", "rps",
                 "avg_ms", "min_ms", "max_ms", "p50_ms", ... "p99_ms"}, ...},
     "total": {... the same over every action ...},
     "errors": [{"action", "error", "occurrences"}],
     "errors_by_code": {"CALLERROR InternalError": 3, "timeout": 1},
     "fleet": {... fleet.locust.metrics.fleet_totals ...},
     "generator": {"lag_p99_ms", "lag_max_ms", "lag_samples", "loop_cpu_ratio",
                   "hub_lag_p99_ms", "hub_lag_max_ms", "hub_samples",
                   "lag_threshold_ms", "latency_suspect"},
     "latency_suspect": false,
     "ledger": {"summary": {...}, "problems": [...]} | null,
     "slos": [{"slo", "metric", "measured", "passed", "message", ...}],
     "passed": true}

``wall_s`` is the run's wall time, from the start of the load to its end (a capacity
step: its measured window); every ``rps`` is requests per second of that wall time.
``last_request_s`` is when the last request was recorded, seconds after the start: the
span Locust's own req/s divides by, which says nothing of a quiet end of the run (None
for a window).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fleet.reports.slo import SloResult

VERSION = 1
PERCENTILES = (0.5, 0.75, 0.9, 0.95, 0.99)
_WRAPPED = re.compile(r"^\w+\((['\"])(?P<inner>.*)\1\)$")


@dataclass
class Group:
    """The requests of one action (or all of them) in some window."""

    requests: int = 0
    failures: int = 0
    total_ms: float = 0.0
    histogram: dict[int, int] = field(default_factory=dict)  # rounded ms -> count
    min_ms: float | None = None
    max_ms: float | None = None

    def minus(self, old: Group) -> Group:
        """The requests between ``old`` and this (later) snapshot of the same group."""
        diff = {
            k: n - old.histogram.get(k, 0)
            for k, n in self.histogram.items()
            if n - old.histogram.get(k, 0) > 0
        }
        return Group(
            self.requests - old.requests,
            self.failures - old.failures,
            self.total_ms - old.total_ms,
            diff,
        )

    def add(self, other: Group) -> None:
        self.requests += other.requests
        self.failures += other.failures
        self.total_ms += other.total_ms
        for k, n in other.histogram.items():
            self.histogram[k] = self.histogram.get(k, 0) + n
        for name, pick in (("min_ms", min), ("max_ms", max)):
            a, b = getattr(self, name), getattr(other, name)
            setattr(self, name, b if a is None else a if b is None else pick(a, b))


def percentile(histogram: Mapping[int, int], percent: float) -> float | None:
    """The smallest recorded response time that ``percent`` (0..1) of requests are
    within (Locust's definition, over its rounded buckets)."""
    count = sum(histogram.values())
    if count == 0:
        return None
    need = percent * count
    seen = 0
    for ms in sorted(histogram):
        seen += histogram[ms]
        if seen >= need:
            return float(ms)
    return float(max(histogram))


def group_stats(group: Group, seconds: float) -> dict[str, Any]:
    """One row of the summary's ``actions`` / ``total``; ``rps`` over ``seconds`` of
    wall time."""
    n = group.requests
    row: dict[str, Any] = {
        "requests": n,
        "failures": group.failures,
        "error_rate": group.failures / n if n else 0.0,
        "rps": n / seconds if seconds > 0 else 0.0,
        "avg_ms": group.total_ms / n if n else None,
    }
    hist = group.histogram
    lo = group.min_ms if group.min_ms is not None else (min(hist) if hist else None)
    hi = group.max_ms if group.max_ms is not None else (max(hist) if hist else None)
    row["min_ms"] = None if n == 0 else lo
    row["max_ms"] = None if n == 0 else hi
    for p in PERCENTILES:
        row[f"p{round(p * 100)}_ms"] = percentile(hist, p)
    return row


def error_text(error: Any) -> str:
    """Locust keeps a failure as ``repr(exception)``: ``OcppFailure('timeout')`` ->
    ``timeout``, so errors group by OCPP code."""
    text = str(error)
    m = _WRAPPED.match(text)
    return m["inner"] if m else text


def build(
    groups: Mapping[str, Group],
    seconds: float,
    errors: Iterable[tuple[str, str, int]] = (),
    fleet: Mapping[str, Any] | None = None,
    stations_target: int | None = None,
    lag_threshold_ms: float | None = None,
    last_request_s: float | None = None,
) -> dict[str, Any]:
    """A summary from per-action groups, the errors (action, error, occurrences) and
    the fleet's totals, over ``seconds`` of wall time (``last_request_s``: when the last
    request came, from the same start); the round trips are marked suspect when the
    generator's own loop lag p99 passed ``lag_threshold_ms`` (by default the threshold
    the totals' ``generator`` carries: ``--fleet-lag-threshold``)."""
    total = Group()
    actions: dict[str, Any] = {}
    for name in sorted(groups):
        g = groups[name]
        if g.requests <= 0:
            continue
        actions[name] = group_stats(g, seconds)
        total.add(g)
    error_rows: list[dict[str, Any]] = []
    by_code: dict[str, int] = {}
    for action, error, occurrences in errors:
        if occurrences <= 0:
            continue
        text = error_text(error)
        error_rows.append({"action": action, "error": text, "occurrences": occurrences})
        by_code[text] = by_code.get(text, 0) + occurrences
    error_rows.sort(key=lambda row: (-row["occurrences"], row["action"], row["error"]))
    fleet_totals = jsonable(dict(fleet or {}))
    generator = generator_health(fleet_totals.get("generator"), lag_threshold_ms)
    return {
        "version": VERSION,
        "wall_s": round(seconds, 3),
        "last_request_s": None if last_request_s is None else round(last_request_s, 3),
        "stations_target": stations_target,
        "actions": actions,
        "total": group_stats(total, seconds),
        "errors": error_rows,
        "errors_by_code": dict(sorted(by_code.items(), key=lambda kv: (-kv[1], kv[0]))),
        "fleet": fleet_totals,
        "generator": generator,
        "latency_suspect": generator["latency_suspect"],
        "ledger": None,
        "slos": [],
        "passed": True,
    }


def run_line(summary: Mapping[str, Any]) -> str:
    """The console's one line on the run's figures, each named for what it measures."""
    total = summary.get("total") or {}
    line = (
        f"fleet: run wall time {float(summary.get('wall_s') or 0):.1f} s, "
        f"{int(total.get('requests') or 0)} requests, "
        f"{float(total.get('rps') or 0):.2f} requests/s over the wall time"
    )
    last = summary.get("last_request_s")
    if last is not None:
        line += f" (last request at {float(last):.1f} s)"
    return line


def generator_health(lag: Any, threshold_ms: float | None = None) -> dict[str, Any]:
    """The generator's lag for the summary (from fleet totals' ``generator``,
    :func:`fleet.metrics.stats.lag_totals`), and whether it may have inflated the round
    trips. A stations' event loop that runs its callbacks late adds that lateness to
    every round trip it measures, so with a lag p99 above the threshold the latency
    figures describe the generator as much as the CSMS: ``latency_suspect``.

    ``lag_p99_ms`` is an upper bound (its histogram bucket's); at the default 50 ms, a
    bucket bound, the verdict is exact."""
    lag = lag if isinstance(lag, Mapping) else {}
    p99 = lag.get("lag_p99_ms")
    if threshold_ms is None:
        threshold_ms = lag.get("lag_threshold_ms")
    return {
        "lag_p99_ms": p99,
        "lag_max_ms": lag.get("lag_max_ms"),
        "lag_samples": int(lag.get("samples") or 0),
        "loop_cpu_ratio": lag.get("loop_cpu_ratio"),
        "hub_lag_p99_ms": lag.get("hub_lag_p99_ms"),
        "hub_lag_max_ms": lag.get("hub_lag_max_ms"),
        "hub_samples": int(lag.get("hub_samples") or 0),
        "lag_threshold_ms": threshold_ms,
        "latency_suspect": p99 is not None
        and threshold_ms is not None
        and float(p99) > float(threshold_ms),
    }


def with_results(
    summary: dict[str, Any],
    results: Sequence[SloResult],
    ledger: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The summary with the ledger (embedded CSMS) and the SLO verdicts filled in."""
    out = dict(summary)
    if ledger is not None:
        out["ledger"] = jsonable(dict(ledger))
    out["slos"] = [r.as_dict() for r in results]
    out["passed"] = all(r.passed for r in results)
    return out


def write(summary: Mapping[str, Any], path: str | Path) -> None:
    """Write atomically enough for CI: a reader never sees half a file."""
    target = Path(path)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(json.dumps(summary, indent=2, sort_keys=False) + "\n")
    tmp.replace(target)


def read(path: str | Path) -> dict[str, Any]:
    data = json.loads(Path(path).read_text())
    if not isinstance(data, dict) or data.get("version") != VERSION:
        raise ValueError(f"{path}: not a fleet summary (version {VERSION})")
    return data


def jsonable(value: Any) -> Any:
    """Fleet totals may hold tuples as keys or defaultdicts: plain JSON types only."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    if isinstance(value, (int, float, str, bool)) or value is None:
        return value
    return str(value)
