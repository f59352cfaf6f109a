"""Locust's distributed mode: a real master and real worker processes on 127.0.0.1.

The reference CSMS runs in this process (a :class:`CsmsThread`), so the test reads its
ledger directly: which station ids connected, what each one badged and booted with.
Which worker runs which station is read from the operating system (each worker's TCP
connections to the CSMS), not from the fleet's own bookkeeping.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from support import master_waiting

from fleet.csms.server import CsmsThread
from fleet.locust.numbers import NumberPool
from fleet.scenarios.bundle import bundle, unpack

ROOT = Path(__file__).resolve().parents[2]
LOCUSTFILE = ROOT / "locustfiles" / "chargepro.py"
STATIONS = 60
PILOTS = 5

# Trace replay: station number k badges with T{k:03d} (arrivals within 4 model seconds,
# 300 model seconds plugged in: 5 s at 60x). The first PILOTS stations are a kind with
# its own firmware: both come from the station's number, which must be global.
PROFILE = f"""\
name: dist-trace
station:
  config: {{MeterValueSampleInterval: 60, MinimumStatusDuration: 0}}
id_tags: [T001]
evs:
  - {{name: sedan, battery_kwh: 75, max_current: 32, phases: 3, soc: [0.2, 0.5]}}
sessions:
  source: trace
  trace: ../traces/dist.csv
  time_compression: 60
  badge_after_plug: [1, 2]
  unplug_after_stop: [1, 2]
kinds:
  - {{name: pilot, count: {PILOTS}, firmware: 3.1.0}}
  - {{name: rest, weight: 1}}
