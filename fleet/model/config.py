"""The Charge Pro's configuration keys and a per-station store for them.

The key table follows the guide's "Parameters" section (standard OCPP 1.6 keys and the
vendor keys). Values are validated and parsed once, when written, so the hot path (meter
ticks, heartbeats) reads typed values with a dict lookup. A store keeps only the values
that differ from its defaults: thousands of stations share one table, and the stations
of one profile share its overrides too (:class:`ConfigDefaults`).
"""

from __future__ import annotations

import difflib
import enum
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "KEYS",
    "Access",
    "ChangeStatus",
    "ConfigDefaults",
    "ConfigError",
    "ConfigStore",
    "KeySpec",
    "Kind",
    "TooManyKeys",
]

Kind = Literal["bool", "int", "str", "csl"]
ChangeStatus = Literal["Accepted", "Rejected", "RebootRequired", "NotSupported"]
Parsed = str | int | bool | tuple[str, ...]

INT32_MAX = 2147483647


class Access(enum.Enum):
    RO = "RO"
    RW = "RW"
    WO = "WO"


@dataclass(frozen=True, slots=True)
class KeySpec:
    """One configuration key: its default (OCPP string form) and what a write must satisfy."""

    name: str
    default: str
    kind: Kind
    access: Access
    description: str
    minimum: int | None = None  # int keys
    maximum: int | None = None  # int keys
    max_length: int | None = None  # str keys, in characters
    min_bytes: int | None = None  # str keys, UTF-8 bytes
    allowed: frozenset[str] | None = None  # csl items
    pattern: re.Pattern[str] | None = None  # str values / csl items
    pattern_hint: str = ""  # what `pattern` means, for error messages
    max_items_key: str | None = None  # csl: key whose current value caps the item count
    min_items: int = 0  # csl
    reboot_required: bool = False
    # False where a CSMS may not write the empty string: a password it cannot unset, and
    # the two settings the supervision URL is built from (empty, the station could never
    # reconnect).
    clearable: bool = True
    # False where the guide lists a key as RW but says writing is "currently not supported".
    write_supported: bool = True


class ConfigError(ValueError):
    """A value that the device could not hold (bad override, snapshot or internal write)."""


class TooManyKeys(Exception):
    """GetConfiguration.req asked for more keys than GetConfigurationMaxKeys.

    OCPP 1.6 has no status for this in GetConfiguration.conf; the station answers with a
    CALLERROR OccurenceConstraintViolation.
    """

    def __init__(self, requested: int, limit: int) -> None:
        super().__init__(f"GetConfiguration asked for {requested} keys, the limit is {limit}")
        self.requested = requested
        self.limit = limit


# -- the key table ------------------------------------------------------------------------

RO, RW, WO = Access.RO, Access.RW, Access.WO

# The guide's table of supported measurands, exactly: a phase-less Current.Import is not
# in it (the guide lists the three phases), so a list naming it is Rejected like any other
# unsupported measurand. Every item here is one the station samples, so no accepted list
# can yield a MeterValues with nothing to report.
MEASURANDS = frozenset(
    {
        "Energy.Active.Import.Register",
        "Current.Offered",
        "Current.Import.L1",
        "Current.Import.L2",
        "Current.Import.L3",
    }
)
FEATURE_PROFILES = frozenset(
    {
        "Core",
        "FirmwareManagement",
        "LocalAuthListManagement",
        "Reservation",
        "SmartCharging",
        "RemoteTrigger",
    }
)
_PHASE_ROTATION = re.compile(
    r"(0|[1-9][0-9]{0,8})\.(RST|RTS|SRT|STR|TRS|TSR|NotApplicable|Unknown)"
)
_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = re.compile(rf"({_OCTET}\.){{3}}{_OCTET}")
_WS_URL = re.compile(r"(wss?://\S+)?", re.IGNORECASE)

# OCPP's ChangeConfiguration.req and GetConfiguration.conf carry values of at most 500
# characters, so that is the ceiling for strings the guide gives no size for.
_CI_STRING_500 = 500


def _bool(
    name: str, default: bool, access: Access, description: str, reboot_required: bool = False
) -> KeySpec:
    text = "True" if default else "False"
    return KeySpec(name, text, "bool", access, description, reboot_required=reboot_required)


