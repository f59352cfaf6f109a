"""The Fleet tab in Locust's web UI, in a real headless Chromium (issues 6, 15).

`fleet run --web` (embedded reference CSMS, a real Locust process) with 20 stations on
a profile whose sessions last seconds and whose stations log in with an
AuthorizationKey (security profile 1). The browser starts the swarm from Locust's
form, opens the Fleet tab and must see connected stations and numbers that move, and
charts above the table that gain points as the run goes on and survive a reload; the
tab's JSON routes are checked over plain HTTP. Nothing may show the key.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import socket
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from support import fleet_web, wait_until

from fleet.locust.fleet_rows import History, fault_name, fleet_rows, sample
from fleet.reports.html import LAG_KEY

if TYPE_CHECKING:
    from selenium.webdriver.chrome.webdriver import WebDriver

HERE = Path(__file__).parent
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
STATIONS = 20
SECRET = "FleetTabSecret-7c1e9a"  # the stations' AuthorizationKey: must never be shown


def http(url: str, data: dict[str, str] | None = None) -> bytes:
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    return bytes(urllib.request.urlopen(url, data=body, timeout=5).read())


# -- the rows, without a browser ------------------------------------------------------


def test_rows_are_human_readable() -> None:
    rows = fleet_rows(
        {
            "stations_connected": 1200,
            "connectors": {"Available": 1500, "Charging": 900},
            "transactions_active": 900,
            "energy_wh": 1234567.0,
            "offline_queue_depth": 3,
            "faults_active": {"0x100101": 2, "0x300000": 1, "0x999999": 4, "0x100004": 0},
            "reconnects": 5,
            "callerrors": {"NotImplemented": 2, "InternalError": 0},
        }
    )
    shown = {r["metric"]: r["value"] for r in rows}
    assert shown["Stations connected"] == "1,200"
    assert shown["Energy delivered"] == "1,234.567 kWh"
    assert shown["Offline queue (messages)"] == "3"
    assert shown["Connectors: Charging"] == "900"
    assert shown["Connectors: Faulted"] == "0"  # every status has a row, zero or not
    assert shown["Faults active"] == "7"  # cleared codes (0) are not counted or listed
    assert shown["Fault: HighTemperature (0x100101)"] == "2"
    assert shown["Fault: InternalError: Firmware downgrade (0x300000)"] == "1"
    assert shown["Fault: 0x999999"] == "4"  # not in the guide's table: the bare code
    assert not any("0x100004" in m for m in shown)
    assert shown["Reconnects"] == "5"
    assert "Timeouts (no answer from the CSMS)" not in shown  # absent from the totals
    assert shown["CALLERROR: NotImplemented"] == "2"
    assert "CALLERROR: InternalError" not in shown
    # Locust's table sorts by the hidden "name": it must keep this order.
    assert [r["name"] for r in rows] == sorted(r["name"] for r in rows)
    assert [r["metric"] for r in rows][:4] == [
        "Stations connected",
        "Transactions active",
        "Energy delivered",
        "Offline queue (messages)",
    ]
    assert fault_name("0x100205") == "ConnectorLockFailure: Lock / Unlock cable Failure (0x100205)"


def test_history_is_bounded_and_spans_the_whole_run() -> None:
    history = History(capacity=10)
    for i in range(1000):
        history.add({"t": float(i)})
    times = [s["t"] for s in history.samples()]
    assert len(times) <= 11  # the kept samples, and the newest one
    assert times[0] == 0.0 and times[-1] == 999.0  # the whole run, up to now
    kept = times[:-1]
    assert len({b - a for a, b in itertools.pairwise(kept)}) == 1  # evenly thinned
    history.clear()  # a new run
    assert history.samples() == []
    history.add({"t": 5.0})
    assert history.samples() == [{"t": 5.0}]


def test_samples_keep_what_the_charts_draw() -> None:
    totals = {
        "stations_connected": 3,
        "connectors": {"Charging": 2, "Faulted": 0},
        "energy_wh": 12.5,
        "callerrors": {"InternalError": 1},  # not charted: not sampled
    }
    assert sample(100.0, totals) == {
        "t": 100.0,
        "stations_connected": 3,
        "energy_wh": 12.5,
        "connectors": {"Charging": 2},
    }
    # The generator's lag: the windowed p99 and the threshold, once the monitor has
    # looked (fleet_totals' "generator"), not the whole-run figures.
    generator = {"lag_p99_ms": 5.0, "recent_lag_p99_ms": 120.0, "lag_threshold_ms": 50.0}
    assert sample(1.0, {LAG_KEY: generator}, time_compression=144.0) == {
        "t": 1.0,
        LAG_KEY: {"recent_lag_p99_ms": 120.0, "lag_threshold_ms": 50.0},
        "connectors": {},
        "time_compression": 144.0,
    }
    assert LAG_KEY not in sample(1.0, {LAG_KEY: {"lag_p99_ms": 5.0}})


def test_a_lagging_generator_heads_the_rows() -> None:
    generator = {
        "lag_p99_ms": 250.0,
        "hub_lag_p99_ms": 1.0,
        "recent_lag_p99_ms": 120.0,
        "lag_threshold_ms": 50.0,
        "lag_warning": True,
    }
    rows = fleet_rows({"stations_connected": 3, LAG_KEY: generator})
    assert (rows[0]["metric"], rows[0]["value"]) == (
        "WARNING: generator lag",
        "p99 120 ms > 50 ms: this machine, not the CSMS, limits the latency figures "
        "(add --processes or workers)",
    )
    shown = {r["metric"]: r["value"] for r in rows}
    assert shown["Generator lag p99, last 10 s"] == "120 ms"
    assert shown["Generator lag p99, whole run"] == "250 ms"
    assert shown["Gevent hub lag p99, whole run"] == "1 ms"
    calm = fleet_rows({LAG_KEY: {**generator, "recent_lag_p99_ms": 2.5, "lag_warning": False}})
    assert calm[0]["metric"] == "Stations connected"
    assert not any(r["metric"].startswith("WARNING") for r in calm)


# -- a real run, a real browser -------------------------------------------------------


@contextlib.contextmanager
def serve(tmp: Path, env: dict[str, str] | None = None) -> Iterator[str]:
    """`fleet run --web` on a free port (``env``: extra environment); yields the web
    UI's base URL."""
    profile = tmp / "fast-sessions-key.yaml"
    profile.write_text(
        (HERE / "fast-sessions.yaml")
        .read_text()
        .replace("name: fast-sessions", "name: fast-sessions-key")
        .replace(
            "station:\n",
            f"station:\n  security: {{profile: 1, authorization_key: {SECRET}}}\n",
            1,
        )
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args = ["--stations", str(STATIONS), "--spawn-rate", "10", "--profile", str(profile)]
    with fleet_web([*args, "--seed", "5"], port, tmp / "run.log", timeout=30, env=env) as base:
        yield base


@pytest.fixture(scope="module")
def web_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serve(tmp_path_factory.mktemp("fleet-tab")) as base:
        yield base


def totals(base: str) -> dict[str, Any]:
    return dict(json.loads(http(base + "/fleet/totals")))


def start_swarm(base: str) -> None:
    """Start the swarm unless it runs (the browser test starts it from Locust's form)."""
    if json.loads(http(base + "/stats/requests"))["state"] in ("ready", "stopped"):
        http(base + "/swarm", {"user_count": str(STATIONS), "spawn_rate": "10"})


@pytest.fixture
def browser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[WebDriver]:
    if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
        pytest.skip(f"needs Debian's chromium and chromium-driver ({CHROMIUM}, {CHROMEDRIVER})")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    # A driver path given explicitly skips Selenium Manager; should anything still
    # reach it, it must not download.
    monkeypatch.setenv("SE_OFFLINE", "true")
    monkeypatch.setenv("SE_AVOID_STATS", "true")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1280,1100",
        f"--user-data-dir={tmp_path / 'chromium'}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def test_fleet_tab_shows_live_numbers(web_run: str, browser: WebDriver) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    driver = browser
    driver.get(web_run + "/")
    wait = WebDriverWait(driver, 20)
    # Start the swarm from Locust's own form (prefilled with --stations / --spawn-rate).
    wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, "form button[type=submit]"))).click()

    tab = wait.until(
        ec.element_to_be_clickable(
            (By.XPATH, "//*[@role='tab'][translate(normalize-space(.), 'fleet', 'FLEET')='FLEET']")
        )
    )
    tab.click()
    wait.until(ec.url_contains("tab=fleet"))

    def table() -> dict[str, str]:
        rows: dict[str, str] = {}
        for tr in driver.find_elements(By.CSS_SELECTOR, "tbody tr"):
            cells = [td.text.strip() for td in tr.find_elements(By.TAG_NAME, "td")]
            if len(cells) == 2:
                rows[cells[0]] = cells[1]
        return rows

    def number(text: str) -> float:
        return float(text.split()[0].replace(",", ""))

    first = WebDriverWait(driver, 30, ignored_exceptions=(Exception,)).until(
        lambda _: (t := table()) and number(t.get("Stations connected", "0")) > 0 and t
    )
    assert {"Transactions active", "Energy delivered", "Connectors: Available"} <= first.keys()
    assert first["Energy delivered"].endswith(" kWh")

    # Live: the page updates itself (Locust's 2 s stats poll), no reload.
    later = WebDriverWait(driver, 30, ignored_exceptions=(Exception,)).until(
        lambda _: (
            (t := table())
            and t.get("Energy delivered") != first["Energy delivered"]
            and number(t["Stations connected"]) == STATIONS
            and number(t["Energy delivered"]) > 0
            and t
        )
    )
    assert number(later["Energy delivered"]) > number(first["Energy delivered"])
    driver.save_screenshot("/tmp/fleet-tab.png")
    assert SECRET not in driver.page_source


