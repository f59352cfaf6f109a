"""The generator measures itself: fleet_loop_lag_seconds, the worst lag and the loop
thread's CPU share (fleet.engine.loop.LagProbe), shipped to the master like any counter.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import msgpack
import pytest
from promtext import Samples, fetch, fleet_run, needs_promtool, promtool_check, scrape, stop, total
from support import wait_until

from fleet.engine.loop import CPU_WINDOW, LagProbe, LoopThread
from fleet.metrics.stats import LAG_BUCKETS, FleetStats, LagWatch, lag_totals, merge, snapshot
from fleet.reports import slo as slos
from fleet.reports import summary as report

ROOT = Path(__file__).resolve().parents[2]


class FakeClocks:
    def __init__(self) -> None:
        self.wall = 100.0
        self.cpu = 5.0


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def test_a_late_timer_is_recorded_as_its_lateness(loop: asyncio.AbstractEventLoop) -> None:
    clocks = FakeClocks()
    stats = FleetStats()
    probe = LagProbe(loop, stats, period=0.02, clock=lambda: clocks.wall, cpu_clock=lambda: 0)
    probe.start()  # due at 100.02
    probe.record(100.0204, 0.0)  # on time, within a millisecond; next due at 100.0404
    probe.record(100.0404 + 0.2, 0.0)  # the loop was busy for 200 ms
    hist = stats.loop_lag
    assert hist.count == 2
    assert hist.counts[0] == 1  # <= 1 ms
    assert hist.counts[LAG_BUCKETS.index(0.25)] == 1  # 0.1 < 0.2 <= 0.25
    assert stats.loop_lag_max == pytest.approx(0.2)
    probe.stop()


def test_the_cpu_share_is_measured_per_window(loop: asyncio.AbstractEventLoop) -> None:
    clocks = FakeClocks()
    stats = FleetStats()
    probe = LagProbe(
        loop, stats, period=0.02, clock=lambda: clocks.wall, cpu_clock=lambda: clocks.cpu
    )
    probe.start()
    probe.record(100.5, 5.4)
    assert stats.loop_cpu_ratio == 0.0  # not a whole window yet
    probe.record(100.0 + CPU_WINDOW, 5.0 + 0.75 * CPU_WINDOW)
    assert stats.loop_cpu_ratio == pytest.approx(0.75)
    probe.record(100.0 + 2 * CPU_WINDOW, 5.0 + 0.85 * CPU_WINDOW)
    assert stats.loop_cpu_ratio == pytest.approx(0.10)
    probe.stop()


def test_a_blocked_loop_thread_shows_as_lag_and_cpu() -> None:
    """The real thing: a LoopThread with stats probes itself; a callback that keeps the
    loop busy for 0.3 s (as a storm of handshakes would) is the lag every other callback
    waited, and the thread's CPU share shows it was working, not waiting."""
    stats = FleetStats()
    thread = LoopThread(stats).start()
    try:
        wait_until(lambda: stats.loop_lag.count >= 5, timeout=10)

        def busy() -> None:
            # 1.3 windows of the thread's own CPU (not wall) time: on a machine shared
            # with other test runs, wall time alone may be mostly spent waiting.
            end = time.thread_time() + 1.3 * CPU_WINDOW
            while time.thread_time() < end:
                pass

        thread.call(busy)
        wait_until(lambda: stats.loop_lag_max >= 0.25, timeout=15)
        # Busy, the thread's share is far above an idle loop's (~0.001); on a machine
        # shared by many runnable threads it gets only its slice of the cores, hence 0.1.
        wait_until(lambda: stats.loop_cpu_ratio >= 0.1, timeout=15)
    finally:
        thread.stop()
    assert stats.loop_lag.count >= 6


def test_without_stats_there_is_no_probe() -> None:
    """Tools that measure the loop themselves (fleet bench) keep it quiet."""
    thread = LoopThread()
    assert thread.probe is None
    thread.loop.close()


def _wire(stats: FleetStats) -> dict:
    return msgpack.loads(msgpack.dumps(snapshot(stats)), raw=False, strict_map_key=False)