def _int(
    name: str,
    default: int,
    access: Access,
    description: str,
    minimum: int = 0,
    maximum: int = INT32_MAX,
    reboot_required: bool = False,
) -> KeySpec:
    return KeySpec(
        name,
        str(default),
        "int",
        access,
        description,
        minimum=minimum,
        maximum=maximum,
        reboot_required=reboot_required,
    )


def _str(
    name: str,
    default: str,
    access: Access,
    description: str,
    max_length: int = _CI_STRING_500,
    *,
    min_bytes: int | None = None,
    pattern: re.Pattern[str] | None = None,
    pattern_hint: str = "",
    reboot_required: bool = False,
    write_supported: bool = True,
    clearable: bool = True,
) -> KeySpec:
    return KeySpec(
        name,
        default,
        "str",
        access,
        description,
        max_length=max_length,
        min_bytes=min_bytes,
        pattern=pattern,
        pattern_hint=pattern_hint,
        reboot_required=reboot_required,
        write_supported=write_supported,
        clearable=clearable,
    )


def _measurands(name: str, default: str, description: str) -> KeySpec:
    return KeySpec(
        name,
        default,
        "csl",
        RW,
        description,
        allowed=MEASURANDS,
        max_items_key=name + "MaxLength",
    )


def _network(name: str, default: str, description: str) -> KeySpec:
    # Listed RW, but the guide says writing is "currently not supported" (only EVCE may
    # set it, after DHCP is disabled): ChangeConfiguration knows the key, answers Rejected.
    return _str(
        name,
        default,
        RW,
        description,
        pattern=_IPV4,
        pattern_hint="a dotted IPv4 address",
        write_supported=False,
    )


