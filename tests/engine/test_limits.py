"""The open-file limit (issue 7): raised to the hard limit at start, and a fleet that
would not fit stops in one line with the numbers, before anything starts.

Each case runs a real subprocess whose RLIMIT_NOFILE is lowered with ``preexec_fn``
(an unprivileged process may lower both limits, and raise soft up to hard).
"""

from __future__ import annotations

import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FLEET = str(Path(sys.executable).with_name("fleet"))
LOCUSTFILE = str(ROOT / "fleet" / "locust" / "locustfile.py")


def _limited(soft: int, hard: int):  # type: ignore[no-untyped-def]
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    return apply


def _run(cmd: list[str], soft: int, hard: int, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(
        cmd,
        preexec_fn=_limited(soft, hard),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


def test_raises_soft_limit_to_hard_and_reports_it() -> None:
    code = (
        "import resource\n"
        "from fleet.engine.limits import raise_open_file_limit, stations_problem\n"
        "print(resource.getrlimit(resource.RLIMIT_NOFILE))\n"
        "print(raise_open_file_limit())\n"
        "print(resource.getrlimit(resource.RLIMIT_NOFILE))\n"
        "print(stations_problem(1500))\n"
        "print(stations_problem(1900))\n"
    )
    out = _run([sys.executable, "-c", code], 256, 2000)
    assert out.returncode == 0, out.stderr
    before, returned, after, fits, exact = out.stdout.splitlines()
    assert before == "(256, 2000)"
    assert returned == after == "(2000, 2000)"
    assert fits == "None"  # 1500 + 100 headroom <= 2000
    assert exact == "None"  # 1900 + 100 = 2000 fits exactly


def test_a_fleet_one_file_over_the_limit_is_refused() -> None:
    code = "from fleet.engine.limits import stations_problem\nprint(stations_problem(1901))\n"
    out = _run([sys.executable, "-c", code], 256, 2000)
    assert out.stdout.strip() == (
        "1901 stations need about 2001 open files; this process may open 2000 "
        "(hard limit 2000): raise it with ulimit -n"
    )


def test_fleet_run_refuses_in_one_line_before_starting_anything() -> None:
    started = time.monotonic()
    out = _run(
        [
            FLEET,
            "run",
            "--headless",
            "--stations",
            "20000",
            "--duration",
            "5s",
            "--csms",
            "ws://127.0.0.1:9/ocpp",
        ],
        1024,
        1024,
    )
    assert out.returncode == 2
    assert out.stderr.splitlines() == [
        "fleet: 20000 stations need about 20100 open files; this process may open 1024 "
        "(hard limit 1024): raise it with ulimit -n"
    ]
    assert out.stdout == ""
    # Refused before checking the CSMS (port 9 answers nothing) or starting Locust.
    assert time.monotonic() - started < 15


def test_fleet_run_counts_the_embedded_csms_side_too() -> None:
    out = _run([FLEET, "run", "--headless", "--stations", "600", "--duration", "5s"], 1024, 1024)
    assert out.returncode == 2
    assert out.stderr.splitlines() == [
        "fleet: 600 stations need about 1300 open files (two per station with the embedded "
        "CSMS); this process may open 1024 (hard limit 1024): raise it with ulimit -n"
    ]


@pytest.mark.timeout(60)
def test_a_locust_process_refuses_at_init() -> None:
    out = _run(
        [
            sys.executable,
            "-m",
            "locust",
            "-f",
            LOCUSTFILE,
            "--headless",
            "-u",
            "5000",
            "-r",
            "100",
            "-t",
            "5s",
            "--host",
            "ws://127.0.0.1:9/ocpp",
        ],
        512,
        4000,
        timeout=45,
    )
    assert out.returncode == 2, out.stderr
    assert (
        "fleet: 5000 stations need about 5100 open files; this process may open 4000 "
        "(hard limit 4000): raise it with ulimit -n"
    ) in out.stderr.splitlines()
    # Nothing ran: no station was spawned, no request made.
    assert "Ramping to 5000 users" not in out.stderr
