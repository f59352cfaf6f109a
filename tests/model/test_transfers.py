"""GetDiagnostics and UpdateFirmware in the model (fleet.model.features.firmware), on a fake clock.

A tiny CSMS answers every CALL the station sends and validates both directions against
the official OCPP 1.6 schemas; the test plays the engine, taking Upload / Download
effects off ``station.effects`` and answering them with ``uploaded`` / ``downloaded``.
"""

from __future__ import annotations

import copy
import gzip
import io
import tarfile
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from fleet.model.config import ConfigStore
from fleet.model.features.firmware import (
    ATTEMPT_TIMEOUT,
    DEFAULT_RETRIES,
    Download,
    ImageError,
    Upload,
    firmware_image,
    parse_firmware_image,
    redact_url,
)
from fleet.model.records import Reboot
from fleet.model.station import Station
from fleet.protocol.schemas import validate

T0 = 1_700_000_000.0
SECRET = "s3cr3t-authorization-key-0123456789"
JsonDict = dict[str, Any]


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Sent:
    at: float
    action: str
    payload: JsonDict


class Csms:
    """Answers at once, validates everything, and keeps what the station sent."""

    def __init__(self, station: Station) -> None:
        self.station = station
        self.now = T0
        self.log: list[Sent] = []

    def flush(self) -> None:
        st = self.station
        for _ in range(1000):
            msg = st.next_message(self.now)
            if msg is None:
                return
            validate(msg.action, msg.payload, response=False)
            self.log.append(Sent(self.now, msg.action, copy.deepcopy(msg.payload)))
            reply: JsonDict = {}
            if msg.action == "BootNotification":
                reply = {"status": "Accepted", "currentTime": iso(self.now), "interval": 3600}
            elif msg.action == "Heartbeat":
                reply = {"currentTime": iso(self.now)}
            elif msg.action in ("Authorize", "StartTransaction"):
                reply = {"idTagInfo": {"status": "Accepted"}}
                if msg.action == "StartTransaction":
                    reply["transactionId"] = 7
            validate(msg.action, reply, response=True)
            st.on_answer(reply, self.now)
        raise AssertionError("the station never stops sending")

    def run(self, until: float) -> None:
        """Let time pass up to ``until``, waking the station whenever it asks."""
        st = self.station
        self.flush()
        for _ in range(10_000):
            wake = st.next_wakeup()
            if wake is None or wake > until:
                break
            self.now = max(self.now, wake)
            st.advance(self.now)
            self.flush()
        self.now = max(self.now, until)
        st.advance(self.now)
        self.flush()

    def call(self, action: str, payload: JsonDict) -> JsonDict:
        validate(action, payload, response=False)
        answer = self.station.handle_call(action, payload, self.now)
        validate(action, answer, response=True)
        self.station.advance(self.now)  # what the engine's pump does next
        self.flush()
        return answer

    def effects(self) -> list[object]:
        out = list(self.station.effects)
        self.station.effects.clear()
        return out

    def reboot(self, effect: Reboot) -> None:
        """Do what the engine does with a Reboot effect."""
        st = self.station
        st.disconnected(self.now)
        self.now += effect.seconds
        st.rebooted(self.now)
        st.connected(self.now)
        self.flush()

    def statuses(self, action: str) -> list[str]:
        return [s.payload["status"] for s in self.log if s.action == action]

    def actions(self, since: float = float("-inf")) -> list[str]:
        return [s.action for s in self.log if s.at >= since]


def booted(**config: Any) -> Csms:
    cfg = ConfigStore({"MinimumStatusDuration": 0, "AuthorizationKey": SECRET, **config})
    station = Station("CP-T1", T0, config=cfg)
    csms = Csms(station)
    station.connected(T0)
    csms.flush()
    assert station.boot_status == "Accepted"
    return csms


def only(effects: list[object], kind: type) -> Any:
    assert len(effects) == 1, effects
    assert isinstance(effects[0], kind), effects
    return effects[0]


