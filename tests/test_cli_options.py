"""Options that cannot take effect, or cannot start, say so in one line before anything
starts (issue 14, items 6, 7, 13): busy ports, --stations under a profile's load shape,
overrides of parts a profile does not have, Locust options after ``--``."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest


def fleet(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fleet", *args], capture_output=True, text=True, timeout=timeout
    )


def one_line_error(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    """Exit 2 and one line: in particular no "embedded reference CSMS at" line (nothing
    started) and no traceback."""
    assert proc.returncode == 2, proc
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def test_a_busy_web_port_is_one_line_before_anything_starts(busy_port: int) -> None:
    one_line_error(
        fleet("run", "--web-port", str(busy_port)),
        f"--web-port {busy_port}",
        f"127.0.0.1:{busy_port}",
        "in use",
    )


def test_a_busy_metrics_port_is_one_line_before_anything_starts(busy_port: int) -> None:
    one_line_error(
        fleet("run", "--headless", "--metrics-port", str(busy_port)),
        f"--metrics-port {busy_port}",
        "in use",
    )


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (
            ["--profile", "boot-storm", "--stations", "50"],
            ["--stations 50", "boot-storm", "300 stations", "--shape none"],
        ),
        (["--profile", "demo", "--fault-rate", "2"], ["--fault-rate", "demo", "fault storm"]),
        (
            ["--profile", "demo", "--offline-share", "0.5"],
            ["--offline-share", "demo", "offline wave"],
        ),
        (["--", "--host", "ws://127.0.0.1:1/x"], ["--host", "--csms"]),
        (["--", "--users=5"], ["--users", "--stations"]),
        (["--", "--fleet-seed", "3"], ["--fleet-seed"]),
        (["stray"], ["'stray'", "after --"]),
    ],
)
def test_options_without_effect_are_refused(args: list[str], needles: list[str]) -> None:
    one_line_error(fleet("run", "--headless", *args), *needles)


def test_locust_options_after_double_dash_reach_locust() -> None:
    """``-- --loglevel DEBUG``: Locust's own debug lines appear (they do not without)."""
    args = ["run", "--headless", "--stations", "2", "--spawn-rate", "2", "--duration", "2s"]
    proc = fleet(*args, "--", "--loglevel", "DEBUG")
    assert proc.returncode == 0, proc.stderr
    assert "/DEBUG/locust" in proc.stderr
    assert "/DEBUG/" not in fleet(*args).stderr
