"""SIGINT and SIGTERM to a real ``fleet run`` (issue 14, item 5): the Locust processes it
started (master and workers) stop, the reports asked for are written, the verdict is
"interrupted, not a pass", the exit code is 128 + the signal, no traceback, nothing of
the process tree is left and the ports are free again."""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import psutil
import pytest
from support import wait_until

from fleet.cli.child import free_port

FLEET = [sys.executable, "-m", "fleet"]


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class Run:
    """``fleet run`` as a shell would start it, its stderr in a file to poll."""

    def __init__(self, tmp_path: Path, args: list[str]) -> None:
        self.dir = tmp_path
        self.err_path = tmp_path / "stderr.txt"
        self.out_path = tmp_path / "stdout.txt"
        with self.err_path.open("wb") as err, self.out_path.open("wb") as out:
            self.proc = subprocess.Popen(
                [*FLEET, "run", *args], cwd=tmp_path, stdout=out, stderr=err
            )
        self.tree: set[int] = set()

    @property
    def stderr(self) -> str:
        return self.err_path.read_text(errors="replace")

    def wait_for(self, text: str, timeout: float = 90.0) -> None:
        def seen() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"fleet run ended early:\n{self.stderr}")
            return text in self.stderr

        wait_until(seen, timeout, f"{text!r} on stderr")

    def note_tree(self, expected: int) -> None:
        """The processes under ``fleet run`` (Locust master and workers)."""

        def grown() -> bool:
            kids = psutil.Process(self.proc.pid).children(recursive=True)
            self.tree = {p.pid for p in kids}
            return len(self.tree) >= expected

        wait_until(grown, 30.0, f"{expected} Locust processes")

    def stop(self, signum: int, timeout: float = 60.0) -> int:
        self.proc.send_signal(signum)
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        for pid in [self.proc.pid, *self.tree]:
            with contextlib.suppress(psutil.Error):
                psutil.Process(pid).kill()


def _alive(pid: int) -> bool:
    """In /proc and not a zombie (one that init has not reaped yet is no process left)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.fixture
def runs() -> Any:
    started: list[Run] = []
    yield started
    for run in started:
        run.kill()


@pytest.mark.parametrize(
    ("signum", "processes"),
    [(signal.SIGTERM, 0), (signal.SIGINT, 2)],
    ids=["sigterm-single", "sigint-processes-2"],
)
def test_a_signal_stops_a_headless_run_and_writes_its_reports(
    tmp_path: Path, runs: list[Run], signum: int, processes: int
) -> None:
    metrics_port = free_port()
    args = ["--headless", "--stations", "6", "--spawn-rate", "6", "--duration", "10m"]
    args += ["--seed", "1", "--metrics-port", str(metrics_port)]
    args += ["--slo", "error_rate < 1%", "--json-summary", "s.json", "--junit", "j.xml"]
    args += ["--html", "r.html"]
    if processes:
        args += ["--processes", str(processes)]
    run = Run(tmp_path, args)
    runs.append(run)
    run.wait_for("All users spawned")
    run.note_tree(1 + processes)

    started = time.monotonic()
    code = run.stop(signum)

    assert code == 128 + signum
    assert time.monotonic() - started < 30  # not the 10 minutes of --duration
    err = run.stderr
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    name = signal.Signals(signum).name
    assert f"fleet: FAILED: interrupted by {name} before the end of the run" in err
    data = json.loads((tmp_path / "s.json").read_text())
    assert data["passed"] is False
    assert data["interrupted"] == name
    assert data["stations_target"] == 6 and "actions" in data
    junit = (tmp_path / "j.xml").read_text()
    assert f"interrupted by {name} before the end of the run" in junit
    assert (tmp_path / "r.html").stat().st_size > 0
    left = [pid for pid in run.tree if _alive(pid)]
    assert not left, f"Locust processes left: {left}"
    assert _port_free(metrics_port)


def test_a_signal_stops_the_web_ui_and_frees_its_port(tmp_path: Path, runs: list[Run]) -> None:
    """Also --web-host (item 13): 0.0.0.0 listens on every interface, with a warning that
    the UI has no login; and an empty Host in the form starts no station (item 7)."""
    port = free_port()
    args = ["--web-host", "0.0.0.0", "--web-port", str(port), "--stations", "3"]
    run = Run(tmp_path, [*args, "--spawn-rate", "3"])
    runs.append(run)
    run.wait_for("Starting web interface")
    run.note_tree(1)
    assert "WARNING: the Locust web UI listens on 0.0.0.0 without a login" in run.stderr

    def page() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as resp:
                return resp.status == 200
        except OSError:
            return False

    wait_until(page, 30.0, "the web UI")
    listening = {
        c.laddr
        for pid in run.tree
        for c in psutil.Process(pid).net_connections("tcp")
        if c.status == psutil.CONN_LISTEN
    }
    assert ("0.0.0.0", port) in listening

    def swarm(**form: Any) -> dict[str, Any]:
        data = urllib.parse.urlencode(form).encode()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/swarm", data, timeout=10) as resp:
            return dict(json.loads(resp.read()))

    refused = swarm(user_count=3, spawn_rate=3, host="")
    assert refused["success"] is False and "no CSMS URL" in refused["message"]
    assert "no CSMS URL" in run.stderr and "users spawned" not in run.stderr
    assert swarm(user_count=3, spawn_rate=3)["success"] is True
    run.wait_for("All users spawned")

    code = run.stop(signal.SIGTERM)

    assert code == 143
    assert "Traceback" not in run.stderr
    assert not [pid for pid in run.tree if _alive(pid)]
    assert _port_free(port)
