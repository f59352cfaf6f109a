"""The /metrics exposition is valid for strict parsers: every family once, one HELP and
one TYPE line each, names Prometheus' linter accepts.

``promtool check metrics`` (Prometheus' own parser and linter) is the judge, on an
exposition with every family filled and on a real single-process ``fleet run``; the
distributed master's page is checked in test_distributed.py, a run that exercises
every family in test_prometheus.py.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from collections import Counter
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from promtext import fetch, fleet_run, needs_promtool, promtool_check, scrape, stop, total

from fleet.metrics.exporter import (
    FleetCollector,
    StationRow,
    station_families,
    worker_families,
)
from fleet.metrics.stats import FleetStats, Histogram

ROOT = Path(__file__).resolve().parents[2]


def filled() -> FleetStats:
    """A FleetStats with something in every attribute (checked below, so a counter added
    to FleetStats without a test value here fails loudly)."""
    s = FleetStats()
    s.messages[("Heartbeat", "sent", "station")] += 3
    s.round_trip["Heartbeat"].observe(0.02)
    s.round_trip["BootNotification"].observe(10.01)
    s.callerrors[("Authorize", "InternalError")] += 1
    s.timeouts["StatusNotification"] += 1
    s.csms_calls[("GetConfiguration", "Answered")] += 1
    s.inbound_errors[("ChangeConfiguration", "TypeConstraintViolation")] += 1
    s.ignored["reply to unknown id"] += 1
    s.connect_failures["refused"] += 1
    s.stations_connected = 2
    s.stations_started = 3
    s.stations_never_connected = 1
    s.boot_status["Accepted"] = 2
    s.connectors[(1, "Charging")] = 1
    s.transactions_active = 1
    s.transactions_started = 2
    s.transactions_stopped = 1
    s.unfinished_transactions = 1
    s.stations_never_connected = 1
    s.energy_wh = 1500.0
    s.reconnects = 1
    s.disconnects["connection lost"] += 1
    s.transaction_messages_dropped["MeterValues"] += 1
    s.offline_queue_depth = 4
    s.offline_messages_delivered = 2
    s.faults_raised["0x30000B"] += 1
    s.faults_active["0x30000B"] = 1
    s.schema_violations[("Authorize", "received")] += 1
    s.misbehave_sent["schema"] += 1
    s.misbehave_answers[("schema", "FormationViolation")] += 1
    s.loop_lag.observe(0.003)
    s.loop_lag_max = 0.2
    s.loop_cpu_ratio = 0.4
    s.hub_lag.observe(0.001)
    s.hub_lag_max = 0.03
    for name, value in vars(s).items():
        filled = value.count if isinstance(value, Histogram) else value
        assert filled, f"filled() leaves FleetStats.{name} empty"
    return s


def exposition(stats: FleetStats) -> str:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(
        FleetCollector(
            stats,
            lambda: [
                *worker_families([("local", 2)]),
                *station_families([StationRow("CP00001", True, 12.5, 0, ((1, "Charging"),))]),
            ],
        )
    )
    return generate_latest(registry).decode()


def test_every_family_has_one_help_and_one_type_line() -> None:
    text = exposition(filled())
    for kind in ("HELP", "TYPE"):
        names = Counter(
            line.split()[2] for line in text.splitlines() if line.startswith(f"# {kind} ")
        )
        assert [n for n, count in names.items() if count > 1] == [], kind


@needs_promtool
def test_promtool_accepts_every_family_filled() -> None:
    promtool_check(exposition(filled()))


@needs_promtool
def test_promtool_accepts_an_empty_fleet() -> None:
    promtool_check(exposition(FleetStats()))


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@needs_promtool
def test_promtool_accepts_a_single_process_run(tmp_path: Path) -> None:
    """``fleet run`` against the embedded reference CSMS: one Locust process serving
    its own /metrics, scraped while the stations run."""
    port = _port()
    log = tmp_path / "fleet.log"
    with open(log, "wb") as out:
        fleet = subprocess.Popen(
            fleet_run(3, 40, "idle", "--seed", "1", "--metrics-port", str(port)),
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
        try:
            url = f"http://127.0.0.1:{port}/metrics"
            deadline = time.monotonic() + 40
            while True:
                assert fleet.poll() is None, log.read_text()[-3000:]
                assert time.monotonic() < deadline, log.read_text()[-3000:]
                try:
                    if total(scrape(url), "fleet_stations_boot", status="Accepted") == 3:
                        break
                except OSError:
                    pass
                time.sleep(0.3)
            promtool_check(fetch(url))
        finally:
            stop(fleet, signal.SIGINT)


def test_the_metrics_page_lists_every_family() -> None:
    """docs/metrics.md has a row for every family, under the name a query uses
    (``_total`` on counters), with a type that matches."""
    text = (ROOT / "docs" / "metrics.md").read_text()
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 5 and cells[0].startswith("`fleet_"):
            rows[cells[0].strip("`")] = cells[1]
    expected = {}
    for family in text_string_to_metric_families(exposition(filled())):
        name = family.name + ("_total" if family.type == "counter" else "")
        expected[name] = family.type
    assert sorted(rows) == sorted(expected)
    assert {n: rows[n].split()[0] for n in rows} == expected
