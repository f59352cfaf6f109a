"""File transfers over real servers on 127.0.0.1: HTTP and HTTPS (http.server in a
thread), FTP and FTPS (pyftpdlib in a thread), certificates from a throwaway CA
(trustme). The end-to-end tests run a station against the reference CSMS and check
what its ledger recorded and what the file server received.
"""

from __future__ import annotations

import asyncio
import base64
import email.parser
import email.policy
import gzip
import io
import ssl
import tarfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import trustme
from ocpp.v16 import call
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler, TLS_FTPHandler
from pyftpdlib.servers import FTPServer
from support import HANG_GUARD, until

from fleet.csms.server import ReferenceCsms
from fleet.engine import transfer
from fleet.engine.fleet import Fleet
from fleet.engine.transfer import TransferError, TransferRunner, download, upload
from fleet.model.config import ConfigStore
from fleet.model.features.firmware import firmware_image
from fleet.model.station import Station

FAST = {"MinimumStatusDuration": 0, "WebSocketPingInterval": 0}
USER, PASSWORD = "fleet", "pw-Secret-42"
SECRET = "authorization-key-never-shown-1234"


# -- servers ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def client_ctx(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    return ctx


@dataclass
class HttpFiles:
    url: str
    received: dict[str, bytes] = field(default_factory=dict)  # path -> file
    served: dict[str, bytes] = field(default_factory=dict)  # path -> body
    requests: list[tuple[str, str]] = field(default_factory=list)  # (method, path)
    auth: str | None = None  # required "user:password"


def _http_server(tls: ssl.SSLContext | None) -> tuple[HttpFiles, Callable[[], None]]:
    files = HttpFiles("")

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _authorized(self) -> bool:
            if files.auth is None:
                return True
            expected = "Basic " + base64.b64encode(files.auth.encode()).decode()
            if self.headers.get("Authorization") == expected:
                return True
            self._reply(401)
            return False

        def _reply(
            self, code: int, body: bytes = b"", headers: dict[str, str] | None = None
        ) -> None:
            self.send_response(code)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length", "0")))

        def do_POST(self) -> None:
            files.requests.append(("POST", self.path))
            body = self._body()
            if not self._authorized():
                return
            head = f"Content-Type: {self.headers['Content-Type']}\r\n\r\n".encode()
            msg = email.parser.BytesParser(policy=email.policy.default).parsebytes(head + body)
            assert msg.is_multipart()
            for part in msg.iter_parts():
                assert part.get_param("name", header="content-disposition") == "file"
                payload = part.get_payload(decode=True)
                assert isinstance(payload, bytes)
                files.received[self.path.rstrip("/") + "/" + str(part.get_filename())] = payload
            self._reply(201)

        def do_PUT(self) -> None:
            files.requests.append(("PUT", self.path))
            body = self._body()
            if self._authorized():
                files.received[self.path] = body
                self._reply(201)

        def do_GET(self) -> None:
            files.requests.append(("GET", self.path))
            if not self._authorized():
                return
            if self.path.startswith("/goto?"):
                self._reply(302, headers={"Location": self.path[len("/goto?") :]})
            elif self.path.startswith("/redirect/"):
                self._reply(302, headers={"Location": self.path[len("/redirect") :]})
            elif self.path in files.served:
                self._reply(200, files.served[self.path])
            else:
                self._reply(404)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    scheme = "https" if tls is not None else "http"
    files.url = f"{scheme}://127.0.0.1:{server.server_address[1]}"

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(5)

    return files, stop


@pytest.fixture
def http_files() -> Iterator[HttpFiles]:
    files, stop = _http_server(None)
    yield files
    stop()


@pytest.fixture
def https_files(ca: trustme.CA) -> Iterator[HttpFiles]:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(ctx)
    files, stop = _http_server(ctx)
    yield files
    stop()


@dataclass
class FtpFiles:
    url: str  # ftp[s]://user:password@127.0.0.1:port
    home: Path


