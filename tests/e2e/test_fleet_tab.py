"""The Fleet tab in Locust's web UI, in a real headless Chromium (issue 6).

`fleet run --web` (embedded reference CSMS, a real Locust process) with 20 stations on
a profile whose sessions last seconds and whose stations log in with an
AuthorizationKey (security profile 1). The browser starts the swarm from Locust's
form, opens the Fleet tab and must see connected stations and numbers that move;
the tab's JSON route is checked over plain HTTP. Neither may show the key.
"""

from __future__ import annotations

import json
import os
import socket
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from support import fleet_web, wait_until

from fleet.locust.fleet_rows import fault_name, fleet_rows

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


# -- a real run, a real browser -------------------------------------------------------


@pytest.fixture(scope="module")
def web_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`fleet run --web` on a free port; yields the web UI's base URL."""
    tmp = tmp_path_factory.mktemp("fleet-tab")
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
    with fleet_web([*args, "--seed", "5"], port, tmp / "run.log", timeout=30) as base:
        yield base


def totals(base: str) -> dict[str, Any]:
    return dict(json.loads(http(base + "/fleet/totals")))


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
    # The swarm may already run (the browser test started it); start it otherwise.
    if json.loads(http(web_run + "/stats/requests"))["state"] == "ready":
        http(web_run + "/swarm", {"user_count": str(STATIONS), "spawn_rate": "10"})
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
