"""No secret is observable: run stations with known credentials, then search everything.

Secrets: the AuthorizationKey (and the Basic auth header made from it, base64), a key
rotated by the CSMS, a wrong key that is refused, a password in a URL, and a client
certificate's private key. Observables: every log record at DEBUG (ours, websockets'
handshake dumps on both sides), the Prometheus exposition, GetConfiguration answers,
the reference CSMS's ledger, profile objects; for a real `fleet run`, its console
output, CSV statistics, HTML report, JSON summary and JUnit XML; for Locust with the
fleet's locustfile and web UI (mutual TLS, a private key per station), every GET route
of the web UI (enumerated from Flask's url_map), /metrics over HTTP, the reports and
GetConfiguration. And the metrics and web UI servers listen on 127.0.0.1 by default.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import signal
import ssl
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import trustme
from ocpp.v16 import call
from prometheus_client import CollectorRegistry, generate_latest
from support import until, wait_until

from fleet.csms.server import CsmsThread, ReferenceCsms, tls_context
from fleet.engine import link as link_module
from fleet.engine.fleet import Fleet
from fleet.engine.security import TlsSettings
from fleet.metrics.exporter import FleetCollector
from fleet.model.config import ConfigStore
from fleet.model.station import Station
from fleet.scenarios.profile import load

KEY = "s3cret-Key-4-CP1-xyzzy"
ROTATED = "r0tated-Key-4-CP1-plugh"
WRONG = "wr0ng-Key-4-CP2-plover"
URL_PASSWORD = "url-pa55word-frotz"
FAST = {"MinimumStatusDuration": 0, "WebSocketPingInterval": 0, "HeartbeatInterval": 1}


def basic(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


SECRETS = [
    KEY,
    ROTATED,
    WRONG,
    URL_PASSWORD,
    basic("CP1", KEY),
    basic("CP1", ROTATED),
    basic("CP2", WRONG),
    basic("CP4", URL_PASSWORD),
]


def assert_clean(where: str, text: str, secrets: list[str] = SECRETS) -> None:
    for secret in secrets:
        assert secret not in text, f"{where} shows a secret"


def test_nothing_observable_shows_a_secret(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(link_module, "BACKOFF_BASE", 0.05)
    ca = trustme.CA()
    server_pem = tmp_path / "server.pem"
    ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(str(server_pem))
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    client = ca.issue_cert("CP3", common_name="CP3")
    client_pem = tmp_path / "CP3.pem"
    client.private_key_and_cert_chain_pem.write_to_path(str(client_pem))
    private_key = client.private_key_pem.bytes().decode().splitlines()[2]  # a line of the key
    secrets = [*SECRETS, private_key]

    passwords = {"CP1": {KEY, ROTATED}, "CP2": {KEY}, "CP4": {URL_PASSWORD}}
    answers: list[Any] = []

    async def scenario() -> None:
        # Mixed fleet: Basic auth (profile 2), or a client certificate (profile 3).
        server_context = tls_context(str(server_pem))
        server_context.verify_mode = ssl.CERT_OPTIONAL
        server_context.load_verify_locations(str(ca_file))
        csms = ReferenceCsms(
            ssl_context=server_context,
            basic_auth=lambda sid, pw: pw in passwords.get(sid, ()),
            heartbeat_interval=1,
        )
        plain = ReferenceCsms(basic_auth=lambda sid, pw: pw in passwords.get(sid, ()))
        await csms.start()
        await plain.start()
        tls = TlsSettings(ca_file=str(ca_file), client_cert=str(client_pem))
        fleet = Fleet(asyncio.get_running_loop(), seed=1, tls=tls)

        def add(identity: str, url: str, **config: Any) -> Station:
            st = Station(identity, fleet.now(), config=ConfigStore({**FAST, **config}))
            fleet.add(st, url)
            return st

        cp1 = add("CP1", csms.url, SecurityProfile=2, AuthorizationKey=KEY)
        add("CP2", csms.url, SecurityProfile=2, AuthorizationKey=WRONG)  # refused: 401
        cp3 = add("CP3", csms.url, SecurityProfile=3)  # presents its certificate
        # A password in the URL (profile 0): sent as Basic auth, shown nowhere.
        userinfo_url = plain.url.replace("ws://", f"ws://CP4:{URL_PASSWORD}@")
        cp4 = add("CP4", userinfo_url)
        add("CP5", f"ws://CP5:{URL_PASSWORD}@127.0.0.1:9/ocpp")  # refused: logged
        await until(lambda: all(s.boot_status == "Accepted" for s in (cp1, cp3, cp4)), 8, "boots")
        await until(lambda: fleet.stats.connect_failures["HTTP 401"] >= 2, 8, "401s")
        await until(lambda: csms.ledger.station("CP1").heartbeats >= 1, 8, "heartbeats")

        answers.append(await csms.call("CP1", call.GetConfiguration()))
        answers.append(await csms.call("CP1", call.GetConfiguration(key=["AuthorizationKey"])))
        answers.append(await plain.call("CP4", call.GetConfiguration(key=["SupervisionUrl"])))
        connections = csms.ledger.station("CP1").connections
        changed = await csms.call(
            "CP1", call.ChangeConfiguration(key="AuthorizationKey", value=ROTATED)
        )
        assert changed.status == "Accepted"
        await until(lambda: csms.ledger.station("CP1").connections > connections, 8, "re-login")
        await until(lambda: "CP1" in csms.connected_stations(), 8, "CP1 back")
        answers.append(await csms.call("CP1", call.GetConfiguration()))
        assert cp4.config.get("SupervisionUrl") == plain.url  # no password in the config

        registry = CollectorRegistry()
        registry.register(FleetCollector(fleet.stats))
        exposition = generate_latest(registry).decode()
        assert "fleet_connect_failures_total" in exposition
        assert_clean("Prometheus exposition", exposition, secrets)
        for name, server in (("TLS", csms), ("plain", plain)):
            ledger = server.ledger
            assert_clean(f"{name} ledger summary", json.dumps(ledger.summary()), secrets)
            assert_clean(f"{name} ledger problems", json.dumps(ledger.check()), secrets)
            assert_clean(f"{name} ledger records", repr(ledger.snapshot()), secrets)
        fleet.stop_all()
        await csms.stop()
        await plain.stop()

    caplog.set_level(logging.DEBUG, logger="ocpp")  # the CSMS's frame log too
    with caplog.at_level(logging.DEBUG):
        asyncio.run(asyncio.wait_for(scenario(), 60))

    # GetConfiguration: the write-only key has no value; the URL has no password.
    assert_clean("GetConfiguration", repr(answers), secrets)
    entries = {e["key"]: e for e in answers[0].configuration_key}
    assert "value" not in entries["AuthorizationKey"]
    assert answers[1].configuration_key == [{"key": "AuthorizationKey", "readonly": False}]

    # The logs did run at DEBUG (websockets dumped the handshakes) and are clean.
    text = caplog.text + "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    assert "> Authorization: [redacted]" in text  # the station's request
    assert "< Authorization: [redacted]" in text  # the CSMS's view of it
    assert "cannot connect to ws://127.0.0.1:9/ocpp/CP5" in text  # no password in the URL
    assert '"key":"AuthorizationKey","value":"[redacted]"' in text  # the CSMS's frame
    assert_clean("log output", text, secrets)


def test_profiles_read_the_key_from_the_environment_and_hide_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLEET_TEST_AUTH_KEY", KEY)
    path = tmp_path / "secure.yaml"
    path.write_text(
        "name: secure\nstation:\n  security:\n    profile: 1\n"
        "    authorization_key_env: FLEET_TEST_AUTH_KEY\n"
    )
    profile = load(str(path))
    assert profile.security_profile == 1
    assert profile.config["AuthorizationKey"] == KEY
    assert_clean("profile repr", repr(profile))
    store = ConfigStore(profile.config)
    assert store.get("AuthorizationKey") == KEY
    assert_clean("config snapshot repr", repr(store.snapshot()))


def test_a_fleet_run_over_wss_shows_the_key_nowhere(tmp_path: Path) -> None:
    """`fleet run` -> Locust -> profile 2 stations -> a TLS, Basic-auth reference CSMS."""
    ca = trustme.CA()
    server_pem = tmp_path / "server.pem"
    ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(str(server_pem))
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    profile = tmp_path / "secure.yaml"
    profile.write_text(
        "name: secure\nbehaviour: idle\nstation:\n"
        "  config: {MinimumStatusDuration: 0, HeartbeatInterval: 1}\n"
        "  security: {profile: 2, authorization_key_env: FLEET_TEST_AUTH_KEY}\n"
    )
    csms = CsmsThread(
        ssl_context=tls_context(str(server_pem)),
        basic_auth=lambda sid, pw: pw == KEY,
        heartbeat_interval=1,
    )
    url = csms.start()
    try:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "fleet",
                "run",
                "--headless",
                "--csms",
                url,
                "--ca-file",
                str(ca_file),
                "--profile",
                str(profile),
                "--stations",
                "3",
                "--spawn-rate",
                "10",
                "--duration",
                "4s",
                "--csv",
                str(tmp_path / "stats"),
                "--html",
                str(tmp_path / "report.html"),
                "--json-summary",
                str(tmp_path / "summary.json"),
                "--junit",
                str(tmp_path / "junit.xml"),
            ],
            capture_output=True,
            text=True,
            timeout=90,
            env={**os.environ, "FLEET_TEST_AUTH_KEY": KEY},
        )
        summary = csms.ledger.summary()
        failures = csms.csms.auth_failures
    finally:
        csms.stop()
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert summary["boots"] == 3 and summary["heartbeats"] >= 3, summary
    assert failures == 0
    assert "WARNING" not in proc.stderr  # verification was on
    assert_clean("fleet run output", proc.stdout + proc.stderr)
    for report in tmp_path.glob("stats*.csv"):
        assert_clean(report.name, report.read_text())
    assert_clean("HTML report", (tmp_path / "report.html").read_text())
    for name in ("summary.json", "junit.xml"):
        assert (tmp_path / name).exists(), name
        assert_clean(name, (tmp_path / name).read_text())


# -- every sink of a real run: web UI routes, /metrics, reports, GetConfiguration --------

ROOT = Path(__file__).resolve().parents[1]
LOCUSTFILE = ROOT / "fleet" / "locust" / "locustfile.py"
ROUTE_LISTER = ROOT / "tests" / "reliability" / "route_lister.py"
RUN_TIME = 20


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str, timeout: float = 10) -> tuple[int, str]:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace")


def _pki(tmp_path: Path, stations: list[str]) -> tuple[str, str, list[str]]:
    """CA file, server certificate, and a certificate per station ({id}.pem); returns
    (ca file, server pem, a line of each station's private key)."""
    ca = trustme.CA()
    server_pem = tmp_path / "server.pem"
    ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(str(server_pem))
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    key_lines = []
    for sid in stations:
        cert = ca.issue_cert(sid, common_name=sid)
        (tmp_path / f"{sid}.key").write_bytes(cert.private_key_pem.bytes())
        for blob in cert.cert_chain_pems:
            with open(tmp_path / f"{sid}.pem", "ab") as fh:
                fh.write(blob.bytes())
        key_lines += cert.private_key_pem.bytes().decode().splitlines()[1:-1]
    return str(ca_file), str(server_pem), key_lines


def test_the_web_ui_metrics_reports_and_getconfiguration_show_no_secret(tmp_path: Path) -> None:
    """Locust with the fleet's locustfile and its web UI, mutual TLS (profile 3) with a
    private key per station, an AuthorizationKey in the configuration: every GET route
    of the web UI (enumerated from Flask's url_map), /metrics, the CSV and HTML reports,
    the console and GetConfiguration are searched for the key and the private keys."""
    stations = ["CP00001", "CP00002"]
    ca_file, server_pem, key_lines = _pki(tmp_path, stations)
    secrets = [*SECRETS, *key_lines]
    profile = tmp_path / "mtls.yaml"
    profile.write_text(
        "name: mtls\nbehaviour: idle\nstation:\n"
        "  config: {MinimumStatusDuration: 0, HeartbeatInterval: 1}\n"
        "  security: {profile: 3, authorization_key_env: FLEET_TEST_AUTH_KEY}\n"
    )
    csms = CsmsThread(ssl_context=tls_context(server_pem, client_ca=ca_file), heartbeat_interval=1)
    url = csms.start()
    web, metrics_port = _free_port(), _free_port()
    cmd = [
        sys.executable, "-m", "locust",
        "-f", f"{LOCUSTFILE},{ROUTE_LISTER}",
        "--host", url,
        "--web-host", "127.0.0.1", "--web-port", str(web),
        # The run ends by itself (reports written on the normal path, no signal racing
        # the web server's greenlets): RUN_TIME is ample for the fetches below.
        "--autostart", "-u", "2", "-r", "10", "-t", f"{RUN_TIME}s", "--autoquit", "0",
        "--fleet-profile", str(profile),
        "--fleet-ca-file", ca_file,
        "--fleet-client-cert", str(tmp_path / "{id}.pem"),
        "--fleet-client-key", str(tmp_path / "{id}.key"),
        "--fleet-metrics-port", str(metrics_port),
        "--csv", str(tmp_path / "stats"),
        "--html", str(tmp_path / "report.html"),
    ]  # fmt: skip
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "FLEET_TEST_AUTH_KEY": KEY},
    )
    pages: dict[str, str] = {}
    try:
        wait_until(lambda: len(csms.connected_stations()) == 2, 40, "two stations over mutual TLS")
        wait_until(lambda: csms.ledger.station("CP00001").heartbeats >= 2, 10, "heartbeats")
        answers = [csms.call(sid, call.GetConfiguration()) for sid in stations] + [
            csms.call("CP00001", call.GetConfiguration(key=["AuthorizationKey"]))
        ]
        status, listing = _get(f"http://127.0.0.1:{web}/__routes")
        assert status == 200, listing
        routes = json.loads(listing)
        assert "/" in routes and "/stats/requests" in routes
        assert any(r.startswith("/fleet") for r in routes), routes  # the Fleet tab's route
        for route in routes:
            status, body = _get(f"http://127.0.0.1:{web}{route}")
            pages[route] = body
        status, exposition = _get(f"http://127.0.0.1:{metrics_port}/metrics")
        assert status == 200 and "fleet_stations_connected" in exposition
        pages["/metrics"] = exposition
    finally:
        try:
            output, _ = proc.communicate(timeout=RUN_TIME + 30)
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate()
        csms.stop()
    assert len(pages) >= 5, sorted(pages)
    for route, body in pages.items():
        assert_clean(f"web UI {route}", body, secrets)
    assert_clean("GetConfiguration", repr(answers), secrets)
    assert answers[2].configuration_key == [{"key": "AuthorizationKey", "readonly": False}]
    assert_clean("Locust console", output, secrets)
    reports = [*tmp_path.glob("stats*.csv"), tmp_path / "report.html"]
    assert all(r.exists() for r in reports), output[-2000:]
    for report in reports:
        assert_clean(report.name, report.read_text(), secrets)


