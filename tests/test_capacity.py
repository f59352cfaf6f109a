"""Capacity search: `fleet capacity` against a reference CSMS of known capacity.

The reference CSMS serves one CALL at a time, each taking 35 ms: at most
1000 / 35 = 28.6 messages per second. The stations of the test profile do nothing but
heartbeat every second (the CSMS's BootNotification interval), so N stations offer N
messages per second, and each waits about N / 28.6 - 1 seconds once N is past the
knee. Steps of 20: 20 stations load the CSMS to 70% (a round trip of a few tens of
ms); 40 stations are 40% past its capacity (every heartbeat waits ~0.4 s). With
``Heartbeat.p95 < 250ms`` the answer is known in advance: 20 held, 40 broke, and the
search stops there (60 and 80 are never tried).
"""

from __future__ import annotations

import asyncio
import json
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
from support import wait_until
from websockets.asyncio.client import connect

from fleet.csms.server import CsmsThread
from fleet.reports import capacity as cap
from fleet.reports import slo as slo_mod

SERVICE_S = 0.035
PROFILE = """\
name: heartbeats
description: Idle stations that heartbeat every second (the CSMS's interval).
behaviour: idle
"""


def _fleet(*args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fleet", *args], capture_output=True, text=True, timeout=timeout
    )


# -- the search itself, end to end -----------------------------------------------


@pytest.fixture(scope="module")
def search(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("capacity")
    profile = out / "heartbeats.yaml"
    profile.write_text(PROFILE)
    with CsmsThread(accept_all_tags=True, heartbeat_interval=1, service_time=SERVICE_S) as csms:
        started = time.monotonic()
        proc = _fleet(
            "capacity", "--csms", csms.url, "--profile", str(profile),
            "--slo", "Heartbeat.p95 < 250ms", "--slo", "error_rate < 1%",
            "--start", "20", "--step", "20", "--max", "80",
            "--hold", "8s", "--settle", "4s", "--spawn-rate", "40", "--seed", "1",
            "--html", str(out / "report.html"), "--json", str(out / "steps.json"),
        )  # fmt: skip
        elapsed = time.monotonic() - started
        stations_seen = csms.ledger.summary()["stations"]
    return {"proc": proc, "out": out, "elapsed": elapsed, "stations_seen": stations_seen}


def test_finds_the_knee_known_in_advance(search: dict[str, Any]) -> None:
    proc = search["proc"]
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "largest fleet that held every SLO: 20 stations" in proc.stdout
    assert "broke at 40 stations:" in proc.stdout
    m = re.search(r"Heartbeat\.p95 < 250ms: measured (\d+)ms", proc.stdout)
    assert m is not None, proc.stdout[-2000:]
    assert int(m[1]) >= 250
    # It stopped at the first broken step: 60 and 80 stations were never started.
    assert search["stations_seen"] == 40
    assert search["elapsed"] < 60


def test_json_has_each_step_with_its_window_and_verdict(search: dict[str, Any]) -> None:
    data = json.loads((search["out"] / "steps.json").read_text())
    assert data["plan"]["sizes"] == [20, 40, 60, 80]
    assert data["done"] is True and data["stop_reason"] == "slo"
    assert data["result"]["largest_passing"] == 20 and data["result"]["breaking"] == 40
    assert [b["slo"] for b in data["result"]["broken"]] == ["Heartbeat.p95 < 250ms"]
    first, second = data["steps"]
    assert (first["stations"], first["passed"]) == (20, True)
    assert (second["stations"], second["passed"]) == (40, False)
    for step in data["steps"]:
        # Measured after the settle period: about hold - settle seconds of steady load.
        assert 3.0 <= step["window_s"] <= 5.5, step["window_s"]
        assert step["stations_connected"] == step["stations"]
        heartbeat = step["summary"]["actions"]["Heartbeat"]
        # Each station heartbeats about once a second: no more than the fleet size per s.
        assert heartbeat["rps"] <= step["stations"] * 1.2
        # Only heartbeats in a window: the boot burst stayed in the settle period.
        assert "BootNotification" not in step["summary"]["actions"]
    # 20 stations: under the CSMS's 28.6 msg/s, at about one heartbeat per station a s.
    assert data["steps"][0]["summary"]["actions"]["Heartbeat"]["rps"] >= 15
    # 40 stations: throughput pinned at the CSMS's capacity, latency is the queue.
    saturated = data["steps"][1]["summary"]["actions"]["Heartbeat"]
    assert saturated["rps"] <= 1 / SERVICE_S * 1.1
    assert saturated["p50_ms"] >= 200


def test_html_report_plots_against_fleet_size(search: dict[str, Any]) -> None:
    page = (search["out"] / "report.html").read_text()
    assert "largest fleet that held every SLO: 20 stations" in page
    assert page.count("<svg") == 3
    for title in ("Round trip (all actions)", "Error rate", "Stations connected"):
        assert f">{title}</text>" in page
    # One point per measured step on each series; the knee drawn at 20.
    assert page.count('data-name="p95"') == 1
    p95 = re.search(r'data-name="p95" points="([^"]+)"', page)
    assert p95 is not None and len(p95[1].split()) == 2
    assert page.count('class="knee"') == 3
    assert "Heartbeat.p95 = " in page and "BROKEN" in page


# -- the CSMS of known capacity --------------------------------------------------


async def _heartbeats(url: str, stations: int) -> list[float]:
    """One Heartbeat from each of ``stations`` at once; when each answer came."""

    async def one(n: int) -> float:
        async with connect(f"{url}/T{n:03d}", subprotocols=["ocpp1.6"]) as ws:  # type: ignore[list-item]
            await ws.send(json.dumps([2, "1", "Heartbeat", {}]))
            reply = json.loads(await ws.recv())
            assert reply[0] == 3
            return time.monotonic()

    start = time.monotonic()
    done = await asyncio.wait_for(asyncio.gather(*(one(n) for n in range(stations))), 60)
    return sorted(t - start for t in done)


def test_cli_csms_delay_serves_one_message_at_a_time(free_port: int) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "fleet", "csms", "--port", str(free_port), "--delay-ms", "100"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # "reference CSMS listening on ws://..."
        assert "listening on" in line, line
        answered = asyncio.run(_heartbeats(f"ws://127.0.0.1:{free_port}/ocpp", 5))
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    # Five CALLs at once, 100 ms each, one after the other: the k-th answer cannot come
    # before k x 100 ms (a lower bound: a busy machine only makes answers later, where
    # the gaps between them, once asserted here, shrink when the client reads late).
    assert all(t >= 0.1 * k - 0.005 for k, t in enumerate(answered, 1)), answered


def test_no_delay_by_default() -> None:
    with CsmsThread(accept_all_tags=True) as csms:
        answered = asyncio.run(_heartbeats(csms.url, 5))
    assert answered[-1] < 0.5


# -- pieces and mistakes -------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "step", "maximum", "expected"),
    [
        (100, 100, 500, [100, 200, 300, 400, 500]),
        (50, 100, 320, [50, 150, 250, 320]),
        (10, 10, 10, [10]),
    ],
)
def test_sizes(start: int, step: int, maximum: int, expected: list[int]) -> None:
    assert cap.sizes(start, step, maximum) == expected