def untar(content: bytes) -> str:
    with tarfile.open(fileobj=io.BytesIO(content), mode="r:gz") as tar:
        assert tar.getnames() == ["diagnostics.log"]
        member = tar.extractfile("diagnostics.log")
        assert member is not None
        return member.read().decode()


# -- diagnostics ------------------------------------------------------------------------


def test_diagnostics_compressed_upload_succeeds() -> None:
    csms = booted(StationName="Depot 4")
    answer = csms.call("GetDiagnostics", {"location": "ftp://u:pw@files.example/diag/"})
    name = answer["fileName"]
    assert name == "CP-T1_diagnostics_20231114T221320Z.tar.gz"
    assert csms.statuses("DiagnosticsStatusNotification") == ["Uploading"]
    assert csms.station.transfers.diagnostics_status == "Uploading"
    up = only(csms.effects(), Upload)
    assert (up.url, up.file_name, up.attempt) == ("ftp://u:pw@files.example/diag/", name, 1)
    assert "pw" not in repr(up)

    text = untar(up.content)
    assert "station: CP-T1" in text
    assert "firmware: 3.0.0" in text
    assert "HeartbeatInterval = 3600 (RW)" in text  # the interval the CSMS set at boot
    assert "StationName = Depot 4 (RW)" in text
    assert "NumberOfConnectors = 1 (RO)" in text
    assert "AuthorizationKey (write-only, not shown)" in text
    assert SECRET not in text
    assert "1: Available NoError" in text
    assert "Energy.Active.Import.Register = 0 Wh" in text
    assert "GetDiagnostics to ftp://u:***@files.example/diag/" in text

    csms.now += 3
    csms.station.transfers.uploaded(csms.station, up.job_id, None, csms.now)
    csms.flush()
    assert csms.statuses("DiagnosticsStatusNotification") == ["Uploading", "Uploaded"]
    assert csms.station.transfers.diagnostics_status == "Idle"
    assert csms.station.transfers.last_diagnostics_status == "Uploaded"
    assert csms.station.next_wakeup() is None or csms.station.next_wakeup() > csms.now


def test_diagnostics_uncompressed_is_a_plain_log() -> None:
    csms = booted(CompressDiagnostic=False)
    answer = csms.call("GetDiagnostics", {"location": "http://h/up"})
    assert answer["fileName"].endswith(".log")
    up = only(csms.effects(), Upload)
    text = up.content.decode()
    assert text.startswith("Schneider Charge Pro diagnostics")
    assert "CompressDiagnostic = False (RW)" in text
    assert SECRET not in text


def test_diagnostics_secret_never_leaks_even_through_other_keys() -> None:
    csms = booted(StationName=SECRET[:30])  # a careless operator pasted the key
    csms.call("GetDiagnostics", {"location": "http://h/up"})
    up = only(csms.effects(), Upload)
    text = untar(up.content)
    assert SECRET[:30] in text  # only the whole key is a secret...
    csms2 = booted(StationName=SECRET)
    csms2.call("GetDiagnostics", {"location": "http://h/up"})
    assert SECRET not in untar(only(csms2.effects(), Upload).content)  # ...and it is masked


def test_diagnostics_retries_then_upload_failed() -> None:
    csms = booted()
    st = csms.station
    csms.call("GetDiagnostics", {"location": "http://h/up", "retries": 2, "retryInterval": 10})
    attempts: list[tuple[float, int]] = []
    for _ in range(3):
        up = only(csms.effects(), Upload)
        attempts.append((csms.now, up.attempt))
        st.transfers.uploaded(st, up.job_id, "ConnectionRefusedError: refused", csms.now)
        csms.flush()
        if st.transfers.diagnostics_status == "Idle":
            break
        assert csms.effects() == []  # nothing before retryInterval
        csms.run(csms.now + 9.9)
        assert csms.effects() == []
        csms.run(csms.now + 0.1)
    assert attempts == [(T0, 1), (T0 + 10, 2), (T0 + 20, 3)]
    assert csms.statuses("DiagnosticsStatusNotification") == ["Uploading", "UploadFailed"]
    assert st.transfers.last_error == "ConnectionRefusedError: refused"
    assert csms.effects() == []