_TABLE: tuple[KeySpec, ...] = (
    # ---- standard OCPP 1.6 keys, in the guide's order
    _bool("AllowOfflineTxForUnknownId", True, RW, "Start offline transactions for unknown ids."),
    _bool("AuthorizationCacheEnabled", False, RW, "Authorization Cache enabled."),
    _bool("AuthorizeRemoteTxRequests", True, RW, "Authorize RemoteStartTransaction ids first."),
    _int("ClockAlignedDataInterval", 0, RW, "Clock-aligned data interval (s); 0 = none."),
    _int("ConnectionTimeOut", 60, RW, "Time (s) to plug in after authorization; 0 = none."),
    _int("GetConfigurationMaxKeys", 100, RO, "Max keys in one GetConfiguration.req.", minimum=1),
    _int("HeartbeatInterval", 60, RW, "Inactivity (s) after which a Heartbeat is sent."),
    _bool("LocalAuthorizeOffline", True, RW, "Offline: start for locally-authorized ids."),
    _bool("LocalPreAuthorize", False, RW, "Online: start for local ids without Authorize."),
    # The guide marks aligned data "not currently supported"; the key is still stored.
    _measurands(
        "MeterValuesAlignedData",
        "Energy.Active.Import.Register",
        "Clock-aligned measurands in MeterValues.",
    ),
    _int("MeterValuesAlignedDataMaxLength", 10, RO, "Max items in MeterValuesAlignedData."),
    # The guide prints csl defaults with spaces; OCPP lists are comma separated.
    _measurands(
        "MeterValuesSampledData",
        "Energy.Active.Import.Register,Current.Offered,"
        "Current.Import.L1,Current.Import.L2,Current.Import.L3",
        "Sampled measurands in MeterValues.",
    ),
    _int("MeterValuesSampledDataMaxLength", 10, RO, "Max items in MeterValuesSampledData."),
    _int("MeterValueSampleInterval", 60, RW, "Interval (s) between sampled MeterValues."),
    _int("MinimumStatusDuration", 10, RW, "Time (s) a status must be stable before reported."),
    _int("NumberOfConnectors", 1, RO, "Number of physical connectors.", minimum=1),
    _int("ResetRetries", 2, RW, "Retries of an unsuccessful reset."),
    _int("ConnectorPhaseRotationMaxLength", 2, RO, "Max items in ConnectorPhaseRotation."),
    KeySpec(
        "ConnectorPhaseRotation",
        "0.RST,1.RST",
        "csl",
        RW,
        "Phase rotation per connector relative to its meter.",
        pattern=_PHASE_ROTATION,
        pattern_hint="<connectorId>.<RST|RTS|SRT|STR|TRS|TSR|NotApplicable|Unknown>",
        max_items_key="ConnectorPhaseRotationMaxLength",
    ),
    _bool("StopTransactionOnEVSideDisconnect", True, RO, "Stop the transaction on EV unplug."),
    _bool("StopTransactionOnInvalidId", True, RW, "Stop on a non-Accepted StartTransaction.conf."),
    _int("StopTxnAlignedDataMaxLength", 0, RO, "Max items in StopTxnAlignedData."),
    # The guide's description of this key repeats StopTxnSampledData's; it is the cap.
    _int("StopTxnSampledDataMaxLength", 0, RO, "Max items in StopTxnSampledData."),
    KeySpec(
        "SupportedFeatureProfiles",
        "Core,FirmwareManagement,LocalAuthListManagement,Reservation,SmartCharging,RemoteTrigger",
        "csl",
        RO,
        "Supported feature profiles.",
        allowed=FEATURE_PROFILES,
        max_items_key="SupportedFeatureProfilesMaxLength",
        min_items=1,
    ),
    _int("SupportedFeatureProfilesMaxLength", 6, RO, "Max items in SupportedFeatureProfiles."),
    _int("TransactionMessageAttempts", 2, RW, "Tries to submit a transaction message."),
    _int("TransactionMessageRetryInterval", 10, RW, "Wait (s) before resubmitting one."),
    _bool("UnlockConnectorOnEVSideDisconnect", True, RO, "Unlock the cable on EV unplug."),
    _int("WebSocketPingInterval", 20, RW, "Seconds between websocket pings; 0 = off."),
    _bool("LocalAuthListEnabled", False, RW, "Local Authorization List enabled."),
    _int("LocalAuthListMaxLength", 4000, RO, "Max ids in the Local Authorization List."),
    _int("SendLocalListMaxLength", 400, RO, "Max ids in one SendLocalList.req."),
    _bool("ReserveConnectorZeroSupported", True, RO, "Reservations on connector 0."),
    _int("ChargeProfileMaxStackLevel", 200, RO, "Max stackLevel of a ChargingProfile."),
    _int("ChargingScheduleMaxPeriods", 100, RO, "Max periods per ChargingSchedule."),
    _bool("ConnectorSwitch3to1PhaseSupported", False, RO, "3 to 1 phase switch in a session."),
    _int("MaxChargingProfilesInstalled", 200, RO, "Max charging profiles installed."),
    # "Current" is the device's documented value; the smart charging table says A and W
    # both work, so a profile may override it to "Current,Power".
    KeySpec(
        "ChargingScheduleAllowedChargingRateUnit",
        "Current",
        "csl",
        RO,
        "Units allowed in a ChargingSchedule.",
        allowed=frozenset({"Current", "Power"}),
        min_items=1,
    ),
    _measurands("StopTxnAlignedData", "", "Clock-aligned measurands in StopTransaction."),
    _measurands("StopTxnSampledData", "", "Sampled measurands in StopTransaction."),
    _int("MaxEnergyOnInvalidId", 0, RW, "Max Wh delivered after an id is invalidated."),
    # ---- vendor keys, in the guide's order
    _bool("AuthenticationOCPPMode", True, RW, "Authenticate by CPO; False = free charging."),
    _str("DefaultIdTag", "18237379292", RW, "idTag used when authentication is off.", 20),
    # Written by the engine with the URL it connects to; a CSMS write must stay a ws URL.
    _str(
        "SupervisionUrl",
        "",
        RW,
        "OCPP supervision URL.",
        255,
        pattern=_WS_URL,
        pattern_hint="a ws:// or wss:// URL",
        reboot_required=True,
        clearable=False,
    ),
    _str(
        "BoxIdentifier",
        "",
        RW,
        "Charging station identity.",
        50,
        reboot_required=True,
        clearable=False,
    ),
    # No default in the guide: 32 A, the 22 kW three-phase models.
    _int("iMaxDeratingSwCapacity", 32, RO, "Maximum current (A)."),
    _int(
        "disconnectedMeterValueSampleInterval",
        900,
        RW,
        "Sampling interval (s) while offline.",
        minimum=5,
        maximum=3600,
    ),
    _bool("SecurityEventsEnabled", True, RW, "Notify security events to the CSMS."),
    _bool("CompressDiagnostic", True, RW, "Compress diagnostics."),
    _str("StationName", "", RW, "Friendly name."),
    _bool("DhcpEnabled", True, RW, "DHCP client enabled."),
    _network("IpAddress", "192.168.0.102", "IP address."),
    _network("NetworkSubmask", "255.255.255.0", "Network mask."),
    _network("NetworkGateway", "192.168.0.254", "Network gateway."),
    _network("DnsAddress1", "8.8.8.8", "DNS server 1."),
    _network("DnsAddress2", "4.4.4.4", "DNS server 2."),
    _int("RestoreTimeout", 600, RW, "Delay (s) before resuming after a power cut.", 0, 86400),
    # Empty means unset; it is never revealed by GetConfiguration.
    _str(
        "AuthorizationKey",
        "",
        WO,
        "HTTP Basic Auth password (>= 16 bytes).",
        min_bytes=16,
        clearable=False,
    ),
    # No default in the guide: 0, the unsecured profile. Lowering it is Rejected (OCPP
    # 1.6 security whitepaper); see ConfigStore.change_configuration.
    _int("SecurityProfile", 0, RW, "Security profile in use.", 0, 3, reboot_required=True),
    _int("WebsocketConnectionTimeout", 5, RW, "Connection attempt timeout (s).", minimum=3),
    _int("WebsocketRequestTimeout", 10, RW, "Request timeout (s).", minimum=5),
    # The factory default is False (standalone), but a simulated station talking to a
    # CSMS is by definition in supervision mode.
    _bool("OcppEnable", True, RW, "Supervision mode; False = standalone.", reboot_required=True),
    _int("PhasesConnection", 1, RW, "Wiring: 1 Tri123 ... 4 Mono1 ... 11 IT213.", 1, 11),
    # No default in the guide: 1, the embedded MID meter.
    _int("StationMeterType", 1, RO, "0 non-embedded, 1 embedded MID meter.", 0, 1),
    _bool("ISO15118ChargeEnabled", True, RW, "ISO 15118 charging enabled."),
    # Typed String in the guide but only ever "true"/"false"; writing true triggers the
    # reset and the value reverts to False.
    _bool("TriggerBackendConfigurationDataReset", False, RW, "Write true to reset backend data."),
)

