"""The fault catalogue (what each vendor error does) and the station honouring it.

Rows are checked against OCPP 1.6's own enums (StatusNotification errorCode,
StopTransaction reason); the station runs on the fake clock of test_station.
"""

from __future__ import annotations

import json
from pathlib import Path

import ocpp
import pytest
from test_station import MSD0, T0, Csms, Recorder, make, start_session

from fleet.model.faults import (
    AUTO,
    BEHAVIOURS,
    CLEARINGS,
    DISABLED_BY_DEFAULT,
    POWER_CYCLE,
    STAYS,
    VENDOR_ERRORS,
    VendorError,
    enabled_codes,
    lookup,
)
from fleet.model.station import Station

SCHEMAS = Path(ocpp.__file__).parent / "v16" / "schemas"
ERROR_CODES = set(
    json.loads((SCHEMAS / "StatusNotification.json").read_text())["properties"]["errorCode"]["enum"]
)
STOP_REASONS = set(
    json.loads((SCHEMAS / "StopTransaction.json").read_text())["properties"]["reason"]["enum"]
)
ERRORS = [e for e in VENDOR_ERRORS if e.is_error]
FAULTING = [e for e in ERRORS if e.faults]
REPORTED = [e for e in ERRORS if not e.faults]


def _id(e: VendorError) -> str:
    return f"{e.vendor_code}-{e.ocpp_code}"


# -- the catalogue ------------------------------------------------------------------------


def test_every_row_has_its_behaviour() -> None:
    assert len(VENDOR_ERRORS) == 29
    assert set(BEHAVIOURS) == {e.vendor_code for e in VENDOR_ERRORS}
    for e in VENDOR_ERRORS:
        b = e.behaviour
        assert e.ocpp_code in ERROR_CODES, e
        assert isinstance(b.faults, bool), e
        assert b.connector in (0, 1), e
        assert b.clears in CLEARINGS, e
        assert len(b.why) > 20, e
        if b.faults:
            assert b.stop_reason in STOP_REASONS, e
        else:
            assert b.stop_reason is None, e


def test_no_error_is_not_an_error() -> None:
    (no_error,) = [e for e in VENDOR_ERRORS if not e.is_error]
    assert no_error.vendor_code == "0x0" and not no_error.faults
    assert len(ERRORS) == 28


def test_the_main_decisions() -> None:
    """Spot checks of the table (see fleet/model/faults.py for the reasoning)."""
    # Protection trips stop with EmergencyStop; other faults with Other.
    for code in ("0x100206", "0x100213", "0x300011"):
        assert lookup(code).behaviour.stop_reason == "EmergencyStop"
    assert {e.behaviour.stop_reason for e in FAULTING} == {"EmergencyStop", "Other"}
    # Communication losses that do not touch the charging circuit are reported only.
    for code in ("0x30000B", "0x30000C", "0x30000D", "0x100008", "0x300004", "0x300003"):
        assert not lookup(code).faults, code
        assert lookup(code).behaviour.connector == 0, code
    assert not lookup("0x30000E").faults  # LocalListConflict
    assert lookup("0x100205").faults and lookup("0x100205").behaviour.connector == 1
    assert lookup("0x100101").behaviour.connector == 0  # inside the terminal
    assert lookup("0x300010").behaviour.clears == POWER_CYCLE  # self-test at power-up
    assert lookup("0x300006").behaviour.clears == STAYS  # welded contactor
    assert lookup("0x30000B").behaviour.clears == AUTO
    assert len(FAULTING) == 17 and len(REPORTED) == 11


def test_the_guide_s_disabled_by_default_detections() -> None:
    """Rows 1, 5 and 8 say "This function is disabled by default"; nothing else does."""
    flagged = {e.vendor_code for e in VENDOR_ERRORS if "disabled by default" in e.description}
    assert flagged == DISABLED_BY_DEFAULT == {"0x100206", "0x100008", "0x10020C"}
    assert {lookup(c).info for c in DISABLED_BY_DEFAULT} == {
        "GroundFailure",
        "WeakSignal",
        "Front cover opened",
    }


def test_a_profile_enables_disabled_detections_by_code_or_name() -> None:
    assert enabled_codes(["GroundFailure", "0x10020c"]) == {"0x100206", "0x10020C"}
    assert enabled_codes([]) == frozenset()
    with pytest.raises(ValueError, match="enabled by default"):
        enabled_codes(["0x100101"])  # HighTemperature is always on
    with pytest.raises(KeyError, match="unknown vendor error"):
        enabled_codes(["0x123456"])


