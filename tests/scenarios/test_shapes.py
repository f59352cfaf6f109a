"""Load shapes: the (users, spawn rate) sequences their tick() gives over a run.

Computed in a subprocess (shape_ticks.py): importing Locust here would monkey-patch
this test process with gevent."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def seqs() -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("shape_ticks.py"))],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    data: dict[str, Any] = json.loads(proc.stdout)
    return data


def test_ramp(seqs: dict[str, Any]) -> None:
    assert seqs["ramp"] == [
        [1, 2.0],
        [1, 2.0],
        [20, 2.0],
        [50, 2.0],
        [100, 2.0],
        [100, 2.0],
        [100, 2.0],
        None,
    ]
    assert seqs["ramp_forever"] == [[10, 2.0]]  # no hold: until --run-time


def test_steps(seqs: dict[str, Any]) -> None:
    assert seqs["steps"] == [
        [10, 10.0],
        [10, 10.0],
        [20, 10.0],
        [20, 10.0],
        [25, 10.0],
        [25, 10.0],
        None,
    ]


def test_boot_storm(seqs: dict[str, Any]) -> None:
    assert seqs["boot_storm"] == [
        [200, 50.0],
        [200, 50.0],
        [0, 200.0],  # the grid goes down: every station at once
        [0, 200.0],
        [200, 200.0],  # power back: every station boots at once
        [200, 200.0],
        None,
    ]


def test_shapes_read_the_profile_load_or_the_common_options(seqs: dict[str, Any]) -> None:
    # The boot-storm profile's own load section for its shape; for another shape, the
    # profile's station count with the Load defaults.
    assert seqs["specs"] == {
        "RampShape": ["ramp", 300, 30.0],
        "StepsShape": ["steps", 300, 30.0],
        "BootStormShape": ["boot-storm", 300, 60.0],
    }


def test_run_time_ends_a_shape(seqs: dict[str, Any]) -> None:
    # Headless, Locust arms --run-time only after the shape ends: the shape honours it.
    assert seqs["run_time"] == [[10, 2.0], None]
