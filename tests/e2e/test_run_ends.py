"""Run after run against one CSMS (issue 17): `fleet run` twice, as a user runs it
(real Locust, real websockets), against one reference CSMS whose ledger spans both runs.

The first run ends by power-off with ``--state-dir``: its sessions stay open at the
CSMS, and the stations' durable state is saved. The second run (the default end) loads
it: each station reports its interrupted transaction with reason PowerLoss after its
boot, its energy register continues the first run's, and at its end every session is
stopped with reason Local. The ledger is left with no open transaction.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from fleet.csms.server import CsmsThread

STATIONS = 4
PROFILE = """
name: long-sessions
description: Sessions that outlast a short run.
behaviour: sessions
station:
  reset_close_delay: 0.2
  config:
    MeterValueSampleInterval: 2
    MinimumStatusDuration: 0
id_tags: [END0001, END0002, END0003, END0004]
evs:
  - {name: car, battery_kwh: 80, max_current: 32, phases: 3}
sessions:
  first_after: [0.2, 0.5]
  badge_after_plug: [0.1, 0.2]
  duration: [600, 600]
  unplug_after_stop: [0.5, 1]
  idle_between: [1, 2]
"""


def _run(url: str, profile: Path, state: Path, summary: Path, *extra: str) -> None:
    options = f"--csms {url} --stations {STATIONS} --spawn-rate 50 --duration 6s --seed 3"
    files = ["--profile", str(profile), "--state-dir", str(state), "--json-summary", str(summary)]
    proc = subprocess.run(
        [sys.executable, "-m", "fleet", "run", "--headless", *options.split(), *files, *extra],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    tmp = tmp_path_factory.mktemp("ends")
    profile = tmp / "long.yaml"
    profile.write_text(PROFILE)
    state = tmp / "state"
    with CsmsThread(accept_all_tags=True) as csms:
        _run(csms.url, profile, state, tmp / "first.json", "--end", "power-off")
        ledger = csms.ledger
        first = {
            tx.transaction_id: (sid, tx.stopped)
            for sid in ledger.station_ids()
            for tx in ledger.station(sid).transactions.values()
        }
        with sqlite3.connect(state / "stations.sqlite3") as db:
            saved = dict(db.execute("SELECT identity, energy_wh FROM stations").fetchall())
        _run(csms.url, profile, state, tmp / "second.json")
        return {
            "first": first,
            "saved": saved,
            "ledger": ledger,
            "summary": json.loads((tmp / "second.json").read_text()),
        }


def test_the_first_run_leaves_sessions_open_and_saves_every_station(runs: dict) -> None:
    first = runs["first"]
    assert len(first) == STATIONS and not any(stopped for _, stopped in first.values())
    assert len(runs["saved"]) == STATIONS and all(e > 0 for e in runs["saved"].values())


def test_the_second_run_stops_them_with_power_loss_and_leaves_none_open(runs: dict) -> None:
    ledger = runs["ledger"]
    assert ledger.summary()["transactions_active"] == 0
    for tx_id, (station, _) in runs["first"].items():
        tx = ledger.transaction(tx_id)
        assert tx.stop_reason == "PowerLoss"
        assert tx.meter_stop == int(runs["saved"][station])
    later = [
        tx
        for sid in ledger.station_ids()
        for tx in ledger.station(sid).transactions.values()
        if tx.transaction_id not in runs["first"]
    ]
    assert len(later) >= STATIONS
    assert {tx.stop_reason for tx in later} == {"Local"}
    assert ledger.check() == []
    assert runs["summary"]["fleet"]["unfinished_transactions"] == 0


def test_the_energy_registers_continue_the_first_runs(runs: dict) -> None:
    ledger = runs["ledger"]
    for station, energy in runs["saved"].items():
        txs = sorted(ledger.station(station).transactions.values(), key=lambda t: t.transaction_id)
        assert txs[0].transaction_id in runs["first"]
        assert all(t.meter_start >= int(energy) for t in txs[1:])