def _ftp_server(home: Path, certfile: Path | None) -> tuple[FtpFiles, Callable[[], None]]:
    authorizer = DummyAuthorizer()
    authorizer.add_user(USER, PASSWORD, str(home), perm="elradfmwMT")
    handler: type[FTPHandler]
    if certfile is not None:
        handler = type("Tls", (TLS_FTPHandler,), {})
        handler.certfile = str(certfile)  # type: ignore[attr-defined]
        handler.tls_control_required = True  # type: ignore[attr-defined]
        handler.tls_data_required = True  # type: ignore[attr-defined]
    else:
        handler = type("Plain", (FTPHandler,), {})
    handler.authorizer = authorizer
    handler.auth_failed_timeout = 0.05  # pyftpdlib waits 3 s after a bad password
    handler.passive_ports = None
    server = FTPServer(("127.0.0.1", 0), handler)
    stopping = threading.Event()

    def serve() -> None:
        while not stopping.is_set():
            server.serve_forever(timeout=0.05, blocking=False, handle_exit=False)
        server.close_all()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    scheme = "ftps" if certfile is not None else "ftp"
    port = server.address[1]
    files = FtpFiles(f"{scheme}://{USER}:{PASSWORD}@127.0.0.1:{port}", home)

    def stop() -> None:
        stopping.set()
        thread.join(5)

    return files, stop


@pytest.fixture
def ftp_files(tmp_path: Path) -> Iterator[FtpFiles]:
    files, stop = _ftp_server(tmp_path, None)
    yield files
    stop()


@pytest.fixture
def ftps_files(tmp_path: Path, ca: trustme.CA) -> Iterator[FtpFiles]:
    pem = tmp_path.parent / f"{tmp_path.name}-server.pem"
    ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(str(pem))
    files, stop = _ftp_server(tmp_path, pem)
    yield files
    stop()


# -- the blocking transfer functions, against each server -----------------------------------


def test_http_post_upload_and_get_download(
    http_files: HttpFiles, client_ctx: ssl.SSLContext
) -> None:
    http_files.auth = f"{USER}:{PASSWORD}"
    base = http_files.url.replace("http://", f"http://{USER}:{PASSWORD}@")
    upload(base + "/diag", "CP_diag.tar.gz", b"\x1f\x8bdata", ssl_context=client_ctx)
    assert http_files.received == {"/diag/CP_diag.tar.gz": b"\x1f\x8bdata"}
    http_files.served["/fw/image.bin"] = b"firmware bytes"
    got = download(base + "/redirect/fw/image.bin", ssl_context=client_ctx, max_bytes=1000)
    assert got == b"firmware bytes"
    with pytest.raises(TransferError, match="HTTP 401"):
        download(http_files.url + "/fw/image.bin", ssl_context=client_ctx, max_bytes=1000)
    with pytest.raises(TransferError, match="HTTP 404"):
        download(base + "/fw/missing.bin", ssl_context=client_ctx, max_bytes=1000)
    with pytest.raises(TransferError, match="larger than 10 bytes"):
        download(base + "/fw/image.bin", ssl_context=client_ctx, max_bytes=10)


def test_http_put_upload(http_files: HttpFiles, client_ctx: ssl.SSLContext) -> None:
    upload(http_files.url + "/in/", "a b.log", b"text", ssl_context=client_ctx, http_method="PUT")
    assert http_files.received == {"/in/a%20b.log": b"text"}


def test_https_verifies_the_server(https_files: HttpFiles, client_ctx: ssl.SSLContext) -> None:
    upload(https_files.url + "/up", "f.log", b"x", ssl_context=client_ctx)
    assert https_files.received == {"/up/f.log": b"x"}
    with pytest.raises(ssl.SSLCertVerificationError):
        upload(https_files.url + "/up", "f.log", b"x", ssl_context=ssl.create_default_context())
    https_files.served["/fw.bin"] = b"fw"
    got = download(https_files.url + "/goto?/fw.bin", ssl_context=client_ctx, max_bytes=10)
    assert got == b"fw"
    with pytest.raises(TransferError, match="from https to plain http"):
        download(
            https_files.url + "/goto?http://127.0.0.1:9/fw.bin",
            ssl_context=client_ctx,
            max_bytes=10,
        )


