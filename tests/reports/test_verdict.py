"""Issue 14, the verdict: a headless ``fleet run`` is green only when the CSMS was really
exercised. Real ``fleet run --headless`` processes, side by side: against tiny real
servers on 127.0.0.1 that answer every handshake HTTP 401, answer as a plain web server,
or hang up on every connection; and against the embedded reference CSMS (one process,
and ``--processes 2``), with the progress line, SLOs that abort, and the ledger's energy.
"""

from __future__ import annotations

import json
import os
import pty
import re
import socket
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

PROFILE = Path(__file__).parent.parent / "e2e" / "fast-sessions.yaml"
MISBEHAVE = """\
name: misbehave-verdict
behaviour: sessions
station: {config: {MeterValueSampleInterval: 2, MinimumStatusDuration: 0}}
id_tags: [E2E0001, E2E0002]
sessions: {first_after: [0.5, 1], duration: [2, 4], idle_between: [1, 2]}
misbehave: {share: 1.0, rate_per_hour: 7200, timeout: 2, kinds: {schema: 1}}
"""
PROGRESS = re.compile(
    r"^fleet: 0:\d\d of 0:10  stations \d+/\d+ connected  \d+\.\d req/s  "
    r"failures \d+ \(\d+\.\d%\)  p95 (\d+ms|-)$"
)


class TinyServer:
    """A TCP server on 127.0.0.1 that is no CSMS: ``401`` answers every request
    HTTP 401, ``http`` answers as a plain web server (200, HTML), ``hangup`` accepts
    and closes every connection at once."""

    ANSWERS = {
        "401": b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        "http": b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 5\r\n"
        b"Connection: close\r\n\r\nhello",
    }

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.sock = socket.create_server(("127.0.0.1", 0), backlog=64)
        self.port = self.sock.getsockname()[1]
        self.url = f"ws://127.0.0.1:{self.port}/ocpp"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            if self.mode == "hangup":
                return
            conn.settimeout(5)
            try:
                conn.recv(4096)
                conn.sendall(self.ANSWERS[self.mode])
            except OSError:
                pass

    def close(self) -> None:
        self.sock.close()


def _fleet(*args: str) -> list[str]:
    return [sys.executable, "-m", "fleet", "run", "--headless", *args]


RUNS: dict[str, tuple[str | None, list[str]]] = {
    # name: (tiny server mode, or None for the embedded reference CSMS; arguments)
    "401": ("401", ["--stations", "3", "-r", "3", "--duration", "6s", "--slo", "error_rate < 1%"]),
    "http": ("http", ["--stations", "3", "-r", "3", "--duration", "6s"]),
    "hangup": ("hangup", [
        "--stations", "3", "-r", "3", "--duration", "6s", "--slo", "connected_share >= 99%",
    ]),
    "abort": ("401", [
        "--stations", "3", "-r", "3", "--duration", "60s",
        "--slo", "error_rate < 1% abort", "--slo-abort-after", "1s",
    ]),
    "single": (None, [
        "--stations", "5", "-r", "5", "--duration", "10s", "--profile", str(PROFILE),
        "--progress-every", "1s", "--slo-abort-after", "1s",
        "--slo", "stations_started >= 5", "--slo", "stations_started <= 5",
        "--slo", "connected_share >= 99%", "--slo", "connect.p95 < 5s",
        "--slo", "error_rate < 1%!",  # holds: must not stop the run
        "--end", "power-off",  # sessions still running at the end (energy incl. running)
    ]),
    "processes": (None, [
        "--processes", "2", "--stations", "5", "-r", "5", "--duration", "8s",
        "--profile", str(PROFILE), "--progress-every", "0",
        "--slo", "stations_started >= 5", "--slo", "stations_started <= 5",
        "--slo", "connected_share >= 99%",
    ]),
    "slo-abort": (None, [
        "--stations", "3", "-r", "3", "--duration", "60s", "--profile", str(PROFILE),
        "--slo", "BootNotification.max < 0ms", "--slo-abort", "--slo-abort-after", "2s",
    ]),
    "misbehave": (None, [
        "--stations", "4", "-r", "4", "--duration", "10s", "--seed", "3",
        "--slo", "error_rate == 0",
    ]),
}  # fmt: skip

