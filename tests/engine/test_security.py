"""Security profiles 0-3 over real loopback websockets, against the reference CSMS.

Certificates come from trustme (a throwaway CA made in the test). Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import trustme
import uvloop
from ocpp.v16 import call
from support import until

from fleet.csms.server import ReferenceCsms, tls_context
from fleet.engine import link as link_module
from fleet.engine.fleet import Fleet
from fleet.engine.security import (
    RedactingLogger,
    Secret,
    SecurityConfigError,
    TlsSettings,
    redact_url,
    split_userinfo,
)
from fleet.model.config import ConfigStore
from fleet.model.station import Station

FAST = {"MinimumStatusDuration": 0, "WebSocketPingInterval": 0}
KEY = "correct-horse-battery-staple-01"  # >= 16 bytes
WRONG = "wrong-horse-battery-staple-0002"


def run(coro: Callable[[], Awaitable[None]], loop: str = "asyncio") -> None:
    async def bounded() -> None:
        await asyncio.wait_for(coro(), 30)

    if loop == "uvloop":
        uvloop.run(bounded())
    else:
        asyncio.run(bounded())


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retries after 25-50 ms instead of 0.5-1 s, so backoff is exercised quickly."""
    monkeypatch.setattr(link_module, "BACKOFF_BASE", 0.05)


