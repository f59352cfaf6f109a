"""`fleet run` with a synthetic-session profile, a load shape and time compression:
real Locust, real websockets, the embedded reference CSMS and its ledger."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

PROFILE = """\
name: fast-synthetic
station:
  config: {MeterValueSampleInterval: 300, MinimumStatusDuration: 0}
id_tags: {prefix: FAST, count: 50}
evs:
  - {name: sedan, battery_kwh: 75, max_current: 32, phases: 3, soc: [0.2, 0.5]}
sessions:
  source: synthetic
  time_compression: 600
  synthetic:
    arrivals_per_hour: [6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6,
                        6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6]
    dwell: [600, 1500]
    energy_kwh: [1, 3]
    gap: 60
  badge_after_plug: [5, 20]
  unplug_after_stop: [5, 20]
load: {shape: ramp, stations: 10, over: 2}
"""


def fleet(*args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fleet", *args], capture_output=True, text=True, timeout=timeout
    )


def test_compressed_synthetic_run_with_a_shape(tmp_path: Path) -> None:
    profile = tmp_path / "fast.yaml"
    profile.write_text(PROFILE)
    ledger = tmp_path / "ledger.json"
    proc = fleet(
        "run",
        "--headless",
        "--profile",
        str(profile),
        "--duration",
        "15s",
        "--seed",
        "11",
        "--ledger-json",
        str(ledger),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "load shape ramp" in proc.stderr
    data = json.loads(ledger.read_text())
    assert data["problems"] == []
    summary = data["summary"]
    assert summary["stations"] == 10
    # ~15 s at 600x is 2.5 model hours: several sessions per station.
    assert summary["transactions_stopped"] >= 20
    assert summary["meter_value_samples"] > 0
    assert summary["energy_wh"] > 20 * 1000


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--time-compression", "0"], "--time-compression"),
        (["--shape", "wave"], "--shape"),
        (["--class-picker"], "--class-picker is for the web UI"),
        (["--offline-share", "2"], "--offline-share"),
    ],
)
def test_bad_run_options(args: list[str], needle: str) -> None:
    proc = fleet("run", "--headless", *args, timeout=30)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], proc.stderr
