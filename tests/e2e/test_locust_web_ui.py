"""`locust -f locustfiles/chargepro.py` in web UI mode: start a swarm over HTTP, see OCPP stats."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

from fleet.csms.server import CsmsThread

ROOT = Path(__file__).resolve().parents[2]


def http(url: str, data: dict[str, str] | None = None) -> bytes:
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    return urllib.request.urlopen(url, data=body, timeout=5).read()


def test_web_ui_swarm_reports_ocpp_requests(free_port: int) -> None:
    port = free_port
    with CsmsThread(accept_all_tags=True) as csms:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "locust",
                "-f",
                str(ROOT / "locustfiles" / "chargepro.py"),
                "--host",
                csms.url,
                "--web-host",
                "127.0.0.1",
                "--web-port",
                str(port),
                "--fleet-profile",
                "idle",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 20
            while True:
                try:
                    http(base + "/")
                    break
                except OSError:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise AssertionError("web UI did not come up") from None
                    time.sleep(0.2)
            http(base + "/swarm", {"user_count": "5", "spawn_rate": "5", "host": csms.url})
            names: set[str] = set()
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                stats = json.loads(http(base + "/stats/requests"))
                names = {s["name"] for s in stats["stats"] if s.get("method") == "OCPP"}
                if {"BootNotification", "StatusNotification"} <= names and len(
                    csms.connected_stations()
                ) == 5:
                    break
                time.sleep(0.3)
            assert {"BootNotification", "StatusNotification"} <= names, names
            assert stats["fail_ratio"] == 0
            http(base + "/stop", {})
            deadline = time.monotonic() + 10
            while csms.connected_stations() and time.monotonic() < deadline:
                time.sleep(0.1)
            assert csms.connected_stations() == []  # stopping users takes stations offline
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