def test_diagnostics_retries_default_when_absent() -> None:
    csms = booted()
    st = csms.station
    csms.call("GetDiagnostics", {"location": "http://h/up"})
    count = 0
    while True:
        effects = csms.effects()
        if not effects:
            break
        up = only(effects, Upload)
        count += 1
        st.transfers.uploaded(st, up.job_id, "refused", csms.now)
        csms.run(csms.now + 3600)
    assert count == DEFAULT_RETRIES + 1
    assert csms.statuses("DiagnosticsStatusNotification") == ["Uploading", "UploadFailed"]


def test_second_get_diagnostics_while_running_gets_same_file_name() -> None:
    csms = booted()
    first = csms.call("GetDiagnostics", {"location": "http://h/up"})
    up = only(csms.effects(), Upload)
    csms.now += 1
    second = csms.call("GetDiagnostics", {"location": "http://other/up"})
    assert second == first
    assert csms.effects() == []  # no second upload
    assert csms.statuses("DiagnosticsStatusNotification") == ["Uploading"]
    csms.station.transfers.uploaded(csms.station, up.job_id, None, csms.now)
    csms.flush()
    third = csms.call("GetDiagnostics", {"location": "http://other/up"})
    assert third["fileName"] != first["fileName"]
    assert only(csms.effects(), Upload).url == "http://other/up"


def test_stale_and_duplicate_results_are_ignored() -> None:
    csms = booted()
    st = csms.station
    csms.call("GetDiagnostics", {"location": "http://h/up", "retries": 1, "retryInterval": 5})
    up = only(csms.effects(), Upload)
    st.transfers.uploaded(st, up.job_id + 99, None, csms.now)  # unknown job
    st.transfers.uploaded(st, up.job_id, "boom", csms.now)
    st.transfers.uploaded(st, up.job_id, None, csms.now)  # no attempt in flight now
    csms.flush()
    assert csms.statuses("DiagnosticsStatusNotification") == ["Uploading"]
    csms.run(csms.now + 5)
    up2 = only(csms.effects(), Upload)
    assert up2.attempt == 2
    st.transfers.uploaded(st, up2.job_id, None, csms.now)
    csms.flush()
    assert csms.statuses("DiagnosticsStatusNotification") == ["Uploading", "Uploaded"]


def test_an_attempt_never_answered_times_out() -> None:
    csms = booted()
    st = csms.station
    csms.call("GetDiagnostics", {"location": "http://h/up", "retries": 1, "retryInterval": 5})
    lost = only(csms.effects(), Upload)
    assert st.next_wakeup() == T0 + ATTEMPT_TIMEOUT
    csms.run(T0 + ATTEMPT_TIMEOUT + 5)
    retry = only(csms.effects(), Upload)
    assert retry.attempt == 2 and retry.job_id != lost.job_id
    st.transfers.uploaded(st, lost.job_id, None, csms.now)  # the lost result, too late
    csms.flush()
    assert csms.statuses("DiagnosticsStatusNotification") == ["Uploading"]
    csms.run(csms.now + ATTEMPT_TIMEOUT)
    assert csms.statuses("DiagnosticsStatusNotification") == ["Uploading", "UploadFailed"]
    assert st.transfers.last_error == "no result from the engine"


def test_diagnostics_events_are_bounded_by_start_and_stop_time() -> None:
    csms = booted(CompressDiagnostic=False)
    st = csms.station
    # Some history: one diagnostics job at T0+100, a firmware request at T0+200.
    csms.run(T0 + 100)
    csms.call("GetDiagnostics", {"location": "http://h/a"})
    st.transfers.uploaded(st, only(csms.effects(), Upload).job_id, None, csms.now)
    csms.run(T0 + 200)
    csms.call("UpdateFirmware", {"location": "http://h/fw", "retrieveDate": iso(T0 + 10_000)})
    csms.run(T0 + 300)
    csms.call(
        "GetDiagnostics",
        {"location": "http://h/b", "startTime": iso(T0 + 150), "stopTime": iso(T0 + 250)},
    )
    text = only(csms.effects(), Upload).content.decode()
    assert f"window: {iso(T0 + 150)} .. {iso(T0 + 250)}" in text
    events = text.split("[events]\n", 1)[1]
    assert "UpdateFirmware from http://h/fw" in events
    assert "GetDiagnostics to http://h/a" not in events
    assert "GetDiagnostics to http://h/b" not in events
    # The configuration snapshot is not an event: it is always there.
    assert "HeartbeatInterval = " in text