"""
TAGS = [f"T{k:03d}" for k in range(1, STATIONS + 1)]


def _trace(dwell: float) -> str:
    rows = ["station,arrival,dwell,energy_kwh,ev,id_tag"]
    rows += [f"{k},{k % 5},{dwell},,,{TAGS[k - 1]}" for k in range(1, STATIONS + 1)]
    return "\n".join(rows) + "\n"


def _write_profile(folder: Path, dwell: float = 300, extra: str = "") -> Path:
    (folder / "profiles").mkdir(parents=True)
    (folder / "traces").mkdir()
    (folder / "traces" / "dist.csv").write_text(_trace(dwell))
    path = folder / "profiles" / "dist.yaml"
    path.write_text(PROFILE + extra)
    return path


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("FLEET_SHAPE", None)
    return env


def _wait(check: Callable[[], Any], timeout: float, what: str, log: Path | None = None) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            tail = log.read_text()[-3000:] if log is not None and log.exists() else ""
            raise AssertionError(f"timed out waiting for {what}\n{tail}")
        time.sleep(0.1)


def _connections_to(port: int, pids: list[int]) -> dict[int, int]:
    """Established TCP connections to 127.0.0.1:port, per process."""
    counts: dict[int, int] = {}
    for pid in pids:
        try:
            conns = psutil.Process(pid).net_connections(kind="tcp")
        except psutil.Error:
            continue
        counts[pid] = sum(
            1
            for c in conns
            if c.raddr and c.raddr.port == port and c.status == psutil.CONN_ESTABLISHED
        )
    return counts


@pytest.fixture
def csms() -> Iterator[CsmsThread]:
    thread = CsmsThread(accepted_tags=TAGS)
    thread.start()
    try:
        yield thread
    finally:
        thread.stop()


def _kill(procs: list[subprocess.Popen[str]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


# -- a master and two workers, as on several hosts ------------------------------------------


def test_master_and_two_workers(tmp_path: Path, csms: CsmsThread, free_port: int) -> None:
    shipped = _write_profile(tmp_path / "master-only")
    logs = tmp_path / "logs"
    logs.mkdir()
    procs: list[subprocess.Popen[str]] = []
    try:
        master_log = (logs / "master.log").open("w")
        master = subprocess.Popen(
            [
                sys.executable, "-m", "locust", "-f", str(LOCUSTFILE),
                "--host", csms.url,
                "--master", "--master-bind-host", "127.0.0.1",
                "--master-bind-port", str(free_port),
                "--expect-workers", "2", "--expect-workers-max-wait", "30",
                "--headless", "-u", str(STATIONS), "-r", "30", "-t", "14s",
                "--fleet-profile", str(shipped), "--fleet-seed", "5",
            ],
            stdout=master_log, stderr=subprocess.STDOUT, text=True, env=_env(), cwd=tmp_path,
        )  # fmt: skip
        procs.append(master)
        _wait(master_waiting(logs / "master.log", master), 30, "the master to start")
        assert master.poll() is None, (logs / "master.log").read_text()[-3000:]
        # The profile and its trace exist only where the master read them: workers on
        # other hosts get them from the master.
        shutil.rmtree(tmp_path / "master-only")
        workers = []
        for i in range(2):
            elsewhere = tmp_path / f"host{i}"
            elsewhere.mkdir()
            worker = subprocess.Popen(
                [
                    sys.executable, "-m", "locust", "-f", str(LOCUSTFILE),
                    "--worker", "--master-host", "127.0.0.1", "--master-port", str(free_port),
                ],
                stdout=(logs / f"worker{i}.log").open("w"), stderr=subprocess.STDOUT,
                text=True, env=_env(), cwd=elsewhere,
            )  # fmt: skip
            procs.append(worker)
            workers.append(worker)

        _wait(lambda: len(csms.connected_stations()) == STATIONS, 30, "60 stations connected")
        per_worker = _connections_to(csms.csms.port, [w.pid for w in workers])
        assert sum(per_worker.values()) == STATIONS, per_worker
        assert all(count >= STATIONS // 4 for count in per_worker.values()), per_worker

        assert master.wait(timeout=60) == 0, (logs / "master.log").read_text()[-3000:]
        for i, worker in enumerate(workers):
            assert worker.wait(timeout=20) == 0, (logs / f"worker{i}.log").read_text()[-3000:]
    finally:
        _kill(procs)

    ledger = csms.ledger
    assert sorted(ledger.station_ids()) == [f"CP{k:05d}" for k in range(1, STATIONS + 1)]
    assert ledger.check() == []
    for k in range(1, STATIONS + 1):
        record = ledger.station(f"CP{k:05d}")
        # The trace's rows for station k, and no other, were played by CP0000k.
        assert set(record.authorizations) == {TAGS[k - 1]}, (k, record.authorizations)
        assert len(record.transactions) == 1
        assert record.last_boot is not None
        firmware = record.last_boot["firmwareVersion"]
        assert firmware == ("3.1.0" if k <= PILOTS else "3.0.0"), (k, record.last_boot)
    summary = ledger.summary()
    assert summary["transactions_started"] == STATIONS
    assert summary["transactions_stopped"] == STATIONS  # 5 s sessions in a 14 s run


# -- fleet run --processes -----------------------------------------------------------------


def test_fleet_run_with_processes_and_a_boot_storm(tmp_path: Path, csms: CsmsThread) -> None:
    """`fleet run --processes 2` with the boot-storm shape: 20 stations on two workers,
    all of them powered off 4 s after the whole fleet is connected, and back 2 s later.
    Each comes back with the same id on the worker that kept its state: its energy
    register carries on from where its first transaction (charging within a second of
    connecting) left it, where a fresh station starts at 0.

    The outage waits for the fleet (BootStormShape): when it counted from the start of
    the run, a busy machine could power a station off before it had connected (issue 14:
    "CP00011 had 1 connection, expected 2"). The run is long enough for the slowest
    machine's worker reports (every 3 s) plus the 6 s storm and the sessions after it."""
    stations = 20
    # Every time here counts from the fleet being connected (the storm's clock) or is
    # longer than the whole run: the outage 4 s after it, power back 2 s later, the end
    # 10 s after that (hold); each station's one session lasts an hour (60 s at 60x).
    load = (
        f"load: {{shape: boot-storm, stations: {stations}, spawn_rate: 20, "
        "outage_at: 4, outage: 2, hold: 10}\n"
    )
    profile = _write_profile(tmp_path, dwell=3600, extra=load)
    log = tmp_path / "run.log"
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "fleet", "run", "--headless",
            "--csms", csms.url, "--profile", str(profile), "--processes", "2",
            "--duration", "90s",
        ],
        stdout=log.open("w"), stderr=subprocess.STDOUT, text=True, env=_env(),
    )  # fmt: skip
    try:

        def spread() -> list[int] | None:
            """Connections per worker process, once all stations are up (before the
            outage or after it)."""
            tree = [p.pid for p in psutil.Process(proc.pid).children(recursive=True)]
            busy = [n for n in _connections_to(csms.csms.port, tree).values() if n]
            return busy if sum(busy) == stations else None

        busy = _wait(spread, 30, "20 stations connected", log)
        assert len(busy) == 2, busy  # both workers run stations
        proc.wait(timeout=60)
    finally:
        _kill([proc])
    out = log.read_text()
    assert proc.returncode == 0, out[-3000:]
    assert "load shape boot-storm" in out
    ledger = csms.ledger
    ids = [f"CP{k:05d}" for k in range(1, stations + 1)]
    assert sorted(ledger.station_ids()) == ids
    assert ledger.check() == []
    for identity in ids:
        record = ledger.station(identity)
        assert record.connections == 2 and record.boots == 2, identity
        txs = sorted(record.transactions.values(), key=lambda tx: tx.start_timestamp)
        # Charged before the outage (that transaction ended with the power) and after it
        # (still charging when the run ended).
        assert len(txs) >= 2 and all(tx.stopped for tx in txs[:-1]), identity
        assert txs[0].meter_start == 0
        register = [(tx.meter_start, tx.meter_stop) for tx in txs[:-1]]
        # The register only grows, across the outage too: the same station came back.
        assert all(a[1] > 0 for a in register), register
        assert all(b[0] >= a[1] for a, b in itertools.pairwise(register)), register
        assert txs[-1].meter_start >= register[-1][1], (register, txs[-1].meter_start)


