"""The numbers that leave the Locust child: the run summary and capacity steps.

``fleet run`` and ``fleet capacity`` start Locust as a child process; this module is
how the results come back, as JSON files the parent reads (see
:mod:`fleet.reports.summary` for the layout):

- ``--fleet-summary-json PATH``: at the end (Locust's ``quitting``), the master or a
  standalone process writes the run summary: Locust's own statistics per request
  (counts, failures, percentiles, rps; OCPP exchanges by action, and every other type
  with its type in front: ``WS connect``, ``MISBEHAVE schema``, so the summary's total
  is Locust's Aggregated row), its failures grouped by error, and the
  fleet's totals (:func:`fleet.locust.metrics.fleet_totals`, summed over workers on a
  master), and the fleet's totals sampled over the run (``history``). The parent adds
  the ledger and the SLO verdicts.
- ``--fleet-capacity-plan PATH`` / ``--fleet-capacity-out PATH``: the capacity shape
  (:class:`fleet.locust.shapes.CapacityShape`) steps the fleet through the plan's
  sizes; :class:`CapacityProbe` measures each step over a window (after a settle
  period, so the ramp's boot burst is not counted against the step), evaluates the
  SLOs there and ends the test at the first step that breaks one. Each finished step
  is appended to the out file at once, so an interrupted search still leaves its steps.

Windows are differences of two snapshots of Locust's cumulative statistics (the
response-time histograms subtract exactly), so Locust's own totals and its HTML
report still cover the whole run. Everything here runs on the gevent side (the shape
greenlet, the quitting hook) and only reads the loop thread's plain counters.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from locust import events
from locust.env import Environment
from locust.runners import WorkerRunner

from fleet.reports import capacity
from fleet.reports import slo as slo_mod
from fleet.reports import summary as report
from fleet.reports.html import HISTORY_KEY

log = logging.getLogger("fleet.locust")

REQUEST_TYPE = "OCPP"


@events.init_command_line_parser.add_listener
def _arguments(parser: Any, **_: Any) -> None:
    group = parser.add_argument_group("chargepro-fleet reports")
    group.add_argument(
        "--fleet-summary-json",
        default="",
        help="Write the run's JSON summary here at the end (master or standalone)",
    )
    group.add_argument(
        "--fleet-capacity-plan",
        default="",
        help="Capacity search plan (JSON, written by `fleet capacity`); with the capacity shape",
    )
    group.add_argument(
        "--fleet-capacity-out",
        default="",
        help="Where the capacity shape writes each measured step (JSON)",
    )


_notes: dict[int, dict[str, Any]] = {}


def note(environment: Environment, key: str, value: Any) -> None:
    """Something the run's summary must carry besides the numbers (why it stopped
    early: ``aborted``); written into the summary file at the end."""
    _notes.setdefault(id(environment), {})[key] = value


def setup(environment: Environment) -> None:
    """Called once per process from the locustfile's init hook: arm the summary, and
    the console line with the run's wall time (on the master or a standalone process)."""
    if isinstance(environment.runner, WorkerRunner):
        return  # workers report to the master, which writes the summary
    opts = environment.parsed_options
    path = getattr(opts, "fleet_summary_json", "") if opts is not None else ""
    clock = RunClock()
    environment.events.test_start.add_listener(clock.started)
    environment.events.test_stop.add_listener(clock.stopped)

    def print_run_line(**_: Any) -> None:
        if clock.start is None:
            return
        try:
            data = summarize(environment, None, None, clock)
            print(report.run_line(data), file=sys.stderr, flush=True)
        except Exception:
            log.exception("could not summarise the run")

    environment.events.quitting.add_listener(print_run_line)
    if not path:
        return

    at_stop: dict[str, Any] = {}
    # The fleet's totals over the run, for the fleet report's charts (fleet run --html).
    from fleet.locust.webui import recorder

    recording = recorder(environment)

    def gauges_at_stop(**_: Any) -> None:
        # Before the stations go down: how many were connected, charging... at the end
        # of the load (by the time Locust quits, every station is offline).
        from fleet.locust.metrics import fleet_totals

        at_stop.clear()
        at_stop.update(fleet_totals(environment))

    def write_summary(**_: Any) -> None:
        try:
            target = getattr(opts, "num_users", None)
            data = summarize(environment, None, target, clock)
            data["fleet"].update(
                report.jsonable({k: v for k, v in at_stop.items() if k not in COUNTERS})
            )
            data[HISTORY_KEY] = recording.history.samples()
            data.update(report.jsonable(_notes.get(id(environment), {})))
            report.write(data, path)
        except Exception:  # a report must never turn a finished run into a traceback
            log.exception("could not write the summary to %s", path)

    environment.events.test_stopping.add_listener(gauges_at_stop)
    environment.events.quitting.add_listener(write_summary)