WAVES = (("401", "http", "hangup", "abort"), ("single", "processes", "slo-abort", "misbehave"))
"""Runs started together (a few at a time: each is a Locust process, or three)."""


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, dict[str, Any]]]:
    servers: list[TinyServer] = []
    results: dict[str, dict[str, Any]] = {}
    for wave in WAVES:
        results.update(_wave(tmp_path_factory, wave, servers))
    yield results
    for server in servers:
        server.close()


def _wave(
    tmp_path_factory: pytest.TempPathFactory, names: tuple[str, ...], servers: list[TinyServer]
) -> dict[str, dict[str, Any]]:
    procs: dict[str, tuple[subprocess.Popen[str], Path, float]] = {}
    for name in names:
        mode, args = RUNS[name]
        out = tmp_path_factory.mktemp(name)
        extra = ["--json-summary", str(out / "summary.json"), "--junit", str(out / "junit.xml")]
        if mode is not None:
            server = TinyServer(mode)
            servers.append(server)
            extra += ["--csms", server.url]
        if name == "misbehave":
            (out / "misbehave.yaml").write_text(MISBEHAVE)
            extra += ["--profile", str(out / "misbehave.yaml")]
        procs[name] = (
            subprocess.Popen(
                _fleet(*args, *extra), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            ),
            out,
            time.monotonic(),
        )
    results: dict[str, dict[str, Any]] = {}
    for name, (proc, out, began) in procs.items():
        try:
            stdout, stderr = proc.communicate(timeout=180)
        except subprocess.TimeoutExpired:
            proc.kill()
            stdout, stderr = proc.communicate()
        summary_file = out / "summary.json"
        results[name] = {
            "code": proc.returncode,
            "stdout": stdout,
            "stderr": stderr,
            "seconds": time.monotonic() - began,
            "summary": json.loads(summary_file.read_text()) if summary_file.exists() else None,
            "dir": out,
        }
    return results


def _failed_lines(run: dict[str, Any]) -> list[str]:
    return [line for line in run["stderr"].splitlines() if line.startswith("fleet: FAILED: ")]


@pytest.mark.parametrize(
    ("name", "error"),
    [("401", "HTTP 401 Unauthorized"), ("http", "HTTP 200 OK"), ("hangup", "closed during")],
)
def test_stations_that_never_connect_fail_the_run_with_one_line(
    runs: dict[str, dict[str, Any]], name: str, error: str
) -> None:
    """Item 1: a wrong key (401), a URL at a web server, a CSMS hanging up: exit 1 with or
    without --slo, one line saying how many stations never connected and why."""
    run = runs[name]
    assert run["code"] == 1, run["stderr"][-3000:]
    lines = _failed_lines(run)
    assert len(lines) == 1, run["stderr"][-3000:]
    assert lines[0].startswith("fleet: FAILED: 3 of 3 stations never connected (WS connect failed ")
    assert error in lines[0] and lines[0].endswith(")")
    summary = run["summary"]
    assert summary["passed"] is False and summary["failed_because"] == [lines[0][15:]]
    assert summary["fleet"]["stations_connected"] == 0
    assert summary["fleet"]["stations_never_connected"] == 3
    # Every failed attempt is a Locust request `WS connect`, counted in error_rate.
    connect = summary["actions"]["WS connect"]
    assert connect["requests"] >= 3 and connect["failures"] == connect["requests"]
    assert summary["total"]["error_rate"] == 1.0
    assert any(
        e["action"] == "WS connect" and e["error"].startswith(error) for e in summary["errors"]
    ), summary["errors"]
    # The CI's test view shows it too, with or without --slo.
    suite = ET.parse(run["dir"] / "junit.xml").getroot().find("testsuite")
    assert suite is not None
    verdict = [c for c in suite.findall("testcase") if c.get("classname") == "fleet.run"]
    assert len(verdict) == 1
    failure = verdict[0].find("failure")
    assert failure is not None and failure.get("message") == lines[0][15:]