def test_the_master_sums_the_lag_histograms_and_keeps_the_worst() -> None:
    a, b = FleetStats(), FleetStats()
    for v in (0.0005, 0.003):
        a.loop_lag.observe(v)
    b.loop_lag.observe(0.3)
    a.loop_lag_max, b.loop_lag_max = 0.003, 0.3
    a.loop_cpu_ratio, b.loop_cpu_ratio = 0.2, 0.9
    total = merge([_wire(a), _wire(b)])
    assert total.loop_lag.count == 3
    assert total.loop_lag.sum == pytest.approx(0.3035)
    assert total.loop_lag_max == 0.3  # the worst process, not 0.303
    assert total.loop_cpu_ratio == 0.9  # the busiest loop thread, not 1.1


def test_the_hub_lag_is_summed_and_maxed_like_the_loop_lag() -> None:
    a, b = FleetStats(), FleetStats()
    a.hub_lag.observe(0.002)
    b.hub_lag.observe(0.08)
    a.hub_lag_max, b.hub_lag_max = 0.002, 0.08
    total = merge([_wire(a), _wire(b)])
    assert total.hub_lag.count == 2
    assert total.hub_lag_max == 0.08
    got = lag_totals(total)
    assert (got["hub_samples"], got["hub_lag_p99_ms"], got["hub_lag_max_ms"]) == (2, 80.0, 80.0)


def _counts(*lags: float) -> list[int]:
    hist = FleetStats().loop_lag
    for v in lags:
        hist.observe(v)
    return hist.counts


def test_the_lag_watch_warns_once_per_crossing() -> None:
    """The warning judges the last ten seconds: a lag burst is one crossing (one
    warning however long it lasts), and only after the lag came back under does the
    next burst warn again."""
    watch = LagWatch(threshold=0.05, window=10.0)
    calm = [0.002] * 500
    seen: list[float] = []
    t = 0.0

    def feed(*lags: float) -> bool:
        nonlocal t
        seen.extend(lags)
        t += 2.0
        return watch.check(t, _counts(*seen))

    assert not feed(*calm)  # the first copy: nothing to compare yet
    assert watch.recent_ms is None
    assert not feed(*calm)
    assert watch.recent_ms == 2.5 and not watch.above
    assert feed(*calm[:90], *[0.12] * 10)  # 10 late of 600: p99 in the 250 ms bucket
    assert watch.recent_ms == 250.0 and watch.above
    for _ in range(3):  # the burst goes on: no second warning
        assert not feed(*calm[:90], *[0.12] * 10)
    assert watch.above
    for _ in range(6):  # ten calm seconds: back under
        assert not feed(*calm)
    assert not watch.above and watch.recent_ms == 2.5
    assert feed(*calm[:50], *[0.3] * 50)  # a new crossing warns again
    # The worst lag so far caps the p99's bucket bound.
    assert not watch.check(t + 2, _counts(*seen, 0.3), worst=0.3)
    assert watch.recent_ms == 300.0
    # A new fleet (fewer probes than before): the window starts over.
    assert not watch.check(t + 4, _counts(0.001))


def test_lag_totals_read_the_p99_as_an_upper_bound() -> None:
    stats = FleetStats()
    assert lag_totals(stats) == {
        "samples": 0,
        "lag_p99_ms": None,
        "lag_max_ms": None,
        "loop_cpu_ratio": 0.0,
        "hub_samples": 0,
        "hub_lag_p99_ms": None,
        "hub_lag_max_ms": None,
        "lag_threshold_ms": 50.0,
    }
    for _ in range(990):
        stats.loop_lag.observe(0.0008)
    for _ in range(10):
        stats.loop_lag.observe(0.04)
    stats.loop_lag_max = 0.04
    got = lag_totals(stats)
    assert got["samples"] == 1000
    assert got["lag_p99_ms"] == 1.0  # 99 % are within the 1 ms bucket
    assert got["lag_max_ms"] == 40.0
    stats.loop_lag.observe(7.0)  # past the last bound: the worst lag stands in
    stats.loop_lag_max = 7.0
    for _ in range(20):
        stats.loop_lag.observe(9.0)
    assert lag_totals(stats)["lag_p99_ms"] == 7000.0


# -- the run summary and --slo ---------------------------------------------------------


def _summary(p99_ms: float | None, samples: int = 500, **kwargs: float) -> dict:
    lag = {
        "samples": samples,
        "lag_p99_ms": p99_ms,
        "lag_max_ms": 80.0,
        "loop_cpu_ratio": 0.5,
        "hub_samples": 400,
        "hub_lag_p99_ms": 2.5,
        "hub_lag_max_ms": 9.0,
        "lag_threshold_ms": 50.0,  # fleet_totals carries --fleet-lag-threshold
    }
    return report.build({}, 10.0, fleet={"generator": lag}, **kwargs)


