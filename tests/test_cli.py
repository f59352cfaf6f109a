"""User mistakes end in one line on stderr and exit code 2, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


def fleet(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fleet", *args], capture_output=True, text=True, timeout=timeout
    )


def one_line_error(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert proc.returncode == 2, proc
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["run", "--headless", "--csms", "ws://127.0.0.1:9/ocpp"], ["cannot reach", "127.0.0.1:9"]),
        (
            ["run", "--headless", "--csms", "http://127.0.0.1:9000/ocpp"],
            ["not a ws:// or wss:// URL"],
        ),
        (["run", "--headless", "--duration", "soon"], ["--duration", "soon"]),
        (
            ["run", "--headless", "--profile", "no-such-profile"],
            ["unknown profile", "demo", "idle"],
        ),
        (["run", "--headless", "--station-prefix", "bad prefix!"], ["--station-prefix"]),
        (["run", "--headless", "--stations", "0"], ["--stations"]),
        (["profiles", "validate", "missing.yaml"], ["missing.yaml"]),
    ],
)
def test_bad_options(args: list[str], needles: list[str]) -> None:
    one_line_error(fleet(*args), *needles)


def test_bad_profile_names_file_line_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nstation:\n  config:\n    HeartbeatInterval: soon\n")
    one_line_error(fleet("profiles", "validate", str(bad)), f"{bad}:4", "HeartbeatInterval")

    bad.write_text("name: bad\nsessions:\n  duration: [9, 3]\n")
    one_line_error(
        fleet("run", "--headless", "--profile", str(bad)), f"{bad}:3", "sessions.duration"
    )

    bad.write_text("name: bad\nbehavior: idle\n")
    one_line_error(fleet("profiles", "validate", str(bad)), f"{bad}:2", "behavior", "unknown field")

    bad.write_text("name: [unclosed\n")
    one_line_error(fleet("profiles", "validate", str(bad)), "invalid YAML")


def test_shipped_profiles_are_valid() -> None:
    proc = fleet("profiles", "list")
    assert proc.returncode == 0
    assert "demo" in proc.stdout and "idle" in proc.stdout
    assert "INVALID" not in proc.stdout