def test_default_settle_leaves_half_the_hold_to_measure() -> None:
    assert cap.default_settle(60, 100, 50) == 17.0  # 2 s of ramp + 15 s
    assert cap.default_settle(60, 1000, 10) == 30.0  # a 100 s ramp: capped at half


def _step(stations: int, p95: float | None, requests: int = 100) -> dict[str, Any]:
    total = {"requests": requests, "failures": 0, "error_rate": 0.0, "rps": 10.0, "p95_ms": p95}
    return {
        "stations": stations,
        "stations_connected": stations,
        "passed": True,
        "summary": {"total": total, "actions": {"Heartbeat": total}},
    }


def test_verdict_is_the_last_step_before_the_first_broken_one() -> None:
    data = {
        "plan": {"slos": ["p95 < 1s"]},
        "steps": [_step(10, 100), _step(20, 900), _step(30, 1500), _step(40, 200)],
        "done": True,
    }
    v = cap.verdict(data)
    assert (v.largest_passing, v.breaking, v.complete) == (20, 30, True)
    assert [r.measured for r in v.broken] == [1500]
    assert v.lines()[:2] == [
        "largest fleet that held every SLO: 20 stations",
        "broke at 30 stations:",
    ]


def test_verdict_when_nothing_or_everything_held() -> None:
    first_broke = cap.verdict({"plan": {"slos": ["p95 < 1s"]}, "steps": [_step(10, 2000)]})
    assert first_broke.largest_passing is None and first_broke.breaking == 10
    assert first_broke.lines()[0] == "no fleet size held every SLO"
    all_held = cap.verdict(
        {"plan": {"slos": ["p95 < 1s"]}, "steps": [_step(10, 1), _step(20, 2)], "done": True}
    )
    assert (all_held.largest_passing, all_held.breaking, all_held.complete) == (20, None, True)
    assert "raise --max" in all_held.lines()[1]
    cut_short = cap.verdict({"plan": {"slos": ["p95 < 1s"]}, "steps": [_step(10, 1)]})
    assert not cut_short.complete


