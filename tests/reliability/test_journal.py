"""The ledger journal (`fleet csms --ledger-journal`): what a killed CSMS comes back with."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from fleet.csms.ledger import JournaledLedger, Ledger

METER = [
    {
        "timestamp": "2026-01-01T00:01:00Z",
        "sampledValue": [{"value": "1500", "measurand": "Energy.Active.Import.Register"}],
    }
]


def _session(ledger: Ledger) -> int:
    ledger.record_connection("J1")
    ledger.record_message("J1", "BootNotification")
    ledger.record_boot("J1", {"chargePointVendor": "Schneider", "chargePointModel": "X"})
    ledger.record_status("J1", 1, "Charging", "NoError")
    tx = ledger.start_transaction("J1", 1, "TAG", 1000, "2026-01-01T00:00:00Z")
    ledger.record_meter_values("J1", 1, tx, METER)
    return tx


def test_a_journal_replays_to_the_same_ledger_and_survives_a_torn_line(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    first = JournaledLedger(str(path))
    tx = _session(first)
    before = first.summary()
    first.close()
    with open(path, "a") as fh:
        fh.write('[1.0, "record_heartbeat", ["J1"')  # killed in the middle of a write

    again = JournaledLedger(str(path))
    assert again.summary() == before
    # The same ids, the same idempotency: a re-sent StartTransaction and MeterValues are
    # re-deliveries, a new transaction gets the next id.
    assert again.start_transaction("J1", 1, "TAG", 1000, "2026-01-01T00:00:00Z") == tx
    again.record_meter_values("J1", 1, tx, METER)
    assert again.summary()["redeliveries"] == 2
    again.stop_transaction("J1", tx, 2000, "2026-01-01T00:02:00Z", "Local")
    assert again.start_transaction("J1", 1, "TAG", 2000, "2026-01-01T00:03:00Z") == tx + 1
    again.close()
    # What the second life wrote is in the journal too, after the torn line.
    read = JournaledLedger.read(str(path))
    assert read.summary() == again.summary()
    assert read.check() == again.check()


def test_a_plain_ledger_and_a_journaled_one_agree(tmp_path: Path) -> None:
    plain = Ledger()
    journaled = JournaledLedger(str(tmp_path / "j.jsonl"))
    _session(plain)
    _session(journaled)
    journaled.close()
    assert JournaledLedger.read(str(tmp_path / "j.jsonl")).summary() == plain.summary()


def test_an_unusable_journal_path_is_a_one_line_usage_error(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "fleet", "csms", "--port", "0", "--ledger-journal", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("fleet: ") and proc.stderr.count("\n") <= 1, proc.stderr
    assert "Traceback" not in proc.stderr
