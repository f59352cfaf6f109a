"""The Charge Pro's vendor error codes (guide section "Vendor Error Codes").

A fault is reported in StatusNotification.req as ``errorCode`` (OCPP's ChargePointErrorCode),
``info`` and ``vendorErrorCode``; one row of the table gives all three, so fault scenarios
pick a row instead of inventing combinations the real station never sends.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BY_VENDOR_CODE", "VENDOR_ERRORS", "UnknownVendorError", "VendorError", "lookup"]


@dataclass(frozen=True, slots=True)
class VendorError:
    """One row of the guide's table."""

    number: int
    ocpp_code: str
    info: str
    vendor_code: str
    description: str
    # The guide says three detections ship switched off; scenarios should not raise
    # them unless a profile turns them on, as a real fleet would never report them.
    enabled_by_default: bool = True


VENDOR_ERRORS: tuple[VendorError, ...] = (
    VendorError(
        1,
        "GroundFailure",
        "GroundFailure",
        "0x100206",
        "Ground Fault. This function is disabled by default.",
        enabled_by_default=False,
    ),
    VendorError(
        2,
        "HighTemperature",
        "HighTemperature",
        "0x100101",
        "Overtemperature fault inside the terminal.",
    ),
    VendorError(3, "OverVoltage", "OverVoltage", "0x200206", "Input overvoltage fault."),
    VendorError(4, "UnderVoltage", "UnderVoltage", "0x200208", "Input undervoltage fault."),
    VendorError(
        5,
        "WeakSignal",
        "WeakSignal",
        "0x100008",
        "Weak wireless signal. This function is disabled by default.",
        enabled_by_default=False,
    ),
    VendorError(
        6,
        "InternalError",
        "Firmware downgrade",
        "0x300000",
        "The charging station detects that the software version is lower than expected.",
    ),
    VendorError(
        7,
        "InternalError",
        "Firmware upgrade failed",
        "0x300001",
        "The charging station is unable to upgrade the firmware.",
    ),
    VendorError(
        8,
        "InternalError",
        "Front cover opened",
        "0x10020C",
        "Front cover opened. This function is disabled by default.",
        enabled_by_default=False,
    ),
    VendorError(
        9,
        "InternalError",
        "Internal Metering card issue",
        "0x10020F",
        "At least one metering fault has been detected.",
    ),
    VendorError(
        10,
        "InternalError",
        "Internal Power Meter communication loss",
        "0x300002",
        "Loss of communication with Modbus power meter for metering (either internal or "
        "external), for 10 consecutive unsuccessful attempts with 0.3 seconds per time. "
        "It means no more than 3 second totally loss of communication.",
    ),
    VendorError(
        11,
        "InternalError",
        "Wi-Fi communication issue",
        "0x300004",
        "Issue with Wi-Fi processor: communication lost or update impossible.",
    ),
    VendorError(
        12,
        "ReaderFailure",
        "Badge reader issue",
        "0x100004",
        "Loss of communication with the RFID, NFC reader.",
    ),
    VendorError(
        13,
        "EVCommunicationError",
        "EV issue : Control Pilot (CP)",
        "0x100217",
        'Communication fault with a Mode 3/T2 vehicle ("CP" error: Control Pilot).',
    ),
    VendorError(
        14,
        "EVCommunicationError",
        "Plug Presence (PP) conformity",
        "0x100218",
        'Cable status wrong (the value of the coding resistor "PP" is wrong).',
    ),
    VendorError(
        15,
        "EVCommunicationError",
        "EV issue : Short-circuit CPW",
        "0x300005",
        "Charging fault short-circuit on Control Pilot Wire.",
    ),
    VendorError(
        16,
        "ConnectorLockFailure",
        "Lock / Unlock cable Failure",
        "0x100205",
        "Wrong handling during the plug/unplug of the socket, or motor blocked.",
    ),
    VendorError(
        17,
        "InternalError",
        "Contactors discordance",
        "0x300006",
        "Contactors/Relay is not in the requested state: welded or blocked in open position.",
    ),
    VendorError(
        18,
        "OverCurrentFailure",
        "EV Overcurrent",
        "0x100213",
        "Overcurrent or overload charging fault due to EV.",
    ),
    VendorError(
        19,
        "OtherError",
        "Supervision (OCPP) issue",
        "0x300009",
        "Communication or configuration of Supervision (OCPP) issue.",
    ),
    VendorError(
        20,
        "OtherError",
        "DEM communication loss : TIC",
        "0x30000B",
        "Communication lost with external device for energy management (TIC).",
    ),
    VendorError(
        21,
        "OtherError",
        "DEM communication loss : Modbus meter",
        "0x30000C",
        "Communication lost with external device for energy management (Modbus meter).",
    ),
    VendorError(
        22,
        "OtherError",
        "DEM communication loss : Peak controller",
        "0x30000D",
        "Communication lost with external device for energy management (Peak controller meter).",
    ),
    VendorError(
        23,
        "LocalListConflict",
        "LocalListConflict",
        "0x30000E",
        "The authorization information received from the Central System is in conflict "
        "with the LocalAuthorizationList.",
    ),
    VendorError(24, "NoError", "NoError", "0x0", "No error to report."),
    VendorError(
        25,
        "InternalError",
        "RDC DD (6mA) measurement board error",
        "0x300010",
        "RDC DD internal device reports an internal error. (RDC self test, it will occur "
        "after Power Cycle or before Relay close each time.)",
    ),
    VendorError(
        26,
        "OtherError",
        "6mA DC leakage detected",
        "0x300011",
        "DC leakage value higher than 6mA.",
    ),
    VendorError(
        27,
        "InternalError",
        "Cellular Modem communication issue",
        "0x300003",
        "Issue with Cellular Modem processor: communication lost or update impossible.",
    ),
    # Rows 28 and 29 share their info text; only the vendor code (and the OCPP code)
    # tells hardware from software trouble, so lookup() refuses that info as ambiguous.
    VendorError(
        28,
        "InternalError",
        "Issue with ISO15118 module",
        "0x300007",
        "Issue with HW of ISO15118 module: communication lost or update impossible.",
    ),
    VendorError(
        29,
        "EVCommunicationError",
        "Issue with ISO15118 module",
        "0x300008",
        "Issue with SW of ISO15118 module: communication lost or update impossible.",
    ),
)