def test_ftp_upload_into_directory_and_download(
    ftp_files: FtpFiles, client_ctx: ssl.SSLContext
) -> None:
    (ftp_files.home / "diag").mkdir()
    upload(ftp_files.url + "/diag/", "CP_diag.log", b"hello ftp", ssl_context=client_ctx)
    assert (ftp_files.home / "diag" / "CP_diag.log").read_bytes() == b"hello ftp"
    (ftp_files.home / "fw").mkdir()
    (ftp_files.home / "fw" / "image.bin").write_bytes(b"\x00" * 5000)
    got = download(ftp_files.url + "/fw/image.bin", ssl_context=client_ctx, max_bytes=10_000)
    assert got == b"\x00" * 5000
    with pytest.raises(TransferError, match="larger than"):
        download(ftp_files.url + "/fw/image.bin", ssl_context=client_ctx, max_bytes=100)


def test_ftp_bad_password_error_hides_it(ftp_files: FtpFiles) -> None:
    url = ftp_files.url.replace(PASSWORD, "wrong-Password-99")
    with pytest.raises(Exception) as info:
        upload(url + "/", "f.log", b"x", ssl_context=ssl.create_default_context())
    text = transfer._describe(info.value, url)
    assert text.startswith("FTP 530")
    assert "wrong-Password-99" not in text


def test_ftps_explicit_tls_upload_and_download(
    ftps_files: FtpFiles, client_ctx: ssl.SSLContext
) -> None:
    upload(ftps_files.url + "/", "secure.log", b"over tls", ssl_context=client_ctx)
    assert (ftps_files.home / "secure.log").read_bytes() == b"over tls"
    got = download(ftps_files.url + "/secure.log", ssl_context=client_ctx, max_bytes=100)
    assert got == b"over tls"
    with pytest.raises(ssl.SSLCertVerificationError):
        upload(ftps_files.url + "/", "x.log", b"x", ssl_context=ssl.create_default_context())


def test_unsupported_scheme_and_malformed_urls() -> None:
    ctx = ssl.create_default_context()
    for url in ("file:///etc/passwd", "sftp://h/x", "http://h:notaport/x", "ftp:///nohost"):
        with pytest.raises(TransferError):
            download(url, ssl_context=ctx, max_bytes=10)


def test_pool_bounds_concurrency() -> None:
    pool = transfer._Pool(2)
    lock = threading.Lock()
    running = peak = done = 0
    finished = threading.Event()

    def job() -> None:
        nonlocal running, peak, done
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.02)
        with lock:
            running -= 1
            done += 1
            if done == 12:
                finished.set()

    before = threading.active_count()
    for _ in range(12):
        pool.submit(job)
    assert threading.active_count() - before <= 2
    assert finished.wait(5)
    assert peak <= 2
    pool.close()


# -- end to end: a station, the reference CSMS, a file server ------------------------------


def run(coro: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(coro(), HANG_GUARD))


class Rig:
    """A fleet of one station on the reference CSMS."""

    def __init__(self, fleet: Fleet, csms: ReferenceCsms, station: Station) -> None:
        self.fleet, self.csms, self.station = fleet, csms, station

    @property
    def record(self) -> Any:
        return self.csms.ledger.station(self.station.identity)

    async def close(self) -> None:
        self.fleet.stop_all()
        if self.fleet.transfer_runner is not None:
            self.fleet.transfer_runner.close()
        await self.csms.stop()


async def rig(identity: str, ssl_context: ssl.SSLContext | None = None, **config: Any) -> Rig:
    csms = ReferenceCsms(accept_all_tags=True)
    await csms.start()
    fleet = Fleet(asyncio.get_running_loop(), seed=7, ssl_context=ssl_context)
    cfg = ConfigStore({**FAST, "AuthorizationKey": SECRET, **config})
    station = Station(identity, fleet.now(), config=cfg)
    station.reboot_seconds = 0.2
    station.transfers.install_seconds = 0.2
    fleet.add(station, csms.url)
    await until(lambda: station.boot_status == "Accepted", what="boot")
    return Rig(fleet, csms, station)


def test_get_diagnostics_over_http_end_to_end(http_files: HttpFiles) -> None:
    async def scenario() -> None:
        r = await rig("CP-DIAG-HTTP")
        answer = await r.csms.call(
            r.station.identity, call.GetDiagnostics(location=http_files.url + "/diagnostics")
        )
        name = answer.file_name
        assert name.startswith("CP-DIAG-HTTP_diagnostics_") and name.endswith(".tar.gz")
        await until(lambda: r.record.diagnostics_statuses == ["Uploading", "Uploaded"], 5)
        content = http_files.received[f"/diagnostics/{name}"]
        with tarfile.open(fileobj=io.BytesIO(content), mode="r:gz") as tar:
            member = tar.extractfile("diagnostics.log")
            assert member is not None
            text = member.read().decode()
        assert "station: CP-DIAG-HTTP" in text
        assert "HeartbeatInterval = 60 (RW)" in text
        assert "AuthorizationKey (write-only, not shown)" in text
        assert SECRET not in text
        assert SECRET.encode() not in gzip.decompress(content)
        await r.close()

    run(scenario)