def test_svg_chart_scales_points_into_the_plot() -> None:
    svg = cap.svg_chart("t", [100, 200], [("a", [0.0, None]), ("b", [50.0, 100.0])], "ms", 100)
    points = re.findall(r'points="([^"]+)"', svg)
    assert len(points[0].split()) == 1 and len(points[1].split()) == 2
    xs = [float(p.split(",")[0]) for p in points[1].split()]
    assert xs[0] < xs[1]
    assert 'class="knee"' in svg


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--slo", "Heartbeat.p95 < 2"], "fleet: --slo 'Heartbeat.p95 < 2': "),
        (["--slo", "error_rate < 1%", "--start", "50", "--max", "10"], "--max 10 is below"),
        (["--slo", "error_rate < 1%", "--hold", "10s", "--settle", "10s"], "--settle (10s)"),
        (["--slo", "error_rate < 1%", "--hold", "soon"], "--hold: cannot read 'soon'"),
        (
            ["--slo", "error_rate < 1%", "--csms", "ws://127.0.0.1:9/ocpp", "--csms-delay-ms", "5"],
            "--csms-delay-ms is for the embedded CSMS",
        ),
        (["--slo", "error_rate < 1%", "--profile", "no-such-profile"], "fleet: "),
    ],
)
def test_mistakes_are_one_line_exit_2(args: list[str], message: str) -> None:
    proc = _fleet("capacity", *args, timeout=30)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and message in proc.stderr, proc.stderr


def test_slos_are_required() -> None:
    proc = _fleet("capacity", timeout=30)
    assert proc.returncode == 2 and "--slo" in proc.stderr


def test_step_results_evaluate_like_a_run() -> None:
    """The verdict re-evaluates each step's window with the same SLO code as `fleet run`."""
    slos = slo_mod.parse_all(["Heartbeat.p95 < 1s"])
    assert slo_mod.evaluate_all(slos, _step(10, 999)["summary"])[0].passed


# -- the docs' example, and an SLO with nothing to measure ----------------------------

DOCS = Path(__file__).resolve().parents[1] / "docs" / "capacity.md"
SHORT_PLAN = {"--start": "3", "--step": "3", "--max": "6", "--hold": "12s", "--spawn-rate": "20"}


def docs_example() -> list[str]:
    """The first ``fleet capacity`` command of docs/capacity.md, as argv."""
    for block in re.findall(r"```sh\n(.*?)```", DOCS.read_text(), re.S):
        command = block.replace("\\\n", " ")
        if command.lstrip().startswith("fleet capacity"):
            return shlex.split(command.splitlines()[0])
    raise AssertionError("docs/capacity.md has no `fleet capacity` example")


def runnable_here(argv: list[str], tmp: Path) -> list[str]:
    """The example against the embedded CSMS (no --csms), with a short step plan and the
    report files in ``tmp``; every SLO and the profile as written."""
    out: list[str] = []
    args = iter(argv[2:])  # after "fleet capacity"
    for arg in args:
        if arg == "--csms":
            next(args)
        elif arg in SHORT_PLAN:
            next(args)
            out += [arg, SHORT_PLAN[arg]]
        elif arg in ("--html", "--json"):
            out += [arg, str(tmp / Path(next(args)).name)]
        else:
            out.append(arg)
    return [*out, "--seed", "1"]


