"""File transfers behind GetDiagnostics and UpdateFirmware: the I/O of the model's
:class:`~fleet.model.features.firmware.Upload` and :class:`~fleet.model.features.firmware.Download`
effects.

Schemes (the guide: "FTP, FTPS, HTTP and HTTPS"):

``http://``, ``https://``
    Upload: ``POST`` of a ``multipart/form-data`` body with one part named ``file``
    whose filename is the diagnostics file name, to the location URL as given (the
    form most CSMS upload endpoints take). ``http_method="PUT"`` instead PUTs the raw
    file to ``<location>/<file name>``. Download: ``GET``, following up to
    :data:`MAX_REDIRECTS` redirects (credentials are not sent to another host).
    Any 2xx is success; an https URL never redirects to plain http. Credentials in the URL (``https://user:pass@host/...``)
    become an HTTP Basic ``Authorization`` header.
``ftp://``, ``ftps://``
    Passive mode; ``ftps`` is explicit TLS (``AUTH TLS`` on the control connection,
    then ``PROT P`` so files travel encrypted too); port 21 unless the URL says
    otherwise. The path is relative to the login directory (RFC 1738;
    ``%2F`` makes it absolute). Upload: the location is a directory, entered one
    segment at a time, then ``STOR <file name>``. Download: ``RETR`` of the last
    segment. Without userinfo the login is anonymous.

TLS (https, ftps) verifies the server certificate and host name: with the runner's
own ``ssl_context`` if given, else the fleet's (``Fleet.ssl_context``, the one the
websocket uses), else the system trust store.

Blocking libraries (``http.client``, ``ftplib``) run on a small pool of *real* OS
threads (``workers``, 4 by default): thousands of stations share it, and requests
beyond it wait in a queue. They are real threads even under Locust's gevent
monkey-patching (``concurrent.futures`` would then hand out greenlets and gevent
locks that another OS thread must not touch); work goes in through a C-level
``SimpleQueue`` and results come back with ``loop.call_soon_threadsafe``. Each
socket operation has ``timeout`` seconds, a whole attempt ``deadline`` seconds.

An effect is one attempt; retries are the model's (``retries`` / ``retryInterval``).
Passwords never reach a log line, an error text or a repr: URLs are shown through
:func:`~fleet.model.features.firmware.redact_url`.
"""

from __future__ import annotations

import _queue
import base64
import contextlib
import ftplib
import http.client
import io
import logging
import secrets
import ssl
import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import SplitResult, quote, unquote, urljoin, urlsplit

from fleet.engine.loop import start_real_thread
from fleet.model.features.firmware import Download, Upload, redact_url

if TYPE_CHECKING:
    import asyncio

    from fleet.engine.link import StationLink

__all__ = ["TransferError", "TransferRunner", "download", "upload"]

log = logging.getLogger("fleet.transfer")

WORKERS = 4
TIMEOUT = 30.0
"""Seconds for any one socket operation (connect, a read, a write)."""
DEADLINE = 300.0
"""Seconds for a whole attempt; a server that trickles bytes cannot hold a thread longer."""
MAX_REDIRECTS = 5
USER_AGENT = "chargepro-fleet"


class TransferError(Exception):
    """An attempt failed for a reason worth reporting (its text holds no credentials)."""


# -- the transfers themselves (blocking; run on the pool) --------------------------------


def _parts(url: str) -> SplitResult:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise TransferError("malformed URL") from None
    if parts.scheme.lower() not in ("http", "https", "ftp", "ftps"):
        raise TransferError(f"unsupported scheme {parts.scheme!r}")
    if not parts.hostname:
        raise TransferError("URL has no host")
    return parts


def _credentials(parts: SplitResult) -> tuple[str | None, str]:
    user = unquote(parts.username) if parts.username is not None else None
    password = unquote(parts.password) if parts.password is not None else ""
    return user, password


def _check_deadline(deadline: float) -> None:
    if time.monotonic() > deadline:
        raise TransferError("attempt took longer than its deadline")


def _http_request(
    url: str,
    method: str,
    body: bytes | None,
    headers: dict[str, str],
    ssl_context: ssl.SSLContext,
    timeout: float,
    deadline: float,
    max_bytes: int,
) -> bytes:
    """One HTTP exchange, following redirects for GET; the response body on 2xx."""
    first_host = None
    secure = urlsplit(url).scheme.lower() == "https"
    for _ in range(MAX_REDIRECTS + 1):
        parts = _parts(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https"):
            raise TransferError(f"redirected to unsupported scheme {scheme!r}")
        if secure and scheme != "https":
            raise TransferError("redirected from https to plain http")
        host = parts.hostname or ""
        port = parts.port or (443 if scheme == "https" else 80)
        first_host = first_host or (host, port)
        conn: http.client.HTTPConnection
        if scheme == "https":
            conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=ssl_context)
        else:
            conn = http.client.HTTPConnection(host, port, timeout=timeout)
        request_headers = {"User-Agent": USER_AGENT, **headers}
        user, password = _credentials(parts)
        if user is not None and (host, port) == first_host:
            token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
            request_headers["Authorization"] = f"Basic {token}"
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        try:
            conn.request(method, target, body=body, headers=request_headers)
            response = conn.getresponse()
            status = response.status
            if method == "GET" and status in (301, 302, 303, 307, 308):
                location = response.getheader("Location")
                response.read(64 * 1024)
                if not location:
                    raise TransferError(f"HTTP {status} without Location")
                url = urljoin(url, location)
                continue
            chunks: list[bytes] = []
            size = 0
            while True:
                _check_deadline(deadline)
                chunk = response.read(64 * 1024)
                if not chunk:
                    break
                size += len(chunk)
                if size > max_bytes:
                    raise TransferError(f"response larger than {max_bytes} bytes")
                chunks.append(chunk)
            if not 200 <= status < 300:
                raise TransferError(f"HTTP {status} {response.reason}".strip())
            return b"".join(chunks)
        finally:
            conn.close()
    raise TransferError(f"more than {MAX_REDIRECTS} redirects")


