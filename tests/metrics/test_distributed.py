"""One scrape target for a distributed fleet: a real Locust master and two real worker
processes against the reference CSMS; the master's /metrics is the sum of both workers.

The CSMS's ledger is the independent witness: the messages the master reports by
action must be what the CSMS received, which only holds if both workers' counts are
summed (each worker holds half the stations).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from promtext import Samples, fetch, needs_promtool, promtool_check, scrape, total

from fleet.csms.server import CsmsThread

ROOT = Path(__file__).resolve().parents[2]
LOCUST = str(Path(sys.executable).with_name("locust"))
LOCUSTFILE = str(ROOT / "locustfiles" / "chargepro.py")
STATIONS = 10


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _spawn(
    args: list[str], log: Path, locustfile: str = LOCUSTFILE, **env: str
) -> subprocess.Popen[bytes]:
    fh = open(log, "wb")  # noqa: SIM115  (closed with the process, below)
    return subprocess.Popen(
        [LOCUST, "-f", locustfile, *args],
        stdout=fh,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
    )


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    tmp = tmp_path_factory.mktemp("cluster")
    csms = CsmsThread(accept_all_tags=True, heartbeat_interval=3600)
    url = csms.start()
    master_port, metrics_port = _port(), _port()
    master = _spawn(
        [
            "--master",
            "--master-bind-host",
            "127.0.0.1",
            "--master-bind-port",
            str(master_port),
            "--expect-workers",
            "2",
            "--headless",
            "-u",
            str(STATIONS),
            "-r",
            "20",
            "-t",
            "60s",
            "--host",
            url,
            "--fleet-profile",
            "idle",
            "--fleet-metrics-port",
            str(metrics_port),
            "--fleet-metrics-per-station",
            "--web-host",
            "127.0.0.1",
            "--web-port",
            str(_port()),
        ],
        tmp / "master.log",
        # The master's locustfile adds a probe writing fleet_totals() to a file.
        str(Path(__file__).with_name("totals_locustfile.py")),
        FLEET_TOTALS_OUT=str(tmp / "totals.json"),
    )
    workers = [
        _spawn(
            ["--worker", "--master-host", "127.0.0.1", "--master-port", str(master_port)],
            tmp / f"worker{i}.log",
        )
        for i in range(2)
    ]
    procs = [master, *workers]
    try:
        yield {
            "metrics": f"http://127.0.0.1:{metrics_port}/metrics",
            "csms": csms,
            "procs": procs,
            "logs": tmp,
            "totals": tmp / "totals.json",
        }
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        csms.stop()


def _logs(cluster: dict[str, object]) -> str:
    tmp = cluster["logs"]
    assert isinstance(tmp, Path)
    return "\n".join(f"--- {p.name}\n{p.read_text()[-2000:]}" for p in sorted(tmp.glob("*.log")))


def _settled(cluster: dict[str, object], timeout: float = 40.0) -> Samples:
    """Scrape the master until both workers reported every station booted and the
    CSMS has every boot and status notification (the idle fleet then goes quiet)."""
    csms = cluster["csms"]
    assert isinstance(csms, CsmsThread)
    deadline = time.monotonic() + timeout
    last: Samples = {}
    while time.monotonic() < deadline:
        try:
            last = scrape(str(cluster["metrics"]))
        except OSError:
            last = {}
        ledger = csms.ledger.summary()
        if (
            total(last, "fleet_workers") == 2
            and total(last, "fleet_stations_boot", status="Accepted") == STATIONS
            and ledger["boots"] == STATIONS
            and ledger["status_notifications"] == 2 * STATIONS
            and total(
                last, "fleet_ocpp_messages_total", action="StatusNotification", direction="received"
            )
            == 2 * STATIONS
        ):
            return last
        time.sleep(0.5)
    raise AssertionError(f"the master never showed the whole fleet: {last}\n{_logs(cluster)}")


def test_master_serves_the_sum_of_both_workers(cluster: dict[str, object]) -> None:
    samples = _settled(cluster)
    assert total(samples, "fleet_stations_connected") == STATIONS
    assert total(samples, "fleet_stations_started") == STATIONS
    per_worker = samples["fleet_worker_stations_connected"]
    assert len(per_worker) == 2
    assert sorted(v for _, v in per_worker) == [STATIONS / 2, STATIONS / 2]
    assert sum(v for _, v in per_worker) == total(samples, "fleet_stations_connected")
    # Connectors: two per station (0 and 1), all Available in an idle fleet.
    assert total(samples, "fleet_connectors", status="Available") == 2 * STATIONS


def test_fleet_totals_on_the_master_are_the_sum(cluster: dict[str, object]) -> None:
    """What the Fleet tab and the end-of-run summary read: fleet_totals() on the master."""
    _settled(cluster)
    path = cluster["totals"]
    assert isinstance(path, Path)
    deadline = time.monotonic() + 10
    totals: dict[str, object] = {}
    while time.monotonic() < deadline:
        totals = json.loads(path.read_text()) if path.exists() else {}
        if totals.get("stations_connected") == STATIONS:
            break
        time.sleep(0.25)
    assert totals["stations_connected"] == STATIONS, totals
    assert totals["stations_started"] == STATIONS
    assert totals["connectors"] == {"Available": STATIONS}  # outlets, not connector 0
    assert totals["transactions_active"] == 0
    assert totals["callerrors"] == {} and totals["timeouts"] == 0
    assert totals["transaction_messages_dropped"] == 0 and totals["schema_violations"] == 0
    # Each worker's own loop lag beside the fleet-wide one, and the worst of them.
    generator = totals["generator"]
    assert isinstance(generator, dict)
    workers = generator["workers"]
    assert len(workers) == 2 and all(w["samples"] > 0 for w in workers.values()), workers
    assert generator["worst_worker_lag_p99_ms"] == max(w["lag_p99_ms"] for w in workers.values())


def test_messages_by_action_are_what_the_csms_received(cluster: dict[str, object]) -> None:
    samples = _settled(cluster)
    csms = cluster["csms"]
    assert isinstance(csms, CsmsThread)
    by_action = csms.ledger.summary()["messages_by_action"]
    sent = {
        labels["action"]: value
        for labels, value in samples["fleet_ocpp_messages_total"]
        if labels["direction"] == "sent" and labels["initiator"] == "station"
    }
    assert sent == by_action
    # Every answered CALL is in the round-trip histogram, summed over the workers.
    assert (
        total(samples, "fleet_ocpp_round_trip_seconds_count", action="BootNotification") == STATIONS
    )
    assert (
        total(samples, "fleet_ocpp_round_trip_seconds_bucket", action="BootNotification", le="+Inf")
        == STATIONS
    )


def test_per_station_series_on_request(cluster: dict[str, object]) -> None:
    """--fleet-metrics-per-station on the master reaches the workers (Locust sends the
    master's options with each spawn) and their stations show on the master."""
    samples = _settled(cluster)
    connected = {labels["station"]: v for labels, v in samples["fleet_station_connected"]}
    assert len(connected) == STATIONS
    assert set(connected.values()) == {1.0}
    status = [labels for labels, v in samples["fleet_station_connector_status"] if v == 1]
    assert len(status) == 2 * STATIONS


@needs_promtool
def test_the_masters_exposition_passes_promtool(cluster: dict[str, object]) -> None:
    """The master's page (the sum of both workers, its worker and per-station families)
    is what strict scrapers read: Prometheus' own parser and linter must accept it."""
    _settled(cluster)
    promtool_check(fetch(str(cluster["metrics"])))


def test_per_station_is_refused_for_a_big_fleet(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            LOCUST,
            "-f",
            LOCUSTFILE,
            "--headless",
            "-u",
            "5000",
            "-t",
            "1s",
            "--fleet-metrics-per-station",
            "--host",
            "ws://127.0.0.1:9/ocpp",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.startswith("fleet:")]
    assert lines == [
        "fleet: --fleet-metrics-per-station is for fleets of at most 1000 stations (5000 asked)"
    ], proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_metrics_port_in_use_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = subprocess.run(
            [
                LOCUST,
                "-f",
                LOCUSTFILE,
                "--headless",
                "-u",
                "1",
                "-t",
                "1s",
                "--fleet-metrics-port",
                str(port),
                "--host",
                "ws://127.0.0.1:9/ocpp",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
        )
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.startswith("fleet:")]
    assert lines == [
        f"fleet: --fleet-metrics-port: cannot serve on 127.0.0.1:{port} (Address already in use)"
    ], proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_worker_that_quits_keeps_its_counters_and_drops_its_gauges(
    cluster: dict[str, object],
) -> None:
    """One worker quits mid-run: Locust moves its stations to the other worker. The
    master's gauges count only the worker left; its counters keep what the departed
    worker counted (they never go backwards), so they still match the CSMS's ledger."""
    _settled(cluster)
    procs = cluster["procs"]
    assert isinstance(procs, list)
    leaving = procs[2]
    leaving.send_signal(signal.SIGTERM)
    leaving.wait(timeout=15)
    csms = cluster["csms"]
    assert isinstance(csms, CsmsThread)
    deadline = time.monotonic() + 40
    samples: Samples = {}
    while time.monotonic() < deadline:
        samples = scrape(str(cluster["metrics"]))
        ledger = csms.ledger.summary()
        sent = total(samples, "fleet_ocpp_messages_total", direction="sent", initiator="station")
        if (
            total(samples, "fleet_workers") == 1
            and total(samples, "fleet_stations_connected") == STATIONS
            and ledger["boots"] == STATIONS + STATIONS // 2
            and sent == ledger["messages_total"]
        ):
            break
        time.sleep(0.5)
    else:
        raise AssertionError(f"{samples}\n{csms.ledger.summary()}\n{_logs(cluster)}")
    assert len(samples["fleet_worker_stations_connected"]) == 1
    assert total(samples, "fleet_stations_started") == STATIONS
    boots = total(samples, "fleet_ocpp_messages_total", action="BootNotification", direction="sent")
    assert boots == STATIONS + STATIONS // 2