class RunClock:
    """Whether a run started and when it ended (Locust's test_stop, once the stations
    are down): with Locust's start of statistics, the run's wall time, which Locust's
    own figures do not give (its req/s ends at the last request, so a quiet end of a
    run shortens it)."""

    def __init__(self) -> None:
        self.start: float | None = None
        self.stop: float | None = None

    def started(self, environment: Environment, **_: Any) -> None:
        # Locust clears its statistics, and so sets their start, just before test_start
        # and when its --run-time starts counting; test_start listeners may take a while.
        self.start, self.stop = environment.stats.start_time or time.time(), None

    def stopped(self, **_: Any) -> None:
        if self.start is not None and self.stop is None:
            self.stop = time.time()


# -- snapshots of Locust's statistics -------------------------------------------


def row_name(request_type: str, name: str) -> str:
    """A summary row's name: an OCPP exchange by its action (``BootNotification``), any
    other request with its Locust type in front (``WS connect``, ``MISBEHAVE schema``).
    Every type is in the summary, so its ``total`` is Locust's Aggregated row."""
    return name if request_type == REQUEST_TYPE else f"{request_type} {name}"


@dataclass
class Snapshot:
    """Locust's cumulative statistics and the fleet's totals at one moment."""

    at: float
    groups: dict[str, report.Group]
    errors: dict[tuple[str, str], int]  # (action, error) -> occurrences
    fleet: dict[str, Any]


def snapshot(environment: Environment, exact: bool = False) -> Snapshot:
    """Copy what is needed now (the histograms are small: rounded milliseconds).
    ``exact`` keeps each entry's exact min/max (only right for a whole run)."""
    from fleet.locust.metrics import fleet_totals

    stats = environment.stats
    groups: dict[str, report.Group] = {}
    for (name, method), entry in list(stats.entries.items()):
        groups[row_name(method, name)] = report.Group(
            requests=entry.num_requests,
            failures=entry.num_failures,
            total_ms=float(entry.total_response_time),
            histogram=dict(entry.response_times),
            min_ms=float(entry.min_response_time)
            if exact and entry.min_response_time is not None and entry.num_requests
            else None,
            max_ms=float(entry.max_response_time) if exact and entry.num_requests else None,
        )
    errors: dict[tuple[str, str], int] = {}
    for err in list(stats.errors.values()):
        key = (row_name(err.method, err.name), report.error_text(err.error))
        errors[key] = errors.get(key, 0) + err.occurrences
    return Snapshot(time.time(), groups, errors, dict(fleet_totals(environment)))


def summarize(
    environment: Environment,
    since: Snapshot | None,
    target: int | None,
    clock: RunClock | None = None,
) -> dict[str, Any]:
    """The summary from ``since`` (None: the start of the run) to now; a whole run's
    wall time from ``clock`` (default: Locust's start of statistics to now)."""
    now = snapshot(environment, exact=since is None)
    if since is None:
        stats = environment.stats
        start = (clock.start if clock else None) or stats.start_time or now.at
        end = (clock.stop if clock else None) or now.at
        last = stats.last_request_timestamp
        return _build(
            now.groups,
            now.errors,
            now.fleet,
            max(end - start, 1e-9),
            target,
            None if not last else max(last - start, 0.0),
        )
    return window(since, now, target)


def window(old: Snapshot, new: Snapshot, target: int | None) -> dict[str, Any]:
    """What happened between two snapshots; fleet counters as differences, gauges
    (stations connected, transactions active...) as they are at the end."""
    groups = {name: g.minus(old.groups.get(name, report.Group())) for name, g in new.groups.items()}
    errors = {k: n - old.errors.get(k, 0) for k, n in new.errors.items()}
    fleet = _fleet_diff(old.fleet, new.fleet)
    return _build(groups, errors, fleet, max(new.at - old.at, 1e-9), target)


def _build(
    groups: dict[str, report.Group],
    errors: dict[tuple[str, str], int],
    fleet: dict[str, Any],
    seconds: float,
    target: int | None,
    last_request_s: float | None = None,
) -> dict[str, Any]:
    rows = [(action, error, n) for (action, error), n in errors.items()]
    return report.build(groups, seconds, rows, fleet, target, last_request_s=last_request_s)


#: Fleet totals that count events (a window takes the difference); the others are
#: gauges (a window takes the value at its end).
COUNTERS = frozenset(
    {
        "transaction_messages_dropped",
        "callerrors",
        "timeouts",
        "reconnects",
        "schema_violations",
        "offline_messages_delivered",
        "connect_failures",
        "transactions_started",
        "transactions_stopped",
        "unfinished_transactions",
        "energy_wh",
    }
)


