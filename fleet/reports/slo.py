"""Pass/fail thresholds (SLOs) for headless runs and capacity searches.

An SLO is one comparison, written the way a CI file reads best::

    BootNotification.p95 < 2s      an action's round trip (p50 p75 p90 p95 p99 avg min max)
    Heartbeat.error_rate < 1%      an action's failures / requests (also rps, requests, failures)
    connect.p95 < 1s               connection attempts (``WS connect``: TCP, TLS, handshake)
    p99 < 500ms                    the same statistics over every request Locust counts (its
                                   "Aggregated" row: OCPP, WS connect and MISBEHAVE)
    error_rate < 0.5%              ... a bare number is a fraction: 0.005
    lost_transaction_messages == 0 fleet counters: callerrors, callerrors.<Code>, timeouts,
                                   reconnects, schema_violations, stations_started,
                                   stations_connected, stations_never_connected,
                                   connected_ratio (of the target fleet), connected_share
                                   (connected / started, as the load ended)
    unfinished_transactions == 0   transactions left open at the end of the run (their
                                   StopTransaction not delivered in time)
    ledger_problems == 0           the reference CSMS's consistency problems (embedded only)
    generator_lag_p99 <= 50ms      the load generator's own event-loop lag p99 (an upper
                                   bound: its histogram bucket's; pick a bound such as 10,
                                   25, 50, 100ms and ``<=``). Above it, the round trips
                                   measure the generator as much as the CSMS
    error_rate < 1% abort          ... stop the run as soon as it is lost (also ``!``)

Operators: ``< <= > >= == !=``. Units: ``ms`` and ``s`` for round trips (required: a
bare ``2`` could mean either), ``%`` for ratios. Every mistake is found by
:func:`parse` before a run starts, as one :class:`SloError` line saying why.

:func:`evaluate` reads the measured value from a run summary (the dict
:mod:`fleet.reports.summary` builds, for a whole run or for one capacity step) and
returns an :class:`SloResult`. A statistic with nothing to measure (a p95 of an action
that never happened) has not held, and it is a verdict of its own, ``no data``: in the
table, in the message, and in the exit code (:func:`exit_code`: 3 when nothing broke but
an SLO had nothing to measure), so a CSMS engineer sees "the run never checked this"
rather than a pass or an unexplained failure.
"""

from __future__ import annotations

import difflib
import math
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

Kind = Literal["time", "ratio", "rate", "count"]

#: Station-initiated OCPP 1.6 actions (with the security whitepaper's): the names Locust
#: shows, and the only ones an action SLO may name (a typo must not pass silently).
ACTIONS = frozenset(
    {
        "Authorize",
        "BootNotification",
        "DataTransfer",
        "DiagnosticsStatusNotification",
        "FirmwareStatusNotification",
        "Heartbeat",
        "LogStatusNotification",
        "MeterValues",
        "SecurityEventNotification",
        "SignCertificate",
        "SignedFirmwareStatusNotification",
        "StartTransaction",
        "StatusNotification",
        "StopTransaction",
    }
)

#: Statistics of a request group (one action, or all of them), and their kinds.
STATS: dict[str, Kind] = {
    "p50": "time",
    "p75": "time",
    "p90": "time",
    "p95": "time",
    "p99": "time",
    "avg": "time",
    "min": "time",
    "max": "time",
    "rps": "rate",
    "error_rate": "ratio",
    "requests": "count",
    "failures": "count",
}

#: Fleet-wide metrics (not per action).
FLEET: dict[str, Kind] = {
    "lost_transaction_messages": "count",
    "callerrors": "count",
    "timeouts": "count",
    "reconnects": "count",
    "schema_violations": "count",
    "stations_started": "count",
    "stations_connected": "count",
    "stations_never_connected": "count",
    "connected_ratio": "ratio",
    "connected_share": "ratio",
    "ledger_problems": "count",
    "generator_lag_p99": "time",
    "unfinished_transactions": "count",
}

_OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}
_EXPR = re.compile(
    r"^\s*(?P<metric>[A-Za-z_][\w.]*?)\s*(?P<op><=|>=|==|!=|<|>|=)\s*"
    r"(?P<number>[-+]?(?:\d+(?:\.\d*)?|\.\d+))\s*(?P<unit>[A-Za-z%]*)\s*$"
)
_ABORT = re.compile(r"\s*(?:!|\babort)\s*$")
"""The suffix that makes an SLO stop the run as soon as it is lost (k6's abortOnFail)."""

CONNECT = "connect"
"""The pseudo-action of ``connect.p95``: the ``WS connect`` requests (connection attempts,
their handshake time and failures) of the summary."""
_CONNECT_ROW = "WS connect"

_CALLERROR_CODES = frozenset(
    {
        "NotImplemented",
        "NotSupported",
        "InternalError",
        "ProtocolError",
        "SecurityError",
        "FormationViolation",
        "FormatViolation",
        "PropertyConstraintViolation",
        "OccurenceConstraintViolation",
        "OccurrenceConstraintViolation",
        "TypeConstraintViolation",
        "GenericError",
    }
)


class SloError(ValueError):
    """An SLO expression that cannot be read; the message says why, in one line."""


@dataclass(frozen=True)
class Slo:
    """One parsed threshold. ``threshold`` is in base units: milliseconds for round
    trips (Locust's unit), a fraction for ratios; ``unit`` is how it was written."""

    text: str
    metric: str
    action: str | None  # an action SLO's action; None for aggregated / fleet metrics
    stat: str  # the statistic or fleet metric name ("p95", "lost_transaction_messages")
    op: str
    threshold: float
    unit: str
    kind: Kind
    abort: bool = False  # stop the run as soon as it is lost ("... abort" or "...!")

    def holds(self, value: float) -> bool:
        return _OPS[self.op](value, self.threshold)

    def format(self, value: float) -> str:
        """A measured value in the unit the SLO was written in."""
        return _format(value, self.kind, self.unit)

    @property
    def threshold_text(self) -> str:
        return _format(self.threshold, self.kind, self.unit)


@dataclass(frozen=True)
class SloResult:
    """An SLO against one run (or one capacity step): the measured value and the verdict."""

    slo: Slo
    measured: float | None
    passed: bool

    @property
    def no_data(self) -> bool:
        """Nothing to measure (no exchange of the action, no ledger...): not held, and
        not broken by a measured value either."""
        return self.measured is None

    @property
    def measured_text(self) -> str:
        return "no data" if self.measured is None else self.slo.format(self.measured)

    @property
    def message(self) -> str:
        """One line: what was measured and, if broken, against what."""
        s = self.slo
        if self.measured is None:
            what = f"no {s.action} exchange" if s.action else "nothing"
            return f"{s.metric}: no data, {what} to measure (required {s.op} {s.threshold_text})"
        verdict = "ok" if self.passed else "BROKEN"
        return f"{s.metric} = {self.measured_text} (required {s.op} {s.threshold_text}): {verdict}"

    def as_dict(self) -> dict[str, Any]:
        s = self.slo
        return {
            "slo": s.text,
            "metric": s.metric,
            "op": s.op,
            "threshold": s.threshold,
            "measured": self.measured,
            "unit": _base_unit(s.kind),
            "measured_text": self.measured_text,
            "passed": self.passed,
            "message": self.message,
        }


def parse(text: str) -> Slo:
    """Read one SLO expression, or raise :class:`SloError` saying what is wrong."""
    abort = _ABORT.search(text)
    if abort is not None:
        text = text[: abort.start()]
    m = _EXPR.match(text)
    if m is None:
        raise SloError(
            "expected '<metric> <op> <number>[unit]', e.g. 'BootNotification.p95 < 2s' "
            "or 'error_rate < 1%'"
        )
    metric, op, number, unit = m["metric"], m["op"], float(m["number"]), m["unit"]
    if op == "=":
        raise SloError("use '==' to compare for equality")
    action, stat, kind = _metric(metric)
    threshold = _threshold(number, unit, kind, metric)
    return Slo(text.strip(), metric, action, stat, op, threshold, unit, kind, abort is not None)