def _ftp_open(parts: SplitResult, ssl_context: ssl.SSLContext, timeout: float) -> ftplib.FTP:
    ftp: ftplib.FTP
    if parts.scheme.lower() == "ftps":
        ftp = ftplib.FTP_TLS(context=ssl_context, timeout=timeout)
    else:
        ftp = ftplib.FTP(timeout=timeout)
    try:
        ftp.connect(parts.hostname or "", parts.port or 21)
        user, password = _credentials(parts)
        if user is None:
            user, password = "anonymous", password or "anonymous@"
        ftp.login(user, password)  # FTP_TLS: AUTH TLS first
        if isinstance(ftp, ftplib.FTP_TLS):
            ftp.prot_p()
        ftp.set_pasv(True)
    except BaseException:
        ftp.close()
        raise
    return ftp


def _ftp_segments(parts: SplitResult) -> list[str]:
    path = parts.path.split(";", 1)[0]  # RFC 1738 ";type=i"
    return [unquote(s) for s in path.split("/")[1:]]


def upload(
    url: str,
    file_name: str,
    content: bytes,
    *,
    ssl_context: ssl.SSLContext,
    timeout: float = TIMEOUT,
    deadline: float = DEADLINE,
    http_method: str = "POST",
) -> None:
    """Put ``content`` as ``file_name`` into the directory ``url``; raise on failure."""
    parts = _parts(url)
    scheme = parts.scheme.lower()
    until = time.monotonic() + deadline
    if scheme in ("http", "https"):
        if http_method == "PUT":
            target = url.split("?", 1)[0].split("#", 1)[0].rstrip("/") + "/" + quote(file_name)
            headers = {"Content-Type": "application/octet-stream"}
            _http_request(target, "PUT", content, headers, ssl_context, timeout, until, 1 << 20)
            return
        boundary = "fleet-" + secrets.token_hex(12)
        safe_name = file_name.replace('"', "_").replace("\r", "_").replace("\n", "_")
        head = (
            f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="file"; filename="{safe_name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        body = head + content + f"\r\n--{boundary}--\r\n".encode()
        headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
        _http_request(url, "POST", body, headers, ssl_context, timeout, until, 1 << 20)
        return
    ftp = _ftp_open(parts, ssl_context, timeout)
    try:
        for segment in _ftp_segments(parts):
            if segment:
                ftp.cwd(segment)
        ftp.storbinary(f"STOR {file_name}", io.BytesIO(content))
        _check_deadline(until)
        ftp.quit()
    finally:
        ftp.close()


def download(
    url: str,
    *,
    ssl_context: ssl.SSLContext,
    max_bytes: int,
    timeout: float = TIMEOUT,
    deadline: float = DEADLINE,
) -> bytes:
    """Fetch ``url`` (at most ``max_bytes``); raise on failure."""
    parts = _parts(url)
    until = time.monotonic() + deadline
    if parts.scheme.lower() in ("http", "https"):
        return _http_request(url, "GET", None, {}, ssl_context, timeout, until, max_bytes)
    segments = _ftp_segments(parts)
    if not segments or not segments[-1]:
        raise TransferError("FTP URL names no file")
    ftp = _ftp_open(parts, ssl_context, timeout)
    try:
        for segment in segments[:-1]:
            if segment:
                ftp.cwd(segment)
        chunks: list[bytes] = []
        size = 0

        def take(chunk: bytes) -> None:
            nonlocal size
            size += len(chunk)
            if size > max_bytes:
                raise TransferError(f"file larger than {max_bytes} bytes")
            _check_deadline(until)
            chunks.append(chunk)

        ftp.retrbinary(f"RETR {segments[-1]}", take)
        ftp.quit()
        return b"".join(chunks)
    finally:
        ftp.close()


def _describe(exc: BaseException, url: str) -> str:
    """An error text for the model and the logs, without the URL's password."""
    if isinstance(exc, TransferError):
        text = str(exc)
    elif isinstance(exc, ftplib.Error):
        text = f"FTP {str(exc).strip()}"
    elif isinstance(exc, ssl.SSLCertVerificationError):
        text = f"TLS certificate: {exc.verify_message or exc}"
    else:
        text = f"{type(exc).__name__}: {exc}".rstrip(": ")
    try:
        password = urlsplit(url).password
    except ValueError:
        password = None
    if password:
        text = text.replace(password, "***").replace(unquote(password), "***")
    return text[:200]


# -- a pool of real threads -------------------------------------------------------------


class _Pool:
    """At most ``workers`` real threads taking jobs from one C-level queue."""

    def __init__(self, workers: int) -> None:
        self._queue: _queue.SimpleQueue[Callable[[], None] | None] = _queue.SimpleQueue()
        self._max = max(1, workers)
        self._started = 0
        self._closed = False

    def submit(self, job: Callable[[], None]) -> None:
        if self._closed:
            raise RuntimeError("transfer pool is closed")
        self._queue.put(job)
        if self._started < self._max:
            self._started += 1
            start_real_thread(self._work, "fleet-transfer")

    def _work(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            try:
                job()
            except BaseException:  # a job reports its own errors; never lose the thread
                log.exception("transfer job failed")

    def close(self) -> None:
        """Let the threads finish what they run and exit (queued jobs still run first)."""
        if self._closed:
            return
        self._closed = True
        for _ in range(self._started):
            self._queue.put(None)


# -- the runner the Fleet uses ----------------------------------------------------------


class TransferOwner(Protocol):
    """What a runner uses of the fleet it serves (:class:`fleet.engine.fleet.Fleet` is
    one, and imports this module; this module does not import it): the loop results
    go back to, and the TLS context the stations' websockets use."""

    loop: asyncio.AbstractEventLoop
    ssl_context: ssl.SSLContext | None


class TransferRunner:
    """Carries out transfer effects for the stations of one fleet."""

    def __init__(
        self,
        fleet: TransferOwner,
        *,
        ssl_context: ssl.SSLContext | None = None,
        workers: int = WORKERS,
        timeout: float = TIMEOUT,
        deadline: float = DEADLINE,
        http_method: str = "POST",
    ) -> None:
        if http_method not in ("POST", "PUT"):
            raise ValueError("http_method must be POST or PUT")
        self.fleet = fleet
        self.ssl_context = ssl_context
        self.timeout = timeout
        self.deadline = deadline
        self.http_method = http_method
        self._pool = _Pool(workers)
        # Idle threads exit when the runner (and so its fleet) is gone.
        weakref.finalize(self, self._pool.close)
        self._default_context: ssl.SSLContext | None = None
        self.attempts = 0
        self.failures = 0

    def _context(self) -> ssl.SSLContext:
        ctx = self.ssl_context or self.fleet.ssl_context
        if ctx is None:
            ctx = self._default_context
            if ctx is None:
                ctx = self._default_context = ssl.create_default_context()
        return ctx

    def submit(self, link: StationLink, effect: object) -> None:
        """Start one attempt (call on the loop thread); the result goes to the model."""
        ctx = self._context()
        work: Callable[[], Any]
        if isinstance(effect, Upload):
            url = effect.url

            def work() -> Any:
                upload(
                    effect.url,
                    effect.file_name,
                    effect.content,
                    ssl_context=ctx,
                    timeout=self.timeout,
                    deadline=self.deadline,
                    http_method=self.http_method,
                )
                return None
        elif isinstance(effect, Download):
            url = effect.url

            def work() -> Any:
                return download(
                    effect.url,
                    ssl_context=ctx,
                    max_bytes=effect.max_bytes,
                    timeout=self.timeout,
                    deadline=self.deadline,
                )
        else:
            raise NotImplementedError(f"no runner for {type(effect).__name__}")
        self.attempts += 1
        loop = self.fleet.loop

        def job() -> None:
            result: Any = None
            error: str | None = None
            try:
                result = work()
            except BaseException as exc:  # everything is a failed attempt, reported
                error = _describe(exc, url)
            # RuntimeError: the loop is closed, nobody is waiting any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._finished, link, effect, result, error)

        self._pool.submit(job)

    def _finished(
        self, link: StationLink, effect: Upload | Download, result: Any, error: str | None
    ) -> None:
        station = link.station
        kind = "upload" if isinstance(effect, Upload) else "download"
        url = redact_url(effect.url)
        if error is not None:
            self.failures += 1
            log.info(
                "%s: %s attempt %d to %s failed: %s",
                station.identity,
                kind,
                effect.attempt,
                url,
                error,
            )
        else:
            log.debug("%s: %s attempt %d to %s done", station.identity, kind, effect.attempt, url)
        transfers = station.transfers
        job_id = effect.job_id
        if isinstance(effect, Upload):
            link.hardware(lambda now: transfers.uploaded(station, job_id, error, now))
        else:
            content = result if error is None else None
            link.hardware(lambda now: transfers.downloaded(station, job_id, content, error, now))

    def close(self) -> None:
        """Stop the worker threads once they are idle."""
        self._pool.close()
