"""Every dashboard panel has data, through a real Prometheus scraping a real run.

Debian's ``prometheus`` (installed by ``.ci/run`` when missing) scrapes ``fleet run
--metrics-port`` every second while a fleet of 12 stations runs a profile with short
sessions, an offline wave and a fault storm against a CSMS that refuses, leaves
unanswered and garbles a share of the calls (rough_csms.py). Then every target of
every panel in grafana/dashboards is evaluated through Prometheus' HTTP API, with the
dashboard variables substituted as Grafana would, and must return series.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from promtext import families, fetch, fleet_run, needs_promtool, promtool_check, stop
from rough_csms import RoughCsms

from fleet.csms.server import CsmsThread
from fleet.metrics.exporter import FleetCollector, worker_families
from fleet.metrics.stats import FleetStats

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
DASHBOARDS = sorted((ROOT / "grafana" / "dashboards").glob("*.json"))
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
RUN_SECONDS = 30
QUERY_AT = 24  # seconds into the run: everything has happened, the target is still up
# Grafana's variables, as Grafana would substitute them for this 1 s scrape interval.
VARIABLES = {"$__rate_interval": "10s", "$__interval": "1s", "$__range": "1m", "$job": ".*"}

pytestmark = pytest.mark.skipif(
    not os.access(PROMETHEUS, os.X_OK),
    reason="needs Debian's prometheus (.ci/run installs it: apt-get install prometheus)",
)


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def panel_targets() -> list[tuple[str, str, str]]:
    """(dashboard file, panel title, expr) of every target of every panel."""
    out = []
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        panels = list(board["panels"])
        while panels:
            panel = panels.pop()
            panels.extend(panel.get("panels", []))  # rows
            for target in panel.get("targets", []):
                out.append((path.name, panel["title"], target["expr"]))
    return out


def substitute(expr: str) -> str:
    for name in sorted(VARIABLES, key=len, reverse=True):
        expr = expr.replace(name, VARIABLES[name])
    assert "$" not in expr, f"a dashboard variable the test does not know: {expr}"
    return expr


class Prom:
    """Prometheus' HTTP API, every query evaluated at one instant (``at``, set while
    the fleet runs), whatever the order the tests of two runs execute in."""

    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.at: float | None = None

    def query(self, expr: str) -> list[dict[str, Any]]:
        params = {"query": expr}
        if self.at is not None:
            params["time"] = f"{self.at:.3f}"
        url = f"{self.base}/api/v1/query?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(url, timeout=10) as resp:
            body = json.load(resp)
        assert body["status"] == "success", (expr, body)
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.base}/-/ready", timeout=2) as resp:
                return resp.status == 200
        except OSError:
            return False


@contextlib.contextmanager
def scraped(
    tmp: Path, csms_url: str, profile: str, stations: int, seconds: int, query_at: int
) -> Iterator[dict[str, Any]]:
    """Prometheus scraping ``fleet run`` every second; yields ``query_at`` seconds into
    the run (the fleet still up) with the Prometheus API and the /metrics page then."""
    metrics_port, prom_port = _port(), _port()
    (tmp / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        "  - job_name: chargepro-fleet\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{metrics_port}']}}]\n"
    )
    prom_log = open(tmp / "prometheus.log", "wb")  # noqa: SIM115
    prom = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={tmp / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp / 'data'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
        ],
        stdout=prom_log,
        stderr=subprocess.STDOUT,
    )
    fleet_log = open(tmp / "fleet.log", "wb")  # noqa: SIM115
    started = time.monotonic()
    fleet = subprocess.Popen(
        fleet_run(
            stations,
            seconds,
            profile,
            "--seed",
            "11",
            "--csms",
            csms_url,
            "--metrics-port",
            str(metrics_port),
        ),
        stdout=fleet_log,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
    )
    try:
        api = Prom(prom_port)
        deadline = time.monotonic() + 20
        while not api.ready():
            assert prom.poll() is None, (tmp / "prometheus.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "prometheus did not become ready"
            time.sleep(0.2)
        time.sleep(max(0.0, started + query_at - time.monotonic()))
        assert fleet.poll() is None, (tmp / "fleet.log").read_text()[-3000:]
        exposition = fetch(f"http://127.0.0.1:{metrics_port}/metrics")
        time.sleep(1.5)  # a scrape after the page we hold, so `at` sees it
        api.at = time.time()
        yield {"api": api, "fleet": fleet, "tmp": tmp, "exposition": exposition}
    finally:
        for proc in (fleet, prom):
            stop(proc)
        prom_log.close()
        fleet_log.close()


@pytest.fixture(scope="module")
def scraped_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Everything happens: the every-panel profile against the rough CSMS."""
    csms = RoughCsms()
    url = csms.start()
    try:
        with scraped(
            tmp_path_factory.mktemp("prom"),
            url,
            str(HERE / "every-panel.yaml"),
            12,
            RUN_SECONDS,
            QUERY_AT,
        ) as run:
            yield {**run, "csms": csms}
    finally:
        csms.stop()


