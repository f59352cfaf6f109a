"""The whole tool, as a user runs it: `fleet run` -> real Locust -> real websockets.

50 stations run full session cycles against the embedded reference CSMS. The CSMS
(the `ocpp` library, an independent implementation) validates every message against
the official schemas and records it in its ledger; the ledger must be consistent and
must match what the stations reported to Locust.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
STATIONS = 50


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    out = tmp_path_factory.mktemp("run")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "fleet",
            "run",
            "--headless",
            "--stations",
            str(STATIONS),
            "--spawn-rate",
            "50",
            "--duration",
            "25s",
            "--profile",
            str(HERE / "fast-sessions.yaml"),
            "--seed",
            "7",
            "--csv",
            str(out / "locust"),
            "--ledger-json",
            str(out / "ledger.json"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    with open(out / "locust_stats.csv", newline="") as fh:
        rows = {row["Name"]: row for row in csv.DictReader(fh)}
    ledger = json.loads((out / "ledger.json").read_text())
    return {"proc": proc, "stats": rows, "ledger": ledger}


def test_run_succeeds(run: dict) -> None:
    proc = run["proc"]
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_ledger_is_consistent_and_schema_valid(run: dict) -> None:
    ledger = run["ledger"]
    # The reference CSMS validates each message with jsonschema; a violation is a problem.
    assert ledger["problems"] == []
    summary = ledger["summary"]
    assert summary["stations"] == STATIONS
    assert summary["boots"] == STATIONS
    # Full cycles: every station finished at least one session in 25 s.
    assert summary["transactions_stopped"] >= STATIONS
    assert summary["energy_wh"] > 0


def test_ledger_matches_what_stations_reported(run: dict) -> None:
    stats, messages = run["stats"], run["ledger"]["summary"]["messages_by_action"]
    for action in (
        "BootNotification",
        "Authorize",
        "StartTransaction",
        "StopTransaction",
        "MeterValues",
        "StatusNotification",
    ):
        reported = int(stats[action]["Request Count"])
        failed = int(stats[action]["Failure Count"])
        received = messages[action]
        assert failed == 0, action
        # A station reports an exchange once answered; at the end of the run at most one
        # CALL per station can be in flight (received by the CSMS, answer not yet seen).
        assert 0 <= received - reported <= STATIONS, (action, received, reported)