def test_latched_and_stays_until_repaired() -> None:
    """Only the RDC-DD self-test error (it runs "after Power Cycle") is latched until a
    power cycle; the hardware defects stay until repaired."""
    latched = {code for code, b in BEHAVIOURS.items() if b.clears == POWER_CYCLE}
    assert latched == {"0x300010"}
    stays = {code for code, b in BEHAVIOURS.items() if b.clears == STAYS}
    assert stays == {"0x300000", "0x300001", "0x10020F", "0x300006", "0x300007"}


# -- the station --------------------------------------------------------------------------


def _charging() -> tuple[Station, Csms, Recorder]:
    rec = Recorder()
    st, c = make(MSD0, observer=rec)
    st.enabled_faults = DISABLED_BY_DEFAULT  # the profile switches every detection on
    start_session(st, c, T0 + 10)
    c.run(T0 + 40)
    assert st.status(1) == "Charging"
    return st, c, rec


def _last_status(c: Csms, connector: int) -> dict[str, object]:
    return [p for p in c.payloads("StatusNotification") if p["connectorId"] == connector][-1]


@pytest.mark.parametrize("error", FAULTING, ids=_id)
def test_a_faulting_error_stops_the_transaction_with_its_reason(error: VendorError) -> None:
    st, c, rec = _charging()
    cid = error.behaviour.connector
    c.do(st.raise_fault, error, connector_id=cid)
    sent = _last_status(c, cid)
    assert sent["status"] == "Faulted"
    assert (sent["errorCode"], sent["info"], sent["vendorErrorCode"]) == (
        error.ocpp_code,
        error.info,
        error.vendor_code,
    )
    (stop,) = c.payloads("StopTransaction")
    assert stop["reason"] == error.behaviour.stop_reason
    assert rec.of("transaction_stopped")[0][1] == error.behaviour.stop_reason
    c.run(T0 + 60)
    c.do(st.clear_fault, connector_id=cid)
    recovered = _last_status(c, cid)
    assert recovered["errorCode"] == "NoError" and "vendorErrorCode" not in recovered
    assert recovered["status"] == ("Available" if cid == 0 else "Finishing")


@pytest.mark.parametrize("error", REPORTED, ids=_id)
def test_a_reported_error_leaves_the_status_and_charging_alone(error: VendorError) -> None:
    st, c, rec = _charging()
    cid = error.behaviour.connector
    before = st.status(cid)
    n = len(c.payloads("StatusNotification"))
    c.do(st.raise_fault, error, connector_id=cid)
    (sent,) = c.payloads("StatusNotification")[n:]
    assert sent["connectorId"] == cid and sent["status"] == before
    assert (sent["errorCode"], sent["info"], sent["vendorErrorCode"]) == (
        error.ocpp_code,
        error.info,
        error.vendor_code,
    )
    c.run(T0 + 130)
    assert c.sent("StopTransaction") == []
    assert st.status(1) == "Charging" and len(c.sent("MeterValues")) > 0
    n = len(c.payloads("StatusNotification"))
    c.do(st.clear_fault, connector_id=cid)
    (recovered,) = c.payloads("StatusNotification")[n:]
    assert (recovered["connectorId"], recovered["status"]) == (cid, before)
    assert recovered["errorCode"] == "NoError" and "vendorErrorCode" not in recovered
    assert rec.of("transaction_stopped") == []


def test_a_reported_error_honours_minimum_status_duration() -> None:
    st, c = make({"MinimumStatusDuration": 10})
    c.run(T0 + 5)
    c.do(st.plug_in)  # Preparing, not yet reported
    c.do(st.raise_fault, lookup("0x30000B"), connector_id=1)
    assert c.statuses(1)[-1:] == ["Available"]
    c.run(T0 + 16)
    last = _last_status(c, 1)
    assert (last["status"], last["vendorErrorCode"]) == ("Preparing", "0x30000B")


def test_a_reported_error_does_not_mask_an_active_fault() -> None:
    st, c = make(MSD0)
    c.run(T0 + 5)
    c.do(st.raise_fault, lookup("0x100217"))  # Control Pilot: Faulted
    c.do(st.raise_fault, lookup("0x300008"))  # ISO 15118 software: reported once
    last = _last_status(c, 1)
    assert (last["status"], last["vendorErrorCode"]) == ("Faulted", "0x300008")
    assert st.status(1) == "Faulted"
    assert st.connectors[1].fault is not None
    assert st.connectors[1].fault.vendor_error_code == "0x100217"
    c.do(st.clear_fault)
    assert _last_status(c, 1)["status"] == "Available"


def test_clearing_without_a_fault_sends_nothing() -> None:
    st, c = make(MSD0)
    c.run(T0 + 5)
    n = len(c.log)
    c.do(st.clear_fault)
    assert len(c.log) == n
