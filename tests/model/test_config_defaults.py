"""Configuration shared by the stations of a profile (ConfigDefaults, issue 16): each
station's store starts from the profile's validated overrides and keeps only what
changes on that station. Every answer a CSMS can get must be the same as with the
overrides copied into each store."""

from __future__ import annotations

from typing import Any

import pytest

from fleet.model.config import KEYS, ConfigDefaults, ConfigError, ConfigStore
from fleet.model.durable import restore
from fleet.model.station import Station

PROFILE: dict[str, Any] = {
    "MeterValueSampleInterval": 5,
    "HeartbeatInterval": 3600,
    "WebSocketPingInterval": 0,
    "GetConfigurationMaxKeys": 3,  # RO: a profile may set it, a CSMS may not
    "MeterValuesSampledDataMaxLength": 2,
    "MeterValuesSampledData": "Energy.Active.Import.Register,Current.Offered",
    "StationName": "depot",
    "SecurityEventsEnabled": False,
}

# ChangeConfigurations a CSMS might send, each applied to both stores in turn.
CHANGES = [
    ("HeartbeatInterval", "60"),  # back to the key table's default
    ("MeterValueSampleInterval", "5"),  # the profile's own value again
    ("MeterValueSampleInterval", "30"),
    ("GetConfigurationMaxKeys", "50"),  # RO: Rejected
    ("MeterValuesSampledData", "Energy.Active.Import.Register,Current.Offered,Current.Import.L1"),
    ("StationName", ""),
    ("stationname", "bay 4"),  # keys are case-insensitive
    ("NoSuchKey", "1"),
    ("SecurityProfile", "0"),
    ("AuthorizationKey", "0123456789abcdef0123"),  # WO: never shown
    ("ConnectionTimeOut", "-1"),  # invalid: Rejected
    ("TriggerBackendConfigurationDataReset", "true"),  # one-shot, reverts
]


def answers(store: ConfigStore) -> list[Any]:
    """Everything a CSMS can read, with a key list under GetConfigurationMaxKeys."""
    limit = store.get_int("GetConfigurationMaxKeys")
    keys = list(KEYS)
    return [
        store.get_configuration(),
        [store.get_configuration(keys[i : i + limit]) for i in range(0, len(keys), limit)],
        store.get_configuration(["heartbeatinterval", "NoSuchKey"]),
    ]


def test_a_store_on_shared_defaults_answers_as_one_holding_the_overrides() -> None:
    shared = ConfigDefaults(PROFILE)
    cow, copied = ConfigStore(defaults=shared), ConfigStore(PROFILE)
    assert answers(cow) == answers(copied)
    assert cow.snapshot() == copied.snapshot()
    for key, value in CHANGES:
        assert cow.change_configuration(key, value) == copied.change_configuration(key, value)
        assert answers(cow) == answers(copied), key
        assert cow.snapshot() == copied.snapshot(), key
    for name in KEYS:
        assert cow.get(name) == copied.get(name)
    assert cow.get_list("MeterValuesSampledData") == copied.get_list("MeterValuesSampledData")


def test_a_change_on_one_station_leaves_the_others_and_the_profile_alone() -> None:
    shared = ConfigDefaults(PROFILE)
    a, b = ConfigStore(defaults=shared), ConfigStore(defaults=shared)
    assert a.change_configuration("HeartbeatInterval", "120") == "Accepted"
    assert a.change_configuration("StationName", "bay 1") == "Accepted"
    a.set_internal("BoxIdentifier", "CP00001")
    assert (a.get_int("HeartbeatInterval"), a.get("StationName")) == (120, "bay 1")
    assert (b.get_int("HeartbeatInterval"), b.get("StationName")) == (3600, "depot")
    assert b.get("BoxIdentifier") == ""
    assert ConfigStore(defaults=shared).get_configuration() == b.get_configuration()
    assert shared.overrides == ConfigStore(PROFILE).snapshot()


def test_readonly_and_write_only_keys_keep_their_access_rights() -> None:
    store = ConfigStore(defaults=ConfigDefaults(PROFILE))
    entries = {e["key"]: e for e in store.get_configuration()["configurationKey"]}
    assert entries["GetConfigurationMaxKeys"] == {
        "key": "GetConfigurationMaxKeys",
        "readonly": True,
        "value": "3",
    }
    assert entries["AuthorizationKey"] == {"key": "AuthorizationKey", "readonly": False}
    assert store.change_configuration("GetConfigurationMaxKeys", "10") == "Rejected"
    # The profile's cap still caps the list it overrides.
    three = "Energy.Active.Import.Register,Current.Offered,Current.Import.L1"
    assert store.change_configuration("MeterValuesSampledData", three) == "Rejected"


def test_a_station_on_shared_defaults_reboots_with_its_own_changes() -> None:
    """The durable state holds every value that differs from the key table (the
    profile's included), so a unit restored from it is the same unit."""
    shared = ConfigDefaults(PROFILE)
    st = Station("CP1", 0.0, config=ConfigStore(defaults=shared))
    assert st.sample_interval == 5
    assert st.config.change_configuration("HeartbeatInterval", "90") == "Accepted"
    saved = st.snapshot(0.0)
    again = restore(Station("CP1", 0.0), saved, 0.0)
    assert answers(again) == answers(st.config)
    assert ConfigStore(defaults=shared).get_int("HeartbeatInterval") == 3600


def test_invalid_overrides_fail_once_when_the_defaults_are_made() -> None:
    with pytest.raises(ConfigError, match="HeartbeatInterval"):
        ConfigDefaults({"HeartbeatInterval": "soon"})
    with pytest.raises(ConfigError, match="unknown key"):
        ConfigDefaults({"HeartbeatIntervall": 5})