def test_the_summary_marks_latency_suspect_past_the_threshold() -> None:
    calm = _summary(25.0)
    assert calm["latency_suspect"] is False
    assert calm["generator"] == {
        "lag_p99_ms": 25.0,
        "lag_max_ms": 80.0,
        "lag_samples": 500,
        "loop_cpu_ratio": 0.5,
        "hub_lag_p99_ms": 2.5,
        "hub_lag_max_ms": 9.0,
        "hub_samples": 400,
        "lag_threshold_ms": 50.0,
        "latency_suspect": False,
    }
    assert _summary(50.0)["latency_suspect"] is False  # p99 <= 50 ms
    assert _summary(100.0)["latency_suspect"] is True
    assert _summary(25.0, lag_threshold_ms=10.0)["latency_suspect"] is True


def test_a_summary_without_a_probe_is_not_suspect() -> None:
    """Older workers, or a run too short for one probe: nothing to accuse."""
    bare = report.build({}, 10.0, fleet={})
    assert bare["latency_suspect"] is False
    assert bare["generator"]["lag_samples"] == 0


def test_generator_lag_p99_is_an_slo() -> None:
    slo = slos.parse("generator_lag_p99 <= 50ms")
    assert slo.kind == "time" and slo.threshold == 50.0
    assert slos.evaluate(slo, _summary(25.0)).passed
    broken = slos.evaluate(slo, _summary(100.0))
    assert not broken.passed
    assert broken.message == "generator_lag_p99 = 100ms (required <= 50ms): BROKEN"
    assert slos.evaluate(slos.parse("generator_lag_p99 < 1s"), _summary(250.0)).passed
    no_probe = slos.evaluate(slo, _summary(None, samples=0))
    assert no_probe.measured is None and not no_probe.passed
    with pytest.raises(slos.SloError, match="give a unit"):
        slos.parse("generator_lag_p99 < 50")