def test_fleet_route_over_http(web_run: str) -> None:
    start_swarm(web_run)
    body = wait_until(
        lambda: (
            (b := totals(web_run))["totals"]["stations_connected"] == STATIONS
            and b["totals"]["energy_wh"] > 0
            and b
        ),
        30,
        "all stations connected and energy flowing",
    )
    raw = body["totals"]
    assert set(raw) >= {
        "stations_connected",
        "connectors",
        "transactions_active",
        "energy_wh",
        "offline_queue_depth",
        "faults_active",
    }
    # Every station's outlet (connector 1), once: connector 0 (the station) is not an outlet.
    assert sum(raw["connectors"].values()) == STATIONS
    shown = {r["metric"]: r["value"] for r in body["rows"]}
    assert shown["Stations connected"] == str(STATIONS)
    assert shown["Energy delivered"].endswith(" kWh")
    # The tab's live feed: the same rows ride on the stats Locust's UI polls.
    stats = json.loads(http(web_run + "/stats/requests"))
    fleet = [e for e in stats["extended_stats"] if e["key"] == "fleet"]
    assert len(fleet) == 1
    assert [r["metric"] for r in fleet[0]["data"]] == [r["metric"] for r in body["rows"]]
    # The tab is registered in the page Locust serves, and no page carries the key.
    page = http(web_run + "/").decode()
    assert '"extended_tabs": [{"key": "fleet", "title": "Fleet"}]' in page
    for text in (page, json.dumps(body), json.dumps(stats)):
        assert SECRET not in text