class Pki:
    """A test CA, a server certificate for 127.0.0.1, client certificates, as files."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.ca = trustme.CA()
        self.ca_file = str(folder / "ca.pem")
        self.ca.cert_pem.write_to_path(self.ca_file)
        server = self.ca.issue_cert("127.0.0.1", "localhost")
        self.server_pem = str(folder / "server.pem")
        server.private_key_and_cert_chain_pem.write_to_path(self.server_pem)
        other = trustme.CA()
        self.other_ca_file = str(folder / "other-ca.pem")
        other.cert_pem.write_to_path(self.other_ca_file)

    def client_cert(self, identity: str) -> str:
        path = self.folder / f"{identity}.pem"
        if not path.exists():
            self.ca.issue_cert(
                identity, common_name=identity
            ).private_key_and_cert_chain_pem.write_to_path(str(path))
        return str(path)

    def server_context(self, mutual: bool = False) -> ssl.SSLContext:
        return tls_context(self.server_pem, client_ca=self.ca_file if mutual else None)


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki(tmp_path)


def station(fleet: Fleet, identity: str = "CP1", **config: Any) -> Station:
    return Station(identity, fleet.now(), config=ConfigStore({**FAST, **config}))


def spy_security_events(st: Station) -> list[str]:
    """Record the events the engine reports (and still let the model queue them)."""
    seen: list[str] = []
    original = st.security_event

    def record(kind: str, now: float, tech_info: str | None = None) -> None:
        seen.append(kind)
        original(kind, now, tech_info)

    st.security_event = record  # type: ignore[method-assign]
    return seen


# -- profile 0 and 1: ws:// -------------------------------------------------------------


def test_profile_0_sends_no_credentials() -> None:
    async def scenario() -> None:
        csms = ReferenceCsms()
        await csms.start()
        fleet = Fleet(asyncio.get_running_loop(), seed=1)
        st = fleet.add(station(fleet), csms.url).station
        await until(lambda: st.boot_status == "Accepted", what="boot")
        request = csms._stations["CP1"]._connection.request
        assert "Authorization" not in request.headers
        fleet.stop_all()
        await csms.stop()

    run(scenario)


def test_profile_1_basic_auth_user_is_station_id_password_is_key() -> None:
    async def scenario() -> None:
        seen: list[tuple[str, str]] = []

        def check(station_id: str, password: str) -> bool:
            seen.append((station_id, password))
            return password == KEY

        csms = ReferenceCsms(basic_auth=check)
        await csms.start()
        fleet = Fleet(asyncio.get_running_loop(), seed=2)
        st = fleet.add(station(fleet, SecurityProfile=1, AuthorizationKey=KEY), csms.url).station
        await until(lambda: st.boot_status == "Accepted", what="boot")
        assert seen == [("CP1", KEY)]
        assert csms.auth_failures == 0
        fleet.stop_all()
        await csms.stop()

    run(scenario)


def test_profile_1_wrong_key_is_refused_counted_retried_and_a_right_key_connects() -> None:
    async def scenario() -> None:
        accepted = {KEY}
        used: list[str] = []

        def check(station_id: str, password: str) -> bool:
            used.append(password)
            return station_id == "CP1" and password in accepted

        csms = ReferenceCsms(basic_auth=check)
        await csms.start()
        fleet = Fleet(asyncio.get_running_loop(), seed=3)
        st = station(fleet, SecurityProfile=1, AuthorizationKey=WRONG)
        events = spy_security_events(st)
        fleet.add(st, csms.url)

        # 401, counted, retried with backoff, never connected, never seen by the CSMS.
        await until(lambda: fleet.stats.connect_failures["HTTP 401"] >= 3, what="retries")
        assert fleet.stats.stations_connected == 0
        assert csms.auth_failures >= 3
        assert "CP1" not in csms.ledger.station_ids()
        # One event for the whole streak of failures, not one per attempt.
        assert events == ["FailedToAuthenticateAtCentralSystem"]

        # The installer fixes the key: the next attempt gets in.
        st.config.set_internal("AuthorizationKey", KEY)
        await until(lambda: st.boot_status == "Accepted", what="boot with the right key")
        assert fleet.stats.stations_connected == 1
        # The failed logins are reported once the station is in (OCPP 1.6 security ext.).
        await until(
            lambda: [
                e["type"]
                for e in csms.ledger.station("CP1").security_events
                if e["type"] == "FailedToAuthenticateAtCentralSystem"
            ],
            what="SecurityEventNotification",
        )

        # The CSMS rotates the key over OCPP; the station logs in with it from then on.
        new_key = "rotated-key-0123456789abcdef"
        used.clear()
        accepted.add(new_key)
        failures = csms.auth_failures
        changed = await csms.call(
            "CP1", call.ChangeConfiguration(key="AuthorizationKey", value=new_key)
        )
        assert changed.status == "Accepted"
        await asyncio.sleep(0.5)
        if not used and "CP1" in csms._stations:
            # A model that waits for the next connection: drop the link to get there.
            await csms._stations["CP1"]._connection.close()
        await until(
            lambda: used and fleet.stats.stations_connected == 1, what="reconnect with the new key"
        )
        assert used == [new_key]
        assert csms.auth_failures == failures
        fleet.stop_all()
        await csms.stop()

    run(scenario)


def test_profile_1_without_a_key_is_a_configuration_error() -> None:
    async def scenario() -> None:
        csms = ReferenceCsms(basic_auth={"CP1": KEY})
        await csms.start()
        fleet = Fleet(asyncio.get_running_loop(), seed=4)
        fleet.add(station(fleet, SecurityProfile=1), csms.url)
        await until(lambda: fleet.stats.connect_failures["config"] >= 1, what="config error")
        assert csms.auth_failures == 0  # it did not even try
        fleet.stop_all()
        await csms.stop()

    run(scenario)


# -- profile 2: TLS + Basic auth --------------------------------------------------------


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_profile_2_verifies_the_csms_with_the_configured_ca(pki: Pki, loop: str) -> None:
    async def scenario() -> None:
        csms = ReferenceCsms(ssl_context=pki.server_context(), basic_auth={"CP1": KEY, "CP2": KEY})
        await csms.start()
        assert csms.url.startswith("wss://127.0.0.1:")
        fleet = Fleet(asyncio.get_running_loop(), seed=5, tls=TlsSettings(ca_file=pki.ca_file))
        sts = [
            fleet.add(station(fleet, cp, SecurityProfile=2, AuthorizationKey=KEY), csms.url).station
            for cp in ("CP1", "CP2")
        ]
        await until(lambda: all(s.boot_status == "Accepted" for s in sts), what="boots")
        assert fleet.stats.stations_connected == 2
        assert fleet.security.contexts_built == 1  # shared, not one per station
        fleet.stop_all()
        await csms.stop()

    run(scenario, loop)


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
@pytest.mark.parametrize("trust", ["other CA", "system store"])
def test_profile_2_refuses_a_csms_certificate_it_cannot_verify(
    pki: Pki, loop: str, trust: str
) -> None:
    async def scenario() -> None:
        csms = ReferenceCsms(ssl_context=pki.server_context(), basic_auth={"CP1": KEY})
        await csms.start()
        ca_file = pki.other_ca_file if trust == "other CA" else None
        fleet = Fleet(asyncio.get_running_loop(), seed=6, tls=TlsSettings(ca_file=ca_file))
        st = station(fleet, SecurityProfile=2, AuthorizationKey=KEY)
        events = spy_security_events(st)
        fleet.add(st, csms.url)
        await until(lambda: fleet.stats.connect_failures["tls"] >= 2, what="tls failures")
        assert fleet.stats.stations_connected == 0
        assert "CP1" not in csms.ledger.station_ids()
        assert events == ["InvalidCentralSystemCertificate"]
        fleet.stop_all()
        await csms.stop()

    run(scenario, loop)


def test_insecure_connects_to_any_certificate_and_warns(
    pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> None:
        csms = ReferenceCsms(ssl_context=pki.server_context(), basic_auth={"CP1": KEY})
        await csms.start()
        with caplog.at_level(logging.WARNING, logger="fleet.security"):
            fleet = Fleet(asyncio.get_running_loop(), seed=7, tls=TlsSettings(insecure=True))
        assert "TLS certificate verification is OFF" in caplog.text
        st = fleet.add(station(fleet, SecurityProfile=2, AuthorizationKey=KEY), csms.url).station
        await until(lambda: st.boot_status == "Accepted", what="boot")
        fleet.stop_all()
        await csms.stop()

    run(scenario)


def test_profile_2_over_ws_is_one_configuration_error_for_the_fleet(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> None:
        csms = ReferenceCsms(basic_auth={"CP1": KEY, "CP2": KEY})
        await csms.start()
        fleet = Fleet(asyncio.get_running_loop(), seed=8)
        with caplog.at_level(logging.WARNING):
            for cp in ("CP1", "CP2"):
                fleet.add(station(fleet, cp, SecurityProfile=2, AuthorizationKey=KEY), csms.url)
            await until(lambda: fleet.stats.connect_failures["config"] >= 4, what="retries")
        assert fleet.stats.stations_connected == 0
        lines = [r.getMessage() for r in caplog.records if "wss://" in r.getMessage()]
        assert len(lines) == 1, lines
        assert "SecurityProfile 2 needs a wss:// URL" in lines[0]
        fleet.stop_all()
        await csms.stop()

    run(scenario)


# -- profile 3: mutual TLS --------------------------------------------------------------


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_profile_3_mutual_tls_with_a_certificate_per_station(pki: Pki, loop: str) -> None:
    async def scenario() -> None:
        for cp in ("CP1", "CP2"):
            pki.client_cert(cp)
        csms = ReferenceCsms(ssl_context=pki.server_context(mutual=True))
        await csms.start()
        tls = TlsSettings(ca_file=pki.ca_file, client_cert=str(pki.folder / "{id}.pem"))
        tls.check()
        fleet = Fleet(asyncio.get_running_loop(), seed=9, tls=tls)
        sts = [
            fleet.add(station(fleet, cp, SecurityProfile=3), csms.url).station
            for cp in ("CP1", "CP2")
        ]
        await until(lambda: all(s.boot_status == "Accepted" for s in sts), what="boots")
        for cp in ("CP1", "CP2"):
            conn = csms._stations[cp]._connection
            assert "Authorization" not in conn.request.headers  # no Basic auth at profile 3
            peer = conn.transport.get_extra_info("peercert")
            assert ("commonName", cp) in [item for rdn in peer["subject"] for item in rdn]
        assert fleet.security.contexts_built == 2  # one per client certificate
        fleet.stop_all()
        await csms.stop()

    run(scenario, loop)


def test_profile_3_one_certificate_for_the_fleet(pki: Pki) -> None:
    async def scenario() -> None:
        csms = ReferenceCsms(ssl_context=pki.server_context(mutual=True))
        await csms.start()
        tls = TlsSettings(ca_file=pki.ca_file, client_cert=pki.client_cert("fleet"))
        fleet = Fleet(asyncio.get_running_loop(), seed=10, tls=tls)
        st = fleet.add(station(fleet, SecurityProfile=3), csms.url).station
        await until(lambda: st.boot_status == "Accepted", what="boot")
        fleet.stop_all()
        await csms.stop()

    run(scenario)


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_mutual_tls_csms_refuses_a_station_without_a_client_certificate(
    pki: Pki, loop: str
) -> None:
    async def scenario() -> None:
        csms = ReferenceCsms(ssl_context=pki.server_context(mutual=True))
        await csms.start()
        fleet = Fleet(asyncio.get_running_loop(), seed=11, tls=TlsSettings(ca_file=pki.ca_file))
        # Profile 2 presents no certificate; the server verifies fine but wants one.
        fleet.add(station(fleet, SecurityProfile=2, AuthorizationKey=KEY), csms.url)
        await until(lambda: sum(fleet.stats.connect_failures.values()) >= 2, what="refusals")
        assert fleet.stats.stations_connected == 0
        assert "CP1" not in csms.ledger.station_ids()
        # The server drops the connection after the handshake (TLS 1.3 checks the client
        # certificate last), so the station may only see a close.
        assert set(fleet.stats.connect_failures) <= {"tls", "closed during handshake"}
        # And a profile 3 station with no certificate configured cannot even try.
        fleet.add(station(fleet, "CP3", SecurityProfile=3), csms.url)
        await until(lambda: fleet.stats.connect_failures["config"] >= 1, what="config error")
        fleet.stop_all()
        await csms.stop()

    run(scenario, loop)


# -- the pieces ---------------------------------------------------------------------------


def test_settings_check_reports_bad_files_in_one_line(pki: Pki, tmp_path: Path) -> None:
    TlsSettings(ca_file=pki.ca_file).check()
    TlsSettings().check()
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    key_only = tmp_path / "key.pem"
    pki.ca.issue_cert("x").private_key_pem.write_to_path(str(key_only))
    cases = [
        (TlsSettings(ca_file=str(tmp_path / "missing.pem")), "missing.pem"),
        (TlsSettings(ca_file=str(garbage)), "garbage.pem"),
        (TlsSettings(client_cert=str(tmp_path / "nope.pem")), "nope.pem"),
        (TlsSettings(client_cert=str(key_only)), "key.pem"),
        (TlsSettings(client_key=str(key_only)), "needs a client certificate"),
        (TlsSettings(insecure=True, ca_file=pki.ca_file), "contradict"),
        (TlsSettings(client_cert=str(tmp_path / "{name}.pem")), "only placeholder"),
        (TlsSettings(client_cert=str(tmp_path / "no-dir" / "{id}.pem")), "no such directory"),
    ]
    for settings, needle in cases:
        with pytest.raises(SecurityConfigError) as err:
            settings.check()
        message = str(err.value)
        assert needle in message and "\n" not in message, message
        assert "PRIVATE KEY" not in message


def test_urls_lose_their_passwords() -> None:
    assert split_userinfo("ws://u:p%40ss@h:9/ocpp") == ("ws://h:9/ocpp", ("u", "p@ss"))
    assert split_userinfo("ws://h:9/ocpp") == ("ws://h:9/ocpp", None)
    assert redact_url("wss://u:hunter2hunter2@h/ocpp/CP1") == "wss://u:[redacted]@h/ocpp/CP1"
    assert redact_url("ws://h/ocpp") == "ws://h/ocpp"
    secret = Secret("hunter2hunter2hunter2")
    assert secret == "hunter2hunter2hunter2" and f"{secret}" == "hunter2hunter2hunter2"
    assert "hunter2" not in repr(secret) and "hunter2" not in repr({"k": secret})


def test_websockets_debug_header_dump_is_redacted(caplog: pytest.LogCaptureFixture) -> None:
    logger = RedactingLogger(logging.getLogger("test.redacting"))
    with caplog.at_level(logging.DEBUG, logger="test.redacting"):
        logger.debug("> %s: %s", "Authorization", "Basic c2VjcmV0")
        logger.debug("> %s: %s", "User-Agent", "chargepro-fleet")
    assert "c2VjcmV0" not in caplog.text
    assert "[redacted]" in caplog.text and "chargepro-fleet" in caplog.text
