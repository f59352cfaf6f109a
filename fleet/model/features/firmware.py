"""The FirmwareManagement profile: GetDiagnostics and UpdateFirmware, sans-I/O
(OCPP 1.6 sections 4.4, 4.5, 5.9, 5.19).

The station delegates both operations here. Each is a small state machine that
queues DiagnosticsStatusNotification / FirmwareStatusNotification on the station
and asks the engine to move bytes through effects on ``Station.effects``:

* :class:`Upload` - put one diagnostics file in a directory URL;
* :class:`Download` - fetch a firmware image.

Each effect is **one attempt**. The engine answers it by calling
:meth:`Transfers.uploaded` or :meth:`Transfers.downloaded` (with ``now``); the
retries (``retries`` / ``retryInterval`` of the request) live here, on the model's
clock, so a test drives them with a fake clock and the engine stays a dumb pipe.
An attempt the engine never answers counts as failed after :data:`ATTEMPT_TIMEOUT`.
``retries`` counts repeats: ``retries=2`` means up to three attempts. When the
request leaves them out the station picks :data:`DEFAULT_RETRIES` and
:data:`DEFAULT_RETRY_INTERVAL`; both are capped (:data:`MAX_RETRIES`,
:data:`MAX_RETRY_INTERVAL`) so that a CSMS cannot park a station for ever.

Diagnostics
    GetDiagnostics is answered at once with the file name,
    ``<station id>_diagnostics_<UTC yyyymmddThhmmssZ>`` + ``.tar.gz`` (a gzip'd tar
    holding ``diagnostics.log``) when ``CompressDiagnostic`` is True, ``.log``
    (plain UTF-8 text) when False. The file is built there and then: identity and
    firmware, the configuration as GetConfiguration shows it (write-only keys such
    as ``AuthorizationKey`` are listed without a value, credentials in URLs are
    masked, and as a last guard any occurrence of the AuthorizationKey value is
    replaced), connector statuses and faults, the energy register, the running
    transaction, and a journal of recent events, bounded to ``startTime`` /
    ``stopTime``. Then DiagnosticsStatusNotification Uploading, the upload, and
    Uploaded or UploadFailed. One job at a time: a GetDiagnostics while one runs is
    answered with the running job's file name (the file that *will be* uploaded,
    as OCPP's GetDiagnostics.conf says) and starts nothing new.

Firmware
    UpdateFirmware is answered ``{}``. At ``retrieveDate`` the station sends
    Downloading and downloads; then Downloaded or (all attempts failed)
    DownloadFailed. Installation waits for a running transaction to end (OCPP 1.6
    5.19 recommends waiting for the session to end), then Installing; after
    :attr:`Transfers.install_seconds` the image is checked:

    * older than the running firmware: vendor error 0x300000 (Firmware downgrade)
      on connector 0 and InstallationFailed;
    * unreadable, corrupt, or for another model: 0x300001 (Firmware upgrade
      failed) and InstallationFailed;
    * otherwise ``boot_info.firmware`` takes the new version, the station reboots
      (:class:`~fleet.model.records.Reboot`), and once the BootNotification that
      reports the new version is Accepted it sends Installed (and the security
      event FirmwareUpdated when ``SecurityEventsEnabled``). A successful install
      clears an active 0x300000 / 0x300001 fault.

    A second UpdateFirmware replaces one still waiting for its retrieveDate, and is
    ignored while a download or installation runs (OCPP 1.6 defines no answer
    status for it).

Simulated firmware image format
    The first line of the image (at most :data:`MAX_HEADER_BYTES`, ending with
    ``\\n``) is a JSON object; the rest is the payload::

        {"firmware": "3.1.0", "sha256": "<hex of the payload>", "models": ["EVB4S22N40M"]}
        ...payload bytes...

    ``firmware`` (required) is the version BootNotification will report, at most
    50 characters, starting with a dotted number (``3.1.0``, ``3.1.0-rc1``);
    versions compare by those numbers. ``sha256`` (optional) must match the
    payload. ``models`` (optional) must name the station's model. An image that
    does not start with ``{`` is a foreign image: its version is then taken from
    the file name in the URL (``.../ChargePro_3.1.0.bin``), so a real vendor file
    can be pushed in a load test; without a version there, it is corrupt.
    :func:`firmware_image` builds a valid image.

The :attr:`Transfers.diagnostics_status` and :attr:`Transfers.firmware_status`
properties give what a triggered status notification reports: the current status
of a running job, ``Idle`` otherwise (OCPP 1.6 4.4, 4.5).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import tarfile
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final
from urllib.parse import unquote, urlsplit

from fleet.model import faults
from fleet.model.messages import (
    DiagnosticsStatus,
    DiagnosticsStatusNotificationRequest,
    FirmwareStatus,
    FirmwareStatusNotificationRequest,
    GetDiagnosticsRequest,
    GetDiagnosticsResponse,
    UpdateFirmwareRequest,
    UpdateFirmwareResponse,
)
from fleet.model.port import StationPort, handler
from fleet.model.records import Reboot

__all__ = [
    "ATTEMPT_TIMEOUT",
    "DEFAULT_RETRIES",
    "DEFAULT_RETRY_INTERVAL",
    "HANDLERS",
    "INSTALL_SECONDS",
    "MAX_IMAGE_BYTES",
    "MAX_RETRIES",
    "MAX_RETRY_INTERVAL",
    "Download",
    "ImageError",
    "TransferEffect",
    "Transfers",
    "Upload",
    "firmware_image",
    "parse_firmware_image",
    "redact_url",
]

DEFAULT_RETRIES = 2
"""Retries after a failed attempt when the request does not say."""
DEFAULT_RETRY_INTERVAL = 30.0
"""Seconds between attempts when the request does not say."""
MAX_RETRIES = 10
MAX_RETRY_INTERVAL = 3600.0
ATTEMPT_TIMEOUT = 3600.0
"""An attempt the engine never answers (a result lost with its link) counts as failed
after this long; far beyond the engine's own per-attempt deadline and pool queueing."""
INSTALL_SECONDS = 5.0
"""Default time from Installing to the verdict (and the reboot): flashing takes a while,
and it lets Installing reach the CSMS before the link goes down."""
MAX_IMAGE_BYTES = 16 * 1024 * 1024
"""Largest firmware image the simulated station accepts (the engine stops reading there)."""
MAX_HEADER_BYTES = 4096
JOURNAL_LENGTH = 200
"""Events kept for the diagnostics file."""