def _fleet_diff(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in new.items():
        if key not in COUNTERS:
            out[key] = value
        elif isinstance(value, dict):
            previous = old.get(key)
            before: dict[str, Any] = previous if isinstance(previous, dict) else {}
            out[key] = {k: v - before.get(k, 0) for k, v in value.items()}
        elif isinstance(value, (int, float)):
            before_n = old.get(key, 0)
            out[key] = value - (before_n if isinstance(before_n, (int, float)) else 0)
        else:
            out[key] = value
    return out


# -- capacity search ---------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """What ``fleet capacity`` asks for: fleet sizes, each held ``hold`` seconds and
    measured after ``settle`` seconds, and the SLOs each step must hold."""

    sizes: list[int]
    hold: float
    settle: float
    spawn_rate: float
    slos: list[str]

    @classmethod
    def read(cls, path: str) -> Plan:
        data = json.loads(Path(path).read_text())
        return cls(
            [int(n) for n in data["sizes"]],
            float(data["hold"]),
            float(data["settle"]),
            float(data["spawn_rate"]),
            [str(s) for s in data["slos"]],
        )


class CapacityProbe:
    """Drives the capacity shape: which size now, and the verdict of each step."""

    def __init__(self, environment: Environment, plan: Plan, out: str) -> None:
        self.env = environment
        self.plan = plan
        self.out = out
        self.slos = slo_mod.parse_all(plan.slos)
        self.steps: list[dict[str, Any]] = []
        self._step = 0  # the step being held
        self._start: Snapshot | None = None  # its window's start, once settled
        self._begin: Snapshot | None = None  # the step's start (its boot storm's window)
        self._done = False

    @classmethod
    def from_options(cls, environment: Environment) -> CapacityProbe | None:
        opts = environment.parsed_options
        plan = getattr(opts, "fleet_capacity_plan", "") if opts is not None else ""
        if not plan:
            return None
        out = getattr(opts, "fleet_capacity_out", "") or str(Path(plan).with_suffix(".out.json"))
        return cls(environment, Plan.read(plan), out)

    def tick(self, t: float) -> tuple[int, float] | None:
        """The shape's answer at run time ``t``: (stations, spawn rate), or None to end."""
        if self._done:
            return None
        plan = self.plan
        current = int(t // plan.hold)
        if current > self._step:
            # The held step is over: measure it before the next size is asked for.
            if not self._finish_step() or self._step + 1 >= len(plan.sizes):
                self._end("slo" if not self.steps[-1]["passed"] else "max")
                return None
            self._step += 1
            self._start = None
        if self._begin is None:
            self._begin = snapshot(self.env)
        if self._start is None and t >= self._step * plan.hold + plan.settle:
            self._start = snapshot(self.env)
        return plan.sizes[self._step], plan.spawn_rate

    def _finish_step(self) -> bool:
        size = self.plan.sizes[self._step]
        if self._start is None:  # the hold ended before the settle did (ticks are late)
            self._start = snapshot(self.env)
        end = snapshot(self.env)
        summary = window(self._start, end, size)
        # The whole step too: a BootNotification SLO is about the step's boot storm,
        # which is over before the settled window starts (capacity.STEP_START_ACTIONS).
        assert self._begin is not None
        whole = window(self._begin, end, size)
        self._begin = end  # the next step starts where this one ends
        results = capacity.evaluate_step(self.slos, summary, whole)
        summary = report.with_results(summary, results)
        step = {
            "stations": size,
            "window_s": summary["wall_s"],
            "stations_connected": summary["fleet"].get("stations_connected", 0),
            "passed": summary["passed"],
            "summary": summary,
            "whole": whole,
        }
        self.steps.append(step)
        broken = [r.message for r in results if not r.passed]
        log.info(
            "capacity step %d stations: %s",
            size,
            "held every SLO" if not broken else "did not hold " + "; ".join(broken),
        )
        self._write(done=False, reason="")
        return bool(summary["passed"])

    def _end(self, reason: str) -> None:
        self._done = True
        self._write(done=True, reason=reason)

    def _write(self, done: bool, reason: str) -> None:
        data = {
            "version": 1,
            "plan": {
                "sizes": self.plan.sizes,
                "hold": self.plan.hold,
                "settle": self.plan.settle,
                "spawn_rate": self.plan.spawn_rate,
                "slos": self.plan.slos,
            },
            "steps": self.steps,
            "done": done,
            "stop_reason": reason,
        }
        try:
            report.write(data, self.out)
        except OSError:
            log.exception("could not write capacity steps to %s", self.out)