def parse_all(texts: Sequence[str]) -> list[Slo]:
    """Parse every expression; the first bad one raises ``SloError`` naming it."""
    slos = []
    for text in texts:
        try:
            slos.append(parse(text))
        except SloError as exc:
            raise SloError(f"--slo {text!r}: {exc}") from None
    return slos


def _metric(metric: str) -> tuple[str | None, str, Kind]:
    parts = metric.split(".")
    if len(parts) == 1:
        name = parts[0]
        if name in STATS:
            return None, name, STATS[name]
        if name in FLEET:
            return None, name, FLEET[name]
        if name in ACTIONS:
            raise SloError(f"{name} needs a statistic, e.g. {name}.p95 ({_choices(STATS)})")
        raise SloError(f"unknown metric {name!r}{_hint(name, [*STATS, *FLEET, *ACTIONS])}")
    if len(parts) != 2 or not all(parts):
        raise SloError(f"unknown metric {metric!r} (at most one '.', as in Heartbeat.p95)")
    head, stat = parts
    if head == "callerrors":
        if stat not in _CALLERROR_CODES:
            raise SloError(
                f"unknown CALLERROR code {stat!r}{_hint(stat, sorted(_CALLERROR_CODES))}"
            )
        return None, metric, "count"
    if head not in ACTIONS and head != CONNECT:
        raise SloError(f"unknown OCPP action {head!r}{_hint(head, sorted(ACTIONS))}")
    if stat not in STATS:
        raise SloError(
            f"unknown statistic {stat!r}{_hint(stat, list(STATS))}; use {_choices(STATS)}"
        )
    return head, stat, STATS[stat]


def _threshold(number: float, unit: str, kind: Kind, metric: str) -> float:
    if not math.isfinite(number):
        raise SloError("the threshold must be a finite number")
    if kind == "time":
        if unit == "ms":
            return number
        if unit == "s":
            return number * 1000.0
        if unit == "":
            raise SloError(f"{metric} is a round trip: give a unit, ms or s (e.g. 2s, 500ms)")
        raise SloError(f"{metric} is a round trip: unit {unit!r} is not ms or s")
    if kind == "ratio":
        if unit == "%":
            return number / 100.0
        if unit == "":
            return number
        raise SloError(f"{metric} is a ratio: unit {unit!r} is not % (or give a fraction)")
    if unit:
        what = "a rate per second" if kind == "rate" else "a count"
        raise SloError(f"{metric} is {what}: no unit ({unit!r}) expected")
    return number


def _hint(name: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, list(choices), n=1)
    return f" (did you mean {close[0]}?)" if close else ""


def _choices(names: Mapping[str, Any]) -> str:
    return " ".join(names)


def _base_unit(kind: Kind) -> str:
    return {"time": "ms", "ratio": "fraction", "rate": "1/s", "count": ""}[kind]


def _format(value: float, kind: Kind, unit: str) -> str:
    if kind == "time":
        if unit == "s":
            return f"{value / 1000.0:.3g}s"
        return f"{value:.0f}ms" if value >= 10 else f"{value:.2g}ms"
    if kind == "ratio":
        return f"{value * 100:.3g}%" if unit == "%" else f"{value:.4g}"
    if kind == "rate":
        return f"{value:.1f}/s"
    return f"{value:g}"


# -- measuring ---------------------------------------------------------------------

_TIME_KEYS = {
    "p50": "p50_ms",
    "p75": "p75_ms",
    "p90": "p90_ms",
    "p95": "p95_ms",
    "p99": "p99_ms",
    "avg": "avg_ms",
    "min": "min_ms",
    "max": "max_ms",
}