SUPPORTED_SCHEMES = frozenset({"ftp", "ftps", "http", "https"})
"""The guide: "GetDiagnostics & UpdateFirmware support protocols: FTP, FTPS, HTTP and HTTPS"."""

FIRMWARE_DOWNGRADE = "0x300000"
FIRMWARE_UPGRADE_FAILED = "0x300001"

IDLE: Final = "Idle"


# -- effects: what the model asks of the engine ---------------------------------------


@dataclass(frozen=True, slots=True)
class Upload:
    """Effect: one attempt to upload ``content`` as ``file_name`` into the directory
    ``url``; answer with :meth:`Transfers.uploaded` and this ``job_id`` (it names the
    attempt: a result for an older one is ignored)."""

    job_id: int
    url: str
    file_name: str
    content: bytes
    attempt: int

    def __repr__(self) -> str:  # never print the URL's password, nor the whole file
        return (
            f"Upload(job_id={self.job_id}, url={redact_url(self.url)!r}, "
            f"file_name={self.file_name!r}, size={len(self.content)}, attempt={self.attempt})"
        )


@dataclass(frozen=True, slots=True)
class Download:
    """Effect: one attempt to fetch ``url`` (at most ``max_bytes``); answer with
    :meth:`Transfers.downloaded` and this ``job_id``."""

    job_id: int
    url: str
    attempt: int
    max_bytes: int = MAX_IMAGE_BYTES

    def __repr__(self) -> str:
        return (
            f"Download(job_id={self.job_id}, url={redact_url(self.url)!r}, attempt={self.attempt})"
        )