def test_error_rate_and_connected_share_slos_see_the_failed_connections(
    runs: dict[str, dict[str, Any]],
) -> None:
    by_slo = {s["slo"]: s for s in runs["401"]["summary"]["slos"]}
    assert by_slo["error_rate < 1%"]["measured"] == 1.0 and not by_slo["error_rate < 1%"]["passed"]
    share = runs["hangup"]["summary"]["slos"][0]
    assert share["slo"] == "connected_share >= 99%" and share["measured"] == 0.0
    assert "fleet: SLO broken: connected_share >= 99% (measured 0%)" in runs["hangup"]["stderr"]


@pytest.mark.parametrize("name", ["single", "processes"])
def test_stations_started_is_the_fleet_size_and_every_connect_a_request(
    runs: dict[str, dict[str, Any]], name: str
) -> None:
    """Item 2: stations_started is a gauge (5, not 0 or a sum over reports); item 1: a
    successful connection is a `WS connect` request with its handshake time."""
    run = runs[name]
    assert run["code"] == 0, run["stderr"][-3000:]
    summary = run["summary"]
    assert summary["fleet"]["stations_started"] == 5
    assert summary["fleet"]["stations_never_connected"] == 0
    assert summary["passed"] is True and summary["failed_because"] == []
    assert all(s["passed"] for s in summary["slos"]), summary["slos"]
    connect = summary["actions"]["WS connect"]
    assert connect["requests"] == 5 and connect["failures"] == 0
    assert connect["p95_ms"] is not None and connect["p95_ms"] < 5000


def test_error_rate_is_locusts_aggregated_row_misbehave_findings_included(
    runs: dict[str, dict[str, Any]],
) -> None:
    """Item 3: error_rate is over every request Locust counts (its Aggregated row), the
    misbehaving stations' findings (the CSMS accepted invalid input) among them."""
    run = runs["misbehave"]
    summary = run["summary"]
    rows = summary["actions"]
    misbehave = {name: row for name, row in rows.items() if name.startswith("MISBEHAVE ")}
    assert misbehave, sorted(rows)
    assert summary["total"]["requests"] == sum(row["requests"] for row in rows.values())
    assert summary["total"]["failures"] == sum(row["failures"] for row in rows.values())
    findings = sum(row["failures"] for row in misbehave.values())
    assert findings > 0  # the reference CSMS accepts a timestamp that is no date-time
    measured = summary["slos"][0]["measured"]
    assert measured == pytest.approx(summary["total"]["failures"] / summary["total"]["requests"])
    assert run["code"] == 1


def test_the_ledger_prints_energy_stopped_and_metered_including_running(
    runs: dict[str, dict[str, Any]],
) -> None:
    """Item 4: a run that ends with sessions under way shows their energy too."""
    run = runs["single"]
    ledger = run["summary"]["ledger"]["summary"]
    assert ledger["transactions_active"] > 0
    assert ledger["energy_metered_wh"] > ledger["energy_stopped_wh"] >= 0
    line = next(line for line in run["stdout"].splitlines() if "energy in stopped" in line)
    m = re.fullmatch(
        r"  energy in stopped transactions (\d+\.\d\d) kWh  "
        r"energy metered incl. running (\d+\.\d\d) kWh",
        line,
    )
    assert m is not None, line
    assert float(m[1]) == pytest.approx(ledger["energy_stopped_wh"] / 1000, abs=0.006)
    assert float(m[2]) == pytest.approx(ledger["energy_metered_wh"] / 1000, abs=0.006)