KEYS: dict[str, KeySpec] = {spec.name: spec for spec in _TABLE}
_FOLDED: dict[str, str] = {name.lower(): name for name in KEYS}
_TRIGGER_RESET = "TriggerBackendConfigurationDataReset"
# Keys whose value caps another key's item count: writing them re-checks the dependents.
_DEPENDENTS: dict[str, tuple[str, ...]] = {}
for _spec in _TABLE:
    if _spec.max_items_key is not None:
        _DEPENDENTS[_spec.max_items_key] = (*_DEPENDENTS.get(_spec.max_items_key, ()), _spec.name)
del _spec


def _resolve(key: str) -> str | None:
    # Keys are CiString in OCPP: exact match first (the common case), then case-folded.
    return key if key in KEYS else _FOLDED.get(key.lower())


def _show(value: str) -> str:
    # repr() escapes newlines, which keeps every error message on one line.
    return repr(value if len(value) <= 60 else value[:57] + "...")


_INT_RE = re.compile(r"-?[0-9]{1,19}")


def _parse(spec: KeySpec, raw: str, limit: Callable[[str], int]) -> tuple[str, Parsed]:
    """Check `raw` against `spec`; return the canonical string and the parsed value.

    Raises ValueError with the reason. `limit` reads another key's current int value,
    for lists capped by a *MaxLength key.
    """
    kind = spec.kind
    if kind == "int":
        lo = 0 if spec.minimum is None else spec.minimum
        hi = INT32_MAX if spec.maximum is None else spec.maximum
        if _INT_RE.fullmatch(raw) is None or not lo <= int(raw) <= hi:
            raise ValueError(f"expected an integer in {lo}..{hi}, got {_show(raw)}")
        number = int(raw)
        return str(number), number
    if kind == "bool":
        folded = raw.lower()
        if folded == "true":
            return "True", True
        if folded == "false":
            return "False", False
        raise ValueError(f"expected True or False, got {_show(raw)}")
    if kind == "str":
        if spec.max_length is not None and len(raw) > spec.max_length:
            raise ValueError(f"expected at most {spec.max_length} characters, got {len(raw)}")
        if spec.min_bytes is not None and raw:
            # Empty means unset (the default); only the station itself may clear it, see
            # change_configuration. No value in this message: the only such key is a password.
            size = len(raw.encode("utf-8", "surrogatepass"))
            if size < spec.min_bytes:
                raise ValueError(f"expected at least {spec.min_bytes} bytes, got {size}")
        if spec.pattern is not None and spec.pattern.fullmatch(raw) is None:
            raise ValueError(f"expected {spec.pattern_hint}, got {_show(raw)}")
        return raw, raw
    # csl
    items = tuple(item.strip() for item in raw.split(",")) if raw.strip() else ()
    for item in items:
        if not item:
            raise ValueError(f"empty item in list {_show(raw)}")
        if spec.allowed is not None and item not in spec.allowed:
            allowed = ", ".join(sorted(spec.allowed))
            raise ValueError(f"unsupported item {_show(item)} (allowed: {allowed})")
        if spec.pattern is not None and spec.pattern.fullmatch(item) is None:
            raise ValueError(f"expected items like {spec.pattern_hint}, got {_show(item)}")
    if len(set(items)) != len(items):
        raise ValueError(f"duplicate item in list {_show(raw)}")
    if len(items) < spec.min_items:
        raise ValueError(f"expected at least {spec.min_items} item(s), got {len(items)}")
    if spec.max_items_key is not None:
        cap = limit(spec.max_items_key)
        if len(items) > cap:
            raise ValueError(
                f"expected at most {cap} items ({spec.max_items_key}), got {len(items)}"
            )
    return ",".join(items), items


