"""The fleet report (`fleet run --html`): a pure function of the run summary and the
fleet's history, checked without Locust; then once through a real headless run."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from fleet.reports import html as report
from fleet.reports.html import LAG_KEY, charts, charts_html, render, report_path

PROFILE = Path(__file__).parent.parent / "e2e" / "fast-sessions.yaml"
T0 = 1_760_000_000.0


def history(n: int = 6, **extra: Any) -> list[dict[str, Any]]:
    """``n`` samples two seconds apart: stations connect, charge, reconnect."""
    out = []
    for i in range(n):
        sample: dict[str, Any] = {
            "t": T0 + 2 * i,
            "stations_connected": min(10, 4 * i),
            "transactions_active": min(10, i),
            "energy_wh": 100.0 * i,
            "offline_queue_depth": 3 if i == 2 else 0,
            "reconnects": 2 * i,
            "timeouts": 0,
            "connectors": {"Available": max(0, 10 - i), "Charging": min(10, i)} if i else {},
        }
        sample.update(extra)
        out.append(sample)
    return out


def summary(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "version": 1,
        "wall_s": 10.2,
        "stations_target": 10,
        "actions": {
            "BootNotification": {
                "requests": 10,
                "failures": 0,
                "rps": 1.0,
                "p50_ms": 4.0,
                "p95_ms": 9.0,
                "p99_ms": 9.0,
                "max_ms": 9.0,
            }
        },
        "errors_by_code": {"CALLERROR InternalError": 2},
        "fleet": {
            "stations_connected": 10,
            "energy_wh": 500.0,
            "connect_failures": {"refused": 3, "handshake timeout": 7},
            "callerrors": {"InternalError": 2},
        },
        "ledger": {"summary": {"stations": 10, "boots": 10, "duplicates": 0}, "problems": []},
        "slos": [
            {
                "slo": "error_rate < 1%",
                "measured_text": "0%",
                "passed": True,
                "message": "error_rate = 0% (required < 1%): ok",
            },
            {
                "slo": "BootNotification.p95 < 5ms",
                "measured_text": "9ms",
                "passed": False,
                "message": "BootNotification.p95 = 9ms (required < 5ms): broken",
            },
        ],
        "passed": False,
    }
    data.update(changes)
    return data


def chart(name: str, samples: list[dict[str, Any]]) -> report.Chart:
    return next(c for c in charts(samples)[1] if c.key == name)


# -- the charts' numbers ----------------------------------------------------------------


def test_power_is_energy_per_model_hour() -> None:
    # 100 Wh every 2 wall seconds = 180 kW; with the model clock 144 times faster the
    # stations drew 144 times less.
    assert chart("power", history(3)).series[0].values == [None, 180.0, 180.0]
    slowed = chart("power", history(3, time_compression=144.0)).series[0].values
    assert slowed == [None, pytest.approx(1.25), pytest.approx(1.25)]


def test_rates_follow_uneven_samples_and_ignore_counter_drops() -> None:
    samples = [
        {"t": T0, "reconnects": 0, "timeouts": 0},
        {"t": T0 + 2, "reconnects": 4, "timeouts": 1},
        {"t": T0 + 10, "reconnects": 8, "timeouts": 1},  # a thinned history: 8 s apart
        {"t": T0 + 12, "reconnects": 0, "timeouts": 1},  # a restart: not negative
    ]
    reconnects, timeouts = chart("errors", samples).series
    assert reconnects.values == [None, 2.0, 0.5, 0.0]
    assert timeouts.values == [None, 0.5, 0.0, 0.0]


def test_connectors_stack_only_the_statuses_seen_in_ocpp_order() -> None:
    connectors = chart("connectors", history())
    assert connectors.stacked
    assert [s.name for s in connectors.series] == ["Available", "Charging"]
    svg = charts_html(history())
    stacked = re.search(r'<svg[^>]*data-chart="connectors".*?</svg>', svg)
    assert stacked is not None
    assert stacked[0].count('class="area"') == 2  # one filled area per status


def test_generator_lag_chart_only_when_the_totals_carry_it() -> None:
    assert "generator_lag" not in [c.key for c in charts(history())[1]]
    generator = {"recent_lag_p99_ms": 100.0, "lag_threshold_ms": 50.0}
    lag = chart("generator_lag", history(2, **{LAG_KEY: generator}))
    assert lag.title == "Generator lag p99 (ms)"
    assert lag.series[0].values == [pytest.approx(100.0), pytest.approx(100.0)]
    assert lag.series[1].name == "Threshold"
    assert lag.series[1].values == [50.0, 50.0]


def test_each_chart_draws_one_point_per_sample() -> None:
    for n in (1, 5, 9):
        svg = charts_html(history(n))
        line = re.search(r'data-chart="stations".*?<polyline[^>]*points="([^"]*)"', svg)
        assert line is not None
        assert len(line[1].split()) == n
    assert "No samples yet" in charts_html([])


def test_count_axes_have_whole_distinct_ticks() -> None:
    svg = charts_html(history())  # the offline queue peaks at 3 messages
    queue = re.search(r'<svg[^>]*data-chart="offline_queue".*?</svg>', svg)
    assert queue is not None
    labels = re.findall(r'text-anchor="end">([^<]*)<', queue[0])
    assert labels == ["0", "1", "2", "3"]


# -- the page -----------------------------------------------------------------------------


def test_report_names_verdicts_ledger_failures_and_charts() -> None:
    page = render(summary(), history())
    assert "FAILED: 1 of 2 SLOs held" in page
    assert "<code>error_rate &lt; 1%</code>" in page and "held" in page
    assert "<code>BootNotification.p95 &lt; 5ms</code>" in page and "BROKEN" in page
    assert "Ledger consistent" in page
    # Failures by reason, most frequent first.
    assert page.index("handshake timeout") < page.index("refused")
    assert "CALLERROR InternalError" in page
    for key in ("stations", "transactions", "power", "connectors", "errors", "offline_queue"):
        assert f'data-chart="{key}"' in page
    # Self-contained: nothing to load, nothing to run.
    assert "<script" not in page
    assert not re.search(r'(src|href)="', page)


def test_report_without_slos_or_ledger_says_so() -> None:
    page = render(summary(slos=[], passed=True, ledger=None), [])
    assert "No SLOs were set" in page
    assert "No ledger: the run targeted an external CSMS" in page
    assert "No samples yet" in page


def test_ledger_problems_are_listed_and_text_is_escaped() -> None:
    ledger = {"summary": {}, "problems": ["CP0001: 2 of 9 transaction messages lost"]}
    fleet = {"connect_failures": {"<script>alert(1)</script>": 1}}
    page = render(summary(ledger=ledger, fleet=fleet), history())
    assert "Ledger: 1 problem(s)" in page
    assert "CP0001: 2 of 9 transaction messages lost" in page
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)" in page


def test_report_goes_beside_locusts() -> None:
    assert report_path("out/run.html") == Path("out/run-fleet.html")
    assert report_path("report") == Path("report-fleet.html")


# -- through a real run -------------------------------------------------------------------


def test_fleet_run_html_writes_the_fleet_report(tmp_path: Path) -> None:
    locust_html = tmp_path / "run.html"
    proc = subprocess.run(
        [
            sys.executable, "-m", "fleet", "run", "--headless",
            "--stations", "5", "--spawn-rate", "5", "--duration", "8s",
            "--profile", str(PROFILE), "--seed", "3", "--html", str(locust_html),
            "--slo", "error_rate < 1%", "--slo", "ledger_problems == 0",
            "--json-summary", str(tmp_path / "summary.json"),
        ],
        capture_output=True,
        text=True,
        timeout=90,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert locust_html.exists()  # Locust's own report is still written
    page = (tmp_path / "run-fleet.html").read_text()
    assert "PASSED: 2 of 2 SLOs held" in page
    assert "<code>ledger_problems == 0</code>" in page
    assert "Ledger consistent" in page
    # The history came back from the Locust child: several samples over 8 s.
    line = re.search(r'data-chart="stations".*?<polyline[^>]*points="([^"]*)"', page)
    assert line is not None and len(line[1].split()) >= 3
    # The JSON summary keeps its documented layout (the samples are the report's).
    assert '"history"' not in (tmp_path / "summary.json").read_text()


def test_the_generator_block_comes_first_and_says_whether_to_trust_the_latency() -> None:
    calm = {
        "lag_p99_ms": 2.5,
        "lag_max_ms": 7.0,
        "lag_samples": 500,
        "loop_cpu_ratio": 0.043,
        "hub_lag_p99_ms": 1.0,
        "hub_lag_max_ms": 3.0,
        "hub_samples": 500,
        "lag_threshold_ms": 50.0,
        "latency_suspect": False,
    }
    page = render(summary(generator=calm), history())
    block = page[page.index('id="generator"') : page.index('id="slos"')]
    assert 'class="generator"' in page and "suspect" not in block.split(">", 1)[0]
    assert "Generator kept up: event-loop lag p99 2.5 ms, within 50 ms" in block
    for shown in ("7 ms", "4.3%", "1 ms", "3 ms", "false"):
        assert f"<td>{shown}</td>" in block
    suspect = render(summary(generator={**calm, "lag_p99_ms": 250.0, "latency_suspect": True}), [])
    assert 'class="generator suspect"' in suspect
    assert (
        "Latency figures SUSPECT: the generator&#x27;s event-loop lag p99 250 ms passed 50 ms"
        in (suspect)
    )
    assert "no lag probe ran" in render(summary(), [])