def test_fleet_tab_charts_grow_and_survive_a_reload(web_run: str, browser: WebDriver) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    start_swarm(web_run)
    driver = browser
    driver.get(web_run + "/?tab=fleet")

    def points(chart: str) -> int:
        """Points of the chart's first line now (0 while it is not drawn)."""
        lines = driver.find_elements(By.CSS_SELECTOR, f'svg[data-chart="{chart}"] polyline')
        return len((lines[0].get_attribute("points") or "").split()) if lines else 0

    wait = WebDriverWait(driver, 30, ignored_exceptions=(Exception,))
    wait.until(lambda _: points("stations") >= 2)
    titles = [
        svg.get_attribute("aria-label")
        for svg in driver.find_elements(By.CSS_SELECTOR, "#fleet-charts svg[data-chart]")
    ]
    assert titles[:6] == [
        "Stations connected",
        "Transactions active",
        "Charging power (kW)",
        "Connectors by status",
        "Reconnects and timeouts per second",
        "Offline queue (messages)",
    ]
    # The generator's lag joins once the lag monitor has judged a window (4 s in).
    wait.until(lambda _: points("generator_lag") >= 1)
    lag_chart = driver.find_element(By.CSS_SELECTOR, 'svg[data-chart="generator_lag"]')
    assert lag_chart.get_attribute("aria-label") == "Generator lag p99 (ms)"
    assert {
        line.get_attribute("data-series")
        for line in lag_chart.find_elements(By.CSS_SELECTOR, "polyline")
    } == {"Loop lag p99", "Threshold"}
    # Connectors as stacked areas, one per status seen (20 outlets, some charging).
    assert driver.find_elements(By.CSS_SELECTOR, 'svg[data-chart="connectors"] polygon.area')
    # The table is still there, below the charts, with its exact figures.
    charts_box = driver.find_element(By.ID, "fleet-charts")
    table = driver.find_element(By.CSS_SELECTOR, "#root table")
    assert charts_box.location["y"] < table.location["y"]
    assert "Stations connected" in table.text

    # The charts grow while the run goes on (a sample every two seconds), without a reload.
    before = points("stations")
    wait.until(lambda _: points("stations") >= before + 2)
    grown = points("stations")

    # The history lives on the server: a reload draws it again, whole.
    driver.refresh()
    wait.until(lambda _: points("stations") >= grown)
    # Pointing at the right end of a chart reads the values there, as in Locust's charts.
    from selenium.webdriver.common.action_chains import ActionChains

    chart = driver.find_element(By.CSS_SELECTOR, 'svg[data-chart="stations"]')
    ActionChains(driver).move_to_element_with_offset(
        chart, chart.size["width"] // 2 - 50, 0
    ).perform()
    tooltip = driver.find_element(By.CSS_SELECTOR, "#fleet-charts .fleet-tooltip")
    wait.until(lambda _: f"Connected: {STATIONS}" in tooltip.text)
    # No request leaves the Locust server (no CDN): every script is its own.
    sources = [s.get_attribute("src") for s in driver.find_elements(By.TAG_NAME, "script")]
    assert all(src.startswith(web_run) for src in sources if src)
    driver.save_screenshot("/tmp/fleet-tab-charts.png")
    assert SECRET not in driver.page_source