TransferEffect = Upload | Download


# -- helpers ------------------------------------------------------------------------


def redact_url(url: str) -> str:
    """``url`` with the password of its userinfo replaced by ``***`` (for logs and files)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable url>"
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"{user}:***@{host}").geturl()


def _parse_time(value: object) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None  # OCPP times are UTC with a designator; a naive one is meaningless
    return parsed.timestamp()


def _retries(payload: GetDiagnosticsRequest | UpdateFirmwareRequest) -> tuple[int, float]:
    retries = payload.get("retries")
    interval = payload.get("retryInterval")
    r = DEFAULT_RETRIES if not isinstance(retries, int) else min(max(retries, 0), MAX_RETRIES)
    i = (
        DEFAULT_RETRY_INTERVAL
        if not isinstance(interval, int)
        else min(max(float(interval), 0.0), MAX_RETRY_INTERVAL)
    )
    return r, i


def _utc(now: float) -> str:
    whole = int(now)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + "Z"


_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")
_VERSION = re.compile(r"(\d+(?:\.\d+)*)")
_NAME_VERSION = re.compile(r"(\d+\.\d+(?:\.\d+)*)")


def _version_key(version: str) -> tuple[int, ...] | None:
    m = _VERSION.match(version.strip().lstrip("vV"))
    if m is None:
        return None
    key = [int(p) for p in m.group(1).split(".")]
    while len(key) > 1 and key[-1] == 0:
        key.pop()  # 3.1 == 3.1.0
    return tuple(key)


# -- the firmware image format --------------------------------------------------------


class ImageError(ValueError):
    """The image cannot be installed (corrupt, unreadable, wrong model)."""


def firmware_image(version: str, payload: bytes = b"", *, models: list[str] | None = None) -> bytes:
    """A valid simulated firmware image for ``version`` (see the module docstring)."""
    header: dict[str, Any] = {
        "firmware": version,
        "sha256": hashlib.sha256(payload).hexdigest(),
    }
    if models is not None:
        header["models"] = models
    return json.dumps(header, separators=(",", ":")).encode() + b"\n" + payload


def parse_firmware_image(image: bytes, url: str = "", model: str | None = None) -> str:
    """The firmware version an image installs; raise :class:`ImageError` if it cannot."""
    if not image:
        raise ImageError("empty image")
    if not image.startswith(b"{"):
        # A foreign (e.g. real vendor) file: the version can only come from its name.
        name = unquote(urlsplit(url).path.rpartition("/")[2]) if url else ""
        m = _NAME_VERSION.search(name)
        if m is None:
            raise ImageError("not a simulator image and no version in the file name")
        return m.group(1)
    line, newline, payload = image.partition(b"\n")
    if not newline or len(line) > MAX_HEADER_BYTES:
        raise ImageError("image header is not one line")
    try:
        header = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ImageError("image header is not JSON") from None
    if not isinstance(header, dict):
        raise ImageError("image header is not a JSON object")
    version = header.get("firmware")
    if not isinstance(version, str) or not 0 < len(version) <= 50:
        raise ImageError("image header has no usable firmware version")
    if _version_key(version) is None:
        raise ImageError("image firmware version is not a dotted number")
    digest = header.get("sha256")
    if digest is not None and (
        not isinstance(digest, str) or hashlib.sha256(payload).hexdigest() != digest.lower()
    ):
        raise ImageError("image checksum mismatch")
    models = header.get("models")
    if (
        models is not None
        and model is not None
        and (not isinstance(models, list) or model not in models)
    ):
        raise ImageError(f"image is not for model {model}")
    return version


# -- jobs -----------------------------------------------------------------------------


@dataclass(slots=True)
class _Attempts:
    """Retry bookkeeping of one job: at most ``retries + 1`` attempts, one at a time."""

    retries: int
    retry_interval: float
    due: float | None  # when the next attempt starts; None: one is in flight, or done
    attempt: int = 0  # attempts started
    attempt_id: int = 0  # the effect's job_id of the attempt in flight
    sent_at: float | None = None  # when the attempt in flight started

    def start(self, attempt_id: int, now: float) -> None:
        self.due = None
        self.attempt += 1
        self.attempt_id = attempt_id
        self.sent_at = now

    def answers(self, attempt_id: int) -> bool:
        """Whether a result is the one for the attempt in flight (else it is stale)."""
        return self.sent_at is not None and attempt_id == self.attempt_id

    def failed(self, now: float) -> bool:
        """The attempt in flight failed: schedule the next one; False when none is left."""
        self.sent_at = None
        if self.attempt <= self.retries:
            self.due = now + self.retry_interval
            return True
        return False

    def wakeups(self) -> list[float]:
        if self.due is not None:
            return [self.due]
        if self.sent_at is not None:
            return [self.sent_at + ATTEMPT_TIMEOUT]
        return []


@dataclass(slots=True)
class _DiagnosticsJob:
    location: str
    file_name: str
    content: bytes
    tries: _Attempts
    status: DiagnosticsStatus = "Uploading"


@dataclass(slots=True)
class _FirmwareJob:
    location: str
    retrieve_at: float
    tries: _Attempts
    # Scheduled -> Downloading -> Downloaded (waits for the session) -> Installing
    # -> Rebooting (new firmware, waiting for the accepted boot).
    stage: str = "Scheduled"
    image: bytes = b""
    install_at: float | None = None


_REPORTED: dict[str, FirmwareStatus] = {
    "Scheduled": IDLE,
    "Downloading": "Downloading",
    "Downloaded": "Downloaded",
    "Installing": "Installing",
    "Rebooting": "Installing",
}


class Transfers:
    """Per-station transfer state; the station calls the hooks, the engine the results."""

    __slots__ = (
        "_diagnostics",
        "_firmware",
        "_journal",
        "_next_job",
        "install_seconds",
        "last_diagnostics_status",
        "last_error",
        "last_firmware_status",
    )

    def __init__(self, install_seconds: float = INSTALL_SECONDS) -> None:
        self.install_seconds = install_seconds
        self._diagnostics: _DiagnosticsJob | None = None
        self._firmware: _FirmwareJob | None = None
        self._next_job = 1
        # Made at the first transfer event: most stations never log one (issue 16).
        self._journal: deque[tuple[float, str]] | None = None
        self.last_diagnostics_status: str = IDLE
        """The last DiagnosticsStatusNotification sent (Idle: none yet)."""
        self.last_firmware_status: str = IDLE
        """The last FirmwareStatusNotification sent (Idle: none yet)."""
        self.last_error: str | None = None
        """Why the last failed transfer attempt failed (no credentials in it)."""

    # -- what TriggerMessage reports -------------------------------------------------

    @property
    def diagnostics_status(self) -> DiagnosticsStatus:
        """Uploading while a diagnostics job runs, else Idle (OCPP 1.6 4.4)."""
        job = self._diagnostics
        return job.status if job is not None else IDLE

    @property
    def firmware_status(self) -> FirmwareStatus:
        """Downloading / Downloaded / Installing while an update runs, else Idle (4.5)."""
        job = self._firmware
        return _REPORTED[job.stage] if job is not None else IDLE

    # -- station hooks ---------------------------------------------------------------

    def advance(self, station: StationPort, now: float) -> None:
        """Time passed: start due attempts, installs and verdicts."""
        diag = self._diagnostics
        if diag is not None:
            tries = diag.tries
            if tries.due is not None and now >= tries.due:
                tries.start(self._job_id(), now)
                station.effects.append(
                    Upload(
                        tries.attempt_id, diag.location, diag.file_name, diag.content, tries.attempt
                    )
                )
            elif tries.sent_at is not None and now >= tries.sent_at + ATTEMPT_TIMEOUT:
                self.uploaded(station, tries.attempt_id, "no result from the engine", now)
        fw = self._firmware
        if fw is None:
            return
        tries = fw.tries
        if tries.due is not None and now >= tries.due:
            if fw.stage == "Scheduled":
                fw.stage = "Downloading"
                self._firmware_status(station, "Downloading", now)
            tries.start(self._job_id(), now)
            station.effects.append(Download(tries.attempt_id, fw.location, tries.attempt))
        elif tries.sent_at is not None and now >= tries.sent_at + ATTEMPT_TIMEOUT:
            self.downloaded(station, tries.attempt_id, None, "no result from the engine", now)
            fw = self._firmware
            if fw is None:
                return
        if fw.stage == "Downloaded" and station.transaction is None:
            fw.stage = "Installing"
            fw.install_at = now + self.install_seconds
            self._firmware_status(station, "Installing", now)
        if fw.stage == "Installing" and fw.install_at is not None and now >= fw.install_at:
            fw.install_at = None
            self._install(station, fw, now)

    def next_wakeup(self) -> float | None:
        """When advance() has something to do."""
        times: list[float] = []
        diag = self._diagnostics
        if diag is not None:
            times += diag.tries.wakeups()
        fw = self._firmware
        if fw is not None:
            times += fw.tries.wakeups()
            if fw.install_at is not None:
                times.append(fw.install_at)
        return min(times) if times else None

    def boot_accepted(self, station: StationPort, now: float) -> None:
        """The station booted and was accepted: a pending install is now complete."""
        fw = self._firmware
        if fw is None or fw.stage != "Rebooting":
            return
        self._firmware = None
        conn0 = station.connectors[0]
        if conn0.fault is not None and conn0.fault.vendor_error_code in (
            FIRMWARE_DOWNGRADE,
            FIRMWARE_UPGRADE_FAILED,
        ):
            station.clear_fault(now, connector_id=0)
        self._firmware_status(station, "Installed", now)
        station.security_event("FirmwareUpdated", now, f"version {station.boot_info.firmware}")

    # -- results from the engine -----------------------------------------------------

    def uploaded(self, station: StationPort, job_id: int, error: str | None, now: float) -> None:
        """The engine finished an :class:`Upload` attempt (``error`` None: it worked)."""
        job = self._diagnostics
        if job is None or not job.tries.answers(job_id):
            return  # stale: not the attempt in flight
        attempt = job.tries.attempt
        if error is None:
            self._diagnostics = None
            self._log(now, f"diagnostics {job.file_name} uploaded (attempt {attempt})")
            self._diagnostics_status(station, "Uploaded", now)
            return
        self.last_error = error
        self._log(now, f"diagnostics upload attempt {attempt} failed: {error}")
        if not job.tries.failed(now):
            self._diagnostics = None
            self._diagnostics_status(station, "UploadFailed", now)

    def downloaded(
        self,
        station: StationPort,
        job_id: int,
        content: bytes | None,
        error: str | None,
        now: float,
    ) -> None:
        """The engine finished a :class:`Download` attempt: ``content``, or ``error``."""
        job = self._firmware
        if job is None or job.stage != "Downloading" or not job.tries.answers(job_id):
            return
        attempt = job.tries.attempt
        if content is not None and error is None:
            job.tries.sent_at = None
            job.image = content
            job.stage = "Downloaded"
            self._log(now, f"firmware downloaded, {len(content)} bytes (attempt {attempt})")
            self._firmware_status(station, "Downloaded", now)
            self.advance(station, now)  # install at once unless a session runs
            return
        self.last_error = error or "no content"
        self._log(now, f"firmware download attempt {attempt} failed: {self.last_error}")
        if not job.tries.failed(now):
            self._firmware = None
            self._firmware_status(station, "DownloadFailed", now)

    # -- CALLs from the CSMS ---------------------------------------------------------

    def get_diagnostics(
        self, station: StationPort, payload: GetDiagnosticsRequest, now: float
    ) -> GetDiagnosticsResponse:
        running = self._diagnostics
        if running is not None:
            self._log(now, "GetDiagnostics while an upload runs: answered with its file name")
            return {"fileName": running.file_name}
        location = str(payload["location"])
        self._log(now, f"GetDiagnostics to {redact_url(location)}")
        compress = station.config.get_bool("CompressDiagnostic")
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(int(now)))
        base = _SAFE_NAME.sub("_", station.identity)[:200]
        file_name = f"{base}_diagnostics_{stamp}" + (".tar.gz" if compress else ".log")
        text = self._diagnostics_text(
            station,
            now,
            _parse_time(payload.get("startTime")),
            _parse_time(payload.get("stopTime")),
        )
        content = _pack(text, now) if compress else text
        retries, interval = _retries(payload)
        if urlsplit(location).scheme.lower() not in SUPPORTED_SCHEMES:
            retries = 0  # nothing will ever reach it; fail once, quickly
        self._diagnostics = _DiagnosticsJob(
            location, file_name, content, _Attempts(retries, interval, due=now)
        )
        self._diagnostics_status(station, "Uploading", now)
        return {"fileName": file_name}

    def update_firmware(
        self, station: StationPort, payload: UpdateFirmwareRequest, now: float
    ) -> UpdateFirmwareResponse:
        location = str(payload["location"])
        running = self._firmware
        if running is not None and running.stage != "Scheduled":
            self._log(now, f"UpdateFirmware ignored: an update is {running.stage.lower()}")
            return {}
        retrieve_at = _parse_time(payload.get("retrieveDate"))
        due = now if retrieve_at is None else max(now, retrieve_at)
        retries, interval = _retries(payload)
        if urlsplit(location).scheme.lower() not in SUPPORTED_SCHEMES:
            retries = 0
        self._firmware = _FirmwareJob(location, due, _Attempts(retries, interval, due=due))
        self._log(now, f"UpdateFirmware from {redact_url(location)} at {_utc(due)}")
        return {}

    # -- internals -------------------------------------------------------------------

    def _job_id(self) -> int:
        job_id = self._next_job
        self._next_job += 1
        return job_id

    def _log(self, now: float, text: str) -> None:
        if self._journal is None:
            self._journal = deque(maxlen=JOURNAL_LENGTH)
        self._journal.append((now, text))

    def _diagnostics_status(
        self, station: StationPort, status: DiagnosticsStatus, now: float
    ) -> None:
        self.last_diagnostics_status = status
        self._log(now, f"DiagnosticsStatusNotification {status}")
        payload: DiagnosticsStatusNotificationRequest = {"status": status}
        station.send("DiagnosticsStatusNotification", payload)

    def _firmware_status(self, station: StationPort, status: FirmwareStatus, now: float) -> None:
        self.last_firmware_status = status
        self._log(now, f"FirmwareStatusNotification {status}")
        payload: FirmwareStatusNotificationRequest = {"status": status}
        station.send("FirmwareStatusNotification", payload)

    def _install(self, station: StationPort, job: _FirmwareJob, now: float) -> None:
        image, job.image = job.image, b""
        running = station.boot_info.firmware
        try:
            version = parse_firmware_image(image, job.location, station.boot_info.model)
        except ImageError as exc:
            self._install_failed(station, FIRMWARE_UPGRADE_FAILED, str(exc), now)
            return
        new_key, old_key = _version_key(version), _version_key(running)
        if new_key is not None and old_key is not None and new_key < old_key:
            self._install_failed(
                station, FIRMWARE_DOWNGRADE, f"image {version} is older than {running}", now
            )
            return
        station.boot_info.firmware = version
        job.stage = "Rebooting"
        self._log(now, f"firmware {running} -> {version}: rebooting")
        station.effects.append(Reboot(hard=True, seconds=station.reboot_seconds))

    def _install_failed(self, station: StationPort, code: str, why: str, now: float) -> None:
        self._firmware = None
        self.last_error = why
        self._log(now, f"firmware installation failed ({code}): {why}")
        station.raise_fault(faults.lookup(code), now, connector_id=0)
        self._firmware_status(station, "InstallationFailed", now)

    def _diagnostics_text(
        self, station: StationPort, now: float, start: float | None, stop: float | None
    ) -> bytes:
        lo = start if start is not None else float("-inf")
        hi = stop if stop is not None else float("inf")
        b = station.boot_info
        lines = [
            "Schneider Charge Pro diagnostics (chargepro-fleet simulator)",
            f"station: {station.identity}",
            f"model: {b.model}  vendor: {b.vendor}  serial: {b.serial}",
            f"firmware: {b.firmware}  meter: {b.meter_type}",
            f"generated: {_utc(now)}",
            "window: "
            + (_utc(start) if start is not None else "-")
            + " .. "
            + (_utc(stop) if stop is not None else "-"),
            f"online: {station.online}  registration: {station.boot_status}",
            f"queued messages: {station.queued}  dropped: {station.dropped_messages}",
            "",
            "[configuration]",
        ]
        for entry in station.config.get_configuration().get("configurationKey", []):
            access = "RO" if entry["readonly"] else "RW"
            if "value" not in entry:
                lines.append(f"{entry['key']} (write-only, not shown)")
                continue
            value = str(entry["value"])
            if "://" in value:
                value = redact_url(value)
            lines.append(f"{entry['key']} = {value} ({access})")
        lines += ["", "[connectors]"]
        events: list[tuple[float, str]] = list(self._journal or ())
        for conn in station.connectors:
            fault = conn.fault
            detail = (
                f" {fault.error_code} {fault.info} {fault.vendor_error_code}".rstrip()
                if fault is not None
                else " NoError"
            )
            lines.append(
                f"{conn.connector_id}: {conn.status}{detail} since {_utc(conn.changed_at)}"
            )
            events.append((conn.changed_at, f"connector {conn.connector_id} {conn.status}"))
        meter = station.meter
        lines += [
            "",
            "[meter]",
            f"Energy.Active.Import.Register = {int(meter.energy_wh)} Wh",
            f"Current.Offered = {meter.offered:.1f} A",
            "Current.Import = " + " ".join(f"{c:.1f}" for c in meter.currents) + " A",
        ]
        tx = station.transaction
        lines += ["", "[transaction]"]
        if tx is None:
            lines.append("none")
        else:
            lines.append(
                f"local {tx.local_id}, id {tx.transaction_id}, connector {tx.connector_id}, "
                f"started {_utc(tx.started_at)}, meterStart {tx.meter_start} Wh"
            )
            events.append((tx.started_at, f"transaction {tx.local_id} started"))
        lines += ["", "[events]"]
        for t, text in sorted(events, key=lambda e: e[0]):
            if lo <= t <= hi:
                lines.append(f"{_utc(t)} {text}")
        text = "\n".join(lines) + "\n"
        secret = station.config.get("AuthorizationKey")
        if secret:
            text = text.replace(secret, "***")
        return text.encode("utf-8")


def _pack(text: bytes, now: float) -> bytes:
    """``diagnostics.log`` in a gzip'd tar, with fixed times so the bytes depend on
    ``now`` only (no clock read)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        info = tarfile.TarInfo("diagnostics.log")
        info.size = len(text)
        info.mtime = int(now)
        info.mode = 0o644
        tar.addfile(info, io.BytesIO(text))
    return gzip.compress(raw.getvalue(), mtime=int(now))


def _on_get_diagnostics(
    station: StationPort, payload: GetDiagnosticsRequest, now: float
) -> GetDiagnosticsResponse:
    return station.transfers.get_diagnostics(station, payload, now)


def _on_update_firmware(
    station: StationPort, payload: UpdateFirmwareRequest, now: float
) -> UpdateFirmwareResponse:
    return station.transfers.update_firmware(station, payload, now)


HANDLERS = {
    "GetDiagnostics": handler(_on_get_diagnostics),
    "UpdateFirmware": handler(_on_update_firmware),
}
"""CSMS actions this module answers, merged into the station's handler table."""