@pytest.fixture(scope="module")
def healthy_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Nothing goes wrong: an idle fleet against the reference CSMS, which answers
    everything; no offline wave, no fault storm, no misbehaving station."""
    with (
        CsmsThread(accept_all_tags=True, heartbeat_interval=3600) as csms,
        scraped(tmp_path_factory.mktemp("healthy"), csms.url, "idle", 6, 25, 12) as run,
    ):
        yield run


def test_prometheus_scrapes_the_fleet(scraped_run: dict[str, Any]) -> None:
    api: Prom = scraped_run["api"]
    up = api.query('up{job="chargepro-fleet"}')
    assert [float(s["value"][1]) for s in up] == [1.0]
    assert float(api.query("sum(fleet_stations_started)")[0]["value"][1]) == 12
    # The dashboards' job variable: label_values(fleet_stations_connected, job).
    jobs = api.query("count by (job) (fleet_stations_connected)")
    assert [s["metric"]["job"] for s in jobs] == ["chargepro-fleet"]


def test_every_panel_of_a_healthy_run_shows_something(healthy_run: dict[str, Any]) -> None:
    """A healthy run reads 0, not "No data": every panel has at least one target with
    a value (a labelled counter's panel through its total), and every stat panel
    and every total reads a number."""
    api: Prom = healthy_run["api"]
    empty_panels: dict[tuple[str, str], list[str]] = {}
    blank = []
    for board, title, expr in panel_targets():
        result = api.query(substitute(expr))
        if not result:
            empty_panels.setdefault((board, title), []).append(expr)
        else:
            empty_panels.setdefault((board, title), [])
            if " or (0 * " in expr and [float(r["value"][1]) for r in result] != [0.0]:
                blank.append(f"{title}: {expr} -> {result}")
    dark = [
        f"{board} / {title}"
        for (board, title), missing in empty_panels.items()
        if len(missing) == sum(1 for b, t, _ in panel_targets() if (b, t) == (board, title))
    ]
    assert not dark, "panels with no data on a healthy run:\n" + "\n".join(dark)
    assert not blank, "totals that are not 0 on a healthy run:\n" + "\n".join(blank)
    for expr in (
        'sum(fleet_transaction_messages_dropped_total{job=~".*"})',
        'sum(fleet_faults_active{job=~".*"}) or (0 * sum(fleet_stations_started))',
    ):
        assert [float(r["value"][1]) for r in api.query(expr)] == [0.0], expr


def test_every_panel_query_returns_data(scraped_run: dict[str, Any]) -> None:
    api: Prom = scraped_run["api"]
    targets = panel_targets()
    assert len(targets) >= 30
    empty = [
        f"{board} / {title}: {expr}"
        for board, title, expr in targets
        if not api.query(substitute(expr))
    ]
    assert not empty, "panels without data:\n" + "\n".join(empty)


@needs_promtool
def test_promtool_accepts_a_run_that_fills_every_family(scraped_run: dict[str, Any]) -> None:
    promtool_check(scraped_run["exposition"])


def test_the_run_fills_every_family(scraped_run: dict[str, Any]) -> None:
    """Every family a single process exports has series in this run (so promtool above
    saw each one with samples, not only its HELP and TYPE lines)."""
    counts = families(scraped_run["exposition"])
    exported = {f.name for f in FleetCollector(FleetStats()).collect()}
    exported |= {f.name for f in worker_families([])}
    assert set(counts) == exported
    assert [name for name, n in counts.items() if n == 0] == []


# What the profile and the rough CSMS make happen: each must have been above zero at
# some point of the run (not merely exported), or the panels would show flat zeros.
HAPPENED = [
    "sum(fleet_transactions_active)",
    "sum(fleet_energy_delivered_joules_total)",
    "sum(fleet_ocpp_callerrors_total)",
    "sum(fleet_ocpp_timeouts_total)",
    'sum(fleet_ocpp_schema_violations_total{direction="received"})',
    'sum(fleet_csms_calls_total{action="GetConfiguration",outcome="Answered"})',
    "sum(fleet_inbound_errors_total)",
    "sum(fleet_offline_queue_depth)",
    "sum(fleet_offline_messages_delivered_total)",
    "sum(fleet_transaction_messages_dropped_total)",
    "sum(fleet_reconnects_total)",
    "sum(fleet_connect_failures_total)",
    "sum(fleet_disconnects_total)",
    "sum(fleet_faults_active)",
    "sum(fleet_faults_raised_total)",
    'sum(fleet_connectors{status="Charging"})',
    "sum(fleet_ignored_frames_total)",
    "sum(fleet_misbehave_sent_total)",
    "sum(fleet_misbehave_answers_total)",
    "sum(fleet_loop_lag_seconds_count)",
    "max(fleet_loop_lag_max_seconds)",
    "max(fleet_loop_cpu_ratio)",
    "sum(fleet_hub_lag_seconds_count)",
]


@pytest.mark.parametrize("expr", HAPPENED)
def test_the_run_exercised_it(scraped_run: dict[str, Any], expr: str) -> None:
    api: Prom = scraped_run["api"]
    result = api.query(f"max_over_time(({expr})[1m:1s])")
    assert result and float(result[0]["value"][1]) > 0, expr