def _listeners(port: int) -> list[str]:
    """Local addresses of the sockets listening on ``port`` (from /proc/net/tcp{,6})."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.rsplit(":", 1)
            if state == "0A" and int(hex_port, 16) == port:
                found.append(address)
    return found


def _outside_address() -> str | None:
    """This machine's address on its default route (no packet is sent), if any."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))
        except OSError:
            return None
        address = str(s.getsockname()[0])
    return None if address.startswith("127.") else address


def test_metrics_and_web_ui_listen_on_loopback_only_by_default(tmp_path: Path) -> None:
    """`fleet run` (web UI) with --metrics-port and no host options: both listen on
    127.0.0.1 only; from the machine's own outside address nothing answers."""
    import socket

    csms = CsmsThread(heartbeat_interval=60)
    url = csms.start()
    web, metrics_port = _free_port(), _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fleet",
            "run",
            "--csms",
            url,
            "--profile",
            "idle",
            "--stations",
            "1",
            "--web-port",
            str(web),
            "--metrics-port",
            str(metrics_port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_until(lambda: _listeners(web) and _listeners(metrics_port), 40, "both servers up")
        assert _listeners(web) == ["0100007F"], _listeners(web)  # 127.0.0.1, IPv4 only
        assert _listeners(metrics_port) == ["0100007F"], _listeners(metrics_port)
        outside = _outside_address()
        if outside is not None:
            for port in (web, metrics_port):
                with pytest.raises(OSError), socket.create_connection((outside, port), 2):
                    pass
        assert _get(f"http://127.0.0.1:{web}/")[0] == 200
        assert _get(f"http://127.0.0.1:{metrics_port}/metrics")[0] == 200
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
        csms.stop()
