"""The Charge Pro vendor error table, against the guide and OCPP 1.6's StatusNotification."""

from __future__ import annotations

import json
from pathlib import Path

import ocpp
import pytest

from fleet.model.faults import BY_VENDOR_CODE, VENDOR_ERRORS, VendorError, lookup

STATUS_NOTIFICATION = json.loads(
    (Path(ocpp.__file__).parent / "v16" / "schemas" / "StatusNotification.json").read_text()
)

# The guide's table, by hand: (number, OCPP code, info, vendor code).
GUIDE = [
    (1, "GroundFailure", "GroundFailure", "0x100206"),
    (2, "HighTemperature", "HighTemperature", "0x100101"),
    (3, "OverVoltage", "OverVoltage", "0x200206"),
    (4, "UnderVoltage", "UnderVoltage", "0x200208"),
    (5, "WeakSignal", "WeakSignal", "0x100008"),
    (6, "InternalError", "Firmware downgrade", "0x300000"),
    (7, "InternalError", "Firmware upgrade failed", "0x300001"),
    (8, "InternalError", "Front cover opened", "0x10020C"),
    (9, "InternalError", "Internal Metering card issue", "0x10020F"),
    (10, "InternalError", "Internal Power Meter communication loss", "0x300002"),
    (11, "InternalError", "Wi-Fi communication issue", "0x300004"),
    (12, "ReaderFailure", "Badge reader issue", "0x100004"),
    (13, "EVCommunicationError", "EV issue : Control Pilot (CP)", "0x100217"),
    (14, "EVCommunicationError", "Plug Presence (PP) conformity", "0x100218"),
    (15, "EVCommunicationError", "EV issue : Short-circuit CPW", "0x300005"),
    (16, "ConnectorLockFailure", "Lock / Unlock cable Failure", "0x100205"),
    (17, "InternalError", "Contactors discordance", "0x300006"),
    (18, "OverCurrentFailure", "EV Overcurrent", "0x100213"),
    (19, "OtherError", "Supervision (OCPP) issue", "0x300009"),
    (20, "OtherError", "DEM communication loss : TIC", "0x30000B"),
    (21, "OtherError", "DEM communication loss : Modbus meter", "0x30000C"),
    (22, "OtherError", "DEM communication loss : Peak controller", "0x30000D"),
    (23, "LocalListConflict", "LocalListConflict", "0x30000E"),
    (24, "NoError", "NoError", "0x0"),
    (25, "InternalError", "RDC DD (6mA) measurement board error", "0x300010"),
    (26, "OtherError", "6mA DC leakage detected", "0x300011"),
    (27, "InternalError", "Cellular Modem communication issue", "0x300003"),
    (28, "InternalError", "Issue with ISO15118 module", "0x300007"),
    (29, "EVCommunicationError", "Issue with ISO15118 module", "0x300008"),
]


def test_table_matches_the_guide_in_order() -> None:
    assert len(VENDOR_ERRORS) == 29
    assert [(e.number, e.ocpp_code, e.info, e.vendor_code) for e in VENDOR_ERRORS] == GUIDE
    assert all(e.description for e in VENDOR_ERRORS)


def test_numbers_and_vendor_codes_are_unique() -> None:
    assert len({e.number for e in VENDOR_ERRORS}) == 29
    assert len({e.vendor_code.lower() for e in VENDOR_ERRORS}) == 29
    assert set(BY_VENDOR_CODE) == {e.vendor_code for e in VENDOR_ERRORS}


def test_rows_fit_a_status_notification() -> None:
    props = STATUS_NOTIFICATION["properties"]
    codes = set(props["errorCode"]["enum"])
    for e in VENDOR_ERRORS:
        assert e.ocpp_code in codes, e
        assert len(e.info) <= props["info"]["maxLength"], e
        assert len(e.vendor_code) <= props["vendorErrorCode"]["maxLength"], e


def test_three_detections_are_disabled_by_default() -> None:
    disabled = {e.info for e in VENDOR_ERRORS if not e.enabled_by_default}
    assert disabled == {"GroundFailure", "WeakSignal", "Front cover opened"}


@pytest.mark.parametrize(
    ("query", "number"),
    [
        ("0x100205", 16),
        ("0x10020c", 8),  # hand-written codes may use lower case
        ("0x0", 24),
        ("Badge reader issue", 12),
        ("badge reader ISSUE", 12),
        ("GroundFailure", 1),
        ("ReaderFailure", 12),  # an OCPP code used by one row only
        ("0x300007", 28),
        ("0x300008", 29),
    ],
)
def test_lookup(query: str, number: int) -> None:
    found = lookup(query)
    assert isinstance(found, VendorError)
    assert found.number == number


@pytest.mark.parametrize(
    ("query", "hint"),
    [
        ("Issue with ISO15118 module", "0x300007"),  # rows 28 and 29 share it
        ("InternalError", "0x300000"),  # an OCPP code shared by many rows
        ("0x999999", "unknown vendor error"),
        ("Meltdown", "unknown vendor error"),
    ],
)
def test_lookup_refuses_unknown_or_ambiguous_names(query: str, hint: str) -> None:
    with pytest.raises(KeyError) as info:
        lookup(query)
    assert hint in str(info.value)
    assert query in str(info.value)