def test_unsupported_scheme_fails_after_one_attempt() -> None:
    csms = booted()
    st = csms.station
    csms.call("GetDiagnostics", {"location": "file:///etc/", "retries": 5})
    up = only(csms.effects(), Upload)
    st.transfers.uploaded(st, up.job_id, "unsupported scheme 'file'", csms.now)
    csms.flush()
    assert csms.statuses("DiagnosticsStatusNotification") == ["Uploading", "UploadFailed"]


# -- firmware ---------------------------------------------------------------------------


def _update(csms: Csms, image: bytes, *, at: float | None = None, url: str = "") -> Download:
    payload: JsonDict = {
        "location": url or "https://fw.example/chargepro.bin",
        "retrieveDate": iso(at if at is not None else csms.now),
    }
    assert csms.call("UpdateFirmware", payload) == {}
    if at is not None:
        csms.run(at)
    dl = only(csms.effects(), Download)
    st = csms.station
    st.transfers.downloaded(st, dl.job_id, image, None, csms.now)
    csms.flush()
    return dl


def test_firmware_update_waits_for_retrieve_date_then_installs_and_reboots() -> None:
    csms = booted()
    st = csms.station
    st.transfers.install_seconds = 5.0
    at = T0 + 600
    assert (
        csms.call(
            "UpdateFirmware",
            {"location": "https://fw.example/cp.bin", "retrieveDate": iso(at), "retries": 1},
        )
        == {}
    )
    assert csms.effects() == []
    assert st.next_wakeup() == at
    assert st.transfers.firmware_status == "Idle"  # scheduled, nothing running yet
    csms.run(at - 1)
    assert csms.effects() == []
    assert csms.statuses("FirmwareStatusNotification") == []
    csms.run(at)
    dl = only(csms.effects(), Download)
    assert (dl.url, dl.attempt) == ("https://fw.example/cp.bin", 1)
    assert csms.statuses("FirmwareStatusNotification") == ["Downloading"]
    assert st.transfers.firmware_status == "Downloading"

    csms.now += 2
    st.transfers.downloaded(st, dl.job_id, firmware_image("3.1.0", b"\x00" * 100), None, csms.now)
    csms.flush()
    assert csms.statuses("FirmwareStatusNotification") == [
        "Downloading",
        "Downloaded",
        "Installing",
    ]
    assert st.transfers.firmware_status == "Installing"
    assert st.boot_info.firmware == "3.0.0"  # not yet
    assert csms.effects() == []
    csms.run(csms.now + 5)
    reboot = only(csms.effects(), Reboot)
    assert reboot.hard and reboot.seconds == st.reboot_seconds
    assert st.boot_info.firmware == "3.1.0"
    assert st.transfers.firmware_status == "Installing"

    since = csms.now
    csms.reboot(reboot)
    after = [s for s in csms.log if s.at > since]
    actions = [s.action for s in after]
    assert actions[0] == "BootNotification"
    assert after[0].payload["firmwareVersion"] == "3.1.0"
    assert actions.index("FirmwareStatusNotification") > 0
    assert csms.statuses("FirmwareStatusNotification")[-1] == "Installed"
    events = [s.payload for s in after if s.action == "SecurityEventNotification"]
    assert [e["type"] for e in events].count("FirmwareUpdated") == 1
    assert st.transfers.firmware_status == "Idle"
    assert st.transfers.last_firmware_status == "Installed"

    # A later triggered BootNotification does not report Installed again.
    csms.call("TriggerMessage", {"requestedMessage": "BootNotification"})
    assert csms.statuses("FirmwareStatusNotification").count("Installed") == 1