BY_VENDOR_CODE: dict[str, VendorError] = {e.vendor_code: e for e in VENDOR_ERRORS}

# Profiles are hand-written: accept "0x10020c" as well as the guide's "0x10020C".
_BY_CODE_FOLDED: dict[str, VendorError] = {e.vendor_code.lower(): e for e in VENDOR_ERRORS}
_BY_INFO_FOLDED: dict[str, list[VendorError]] = {}
for _e in VENDOR_ERRORS:
    _BY_INFO_FOLDED.setdefault(_e.info.casefold(), []).append(_e)
del _e


class UnknownVendorError(KeyError):
    """Raised by lookup(); a KeyError whose message reads as a sentence, not a repr."""

    def __str__(self) -> str:
        return str(self.args[0])


def lookup(code_or_name: str) -> VendorError:
    """Find a row by vendor code ("0x100205") or info name ("Badge reader issue").

    Both are matched case-insensitively; an OCPP code used by a single row ("ReaderFailure")
    is accepted too, for convenience. An info shared by several rows (28 and 29,
    "Issue with ISO15118 module") raises UnknownVendorError naming the vendor codes to
    use instead, rather than silently picking one.
    """
    key = code_or_name.strip()
    found = _BY_CODE_FOLDED.get(key.lower())
    if found is not None:
        return found
    rows = _BY_INFO_FOLDED.get(key.casefold(), [])
    if len(rows) == 1:
        return rows[0]
    if rows:
        codes = ", ".join(f"{e.vendor_code} ({e.ocpp_code})" for e in rows)
        raise UnknownVendorError(
            f"vendor error {code_or_name!r} is ambiguous: use one of the vendor codes {codes}"
        )
    same_ocpp = [e for e in VENDOR_ERRORS if e.ocpp_code.casefold() == key.casefold()]
    if len(same_ocpp) == 1:
        return same_ocpp[0]
    if same_ocpp:
        codes = ", ".join(e.vendor_code for e in same_ocpp)
        raise UnknownVendorError(
            f"vendor error {code_or_name!r} is an OCPP error code shared by several rows: "
            f"use one of the vendor codes {codes}"
        )
    raise UnknownVendorError(
        f"unknown vendor error {code_or_name!r}: expected a vendor code such as '0x100205' "
        "or an info name from the Charge Pro guide"
    )