def test_a_progress_line_per_interval_when_stdout_is_a_pipe(
    runs: dict[str, dict[str, Any]],
) -> None:
    """Item 11: one plain line per interval in a CI log, no carriage returns."""
    stdout = runs["single"]["stdout"]
    assert "\r" not in stdout
    lines = [line for line in stdout.splitlines() if line.startswith("fleet: 0:")]
    assert len(lines) >= 3, stdout[-3000:]  # 10 nominally; fewer on a busy machine
    for line in lines:
        assert PROGRESS.match(line), line
    assert "stations 5/5 connected" in lines[-1]


def test_a_progress_line_drawn_in_place_on_a_terminal(free_port: int) -> None:
    """Item 11: on a terminal the line is redrawn with a carriage return."""
    server = TinyServer("401")
    master, slave = pty.openpty()
    args = ["--csms", server.url, "--stations", "2", "-r", "2", "--duration", "4s"]
    proc = subprocess.Popen(
        _fleet(*args, "--progress-every", "1s"),
        stdout=slave,
        stderr=subprocess.DEVNULL,
    )
    os.close(slave)
    chunks: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:  # EIO: the child closed the terminal
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        assert proc.wait(timeout=90) == 1
        reader.join(10)
    finally:
        proc.kill()
        os.close(master)
        server.close()
    text = b"".join(chunks).decode(errors="replace")
    assert re.search(r"\rfleet: 0:0\d of 0:04  stations 0/2 connected", text), text[-2000:]


def test_an_aborting_slo_stops_the_run_writes_the_reports_and_exits_1(
    runs: dict[str, dict[str, Any]],
) -> None:
    """Item 12: a per-SLO ' abort' suffix; the run stops soon after --slo-abort-after
    instead of running its 60 s, and says which SLO stopped it."""
    run = runs["abort"]
    assert run["code"] == 1, run["stderr"][-3000:]
    assert run["seconds"] < 45, run["seconds"]
    aborted = run["summary"]["aborted"]
    assert aborted["slo"] == "error_rate < 1%" and aborted["at_s"] >= 1
    line = _failed_lines(run)[-1]
    assert re.fullmatch(
        r"fleet: FAILED: stopped at \d+(\.\d)?s: SLO lost: error_rate < 1% \(measured 100%\)",
        line,
    ), line
    suite = ET.parse(run["dir"] / "junit.xml").getroot().find("testsuite")
    assert suite is not None
    failures = [f.get("message") for f in suite.iter("failure")]
    assert line.removeprefix("fleet: FAILED: ") in failures, failures


def test_slo_abort_makes_every_slo_abort_after_the_delay(
    runs: dict[str, dict[str, Any]],
) -> None:
    run = runs["slo-abort"]
    assert run["code"] == 1, run["stderr"][-3000:]
    assert run["seconds"] < 45, run["seconds"]
    aborted = run["summary"]["aborted"]
    assert aborted["slo"] == "BootNotification.max < 0ms" and aborted["at_s"] >= 2
    assert "fleet: stopping the run at " in run["stderr"]


def test_an_aborting_slo_that_holds_lets_the_run_finish(
    runs: dict[str, dict[str, Any]],
) -> None:
    run = runs["single"]
    assert "aborted" not in run["summary"] and "stopping the run" not in run["stderr"]
    assert run["seconds"] >= 10  # its whole --duration


@pytest.mark.parametrize(
    "args",
    [
        ["--slo", "error_rate < 1% abort"],
        ["--slo", "error_rate < 1%", "--slo-abort"],
        ["--connect-grace", "5s"],
        ["--progress-every", "5s"],
        ["--slo-abort-after", "5s"],
    ],
)
def test_headless_options_are_a_usage_error_in_the_web_ui(args: list[str]) -> None:
    """Settings without effect say so: these are read by a headless run only."""
    proc = subprocess.run(
        [sys.executable, "-m", "fleet", "run", "--web", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].endswith("for --headless runs"), proc.stderr