def measure(slo: Slo, summary: Mapping[str, Any]) -> float | None:
    """The value ``slo`` is about, from a run summary; None when there is nothing to
    measure (no requests for a round trip, no ledger for ``ledger_problems``...)."""
    if slo.stat in STATS:
        group: Mapping[str, Any] | None
        if slo.action is None:
            group = summary.get("total")
        else:
            row = _CONNECT_ROW if slo.action == CONNECT else slo.action
            group = (summary.get("actions") or {}).get(row)
        requests = int((group or {}).get("requests", 0))
        if slo.stat in ("requests", "failures", "rps", "error_rate"):
            if group is None or requests == 0:
                return 0.0
            return _number(group.get(slo.stat, 0.0))
        if group is None or requests == 0:
            return None
        value = group.get(_TIME_KEYS[slo.stat])
        return None if value is None else float(value)
    fleet: Mapping[str, Any] = summary.get("fleet") or {}
    errors: Mapping[str, int] = summary.get("errors_by_code") or {}
    name = slo.stat
    if name == "lost_transaction_messages":
        return _number(_total(fleet.get("transaction_messages_dropped", 0)))
    if name == "callerrors":
        if "callerrors" in fleet:
            return _number(_total(fleet["callerrors"]))
        return float(sum(n for code, n in errors.items() if code.startswith("CALLERROR")))
    if name.startswith("callerrors."):
        code = name.split(".", 1)[1]
        if isinstance(fleet.get("callerrors"), Mapping):
            return _number(fleet["callerrors"].get(code, 0))
        return float(errors.get(f"CALLERROR {code}", 0))
    if name == "timeouts":
        if "timeouts" in fleet:
            return _number(_total(fleet["timeouts"]))
        return float(errors.get("timeout", 0))
    if name == "connected_ratio":
        target = summary.get("stations_target")
        if not target:
            return None
        return _number(fleet.get("stations_connected", 0)) / float(target)
    if name == "generator_lag_p99":
        generator = summary.get("generator") or {}
        if not generator.get("lag_samples"):
            return None  # no probe ran: nothing says the generator kept up
        value = generator.get("lag_p99_ms")
        return None if value is None else float(value)
    if name == "connected_share":
        started = _number(fleet.get("stations_started", 0))
        if not started:
            return None
        return _number(fleet.get("stations_connected", 0)) / started
    if name == "ledger_problems":
        ledger = summary.get("ledger")
        if not ledger:
            return None
        return float(len(ledger.get("problems") or ()))
    return _number(_total(fleet.get(name, 0)))


def evaluate(slo: Slo, summary: Mapping[str, Any]) -> SloResult:
    value = measure(slo, summary)
    return SloResult(slo, value, value is not None and slo.holds(value))


def evaluate_all(slos: Sequence[Slo], summary: Mapping[str, Any]) -> list[SloResult]:
    return [evaluate(slo, summary) for slo in slos]


EXIT_NO_DATA = 3
"""The exit code of a run or search in which no SLO broke but one had nothing to measure."""


def exit_code(results: Sequence[SloResult]) -> int:
    """0: every SLO held; 1: one broke (a measured value); :data:`EXIT_NO_DATA`: none
    broke, but one measured no data."""
    if any(not r.passed and not r.no_data for r in results):
        return 1
    return EXIT_NO_DATA if any(r.no_data for r in results) else 0


def _total(value: Any) -> Any:
    """Counters may come as a number or as a dict of numbers (by code, by action)."""
    if isinstance(value, Mapping):
        return sum(_number(v) for v in value.values())
    return value


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def table(results: Sequence[SloResult]) -> str:
    """A plain-text table of results, broken ones marked, for the end of a run."""
    if not results:
        return ""
    width = max(len(r.slo.text) for r in results)
    lines = [f"{'SLO':<{width}}  {'measured':>12}  result"]
    for r in results:
        verdict = "pass" if r.passed else ("NO DATA" if r.no_data else "FAIL")
        lines.append(f"{r.slo.text:<{width}}  {r.measured_text:>12}  {verdict}")
    return "\n".join(lines)