def test_history_restarts_with_a_new_run(web_run: str) -> None:
    start_swarm(web_run)
    wait_until(
        lambda: len(json.loads(http(web_run + "/fleet/history"))["samples"]) >= 2,
        20,
        "two samples of the running swarm",
    )
    http(web_run + "/stop", {})
    wait_until(
        lambda: json.loads(http(web_run + "/stats/requests"))["state"] == "stopped",
        30,
        "the swarm stopped",
    )
    restarted = time.time()
    start_swarm(web_run)
    samples = wait_until(
        lambda: (s := json.loads(http(web_run + "/fleet/history"))["samples"]) and s,
        20,
        "a sample of the new run",
    )
    assert samples[0]["t"] >= restarted - 0.5  # nothing left of the first run
    fragment = http(web_run + "/fleet/charts").decode()
    assert 'data-chart="stations"' in fragment and SECRET not in fragment


def test_a_lagging_generator_is_flagged_in_the_tab(
    tmp_path_factory: pytest.TempPathFactory, browser: WebDriver
) -> None:
    """A run whose stations' loop stalls 150 ms a second (the documented diagnostic):
    a banner above the Fleet tab's charts and the table's first row warn, and the lag
    chart shows the p99 above its threshold line."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    stall = {"LOCUST_FLEET_DIAG_LOOP_STALL": "150"}
    with serve(tmp_path_factory.mktemp("fleet-tab-lag"), stall) as base:
        start_swarm(base)
        wait_until(
            lambda: json.loads(http(base + "/stats/requests"))["state"] == "running",
            30,
            "the swarm running",
        )
        driver = browser
        driver.get(base + "/?tab=fleet")
        wait = WebDriverWait(driver, 40, ignored_exceptions=(Exception,))

        def first_row() -> list[str]:
            tr = driver.find_element(By.CSS_SELECTOR, "#root tbody tr")
            return [td.text.strip() for td in tr.find_elements(By.TAG_NAME, "td")]

        advice = "> 50 ms: this machine, not the CSMS, limits the latency figures"
        try:
            banner = wait.until(
                lambda _: driver.find_element(By.CSS_SELECTOR, "#fleet-charts .fleet-lag-warning")
            )
            assert advice in banner.text
            wait.until(lambda _: first_row()[0] == "WARNING: generator lag")
        finally:
            driver.save_screenshot("/tmp/fleet-tab-lag.png")
        assert advice in first_row()[1]
        chart = driver.find_element(By.CSS_SELECTOR, 'svg[data-chart="generator_lag"]')
        tip = json.loads(chart.get_attribute("data-tip") or "{}")
        values = {s["name"]: s["values"] for s in tip["series"]}
        assert max(v for v in values["Loop lag p99"] if v is not None) > 50
        assert {v for v in values["Threshold"] if v is not None} == {50.0}