def test_firmware_updated_security_event_only_when_enabled() -> None:
    csms = booted(SecurityEventsEnabled=False)
    st = csms.station
    st.transfers.install_seconds = 0.0
    _update(csms, firmware_image("3.0.1"))
    csms.reboot(only(csms.effects(), Reboot))
    assert csms.statuses("FirmwareStatusNotification")[-1] == "Installed"
    assert "SecurityEventNotification" not in csms.actions()  # no event of any kind


def test_firmware_downgrade_raises_0x300000() -> None:
    csms = booted()
    st = csms.station
    st.transfers.install_seconds = 1.0
    _update(csms, firmware_image("2.9.9"))
    csms.run(csms.now + 1)
    assert csms.effects() == []  # no reboot
    assert csms.statuses("FirmwareStatusNotification") == [
        "Downloading",
        "Downloaded",
        "Installing",
        "InstallationFailed",
    ]
    assert st.boot_info.firmware == "3.0.0"
    faulted = [
        s.payload
        for s in csms.log
        if s.action == "StatusNotification" and s.payload["connectorId"] == 0
    ][-1]
    assert faulted["status"] == "Faulted"
    assert faulted["errorCode"] == "InternalError"
    assert faulted["vendorErrorCode"] == "0x300000"
    assert faulted["info"] == "Firmware downgrade"
    assert st.transfers.firmware_status == "Idle"

    # A good image afterwards installs and clears the fault.
    _update(csms, firmware_image("3.2.0"))
    csms.run(csms.now + 1)
    csms.reboot(only(csms.effects(), Reboot))
    assert csms.statuses("FirmwareStatusNotification")[-1] == "Installed"
    assert st.connectors[0].fault is None
    assert st.status(0) == "Available"


@pytest.mark.parametrize(
    "image",
    [
        b"",
        b"\x7fELF garbage without a version",
        b'{"firmware": "3.1.0"',  # header never ends
        b'{"firmware": 3}\npayload',
        b'{"firmware": "abc"}\npayload',
        b'["not", "an", "object"]\n',
        firmware_image("3.1.0", b"payload")[:-1] + b"X",  # checksum mismatch
        firmware_image("3.1.0", models=["EVB1A22P4RI"]),  # another model's image
    ],
)
def test_corrupt_image_raises_0x300001(image: bytes) -> None:
    csms = booted()
    st = csms.station
    st.transfers.install_seconds = 0.0
    _update(csms, image)
    assert csms.effects() == []
    assert csms.statuses("FirmwareStatusNotification")[-1] == "InstallationFailed"
    assert st.connectors[0].fault is not None
    assert st.connectors[0].fault.vendor_error_code == "0x300001"
    assert st.boot_info.firmware == "3.0.0"


def test_download_failure_after_retries() -> None:
    csms = booted()
    st = csms.station
    csms.call(
        "UpdateFirmware",
        {
            "location": "ftp://fw.example/cp.bin",
            "retrieveDate": iso(T0),
            "retries": 2,
            "retryInterval": 30,
        },
    )
    times = []
    while True:
        effects = csms.effects()
        if not effects:
            break
        dl = only(effects, Download)
        times.append(csms.now)
        st.transfers.downloaded(st, dl.job_id, None, "FTP 550 No such file", csms.now)
        csms.run(csms.now + 30)
    assert times == [T0, T0 + 30, T0 + 60]
    assert csms.statuses("FirmwareStatusNotification") == ["Downloading", "DownloadFailed"]
    assert st.transfers.firmware_status == "Idle"
    assert st.connectors[0].fault is None  # a failed download is no fault


def test_install_waits_for_the_charging_session_to_end() -> None:
    csms = booted()
    st = csms.station
    st.transfers.install_seconds = 0.0
    st.plug_in(csms.now)
    st.present_tag("TAG", csms.now)
    csms.flush()
    assert st.transaction is not None
    _update(csms, firmware_image("3.1.0"))
    assert csms.statuses("FirmwareStatusNotification") == ["Downloading", "Downloaded"]
    assert st.transfers.firmware_status == "Downloaded"
    csms.run(csms.now + 600)
    assert csms.effects() == []
    st.unplug(csms.now)
    csms.run(csms.now)
    assert csms.statuses("FirmwareStatusNotification")[-1] == "Installing"
    only(csms.effects(), Reboot)
    # The StopTransaction went out before the reboot.
    assert "StopTransaction" in csms.actions()