def _default_int(name: str) -> int:
    value = _DEFAULT_PARSED[name]
    assert type(value) is int
    return value


_DEFAULT_PARSED: dict[str, Parsed] = {}
# Lists last: their caps are other keys' parsed defaults.
for _spec in sorted(_TABLE, key=lambda s: s.kind == "csl"):
    _text, _DEFAULT_PARSED[_spec.name] = _parse(_spec, _spec.default, _default_int)
    assert _text == _spec.default, f"{_spec.name}: default {_spec.default!r} is not canonical"
del _spec, _text
_DEFAULTS: dict[str, str] = {spec.name: spec.default for spec in _TABLE}


# -- the store ----------------------------------------------------------------------------


class ConfigDefaults:
    """The defaults a station's store starts from: the key table's, with ``overrides``
    (a profile's ``station.config``) validated once and shared, read-only, by every
    store made with it. A store copies nothing from it: a station keeps only what
    changes on that station later (copy on write), so a profile's overrides cost the
    same for 1 or 100,000 stations (issue 16)."""

    __slots__ = ("_parsed", "_values", "overrides")

    def __init__(self, overrides: Mapping[str, str | int | bool | float] | None = None) -> None:
        scratch = ConfigStore(overrides)
        self.overrides: dict[str, str] = scratch.snapshot()
        """The canonical values that differ from the key table's defaults."""
        self._values: dict[str, str] = {**_DEFAULTS, **self.overrides}
        self._parsed: dict[str, Parsed] = {**_DEFAULT_PARSED, **scratch._parsed}
        for name, text in self.overrides.items():
            if KEYS[name].kind == "str":
                self._parsed[name] = text


_NOTHING: dict[str, Parsed] = {}  # a store's parsed values before its first non-string one