def test_get_diagnostics_over_ftps_uncompressed(
    ftps_files: FtpFiles, client_ctx: ssl.SSLContext
) -> None:
    async def scenario() -> None:
        # The fleet's TLS context (here trusting the test CA) is the transfers' too.
        r = await rig("CP-DIAG-FTPS", ssl_context=client_ctx, CompressDiagnostic=False)
        (ftps_files.home / "logs").mkdir()
        answer = await r.csms.call(
            r.station.identity, call.GetDiagnostics(location=ftps_files.url + "/logs/")
        )
        assert answer.file_name.endswith(".log")
        await until(lambda: r.record.diagnostics_statuses == ["Uploading", "Uploaded"], 5)
        text = (ftps_files.home / "logs" / answer.file_name).read_text()
        assert "CompressDiagnostic = False (RW)" in text
        assert SECRET not in text
        await r.close()

    run(scenario)


def test_unreachable_upload_fails_after_retries(free_port: int) -> None:
    async def scenario() -> None:
        r = await rig("CP-DIAG-DOWN")
        # A runner set beforehand is the one the fleet uses.
        runner = r.fleet.transfer_runner = TransferRunner(r.fleet, workers=1, timeout=2)
        await r.csms.call(
            r.station.identity,
            call.GetDiagnostics(
                location=f"http://127.0.0.1:{free_port}/up", retries=2, retry_interval=1
            ),
        )
        started = time.monotonic()
        await until(lambda: r.record.diagnostics_statuses == ["Uploading", "UploadFailed"], 8)
        assert time.monotonic() - started >= 1.9  # two retry intervals
        assert (runner.attempts, runner.failures) == (3, 3)
        assert "ConnectionRefusedError" in (r.station.transfers.last_error or "")
        await r.close()

    run(scenario)


def test_update_firmware_over_https_end_to_end(
    https_files: HttpFiles, client_ctx: ssl.SSLContext
) -> None:
    async def scenario() -> None:
        r = await rig("CP-FW-HTTPS", ssl_context=client_ctx)
        https_files.served["/fw/chargepro.bin"] = firmware_image("3.1.0", b"\x00" * 2048)
        assert r.record.last_boot["firmwareVersion"] == "3.0.0"
        retrieve = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 1))
        await r.csms.call(
            r.station.identity,
            call.UpdateFirmware(
                location=https_files.url + "/fw/chargepro.bin", retrieve_date=retrieve
            ),
        )
        await until(lambda: "Installed" in r.record.firmware_statuses, 8, "Installed")
        assert r.record.firmware_statuses == [
            "Downloading",
            "Downloaded",
            "Installing",
            "Installed",
        ]
        assert r.record.boots == 2
        assert r.record.last_boot["firmwareVersion"] == "3.1.0"
        assert r.station.boot_info.firmware == "3.1.0"
        assert r.record.messages.get("SecurityEventNotification", 0) >= 1
        await r.close()

    run(scenario)


def test_update_firmware_downgrade_over_ftp(ftp_files: FtpFiles) -> None:
    async def scenario() -> None:
        r = await rig("CP-FW-FTP")
        (ftp_files.home / "old.bin").write_bytes(firmware_image("2.0.0"))
        retrieve = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time()))
        await r.csms.call(
            r.station.identity,
            call.UpdateFirmware(location=ftp_files.url + "/old.bin", retrieve_date=retrieve),
        )
        await until(lambda: "InstallationFailed" in r.record.firmware_statuses, 8)
        assert r.record.firmware_statuses == [
            "Downloading",
            "Downloaded",
            "Installing",
            "InstallationFailed",
        ]
        await until(lambda: r.record.last_status[0].status == "Faulted", 3, "Faulted")
        assert r.record.last_status[0].vendor_error_code == "0x300000"
        assert r.record.boots == 1
        await r.close()

    run(scenario)
