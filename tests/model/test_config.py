"""The Charge Pro configuration store, against the guide's "Parameters" tables."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import ocpp
import pytest

from fleet.model.config import KEYS, Access, ConfigError, ConfigStore, TooManyKeys

SCHEMAS = Path(ocpp.__file__).parent / "v16" / "schemas"

# The guide's two tables, written out by hand: (key, default, access).
# Decisions where the guide is silent or awkward are marked.
GUIDE_STANDARD = [
    ("AllowOfflineTxForUnknownId", "True", "RW"),
    ("AuthorizationCacheEnabled", "False", "RW"),
    ("AuthorizeRemoteTxRequests", "True", "RW"),
    ("ClockAlignedDataInterval", "0", "RW"),
    ("ConnectionTimeOut", "60", "RW"),
    ("GetConfigurationMaxKeys", "100", "RO"),
    ("HeartbeatInterval", "60", "RW"),
    ("LocalAuthorizeOffline", "True", "RW"),
    ("LocalPreAuthorize", "False", "RW"),
    ("MeterValuesAlignedData", "Energy.Active.Import.Register", "RW"),
    ("MeterValuesAlignedDataMaxLength", "10", "RO"),
    # The guide separates list items with spaces; OCPP uses commas.
    (
        "MeterValuesSampledData",
        "Energy.Active.Import.Register,Current.Offered,"
        "Current.Import.L1,Current.Import.L2,Current.Import.L3",
        "RW",
    ),
    ("MeterValuesSampledDataMaxLength", "10", "RO"),
    ("MeterValueSampleInterval", "60", "RW"),
    ("MinimumStatusDuration", "10", "RW"),
    ("NumberOfConnectors", "1", "RO"),
    ("ResetRetries", "2", "RW"),
    ("ConnectorPhaseRotationMaxLength", "2", "RO"),
    ("ConnectorPhaseRotation", "0.RST,1.RST", "RW"),
    ("StopTransactionOnEVSideDisconnect", "True", "RO"),
    ("StopTransactionOnInvalidId", "True", "RW"),
    ("StopTxnAlignedDataMaxLength", "0", "RO"),
    ("StopTxnSampledDataMaxLength", "0", "RO"),
    (
        "SupportedFeatureProfiles",
        "Core,FirmwareManagement,LocalAuthListManagement,Reservation,SmartCharging,RemoteTrigger",
        "RO",
    ),
    ("SupportedFeatureProfilesMaxLength", "6", "RO"),
    ("TransactionMessageAttempts", "2", "RW"),
    ("TransactionMessageRetryInterval", "10", "RW"),
    ("UnlockConnectorOnEVSideDisconnect", "True", "RO"),
    ("WebSocketPingInterval", "20", "RW"),
    ("LocalAuthListEnabled", "False", "RW"),
    ("LocalAuthListMaxLength", "4000", "RO"),
    ("SendLocalListMaxLength", "400", "RO"),
    ("ReserveConnectorZeroSupported", "True", "RO"),
    ("ChargeProfileMaxStackLevel", "200", "RO"),
    ("ChargingScheduleMaxPeriods", "100", "RO"),
    ("ConnectorSwitch3to1PhaseSupported", "False", "RO"),
    ("MaxChargingProfilesInstalled", "200", "RO"),
    ("ChargingScheduleAllowedChargingRateUnit", "Current", "RO"),
    ("StopTxnAlignedData", "", "RW"),
    ("StopTxnSampledData", "", "RW"),
    ("MaxEnergyOnInvalidId", "0", "RW"),
]
GUIDE_VENDOR = [
    ("AuthenticationOCPPMode", "True", "RW"),
    ("DefaultIdTag", "18237379292", "RW"),
    ("SupervisionUrl", "", "RW"),
    ("BoxIdentifier", "", "RW"),
    ("iMaxDeratingSwCapacity", "32", "RO"),  # no default in the guide
    ("disconnectedMeterValueSampleInterval", "900", "RW"),
    ("SecurityEventsEnabled", "True", "RW"),
    ("CompressDiagnostic", "True", "RW"),
    ("StationName", "", "RW"),
    ("DhcpEnabled", "True", "RW"),
    ("IpAddress", "192.168.0.102", "RW"),
    ("NetworkSubmask", "255.255.255.0", "RW"),
    ("NetworkGateway", "192.168.0.254", "RW"),
    ("DnsAddress1", "8.8.8.8", "RW"),
    ("DnsAddress2", "4.4.4.4", "RW"),
    ("RestoreTimeout", "600", "RW"),
    ("AuthorizationKey", "", "WO"),
    ("SecurityProfile", "0", "RW"),  # no default in the guide
    ("WebsocketConnectionTimeout", "5", "RW"),
    ("WebsocketRequestTimeout", "10", "RW"),
    ("OcppEnable", "True", "RW"),  # guide: False (standalone); a simulator is supervised
    ("PhasesConnection", "1", "RW"),
    ("StationMeterType", "1", "RO"),  # no default in the guide
    ("ISO15118ChargeEnabled", "True", "RW"),
    ("TriggerBackendConfigurationDataReset", "False", "RW"),
]
GUIDE = GUIDE_STANDARD + GUIDE_VENDOR
KEY = "0123456789abcdef"  # 16 bytes, the shortest valid AuthorizationKey


def validator(name: str) -> jsonschema.Draft4Validator:
    return jsonschema.Draft4Validator(json.loads((SCHEMAS / name).read_text()))


GET_CONFIGURATION_CONF = validator("GetConfigurationResponse.json")


def entries(payload: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["key"]: e for e in payload["configurationKey"]}


# ---- the key table


def test_every_guide_key_has_the_guide_default_and_access() -> None:
    assert len(GUIDE) == 66
    assert set(KEYS) == {name for name, _, _ in GUIDE}
    store = ConfigStore()
    for name, default, access in GUIDE:
        assert store.get(name) == default, name
        assert KEYS[name].access is Access[access], name


def test_typed_reads() -> None:
    store = ConfigStore()
    assert store.get_int("HeartbeatInterval") == 60
    assert store.get_bool("LocalPreAuthorize") is False
    assert store.get_list("ConnectorPhaseRotation") == ("0.RST", "1.RST")
    assert store.get_list("StopTxnSampledData") == ()
    with pytest.raises(TypeError):
        store.get_int("LocalPreAuthorize")


# ---- GetConfiguration


def test_get_configuration_all_keys() -> None:
    store = ConfigStore()
    no_keys: list[str] = []
    for keys in (None, no_keys):
        payload = store.get_configuration(keys)
        GET_CONFIGURATION_CONF.validate(payload)
        assert "unknownKey" not in payload
        got = entries(payload)
        assert set(got) == {name for name, _, _ in GUIDE}
        for name, default, access in GUIDE:
            assert got[name]["readonly"] is (access == "RO"), name
            if access != "WO":
                assert got[name]["value"] == default, name


def test_get_configuration_named_and_unknown_keys() -> None:
    payload = ConfigStore().get_configuration(
        ["HeartbeatInterval", "NoSuchKey", "NumberOfConnectors"]
    )
    GET_CONFIGURATION_CONF.validate(payload)
    assert payload == {
        "configurationKey": [
            {"key": "HeartbeatInterval", "readonly": False, "value": "60"},
            {"key": "NumberOfConnectors", "readonly": True, "value": "1"},
        ],
        "unknownKey": ["NoSuchKey"],
    }
    only_unknown = ConfigStore().get_configuration(["Nope"])
    GET_CONFIGURATION_CONF.validate(only_unknown)
    assert only_unknown == {"unknownKey": ["Nope"]}


def test_get_configuration_never_reveals_the_authorization_key() -> None:
    store = ConfigStore()
    assert store.change_configuration("AuthorizationKey", KEY) == "Accepted"
    payload = store.get_configuration(["AuthorizationKey"])
    GET_CONFIGURATION_CONF.validate(payload)
    assert payload == {"configurationKey": [{"key": "AuthorizationKey", "readonly": False}]}
    assert KEY not in json.dumps(store.get_configuration(None))
    assert store.get("AuthorizationKey") == KEY  # the station itself needs it


def test_get_configuration_is_case_insensitive_and_answers_canonical_names() -> None:
    payload = ConfigStore().get_configuration(["heartbeatinterval", "WEBSOCKETPINGINTERVAL"])
    assert [e["key"] for e in payload["configurationKey"]] == [
        "HeartbeatInterval",
        "WebSocketPingInterval",
    ]


def test_get_configuration_too_many_keys() -> None:
    store = ConfigStore()
    store.get_configuration(["HeartbeatInterval"] * 100)
    with pytest.raises(TooManyKeys):
        store.get_configuration(["HeartbeatInterval"] * 101)
    small = ConfigStore({"GetConfigurationMaxKeys": 2})
    with pytest.raises(TooManyKeys):
        small.get_configuration(["A", "B", "C"])
    assert len(entries(small.get_configuration(None))) == 66  # "all keys" is not capped


# ---- ChangeConfiguration


def test_change_configuration_statuses() -> None:
    store = ConfigStore()
    assert store.change_configuration("HeartbeatInterval", "30") == "Accepted"
    assert store.get_int("HeartbeatInterval") == 30
    assert store.change_configuration("NoSuchKey", "1") == "NotSupported"
    assert store.change_configuration("NumberOfConnectors", "2") == "Rejected"  # RO
    assert store.get("NumberOfConnectors") == "1"
    assert store.change_configuration("SupervisionUrl", "wss://csms.example/ocpp") == (
        "RebootRequired"
    )
    assert store.get("SupervisionUrl") == "wss://csms.example/ocpp"
    assert store.change_configuration("BoxIdentifier", "CP-1") == "RebootRequired"
    assert store.change_configuration("OcppEnable", "false") == "RebootRequired"
    assert store.get_bool("OcppEnable") is False
    # Writing the value already in use is no change, so no reboot.
    assert store.change_configuration("BoxIdentifier", "CP-1") == "Accepted"


def test_change_configuration_is_case_insensitive_on_keys() -> None:
    store = ConfigStore()
    assert store.change_configuration("heartbeatINTERVAL", "15") == "Accepted"
    assert store.get_int("HeartbeatInterval") == 15


@pytest.mark.parametrize(
    ("key", "value", "status"),
    [
        ("disconnectedMeterValueSampleInterval", "4", "Rejected"),
        ("disconnectedMeterValueSampleInterval", "5", "Accepted"),
        ("disconnectedMeterValueSampleInterval", "3600", "Accepted"),
        ("disconnectedMeterValueSampleInterval", "3601", "Rejected"),
        ("WebsocketConnectionTimeout", "2", "Rejected"),
        ("WebsocketConnectionTimeout", "3", "Accepted"),
        ("WebsocketConnectionTimeout", "2147483647", "Accepted"),
        ("WebsocketConnectionTimeout", "2147483648", "Rejected"),
        ("WebsocketRequestTimeout", "4", "Rejected"),
        ("WebsocketRequestTimeout", "5", "Accepted"),
        ("RestoreTimeout", "86400", "Accepted"),
        ("RestoreTimeout", "86401", "Rejected"),
        ("PhasesConnection", "0", "Rejected"),
        ("PhasesConnection", "11", "Accepted"),
        ("PhasesConnection", "12", "Rejected"),
        ("HeartbeatInterval", "-1", "Rejected"),
        ("HeartbeatInterval", "0", "Accepted"),
        ("HeartbeatInterval", "abc", "Rejected"),
        ("HeartbeatInterval", "", "Rejected"),
        ("HeartbeatInterval", "1.5", "Rejected"),
        ("LocalPreAuthorize", "maybe", "Rejected"),
        ("LocalPreAuthorize", "TRUE", "Accepted"),
        ("LocalPreAuthorize", "false", "Accepted"),
        ("AuthorizationKey", KEY[:15], "Rejected"),
        ("AuthorizationKey", KEY, "Accepted"),
        ("AuthorizationKey", "", "Rejected"),
        ("AuthorizationKey", "é" * 8, "Accepted"),  # 8 characters, 16 UTF-8 bytes
        ("DefaultIdTag", "x" * 20, "Accepted"),
        ("DefaultIdTag", "x" * 21, "Rejected"),
        ("BoxIdentifier", "x" * 51, "Rejected"),
        ("SupervisionUrl", "ftp://example", "Rejected"),
        ("SupervisionUrl", "ws://" + "x" * 251, "Rejected"),
    ],
)
def test_change_configuration_validates(key: str, value: str, status: str) -> None:
    store = ConfigStore()
    before = store.get(key)
    result = store.change_configuration(key, value)
    assert result in (status, "RebootRequired" if status == "Accepted" else status)
    if result == "Rejected":
        assert store.get(key) == before


def test_canonical_values_are_stored() -> None:
    store = ConfigStore()
    store.change_configuration("LocalPreAuthorize", "TRUE")
    assert store.get("LocalPreAuthorize") == "True"
    store.change_configuration("HeartbeatInterval", "007")
    assert store.get("HeartbeatInterval") == "7"
    store.change_configuration("MeterValuesSampledData", " Current.Import.L1 , Current.Offered ")
    assert store.get("MeterValuesSampledData") == "Current.Import.L1,Current.Offered"


def test_measurand_lists() -> None:
    store = ConfigStore()
    change = store.change_configuration
    assert change("MeterValuesSampledData", "Voltage") == "Rejected"  # not on the Charge Pro
    assert change(
        "MeterValuesSampledData", "Energy.Active.Import.Register,Power.Active.Import"
    ) == ("Rejected")
    assert change("MeterValuesSampledData", "Current.Import.L2") == "Accepted"
    assert store.get_list("MeterValuesSampledData") == ("Current.Import.L2",)
    assert change("MeterValuesSampledData", "Current.Import.L2,Current.Import.L2") == "Rejected"
    assert change("MeterValuesSampledData", "") == "Accepted"
    assert store.get_list("MeterValuesSampledData") == ()
    assert change("MeterValuesAlignedData", "Current.Offered,Current.Import.L3") == "Accepted"


def test_measurand_list_item_count_follows_its_max_length_key() -> None:
    four = "Energy.Active.Import.Register,Current.Offered,Current.Import.L1,Current.Import.L2"
    three = "Energy.Active.Import.Register,Current.Offered,Current.Import.L1"
    # The override of a cap and of its list are applied together, whatever their order.
    store = ConfigStore({"MeterValuesSampledDataMaxLength": 3, "MeterValuesSampledData": ""})
    assert store.change_configuration("MeterValuesSampledData", four) == "Rejected"
    assert store.change_configuration("MeterValuesSampledData", three) == "Accepted"
    all_five = ",".join(
        ["Energy.Active.Import.Register", "Current.Offered"]
        + [f"Current.Import.L{n}" for n in (1, 2, 3)]
    )
    assert ConfigStore().change_configuration("MeterValuesSampledData", all_five) == "Accepted"


def test_max_length_override_below_the_default_list_is_an_error() -> None:
    with pytest.raises(ConfigError, match="MeterValuesSampledDataMaxLength"):
        ConfigStore({"MeterValuesSampledDataMaxLength": 3})


def test_stop_txn_sampled_data_is_capped_at_zero_until_overridden() -> None:
    assert ConfigStore().change_configuration("StopTxnSampledData", "Current.Offered") == "Rejected"
    assert ConfigStore().change_configuration("StopTxnSampledData", "") == "Accepted"
    store = ConfigStore({"StopTxnSampledDataMaxLength": 2})
    assert store.change_configuration("StopTxnSampledData", "Current.Offered") == "Accepted"
    assert store.get_list("StopTxnSampledData") == ("Current.Offered",)
    assert (
        store.change_configuration(
            "StopTxnSampledData", "Current.Offered,Current.Import.L1,Energy.Active.Import.Register"
        )
        == "Rejected"
    )


def test_connector_phase_rotation() -> None:
    store = ConfigStore()
    assert store.change_configuration("ConnectorPhaseRotation", "0.RTS,1.NotApplicable") == (
        "Accepted"
    )
    assert store.change_configuration("ConnectorPhaseRotation", "0.XYZ") == "Rejected"
    assert store.change_configuration("ConnectorPhaseRotation", "RST") == "Rejected"
    assert store.change_configuration("ConnectorPhaseRotation", "0.RST,1.RST,2.RST") == "Rejected"


def test_network_keys_are_known_but_not_writable() -> None:
    store = ConfigStore()
    for key in ("IpAddress", "NetworkSubmask", "NetworkGateway", "DnsAddress1", "DnsAddress2"):
        assert store.change_configuration(key, "10.0.0.1") == "Rejected"
        assert entries(store.get_configuration([key]))[key]["readonly"] is False  # RW per guide
    store.set_internal("IpAddress", "10.0.0.7")  # the device itself may still change it
    assert store.get("IpAddress") == "10.0.0.7"
    with pytest.raises(ConfigError):
        store.set_internal("IpAddress", "10.0.0.256")


def test_security_profile_never_goes_down() -> None:
    store = ConfigStore()
    assert store.change_configuration("SecurityProfile", "4") == "Rejected"
    assert store.change_configuration("SecurityProfile", "1") == "Rejected"  # no password yet
    assert store.change_configuration("AuthorizationKey", KEY) == "Accepted"
    assert store.change_configuration("SecurityProfile", "1") == "RebootRequired"
    assert store.change_configuration("SecurityProfile", "1") == "Accepted"
    assert store.change_configuration("SecurityProfile", "0") == "Rejected"
    assert store.change_configuration("SecurityProfile", "3") == "RebootRequired"
    assert store.change_configuration("SecurityProfile", "2") == "Rejected"
    assert store.get_int("SecurityProfile") == 3


def test_trigger_backend_configuration_data_reset_reverts_and_notifies() -> None:
    store = ConfigStore()
    heard: list[tuple[str, str]] = []
    store.subscribe(lambda name, value: heard.append((name, value)))
    assert store.change_configuration("TriggerBackendConfigurationDataReset", "true") == "Accepted"
    assert store.get("TriggerBackendConfigurationDataReset") == "False"
    assert store.get_bool("TriggerBackendConfigurationDataReset") is False
    assert heard == [("TriggerBackendConfigurationDataReset", "True")]
    assert store.change_configuration("TriggerBackendConfigurationDataReset", "TRUE") == "Accepted"
    assert store.change_configuration("TriggerBackendConfigurationDataReset", "yes") == "Rejected"
    assert len(heard) == 2


# ---- listeners, internal writes, snapshots


def test_listeners_hear_every_accepted_change() -> None:
    store = ConfigStore()
    heard: list[tuple[str, str]] = []
    unsubscribe = store.subscribe(lambda name, value: heard.append((name, value)))
    store.change_configuration("MeterValueSampleInterval", "15")
    store.change_configuration("MeterValueSampleInterval", "abc")  # rejected: silent
    store.change_configuration("NumberOfConnectors", "2")  # rejected: silent
    store.change_configuration("LocalPreAuthorize", "TRUE")
    store.set_internal("HeartbeatInterval", 300)
    assert heard == [
        ("MeterValueSampleInterval", "15"),
        ("LocalPreAuthorize", "True"),
        ("HeartbeatInterval", "300"),
    ]
    unsubscribe()
    store.change_configuration("MeterValueSampleInterval", "20")
    assert len(heard) == 3


def test_set_internal_ignores_access_but_validates() -> None:
    store = ConfigStore()
    store.set_internal("NumberOfConnectors", 2)
    store.set_internal("SupervisionUrl", "ws://localhost:9000/ocpp")
    store.set_internal("BoxIdentifier", "CP-000001")
    assert store.get_int("NumberOfConnectors") == 2
    assert store.get("BoxIdentifier") == "CP-000001"
    with pytest.raises(ConfigError, match="HeartbeatInterval"):
        store.set_internal("HeartbeatInterval", "soon")
    with pytest.raises(ConfigError, match="unknown key"):
        store.set_internal("NoSuchKey", "1")
    with pytest.raises(ConfigError, match="MeterValuesSampledData"):
        store.set_internal("MeterValuesSampledDataMaxLength", 1)  # 5 items configured


def test_snapshot_restore_round_trip() -> None:
    store = ConfigStore({"StopTxnSampledDataMaxLength": 3, "StationName": "Depot 4"})
    store.change_configuration("HeartbeatInterval", "120")
    store.change_configuration("StopTxnSampledData", "Current.Offered,Current.Import.L1")
    store.change_configuration("AuthorizationKey", KEY)
    store.change_configuration("LocalPreAuthorize", "true")
    store.change_configuration("LocalPreAuthorize", "false")  # back to the default
    snapshot = store.snapshot()
    assert "LocalPreAuthorize" not in snapshot  # only what differs from the defaults
    rebooted = ConfigStore.restore(snapshot)
    assert rebooted.get_configuration(None) == store.get_configuration(None)
    assert rebooted.get("AuthorizationKey") == KEY
    assert rebooted.get_list("StopTxnSampledData") == ("Current.Offered", "Current.Import.L1")
    assert rebooted.snapshot() == snapshot


# ---- overrides


def test_overrides_describe_the_device() -> None:
    store = ConfigStore(
        {
            "ChargingScheduleAllowedChargingRateUnit": "Current,Power",
            "iMaxDeratingSwCapacity": 16,
            "LocalAuthListEnabled": True,
            "HeartbeatInterval": 30.0,
        }
    )
    assert store.get_list("ChargingScheduleAllowedChargingRateUnit") == ("Current", "Power")
    assert store.get_int("iMaxDeratingSwCapacity") == 16
    assert store.get("LocalAuthListEnabled") == "True"
    assert store.get_int("HeartbeatInterval") == 30


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"HeartbeatInterval": "abc"},
            "config override 'HeartbeatInterval': expected an integer in 0..2147483647, got 'abc'",
        ),
        ({"HeartbeatInterval": 1.5}, "config override 'HeartbeatInterval': expected an integer"),
        ({"HeartbeatInterval": True}, "config override 'HeartbeatInterval': expected an integer"),
        ({"LocalPreAuthorize": "maybe"}, "config override 'LocalPreAuthorize': expected True"),
        ({"HeartbeatIntervall": 60}, "config override 'HeartbeatIntervall': unknown key"),
        ({"ChargingScheduleAllowedChargingRateUnit": "Watts"}, "unsupported item 'Watts'"),
        ({"ChargingScheduleAllowedChargingRateUnit": ""}, "expected at least 1 item"),
        ({"StationName": "line\nbreak" * 100}, "config override 'StationName': expected at most"),
        ({"AuthorizationKey": "secret"}, "config override 'AuthorizationKey': expected at least"),
    ],
)
def test_override_errors_are_one_line_and_name_the_key(
    overrides: dict[str, str | int | bool | float], message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        ConfigStore(overrides)
    text = str(info.value)
    assert "\n" not in text
    assert message in text
    assert next(iter(overrides)) in text
    assert "secret" not in text


@pytest.mark.parametrize("key", ["MeterValuesSampledData", "StopTxnSampledData"])
def test_current_import_without_a_phase_is_an_unsupported_measurand(key: str) -> None:
    """Guide, "supported measurands": Current.Import.L1/L2/L3, never phase-less."""
    store = ConfigStore({"StopTxnSampledDataMaxLength": 3})
    assert store.change_configuration(key, "Current.Import") == "Rejected"
    assert store.change_configuration(key, "Current.Offered,Current.Import") == "Rejected"
    with pytest.raises(ConfigError, match=r"Current\.Import"):
        ConfigStore({"StopTxnSampledDataMaxLength": 3, key: "Current.Import"})


@pytest.mark.parametrize("key", ["SupervisionUrl", "BoxIdentifier", "AuthorizationKey"])
def test_a_csms_cannot_empty_what_the_connection_needs(key: str) -> None:
    """An empty SupervisionUrl or BoxIdentifier would leave the station unable to reach
    any CSMS again; the station (set_internal) still may."""
    store = ConfigStore()
    store.set_internal("SupervisionUrl", "ws://csms.example/ocpp")
    store.set_internal("BoxIdentifier", "CP-1")
    assert store.change_configuration(key, "") == "Rejected"
    assert store.get(key) == {
        "SupervisionUrl": "ws://csms.example/ocpp",
        "BoxIdentifier": "CP-1",
    }.get(key, "")


def test_ocpp_enable_needs_a_reboot() -> None:
    """OcppEnable switches supervision/standalone: it takes effect at the next reboot."""
    store = ConfigStore()
    assert store.change_configuration("OcppEnable", "False") == "RebootRequired"
    assert store.change_configuration("OcppEnable", "False") == "Accepted"  # no change