def test_second_update_firmware_replaces_a_scheduled_one_only() -> None:
    csms = booted()
    st = csms.station
    csms.call("UpdateFirmware", {"location": "http://h/a.bin", "retrieveDate": iso(T0 + 100)})
    csms.call("UpdateFirmware", {"location": "http://h/b.bin", "retrieveDate": iso(T0 + 50)})
    csms.run(T0 + 100)
    dl = only(csms.effects(), Download)
    assert dl.url == "http://h/b.bin"
    assert csms.now == T0 + 100 and st.transfers.firmware_status == "Downloading"
    # While it downloads, a new request changes nothing.
    csms.call("UpdateFirmware", {"location": "http://h/c.bin", "retrieveDate": iso(T0)})
    csms.run(T0 + 200)
    assert csms.effects() == []
    assert csms.statuses("FirmwareStatusNotification") == ["Downloading"]


def test_retrieve_date_in_the_past_starts_at_once() -> None:
    csms = booted()
    csms.now += 1000
    csms.call("UpdateFirmware", {"location": "http://h/a.bin", "retrieveDate": iso(T0)})
    assert isinstance(only(csms.effects(), Download), Download)
    assert csms.statuses("FirmwareStatusNotification") == ["Downloading"]


def test_statuses_queued_offline_go_out_after_reconnect() -> None:
    csms = booted()
    st = csms.station
    csms.call("GetDiagnostics", {"location": "http://h/up"})
    up = only(csms.effects(), Upload)
    st.disconnected(csms.now)
    st.transfers.uploaded(st, up.job_id, None, csms.now)
    csms.flush()
    st.connected(csms.now)
    csms.flush()
    assert csms.statuses("DiagnosticsStatusNotification") == ["Uploading", "Uploaded"]


# -- the image format and helpers ------------------------------------------------------------


def test_image_format() -> None:
    image = firmware_image("3.1.0-rc1", b"abc", models=["EVB4S22N40M"])
    header, _, payload = image.partition(b"\n")
    assert payload == b"abc"
    assert header.startswith(b'{"firmware":"3.1.0-rc1"')
    assert parse_firmware_image(image, model="EVB4S22N40M") == "3.1.0-rc1"
    # Foreign images: the version comes from the file name in the URL.
    url = "https://cdn.example/ChargePro_3.2.1.bin?sig=abc"
    assert parse_firmware_image(b"\x00\x01binary", url) == "3.2.1"
    with pytest.raises(ImageError):
        parse_firmware_image(b"\x00\x01binary", "https://cdn.example/latest.bin")


def test_foreign_image_version_from_url_installs() -> None:
    csms = booted()
    csms.station.transfers.install_seconds = 0.0
    _update(csms, b"\x00binary", url="https://cdn.example/ChargePro_3.0.0.bin")
    csms.reboot(only(csms.effects(), Reboot))  # same version: a reinstall is allowed
    assert csms.statuses("FirmwareStatusNotification")[-1] == "Installed"


def test_redact_url() -> None:
    assert redact_url("ftp://user:pa%40ss@h:21/d/") == "ftp://user:***@h:21/d/"
    assert redact_url("https://h/x") == "https://h/x"
    assert "pw" not in repr(Download(1, "https://u:pw@h/f.bin", 1))


def test_gzip_is_deterministic_for_a_given_time() -> None:
    a, b = booted(), booted()
    a.call("GetDiagnostics", {"location": "http://h/up"})
    b.call("GetDiagnostics", {"location": "http://h/up"})
    ca = only(a.effects(), Upload).content
    cb = only(b.effects(), Upload).content
    assert ca == cb
    assert gzip.decompress(ca)[:15] == b"diagnostics.log"
