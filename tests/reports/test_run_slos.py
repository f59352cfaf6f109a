"""`fleet run --headless --slo ...` as CI runs it: real Locust, real websockets, the
embedded reference CSMS. Two short runs side by side: one whose SLOs all hold (exit 0),
one with SLOs that cannot hold (exit 1, each named with its measured value)."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

PROFILE = Path(__file__).parent.parent / "e2e" / "fast-sessions.yaml"
STATIONS = 5
HOLDING = [
    "BootNotification.p95 < 5s",
    "error_rate < 1%",
    "lost_transaction_messages == 0",
    "ledger_problems == 0",
    "connected_ratio >= 100%",
    "StatusNotification.requests >= 10",
]
BREAKING = [
    "BootNotification.max < 0ms",  # a round trip takes some time: cannot hold
    "Heartbeat.p95 < 1s",  # no heartbeats in 10 s (the interval is the CSMS's 60 s)
]


def _command(out: Path, slos: list[str]) -> list[str]:
    cmd = [
        sys.executable, "-m", "fleet", "run", "--headless",
        "--stations", str(STATIONS), "--spawn-rate", str(STATIONS), "--duration", "10s",
        "--profile", str(PROFILE), "--seed", "3",
        "--json-summary", str(out / "summary.json"), "--junit", str(out / "junit.xml"),
    ]  # fmt: skip
    for slo in slos:
        cmd += ["--slo", slo]
    return cmd


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    dirs = {name: tmp_path_factory.mktemp(name) for name in ("holding", "breaking")}
    procs = {
        "holding": subprocess.Popen(
            _command(dirs["holding"], HOLDING),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        ),
        "breaking": subprocess.Popen(
            _command(dirs["breaking"], HOLDING + BREAKING),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        ),
    }
    out: dict[str, dict[str, Any]] = {}
    for name, proc in procs.items():
        try:
            stdout, stderr = proc.communicate(timeout=90)
        except subprocess.TimeoutExpired:
            proc.kill()
            stdout, stderr = proc.communicate()
        out[name] = {"code": proc.returncode, "stdout": stdout, "stderr": stderr, "dir": dirs[name]}
    return out


def test_all_slos_held_exit_0(runs: dict[str, dict[str, Any]]) -> None:
    run = runs["holding"]
    assert run["code"] == 0, run["stderr"][-3000:]
    assert "SLO broken" not in run["stderr"]
    table = run["stdout"].split("\nSLOs\n", 1)[1]
    for slo in HOLDING:
        line = next(line for line in table.splitlines() if line.startswith(slo))
        assert line.endswith("pass"), line


def test_json_summary_has_actions_fleet_ledger_and_verdicts(
    runs: dict[str, dict[str, Any]],
) -> None:
    summary = json.loads((runs["holding"]["dir"] / "summary.json").read_text())
    boot = summary["actions"]["BootNotification"]
    assert boot["requests"] == STATIONS and boot["failures"] == 0
    for key in ("p50_ms", "p90_ms", "p95_ms", "p99_ms", "avg_ms", "max_ms", "rps"):
        assert boot[key] is not None and boot[key] >= 0, key
    assert summary["total"]["requests"] >= sum(a["requests"] for a in summary["actions"].values())
    assert summary["errors"] == [] and summary["errors_by_code"] == {}
    # The fleet's gauges as the load ended (before the stations went down).
    assert summary["fleet"]["stations_connected"] == STATIONS
    assert summary["stations_target"] == STATIONS
    # The ledger of the embedded CSMS: what it received, no consistency problem.
    ledger = summary["ledger"]
    assert ledger["problems"] == [] and ledger["summary"]["boots"] == STATIONS
    received = ledger["summary"]["messages_by_action"]["StatusNotification"]
    assert received >= summary["actions"]["StatusNotification"]["requests"]
    assert [s["slo"] for s in summary["slos"]] == HOLDING
    assert all(s["passed"] for s in summary["slos"]) and summary["passed"] is True


def test_broken_slos_exit_1_and_say_which_with_the_value(
    runs: dict[str, dict[str, Any]],
) -> None:
    run = runs["breaking"]
    assert run["code"] == 1, run["stderr"][-3000:]
    broken = [line for line in run["stderr"].splitlines() if line.startswith("fleet: SLO broken")]
    assert len(broken) == 2, run["stderr"][-3000:]
    assert broken[0].startswith("fleet: SLO broken: BootNotification.max < 0ms (measured ")
    assert broken[0].endswith("ms)")
    assert broken[1] == "fleet: SLO broken: Heartbeat.p95 < 1s (measured no data)"
    summary = json.loads((run["dir"] / "summary.json").read_text())
    assert summary["passed"] is False
    by_slo = {s["slo"]: s for s in summary["slos"]}
    assert by_slo["BootNotification.max < 0ms"]["measured"] >= 0
    assert by_slo["BootNotification.max < 0ms"]["passed"] is False
    assert by_slo["Heartbeat.p95 < 1s"]["measured"] is None
    assert all(by_slo[s]["passed"] for s in HOLDING)


def test_junit_lists_every_slo_and_fails_the_broken_ones(
    runs: dict[str, dict[str, Any]],
) -> None:
    suite = ET.parse(runs["breaking"]["dir"] / "junit.xml").getroot().find("testsuite")
    assert suite is not None
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert list(cases) == HOLDING + BREAKING
    assert suite.get("tests") == str(len(HOLDING + BREAKING)) and suite.get("failures") == "2"
    for name, case in cases.items():
        failure = case.find("failure")
        assert (failure is not None) == (name in BREAKING), name
    failure = cases["BootNotification.max < 0ms"].find("failure")
    assert failure is not None and "BootNotification.max = " in (failure.get("message") or "")
    held = ET.parse(runs["holding"]["dir"] / "junit.xml").getroot().find("testsuite")
    assert held is not None and held.get("failures") == "0"


def test_a_bad_slo_is_one_line_before_the_run(tmp_path: Path) -> None:
    proc = subprocess.run(
        _command(tmp_path, ["BootNotification.p95 < 2"]),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2
    assert proc.stderr == (
        "fleet: --slo 'BootNotification.p95 < 2': BootNotification.p95 is a round trip: "
        "give a unit, ms or s (e.g. 2s, 500ms)\n"
    )
    assert not (tmp_path / "summary.json").exists()
