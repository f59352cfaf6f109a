"""The Charge Pro's vendor error codes (guide section "Vendor Error Codes").

A fault is reported in StatusNotification.req as ``errorCode`` (OCPP's ChargePointErrorCode),
``info`` and ``vendorErrorCode``; one row of the table gives all three, so fault scenarios
pick a row instead of inventing combinations the real station never sends.

:data:`BEHAVIOURS` adds what the guide's table leaves out, per row: whether the error
faults the connector (and the StopTransaction reason of a transaction it ends) or is
reported with the status unchanged, the connector it is reported on, and how it clears.
``Station.raise_fault`` / ``clear_fault`` and fault storms follow it.

Three detections ship switched off ("This function is disabled by default": GroundFailure,
WeakSignal, Front cover opened, :data:`DISABLED_BY_DEFAULT`): a station raises them only
where its profile switches them on (``faults.enable``, see :func:`enabled_codes`).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "AUTO",
    "BEHAVIOURS",
    "BY_VENDOR_CODE",
    "CLEARINGS",
    "DISABLED_BY_DEFAULT",
    "POWER_CYCLE",
    "STAYS",
    "VENDOR_ERRORS",
    "Behaviour",
    "UnknownVendorError",
    "VendorError",
    "enabled_codes",
    "lookup",
]

# How an error clears (``Behaviour.clears``).
AUTO = "auto"
"""Clears by itself once the condition ends (communication back, cover closed, ...)."""
POWER_CYCLE = "power-cycle"
"""Latched until the next power cycle (its self-test runs at power-up): a Reset, which
restarts the software on a powered unit, does not clear it; a power cut does."""
STAYS = "stays"
"""Stays until someone acts: a repair, new firmware or a corrected configuration. No
timer clears it (a fault storm's ``duration`` does not; its ``repair_after`` does)."""
CLEARINGS = (AUTO, POWER_CYCLE, STAYS)

# OCPP 1.6 StopTransaction.req reasons used below. The 1.6 enum has no reason for a
# protection trip (2.0.1 added GroundFault, OvercurrentFault, PowerQuality): a safety
# trip that cuts the supply to the EV at once is EmergencyStop, anything else Other.
# PowerLoss ("complete loss of power") never fits: a station reporting a fault is powered.
_SAFETY = "EmergencyStop"
_OTHER = "Other"


@dataclass(frozen=True, slots=True)
class Behaviour:
    """What a vendor error does to the station (not in the guide's table; see ``why``).

    ``faults``: the connector goes Faulted and a running transaction stops with
    ``stop_reason``; otherwise the error is reported in a StatusNotification with the
    status unchanged (OCPP 1.6 allows an errorCode with any status) and charging goes on.
    ``connector``: 0 for a condition of the whole terminal, 1 for the charging outlet and
    the vehicle side. ``clears``: AUTO, POWER_CYCLE or STAYS.
    """

    faults: bool
    connector: int
    clears: str
    stop_reason: str | None
    why: str


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

    @property
    def behaviour(self) -> Behaviour:
        return BEHAVIOURS[self.vendor_code]

    @property
    def faults(self) -> bool:
        """Whether raising it makes the connector Faulted (False: reported only)."""
        return BEHAVIOURS[self.vendor_code].faults

    @property
    def is_error(self) -> bool:
        """Everything but the guide's NoError row (0x0), which reports that all is well."""
        return self.ocpp_code != "NoError"


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


def _fault(connector: int, clears: str, reason: str, why: str) -> Behaviour:
    return Behaviour(True, connector, clears, reason, why)


def _report(connector: int, clears: str, why: str) -> Behaviour:
    return Behaviour(False, connector, clears, None, why)


# The guide gives each code's meaning and nothing else: whether the station stops
# charging, on which connector it reports and how the error clears are this model's
# reading of each description, stated in ``why``; "guide silent" marks a pure judgement.
# Connector: the Charge Pro has one outlet; conditions of the terminal as a whole (its
# supply, enclosure, firmware, radios, supervision, energy management) are reported on
# connector 0, those of the charging circuit and the vehicle side on connector 1.
BEHAVIOURS: dict[str, Behaviour] = {
    "0x100206": _fault(
        1,
        AUTO,
        _SAFETY,
        "ground fault: a protection trip cuts the EV supply; "
        "guide silent on clearing, taken as re-checked before the relay closes again",
    ),
    "0x100101": _fault(
        0,
        AUTO,
        _OTHER,
        "overtemperature inside the terminal: the unit stops "
        "delivering; clears when it has cooled down (guide silent on clearing)",
    ),
    "0x200206": _fault(
        0,
        AUTO,
        _OTHER,
        "input overvoltage: the unit stops delivering; 1.6 has "
        "no power-quality reason; clears when the supply is back in range (guide silent)",
    ),
    "0x200208": _fault(
        0,
        AUTO,
        _OTHER,
        "input undervoltage: as overvoltage; not PowerLoss, "
        "the unit is still powered; clears when the supply recovers (guide silent)",
    ),
    "0x100008": _report(
        0,
        AUTO,
        "weak wireless signal: a link-quality warning, charging "
        "goes on; clears when the signal improves",
    ),
    "0x300000": _fault(
        0,
        STAYS,
        _OTHER,
        "firmware older than expected: the unit refuses service (guide silent on the "
        "effect; fleet.model.features.firmware raises it after a rejected image); stays until "
        "an installation succeeds",
    ),
    "0x300001": _fault(
        0,
        STAYS,
        _OTHER,
        "firmware upgrade failed: as the downgrade (guide silent on the effect); stays "
        "until an installation succeeds (fleet.model.features.firmware clears it then)",
    ),
    "0x10020C": _fault(
        0,
        AUTO,
        _OTHER,
        "front cover opened: live parts exposed, the unit "
        "stops delivering; clears when the cover is closed (guide silent on effect)",
    ),
    "0x10020F": _fault(
        1,
        STAYS,
        _OTHER,
        "metering fault: energy cannot be measured (or "
        "billed), so no charging; a hardware defect, stays until repaired (guide silent)",
    ),
    "0x300002": _fault(
        1,
        AUTO,
        _OTHER,
        "power meter unreadable for 3 s: metering lost, "
        "charging stops; clears when the Modbus meter answers again",
    ),
    "0x300004": _report(
        0,
        AUTO,
        "Wi-Fi processor issue: a communication path, not the "
        "charging circuit; clears when the processor communicates again",
    ),
    "0x100004": _report(
        0,
        AUTO,
        "badge reader lost: running sessions go on and remote "
        "starts still work; clears when the reader communicates again",
    ),
    "0x100217": _fault(
        1,
        AUTO,
        _OTHER,
        "Control Pilot fault: Mode 3 cannot charge without "
        "CP; not EVDisconnected, the cable is still in; clears when CP is valid again",
    ),
    "0x100218": _fault(
        1,
        AUTO,
        _OTHER,
        "cable coding resistor (PP) wrong: the cable rating "
        "is unknown, no charging; clears when a conforming cable is plugged",
    ),
    "0x300005": _fault(
        1,
        AUTO,
        _OTHER,
        "short circuit on the Control Pilot wire: charging "
        "stops; clears when the short is gone (guide silent on clearing)",
    ),
    "0x100205": _fault(
        1,
        AUTO,
        _OTHER,
        "lock/unlock failure or motor blocked: a cable that "
        "cannot be held is not charged; clears with a successful lock/unlock",
    ),
    "0x300006": _fault(
        1,
        STAYS,
        _OTHER,
        "contactor welded or stuck open: hardware defect "
        "of the power circuit; stays until repaired (guide silent on clearing)",
    ),
    "0x100213": _fault(
        1,
        AUTO,
        _SAFETY,
        "EV overcurrent/overload: a protection trip cuts "
        "the supply at once; clears when the EV no longer overdraws (guide silent)",
    ),
    "0x300009": _report(
        0,
        AUTO,
        "supervision issue: the CSMS link or its settings; the "
        "unit charges offline; clears when supervision works again",
    ),
    "0x30000B": _report(
        0,
        AUTO,
        "DEM loss (TIC): energy management falls back, charging "
        "goes on (guide silent on the fallback); clears when the TIC answers again",
    ),
    "0x30000C": _report(
        0, AUTO, "DEM loss (Modbus meter): as TIC; clears when the meter answers again"
    ),
    "0x30000D": _report(
        0, AUTO, "DEM loss (peak controller): as TIC; clears when the controller answers again"
    ),
    "0x30000E": _report(
        0,
        AUTO,
        "authorization conflict: a one-off report, the CSMS's "
        "answer is followed (the station raises it itself, see Station._learn)",
    ),
    "0x0": _report(0, AUTO, "NoError: not an error; reports that all is well"),
    "0x300010": _fault(
        1,
        POWER_CYCLE,
        _OTHER,
        "residual-current (RDC-DD) board error: the "
        'relay must not close without it; its self-test runs at power-up ("after Power '
        'Cycle") and before each relay close, so it is latched until the next power cycle',
    ),
    "0x300011": _fault(
        1,
        AUTO,
        _SAFETY,
        "DC leakage above 6 mA: the residual-current "
        "protection trips; clears when the next self-test before closing passes",
    ),
    "0x300003": _report(
        0,
        AUTO,
        "cellular modem issue: a communication path, as Wi-Fi; "
        "clears when the modem communicates again",
    ),
    "0x300007": _report(
        1,
        STAYS,
        "ISO 15118 module hardware: charging falls back to basic "
        "Mode 3 (IEC 61851) signalling (guide silent); stays until repaired",
    ),
    "0x300008": _report(
        1,
        AUTO,
        "ISO 15118 module software: falls back to basic Mode 3 "
        "as for the hardware issue (guide silent); clears when the module answers again",
    ),
}

BY_VENDOR_CODE: dict[str, VendorError] = {e.vendor_code: e for e in VENDOR_ERRORS}

DISABLED_BY_DEFAULT: frozenset[str] = frozenset(
    e.vendor_code for e in VENDOR_ERRORS if not e.enabled_by_default
)
"""Vendor codes of the detections the guide says ship disabled (rows 1, 5 and 8)."""

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


def enabled_codes(names: list[str] | tuple[str, ...]) -> frozenset[str]:
    """The vendor codes of the disabled-by-default detections a profile switches on.

    ``names`` are vendor codes or info names, as for :func:`lookup`. Naming a detection
    that is on by default, or NoError, raises ValueError: the list would suggest a
    setting that does nothing.
    """
    out = set()
    for name in names:
        error = lookup(name)
        if error.vendor_code not in DISABLED_BY_DEFAULT:
            disabled = ", ".join(
                f"{BY_VENDOR_CODE[c].vendor_code} ({BY_VENDOR_CODE[c].info})"
                for c in sorted(DISABLED_BY_DEFAULT)
            )
            raise ValueError(
                f"{error.vendor_code} ({error.info}) is enabled by default; only {disabled} "
                "can be enabled"
            )
        out.add(error.vendor_code)
    return frozenset(out)