class ConfigStore:
    """One station's configuration.

    Holds only what differs from its :class:`ConfigDefaults` (canonical strings; parsed
    values of the keys that are not strings), so an idle store costs a small dict.
    """

    __slots__ = ("_base", "_base_parsed", "_listeners", "_parsed", "_values")

    def __init__(
        self,
        overrides: Mapping[str, str | int | bool | float] | None = None,
        *,
        defaults: ConfigDefaults | None = None,
    ) -> None:
        """``overrides`` are validated and kept in this store; ``defaults`` (shared)
        are where it starts from: the key table's when None."""
        base = defaults if defaults is not None else _FACTORY
        self._base = base._values
        self._base_parsed = base._parsed
        self._values: dict[str, str] = {}
        self._parsed = _NOTHING
        self._listeners: list[Callable[[str, str], None]] | None = None
        if overrides:
            self._load(overrides, "config override")

    @classmethod
    def restore(cls, snapshot: Mapping[str, str]) -> ConfigStore:
        """Rebuild a store from snapshot(), as a rebooted station reloads its flash."""
        store = cls()
        store._load(snapshot, "config snapshot")
        return store

    def snapshot(self) -> dict[str, str]:
        """The values that differ from the key table's defaults (its ConfigDefaults'
        overrides too), enough for restore().

        It includes AuthorizationKey when set: keep it out of logs.
        """
        if self._base is _DEFAULTS:
            return dict(self._values)
        current = self._base | self._values
        return {name: text for name, text in current.items() if text != _DEFAULTS[name]}

    # ---- hot-path reads

    def get(self, name: str) -> str:
        value = self._values.get(name)
        return self._base[name] if value is None else value

    def get_int(self, name: str) -> int:
        value = self._parsed.get(name)
        if value is None:
            value = self._base_parsed[name]
        if type(value) is not int:
            raise TypeError(f"config key {name!r} is not an integer key")
        return value

    def get_bool(self, name: str) -> bool:
        value = self._parsed.get(name)
        if value is None:
            value = self._base_parsed[name]
        if type(value) is not bool:
            raise TypeError(f"config key {name!r} is not a boolean key")
        return value

    def get_list(self, name: str) -> tuple[str, ...]:
        value = self._parsed.get(name)
        if value is None:
            value = self._base_parsed[name]
        if not isinstance(value, tuple):
            raise TypeError(f"config key {name!r} is not a list key")
        return value

    # ---- writes

    def set_internal(self, name: str, value: str | int | bool | float) -> None:
        """Station-side write: ignores access rights but not validity."""
        spec = KEYS.get(name)
        if spec is None:
            raise ConfigError(_unknown("config key", name))
        try:
            text, parsed = _parse(spec, _to_text(value), self.get_int)
            self._check_dependents(name, parsed)
        except ValueError as exc:
            raise ConfigError(f"config key {name!r}: {exc}") from None
        self._store(name, text, parsed)
        self._notify(name, text)

    def change_configuration(self, key: str, value: str) -> ChangeStatus:
        """Apply a ChangeConfiguration.req and return its OCPP 1.6 status."""
        name = _resolve(key)
        if name is None:
            return "NotSupported"
        spec = KEYS[name]
        if spec.access is Access.RO or not spec.write_supported:
            return "Rejected"
        if not spec.clearable and not value:
            # The CSMS sets a password, it cannot unset one; an empty SupervisionUrl or
            # BoxIdentifier would leave the station unable to reach any CSMS again.
            return "Rejected"
        try:
            text, parsed = _parse(spec, value, self.get_int)
        except ValueError:
            return "Rejected"
        if name == "SecurityProfile":
            assert type(parsed) is int
            current = self.get_int(name)
            # The security whitepaper forbids going down a profile. Going up to a profile
            # with Basic Auth (1 or 2) needs a password, or the station could not log in
            # after the reboot.
            if parsed < current:
                return "Rejected"
            if parsed in (1, 2) and parsed != current and not self.get("AuthorizationKey"):
                return "Rejected"
        status: ChangeStatus = "Accepted"
        # Only a real change needs a reboot: a CSMS re-pushing the same value at every
        # boot must not be told to reboot again (it might do so, forever).
        if spec.reboot_required and text != self.get(name):
            status = "RebootRequired"
        if name == _TRIGGER_RESET:
            # A one-shot action: the key reverts, but listeners still hear what was written.
            self._store(name, spec.default, _DEFAULT_PARSED[name])
        else:
            self._store(name, text, parsed)
        self._notify(name, text)
        return status

    def subscribe(self, callback: Callable[[str, str], None]) -> Callable[[], None]:
        """Call `callback(name, value)` after every accepted write; returns an unsubscriber.

        Callbacks run synchronously, in subscription order, and their exceptions
        propagate to the writer (the value is already stored by then).
        """
        if self._listeners is None:
            self._listeners = []
        listeners = self._listeners
        listeners.append(callback)

        def unsubscribe() -> None:
            if callback in listeners:
                listeners.remove(callback)

        return unsubscribe

    # ---- reads for the CSMS

    def get_configuration(self, keys: Sequence[str] | None = None) -> dict[str, Any]:
        """Build a GetConfiguration.conf payload; None or [] means every key.

        Raises TooManyKeys when more keys are asked for than GetConfigurationMaxKeys.
        """
        if not keys:
            names: list[str] = list(KEYS)
            unknown: list[str] = []
        else:
            limit = self.get_int("GetConfigurationMaxKeys")
            if len(keys) > limit:
                raise TooManyKeys(len(keys), limit)
            names, unknown = [], []
            for key in keys:
                name = _resolve(key)
                if name is None:
                    unknown.append(key)
                elif name not in names:
                    names.append(name)
        payload: dict[str, Any] = {}
        if names:
            payload["configurationKey"] = [self._entry(name) for name in names]
        if unknown:
            payload["unknownKey"] = unknown
        return payload

    # ---- internals

    def _entry(self, name: str) -> dict[str, str | bool]:
        access = KEYS[name].access
        if access is Access.WO:
            return {"key": name, "readonly": False}
        return {"key": name, "readonly": access is Access.RO, "value": self.get(name)}

    def _store(self, name: str, text: str, parsed: Parsed) -> None:
        if text == self._base[name]:
            self._values.pop(name, None)
            self._parsed.pop(name, None)
            return
        self._values[name] = text
        if type(parsed) is str:
            # A string key's parsed value is its text: get() reads it from _values, and
            # the typed getters refuse the key whatever its value.
            self._parsed.pop(name, None)
            return
        if self._parsed is _NOTHING:
            self._parsed = {}
        self._parsed[name] = parsed

    def _notify(self, name: str, text: str) -> None:
        if self._listeners:
            for callback in tuple(self._listeners):
                callback(name, text)

    def _check_dependents(self, name: str, parsed: Parsed) -> None:
        # Lowering a *MaxLength below the current list length would leave a value the
        # device could never have accepted.
        for dependent in _DEPENDENTS.get(name, ()):
            assert type(parsed) is int
            count = len(self.get_list(dependent))
            if count > parsed:
                raise ValueError(f"{parsed} is less than the {count} items of {dependent}")

    def _load(self, values: Mapping[str, object], origin: str) -> None:
        # Scalars first, so that lists are checked against the caps given in the same
        # mapping; then every capped list is re-checked once against the final caps.
        ordered = sorted(values.items(), key=lambda kv: kv[0] in KEYS and KEYS[kv[0]].kind == "csl")
        for name, value in ordered:
            spec = KEYS.get(name)
            if spec is None:
                raise ConfigError(_unknown(origin, name))
            try:
                text, parsed = _parse(spec, _to_text(value), self.get_int)
            except ValueError as exc:
                raise ConfigError(f"{origin} {name!r}: {exc}") from None
            self._store(name, text, parsed)
        for cap, dependents in _DEPENDENTS.items():
            for dependent in dependents:
                count = len(self.get_list(dependent))
                if count > self.get_int(cap):
                    culprit = cap if cap in values else dependent
                    raise ConfigError(
                        f"{origin} {culprit!r}: {dependent} has {count} items but "
                        f"{cap} is {self.get_int(cap)}"
                    )


_FACTORY = object.__new__(ConfigDefaults)
_FACTORY.overrides = {}
_FACTORY._values = _DEFAULTS
_FACTORY._parsed = _DEFAULT_PARSED


def _to_text(value: object) -> str:
    # Profiles are YAML: numbers and booleans arrive as Python values.
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    raise ValueError(f"expected a string, number or boolean, got {type(value).__name__}")


def _unknown(origin: str, name: str) -> str:
    folded = _FOLDED.get(name.lower())
    guess = [folded] if folded else difflib.get_close_matches(name, KEYS, n=1)
    hint = f" (did you mean {guess[0]!r}?)" if guess else ""
    return f"{origin} {name!r}: unknown key{hint}"
