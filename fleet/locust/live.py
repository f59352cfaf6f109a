"""What a headless run shows and decides while it runs (master or standalone process).

- **The progress line** (``--fleet-progress-every SECONDS``, 0: off): every few seconds
  one line with the stations connected of those started, requests per second (Locust's
  current rate), failures, the current p95 and the time elapsed / left, so a CI log of a
  ten-minute ``--only-summary`` run shows the run is alive and how it goes. On a
  terminal the line is redrawn in place; anywhere else (a CI log, a pipe) it is one line
  per interval, no carriage returns.
- **SLOs that abort** (``--fleet-slo-abort EXPR``, repeatable, k6's ``abortOnFail``):
  once ``--fleet-slo-abort-after SECONDS`` of the run have passed, the run so far is
  measured every second; the first such SLO that is lost stops the run. The summary
  file then says which (``aborted``), and ``fleet run`` exits 1 naming it. An SLO with
  nothing to measure yet (no data), or about the ledger (the CSMS is the parent's), never
  aborts: only a measured value that breaks it does.

Both run in one greenlet, on the gevent side, and read only Locust's statistics and
the fleet's plain counters.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any, TextIO

import gevent
from locust.env import Environment
from locust.runners import WorkerRunner

from fleet.locust import summary
from fleet.reports import slo as slo_mod

log = logging.getLogger("fleet.locust")

TICK = 1.0
"""Seconds between two looks at the run (abort checks; the progress line's grid)."""


def add_arguments(parser: Any) -> None:
    group = parser.add_argument_group("chargepro-fleet live")
    group.add_argument(
        "--fleet-progress-every",
        type=float,
        default=0.0,
        help="Headless: print a progress line every this many seconds (0: off)",
    )
    group.add_argument(
        "--fleet-slo-abort",
        action="append",
        default=[],
        help="An SLO that stops the run as soon as it is lost (repeatable)",
    )
    group.add_argument(
        "--fleet-slo-abort-after",
        type=float,
        default=30.0,
        help="Seconds into the run before an aborting SLO may stop it",
    )


def setup(environment: Environment) -> None:
    """Called once per process from the locustfile's init hook."""
    opts = environment.parsed_options
    if opts is None or isinstance(environment.runner, WorkerRunner):
        return
    every = float(getattr(opts, "fleet_progress_every", 0.0) or 0.0)
    texts = list(getattr(opts, "fleet_slo_abort", None) or [])
    if every <= 0 and not texts:
        return
    try:
        slos = slo_mod.parse_all(texts)
    except slo_mod.SloError as exc:
        sys.stderr.write(f"fleet: {exc}\n")
        sys.exit(2)
    watch = Watch(environment, every, slos, float(getattr(opts, "fleet_slo_abort_after", 30.0)))
    environment.events.test_start.add_listener(lambda **_: watch.start())
    environment.events.test_stopping.add_listener(lambda **_: watch.stop())
    environment.events.quitting.add_listener(lambda **_: watch.stop())


class Watch:
    """The greenlet that prints the progress line and checks the aborting SLOs."""

    def __init__(
        self,
        environment: Environment,
        every: float,
        slos: list[slo_mod.Slo],
        abort_after: float,
        out: TextIO | None = None,
    ) -> None:
        self.env = environment
        self.every = every
        self.slos = slos
        self.abort_after = abort_after
        self.out = out or sys.stdout
        self.tty = self.out.isatty()
        self.started = 0.0
        self._greenlet: gevent.Greenlet | None = None
        self._drawn = False  # a line drawn in place that the next output must end

    def start(self) -> None:
        if self._greenlet is None:
            self.started = time.monotonic()
            self._greenlet = gevent.spawn(self._run)

    def stop(self) -> None:
        greenlet, self._greenlet = self._greenlet, None
        if greenlet is not None and greenlet is not gevent.getcurrent():
            greenlet.kill(block=False)
        if self._drawn:
            self.out.write("\n")
            self.out.flush()
            self._drawn = False

    def _run(self) -> None:
        next_line = self.every
        while True:
            gevent.sleep(TICK)
            elapsed = time.monotonic() - self.started
            try:
                if self.slos and elapsed >= self.abort_after and self._check(elapsed):
                    return
                if self.every > 0 and elapsed + TICK / 2 >= next_line:
                    next_line += self.every
                    self._print(self.line(elapsed))
            except Exception:  # a report must never stop the run
                log.exception("live run check failed")

    # -- the progress line ---------------------------------------------------------

    def line(self, elapsed: float) -> str:
        """One line: where the run is and how it goes now."""
        from fleet.locust.metrics import fleet_totals

        total = self.env.stats.total
        fleet = fleet_totals(self.env)
        run_time = getattr(self.env.parsed_options, "run_time", None)
        when = _clock(elapsed)
        if run_time:
            when += f" of {_clock(float(run_time))}"
        p95 = total.get_current_response_time_percentile(0.95) if total.num_requests else None
        share = total.num_failures / total.num_requests if total.num_requests else 0.0
        return (
            f"fleet: {when}  stations {fleet.get('stations_connected', 0)}/"
            f"{fleet.get('stations_started', 0)} connected  {total.current_rps:.1f} req/s  "
            f"failures {total.num_failures} ({share * 100:.1f}%)  "
            f"p95 {'-' if p95 is None else f'{p95:.0f}ms'}"
        )

    def _print(self, text: str) -> None:
        if self.tty:
            self.out.write(f"\r{text}\x1b[K")
            self._drawn = True
        else:
            self.out.write(text + "\n")
        self.out.flush()

    # -- aborting SLOs ---------------------------------------------------------------

    def _check(self, elapsed: float) -> bool:
        """Measure the run so far; stop it at the first aborting SLO it broke."""
        target = getattr(self.env.parsed_options, "num_users", None)
        so_far = summary.summarize(self.env, None, target)
        for result in slo_mod.evaluate_all(self.slos, so_far):
            if result.measured is None or result.passed:
                continue
            self.stop()
            sys.stderr.write(
                f"fleet: stopping the run at {elapsed:.0f}s: SLO lost: {result.slo.text} "
                f"(measured {result.measured_text})\n"
            )
            sys.stderr.flush()
            summary.note(
                self.env,
                "aborted",
                {
                    "slo": result.slo.text,
                    "measured": result.measured,
                    "measured_text": result.measured_text,
                    "at_s": round(elapsed, 1),
                },
            )
            runner = self.env.runner
            if runner is not None:
                gevent.spawn(runner.quit)
            return True
        return False


def _clock(seconds: float) -> str:
    s = int(seconds)
    if s >= 3600:
        return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"
    return f"{s // 60}:{s % 60:02d}"