def test_fleet_run_rejects_bad_processes() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "fleet", "run", "--headless", "--processes", "-3"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "--processes" in lines[0], proc.stderr


# -- the allocator and the profile bundle, in process ------------------------------------


def test_numbers_are_the_lowest_free_across_holders() -> None:
    pool = NumberPool()
    a, _ = pool.take("w0", 3)
    b, _ = pool.take("w1", 3)
    assert a == [1, 2, 3] and b == [4, 5, 6]
    pool.release("w0", [2])
    pool.release("w1", [5, 6])
    # A worker gets its own parked numbers back first (its stations' state is there).
    got, stolen = pool.take("w1", 1)
    assert got == [5] and stolen == {}
    # Then others' free numbers, lowest first, before any new one; the owner is named.
    got, stolen = pool.take("w2", 3)
    assert got == [2, 6, 7] and stolen == {"w0": [2], "w1": [6]}
    assert pool.in_use() == 7 and pool.top == 7


def test_a_departed_holders_numbers_are_free_for_anyone() -> None:
    pool = NumberPool()
    pool.take("w0", 4)
    pool.take("w1", 2)
    pool.release("w0", [4])
    pool.drop_holder("w0")
    got, stolen = pool.take("w1", 5)
    assert got == [1, 2, 3, 4, 7] and stolen == {}
    assert pool.in_use("w0") == 0 and pool.in_use("w1") == 7


def test_releasing_numbers_not_held_changes_nothing() -> None:
    pool = NumberPool()
    pool.take("w0", 2)
    pool.release("w1", [1])  # not w1's
    pool.release("w0", [9])  # never handed out
    assert pool.take("w1", 1)[0] == [3]


def test_the_profile_bundle_carries_its_trace(tmp_path: Path) -> None:
    path = _write_profile(tmp_path / "src")
    data = bundle(str(path))
    assert data["name"] == "dist.yaml" and data["files"].keys() == {"../traces/dist.csv"}
    shutil.rmtree(tmp_path / "src")
    out = tmp_path / "unpacked"
    profile_path = unpack(data, out)
    assert out.resolve() in profile_path.resolve().parents
    from fleet.scenarios.profile import load

    profile = load(str(profile_path))
    assert profile.name == "dist-trace"
    assert [s.id_tag for s in profile.sessions.trace.for_station(7, "CP00007")] == ["T007"]


def test_unpack_never_writes_outside_its_folder(tmp_path: Path) -> None:
    data = {"name": "../../evil.yaml", "text": "name: x\n", "files": {"/etc/x": "no"}}
    profile_path = unpack(data, tmp_path / "box")
    assert profile_path.parent == tmp_path / "box"
    assert not (tmp_path / "evil.yaml").exists()