def test_a_real_run_reports_its_lag(tmp_path: Path) -> None:
    """``fleet run`` end to end: the JSON summary carries the lag the stations' loop
    measured, and the SLO on it is evaluated (an idle fleet of two keeps up easily)."""
    out = tmp_path / "summary.json"
    proc = subprocess.run(
        fleet_run(
            2,
            4,
            "idle",
            "--seed",
            "3",
            "--json-summary",
            str(out),
            "--slo",
            "generator_lag_p99 <= 1000ms",
        ),
        capture_output=True,
        text=True,
        timeout=90,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    summary = json.loads(out.read_text())
    generator = summary["generator"]
    assert generator["lag_samples"] >= 20  # 10 probes a second (LAG_PERIOD) for about 4 s
    assert 0 <= generator["lag_p99_ms"] <= 1000
    assert generator["lag_max_ms"] >= 0
    assert summary["latency_suspect"] is False
    [result] = summary["slos"]
    assert result["metric"] == "generator_lag_p99" and result["passed"]


# -- a generator that lags, for real --------------------------------------------------

STALL_MS = 150  # --fleet-diag-loop-stall: the loop blocked 150 ms every second


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _lagging_run(tmp_path: Path, *extra: str) -> tuple[subprocess.Popen[str], Path, Path]:
    """A headless ``fleet run`` whose stations' loop stalls 150 ms every second (the
    documented diagnostic): a p99 past 50 ms on any machine, busy or not."""
    out = tmp_path / "summary.json"
    err = tmp_path / "stderr.txt"
    proc = subprocess.Popen(
        fleet_run(5, 10, "idle", "--seed", "3", "--json-summary", str(out), *extra),
        stdout=subprocess.PIPE,
        stderr=err.open("w"),
        text=True,
        cwd=ROOT,
        env={**os.environ, "LOCUST_FLEET_DIAG_LOOP_STALL": str(STALL_MS)},
    )
    return proc, out, err


@needs_promtool
def test_a_lagging_generator_warns_and_breaks_its_slo(tmp_path: Path) -> None:
    """The stations' loop lags 150 ms once a second: the console warns once (not every
    second), the summary marks the latency figures suspect, the SLO on the lag breaks
    (exit code 1), the fleet report says it first, and /metrics carries the gevent
    hub's lag beside the loop's, in an exposition promtool accepts."""
    port = _free_port()
    html = tmp_path / "run.html"
    proc, out, err = _lagging_run(
        tmp_path,
        "--metrics-port",
        str(port),
        "--html",
        str(html),
        "--slo",
        "generator_lag_p99 <= 50ms",
    )
    try:
        url = f"http://127.0.0.1:{port}/metrics"

        def lagged() -> Samples | None:
            try:
                page = scrape(url)
            except OSError:
                return None
            hub = total(page, "fleet_hub_lag_seconds_count")
            return page if hub >= 50 and total(page, "fleet_loop_lag_max_seconds") >= 0.1 else None

        page = wait_until(lagged, 40, "hub and loop lag on /metrics")
        assert total(page, "fleet_hub_lag_max_seconds") >= 0
        assert total(page, "fleet_hub_lag_seconds_bucket", le="+Inf") == total(
            page, "fleet_hub_lag_seconds_count"
        )
        promtool_check(fetch(url))
        stdout, _ = proc.communicate(timeout=90)
    finally:
        stop(proc)
    assert proc.returncode == 1, stdout[-2000:] + err.read_text()[-2000:]
    console = err.read_text()
    warnings = [line for line in console.splitlines() if "generator lag p99" in line]
    assert len(warnings) == 1, console  # once per crossing, though it lagged all run
    assert re.fullmatch(
        r"fleet: generator lag p99 \d+ ms > 50 ms: this machine, not the CSMS, limits the "
        r"latency figures \(add --processes or workers\)",
        warnings[0],
    )
    assert "fleet: SLO broken: generator_lag_p99 <= 50ms" in console
    summary = json.loads(out.read_text())
    generator = summary["generator"]
    assert summary["latency_suspect"] is True and generator["latency_suspect"] is True
    assert generator["lag_p99_ms"] > 50 and generator["lag_max_ms"] >= STALL_MS * 0.9
    assert generator["hub_samples"] > 0 and generator["hub_lag_max_ms"] is not None
    assert [r["passed"] for r in summary["slos"]] == [False]
    report = (tmp_path / "run-fleet.html").read_text()
    assert 'class="generator suspect"' in report
    assert report.index('id="generator"') < report.index('id="slos"')  # before anything else
    assert "Latency figures SUSPECT" in report


def test_the_lag_threshold_is_the_users(tmp_path: Path) -> None:
    """The same lag under ``--lag-threshold 1000``: no warning, not suspect."""
    proc, out, err = _lagging_run(tmp_path, "--lag-threshold", "1000")
    try:
        proc.communicate(timeout=90)
    finally:
        stop(proc)
    assert proc.returncode == 0, err.read_text()[-2000:]
    assert "generator lag p99" not in err.read_text()
    summary = json.loads(out.read_text())
    assert summary["generator"]["lag_threshold_ms"] == 1000.0
    assert summary["generator"]["lag_p99_ms"] > 50  # it did lag
    assert summary["latency_suspect"] is False


class _GridLoop:
    """A loop clock and the timers asked of it (when, callback)."""

    def __init__(self, t: float) -> None:
        self.t = t
        self.timers: list[tuple[float, object]] = []

    def time(self) -> float:
        return self.t

    def call_at(self, when: float, fn: object) -> None:
        self.timers.append((when, fn))

    def call_later(self, delay: float, fn: object) -> None:
        self.call_at(self.t + delay, fn)


def _on_the_grid(at: float) -> bool:
    from fleet.engine.link import TIMER_SLACK

    steps = at / TIMER_SLACK
    return abs(steps - round(steps)) < 1e-6


@pytest.mark.parametrize("now", [1000.0, 1000.0123, 1000.049, 73.97, 0.001])
def test_own_timers_share_the_stations_wakeups(now: float) -> None:
    """The process's own timers (Locust's batches: on_grid) land on the stations'
    wake-up grid, about their period on, never in the past: they run in
    wake-ups the stations have anyway."""
    from fleet.engine.link import TIMER_SLACK
    from fleet.engine.loop import on_grid

    for delay in (0.1, 0.5, 0.0):
        at = on_grid(_GridLoop(now), delay)  # type: ignore[arg-type]
        assert _on_the_grid(at) and at > now
        assert abs(at - (now + delay)) <= TIMER_SLACK + 1e-9
        if delay:
            assert abs(at - (now + delay)) <= TIMER_SLACK / 2 + 1e-9