def test_the_docs_example_runs_as_written(tmp_path: Path) -> None:
    argv = docs_example()
    assert argv[:2] == ["fleet", "capacity"] and "--slo" in argv
    proc = _fleet("capacity", *runnable_here(argv, tmp_path), timeout=150)
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout
    data = json.loads((tmp_path / "capacity.json").read_text())
    assert data["result"]["complete"] and data["result"]["no_data"] == []
    assert (tmp_path / "capacity.html").read_text().startswith("<!DOCTYPE html>")
    assert data["steps"][0]["stations"] == 3
    for step in data["steps"]:
        measured = {r["slo"]: r["measured"] for r in step["summary"]["slos"]}
        assert None not in measured.values(), measured  # every SLO measured something
        # The boot SLO measured the step's own boot storm: its new stations' boots.
        boots = step["whole"]["actions"]["BootNotification"]["requests"]
        assert boots == 3, step["whole"]["actions"]["BootNotification"]


def test_an_slo_with_no_data_is_its_own_verdict(tmp_path: Path) -> None:
    """demo's stations never heartbeat (never a heartbeat interval without a message):
    a Heartbeat SLO stops the search at the first step, named, with exit code 3."""
    proc = _fleet(
        "capacity", "--profile", "demo", "--slo", "Heartbeat.p95 < 500ms",
        "--slo", "error_rate < 1%", "--start", "2", "--max", "4", "--step", "2",
        "--hold", "6s", "--spawn-rate", "20", "--seed", "1", "--json", str(tmp_path / "c.json"),
        timeout=120,
    )  # fmt: skip
    assert proc.returncode == slo_mod.EXIT_NO_DATA == 3, proc.stderr[-3000:]
    assert "no data at 2 stations: the search cannot judge it:" in proc.stdout, proc.stdout
    assert "Heartbeat.p95: no data, no Heartbeat exchange to measure" in proc.stdout
    assert "NO DATA" in proc.stdout  # the step's row
    result = json.loads((tmp_path / "c.json").read_text())["result"]
    assert result["no_data_at"] == 2 and result["largest_passing"] is None
    assert [r["slo"] for r in result["no_data"]] == ["Heartbeat.p95 < 500ms"]


def test_verdict_names_the_slo_without_data() -> None:
    data = {
        "plan": {"slos": ["p95 < 1s", "MeterValues.p95 < 1s"]},
        "steps": [_step(10, 100), {**_step(20, 100), "passed": False}],
        "done": True,
    }
    data["steps"][0]["summary"]["actions"]["MeterValues"] = {"requests": 5, "p95_ms": 10}
    v = cap.verdict(data)
    assert (v.largest_passing, v.unmeasured, v.breaking, v.exit_code) == (10, 20, None, 3)
    assert [r.slo.text for r in v.no_data] == ["MeterValues.p95 < 1s"]
    assert v.lines()[1] == "no data at 20 stations: the search cannot judge it:"
    assert "NO DATA" in cap.table(data["steps"])
    results = slo_mod.evaluate_all(slo_mod.parse_all(["Heartbeat.p95 < 1s"]), {"total": {}})
    assert slo_mod.exit_code(results) == 3
    assert "NO DATA" in slo_mod.table(results)


@pytest.mark.parametrize("when", ["after a step"])
def test_a_signal_ends_the_search_with_128_plus_the_signal(tmp_path: Path, when: str) -> None:
    """Ctrl-C during a search: the Locust child stops, no traceback, exit 130, and the
    steps measured before it are still printed (issue 14)."""
    profile = tmp_path / "heartbeats.yaml"
    profile.write_text(PROFILE)
    err_path, out_path = tmp_path / "stderr.txt", tmp_path / "stdout.txt"
    with err_path.open("wb") as err, out_path.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "fleet", "capacity", "--profile", str(profile),
             "--slo", "error_rate < 1%", "--start", "5", "--step", "5", "--max", "20",
             "--hold", "6s", "--spawn-rate", "20", "--seed", "1"],
            stdout=out, stderr=err,
        )  # fmt: skip
    try:
        wait_until(
            lambda: psutil.Process(proc.pid).children(recursive=True), 60.0, "the Locust child"
        )
        if when == "after a step":
            wait_until(lambda: "capacity step 5 stations" in err_path.read_text(), 90.0, "a step")
        tree = psutil.Process(proc.pid).children(recursive=True)
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=60)
    finally:
        proc.kill()
    text = err_path.read_text()
    assert code == 130, text[-2000:]
    assert "Traceback" not in text, text[-2000:]
    assert "interrupted" in text, text[-2000:]
    assert not [p for p in tree if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    if when == "after a step":
        assert re.search(r"^\s*5\b", out_path.read_text(), re.M), out_path.read_text()
