"""The run's figures name what they measure (issue 17, item 7): a real headless run
whose traffic is sparse (idle stations: their boot in the first seconds, then nothing
until a heartbeat a minute later) reports its wall time and the rate over it, not the
span up to its last request, in the JSON summary and on the console."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

STATIONS = 3
SECONDS = 12


def test_a_quiet_run_reports_its_wall_time_and_the_rate_over_it(tmp_path: Path) -> None:
    out = tmp_path / "summary.json"
    cmd = [
        sys.executable, "-m", "fleet", "run", "--headless", "--profile", "idle",
        "--stations", str(STATIONS), "--spawn-rate", str(STATIONS),
        "--duration", f"{SECONDS}s", "--seed", "1", "--json-summary", str(out),
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(out.read_text())
    wall, last = summary["wall_s"], summary["last_request_s"]
    assert SECONDS * 0.8 <= wall <= SECONDS + 5, summary  # Locust starts a little late
    assert last is not None and last < SECONDS / 2, summary  # the traffic ended early
    total = summary["total"]
    assert total["requests"] >= 2 * STATIONS  # boots and status notifications
    assert abs(total["rps"] - total["requests"] / wall) < 0.01
    boots = summary["actions"]["BootNotification"]
    assert abs(boots["rps"] - boots["requests"] / wall) < 0.01
    assert "duration_s" not in summary
    line = next(line for line in proc.stderr.splitlines() if "run wall time" in line)
    assert f"{total['requests']} requests" in line
    assert f"{total['rps']:.2f} requests/s over the wall time" in line
    assert f"(last request at {last:.1f} s)" in line
