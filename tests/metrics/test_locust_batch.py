"""Batched reporting into Locust's statistics gives the figures Locust shows for one
request event per exchange (fleet.locust.batch, issue 16): the same deterministic
stream of exchanges through both paths (locust_batch_check.py, in a subprocess),
Locust's stats entries compared: counts, failures, min/max, median and percentiles
from the response-time histogram, content length, the errors table."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

CHECK = Path(__file__).with_name("locust_batch_check.py")


def _run(*args: str) -> Any:
    proc = subprocess.run(
        [sys.executable, str(CHECK), *args], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.parametrize("every", [1, 7, 500, 10_000])
def test_batched_stats_equal_per_sample_stats(every: int) -> None:
    """``every``: exchanges per batch (one, a few, many, the whole stream)."""
    out = _run("compare", str(every))
    expected, got = out["expected"], out["got"]
    assert expected["errors"]  # the stream has failures of several kinds
    assert len(expected) == 5 + 2  # five actions, the total, the errors
    for key in expected:
        if key == "errors":
            continue
        # The sum of response times: the same numbers added in another order.
        assert got[key].pop("avg") == pytest.approx(expected[key].pop("avg"), rel=1e-9)
    assert got == expected


def test_another_listener_gets_every_exchange() -> None:
    out = _run("listener", "0")
    assert out["only_locust_stats"] is False
    assert out["handed"] == out["stream"]
