"""The official OCPP 1.6 JSON schemas as compiled validators, and the CALLERROR code
each broken rule maps to."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from fleet.protocol import errors, schemas
from fleet.protocol.errors import OcppError

SCHEMA_DIR = Path(str(resources.files("ocpp") / "v16" / "schemas"))
SCHEMA_NAMES = sorted(p.stem for p in SCHEMA_DIR.glob("*.json"))
ACTIONS = [n for n in SCHEMA_NAMES if not n.endswith("Response")]


def code_of(action: str, payload: Any, response: bool = False) -> str | None:
    """The CALLERROR code validate() raises, or None if the payload is valid."""
    try:
        schemas.validate(action, payload, response)
    except OcppError as exc:
        assert exc.code in errors.ERROR_CODES
        assert exc.description
        return exc.code
    return None


def reserve_now(expiry: Any) -> dict[str, Any]:
    return {"connectorId": 1, "expiryDate": expiry, "idTag": "TAG", "reservationId": 7}


def meter_values(samples: int, timestamp: str = "2026-01-01T00:00:00.123Z") -> dict[str, Any]:
    measurands = [
        ("Energy.Active.Import.Register", "Wh"),
        ("Power.Active.Import", "W"),
        ("Current.Import", "A"),
        ("Voltage", "V"),
        ("SoC", "Percent"),
    ]
    return {
        "connectorId": 1,
        "transactionId": 42,
        "meterValue": [
            {
                "timestamp": timestamp,
                "sampledValue": [
                    {
                        "value": f"{i * 1.5:.1f}",
                        "context": "Sample.Periodic",
                        "measurand": m,
                        "unit": u,
                    }
                    for i, (m, u) in enumerate(measurands[:samples])
                ],
            }
        ],
    }


# -- compiling -------------------------------------------------------------------


def test_the_schema_folder_is_the_full_ocpp16_set() -> None:
    assert len(SCHEMA_NAMES) == 78  # 28 core + 11 security-extension actions, both ways
    for name in ACTIONS:
        assert f"{name}Response" in SCHEMA_NAMES


def test_precompile_compiles_every_schema() -> None:
    assert schemas.precompile() == len(SCHEMA_NAMES)
    for name in ACTIONS:
        assert callable(schemas.validator(name, False)), name
        assert callable(schemas.validator(name, True)), name


def test_precompile_a_subset_and_nothing() -> None:
    total = schemas.precompile()
    assert schemas.precompile(["Heartbeat", "HeartbeatResponse"]) == total
    assert schemas.precompile([]) == total
    # Unknown names are not compiled and not remembered.
    assert schemas.precompile(["NoSuchThing", "NoSuchThingResponse"]) == total


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_every_schema_validates_something(name: str) -> None:
    response = name.endswith("Response")
    action = name[: -len("Response")] if response else name
    check = schemas.validator(action, response)
    assert check is not None
    # No OCPP 1.6 payload may be a bare list.
    assert code_of(action, [], response) == errors.TYPE_CONSTRAINT_VIOLATION


def test_validator_is_cached() -> None:
    first = schemas.validator("MeterValues", False)
    assert first is not None
    assert schemas.validator("MeterValues", False) is first
    assert schemas.validator("MeterValues", True) is schemas.validator("MeterValues", True)
    assert schemas.validator("MeterValues", True) is not first


def test_five_sample_meter_values_validates_with_the_cached_validator() -> None:
    payload = meter_values(5)
    check = schemas.validator("MeterValues", False)
    schemas.validate("MeterValues", payload, False)
    schemas.validate("MeterValues", payload, False)
    assert schemas.validator("MeterValues", False) is check
    assert code_of("MeterValues", payload) is None
    assert code_of("MeterValues", meter_values(0)) == errors.OCCURENCE_CONSTRAINT_VIOLATION


def test_unknown_names_do_not_grow_the_cache() -> None:
    total = schemas.precompile()
    for name in ("Nope", "../schemas/Reset", "a\x00b", "reset", "ResetResponse", ""):
        assert schemas.validator(name, False) is None
        assert schemas.validator(name, True) is None
    assert schemas.precompile([]) == total


# -- known actions ---------------------------------------------------------------


@pytest.mark.parametrize("action", ACTIONS)
def test_every_ocpp16_action_is_known(action: str) -> None:
    assert schemas.known_action(action)


@pytest.mark.parametrize(
    "action",
    [
        "",
        "Nope",
        "reset",
        "RESET",
        "Reset ",
        "ResetResponse",
        "AuthorizeResponse",
        "BootNotificationRequest",
        "../schemas/Reset",
        "../../v201/schemas/ResetRequest",
        "Reset.json",
        "Reset\x00",
        "GetVariables",  # OCPP 2.0.1 only
    ],
)
def test_names_ocpp16_does_not_define_are_unknown(action: str) -> None:
    assert not schemas.known_action(action)
    with pytest.raises(OcppError) as exc:
        schemas.validate(action, {}, response=False)
    assert exc.value.code == errors.NOT_IMPLEMENTED


# -- rule -> code ----------------------------------------------------------------

OCCURENCE = errors.OCCURENCE_CONSTRAINT_VIOLATION
TYPE = errors.TYPE_CONSTRAINT_VIOLATION
PROPERTY = errors.PROPERTY_CONSTRAINT_VIOLATION
FORMATION = errors.FORMATION_VIOLATION


def profile(limit: Any, periods: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "connectorId": 1,
        "csChargingProfiles": {
            "chargingProfileId": 1,
            "stackLevel": 0,
            "chargingProfilePurpose": "TxDefaultProfile",
            "chargingProfileKind": "Absolute",
            "chargingSchedule": {
                "chargingRateUnit": "A",
                "chargingSchedulePeriod": (
                    periods if periods is not None else [{"startPeriod": 0, "limit": limit}]
                ),
            },
        },
    }


@pytest.mark.parametrize(
    ("action", "payload", "response", "code"),
    [
        # valid
        ("Heartbeat", {}, False, None),
        ("Reset", {"type": "Soft"}, False, None),
        ("Reset", {"status": "Rejected"}, True, None),
        ("SetChargingProfile", profile(16.3), False, None),
        ("SetChargingProfile", profile(6), False, None),
        ("SetChargingProfile", profile(0.1), False, None),
        ("GetDiagnostics", {"location": "ftp://user:pw@example.com/logs/"}, False, None),
        # required -> OccurenceConstraintViolation
        ("Reset", {}, False, OCCURENCE),
        ("Heartbeat", {}, True, OCCURENCE),
        ("BootNotification", {"chargePointVendor": "Schneider Electric"}, False, OCCURENCE),
        ("MeterValues", {"connectorId": 1, "meterValue": [{}]}, False, OCCURENCE),
        # minItems -> OccurenceConstraintViolation
        ("MeterValues", {"connectorId": 1, "meterValue": []}, False, OCCURENCE),
        # type -> TypeConstraintViolation
        ("Reset", {"type": 1}, False, TYPE),
        ("UnlockConnector", {"connectorId": "1"}, False, TYPE),
        ("UnlockConnector", {"connectorId": 1.5}, False, TYPE),
        ("UnlockConnector", {"connectorId": False}, False, TYPE),
        ("UnlockConnector", {"connectorId": None}, False, TYPE),
        ("GetConfiguration", {"key": "HeartbeatInterval"}, False, TYPE),
        ("GetConfiguration", {"key": [1]}, False, TYPE),
        ("SetChargingProfile", profile("16"), False, TYPE),
        ("Reset", "Hard", False, TYPE),
        # enum / maxLength / format / multipleOf -> PropertyConstraintViolation
        ("Reset", {"type": "Medium"}, False, PROPERTY),
        ("Reset", {"type": "hard"}, False, PROPERTY),
        ("Reset", {"status": "Maybe"}, True, PROPERTY),
        ("Authorize", {"idTag": "x" * 20}, False, None),
        ("Authorize", {"idTag": "x" * 21}, False, PROPERTY),
        ("ChangeConfiguration", {"key": "k" * 51, "value": "1"}, False, PROPERTY),
        ("ChangeConfiguration", {"key": "k", "value": "v" * 501}, False, PROPERTY),
        ("ReserveNow", reserve_now("next tuesday"), False, PROPERTY),
        ("GetDiagnostics", {"location": "not a uri"}, False, PROPERTY),
        ("SetChargingProfile", profile(6.05), False, PROPERTY),
        # additionalProperties -> FormationViolation
        ("Reset", {"type": "Hard", "delay": 5}, False, FORMATION),
        ("Heartbeat", {"currentTime": "2026-01-01T00:00:00Z", "x": 1}, True, FORMATION),
        ("Heartbeat", {"x": None}, False, FORMATION),
        (
            "SetChargingProfile",
            profile(None, [{"startPeriod": 0, "limit": 6, "phases": 3}]),
            False,
            FORMATION,
        ),
    ],
)
def test_validate_maps_each_rule_to_its_code(
    action: str, payload: Any, response: bool, code: str | None
) -> None:
    assert code_of(action, payload, response) == code


def test_ocpp_error_carries_code_description_and_details() -> None:
    exc = OcppError(errors.GENERIC_ERROR, "why", {"cause": "x"})
    assert exc.code == "GenericError"
    assert exc.description == "why"
    assert exc.details == {"cause": "x"}
    assert str(exc) == "GenericError: why"
    bare = OcppError(errors.NOT_SUPPORTED)
    assert bare.details == {}
    assert str(bare) == "NotSupported"


def test_error_codes_are_the_ocpp16_list() -> None:
    assert {
        "NotImplemented",
        "NotSupported",
        "InternalError",
        "ProtocolError",
        "SecurityError",
        "FormationViolation",
        "PropertyConstraintViolation",
        "OccurenceConstraintViolation",
        "TypeConstraintViolation",
        "GenericError",
    } == errors.ERROR_CODES


# -- date-time as CSMSs send it ----------------------------------------------------


@pytest.mark.parametrize(
    "timestamp",
    [
        "2026-01-01T00:00:00Z",
        "2026-01-01T00:00:00.123Z",
        "2026-01-01T00:00:00+01:00",
        "2026-01-01T00:00:00-05:30",
        "2026-01-01T00:00:00.123456+05:30",
        "2026-01-01T00:00:00.1Z",
        "2026-12-31T23:59:59.999999999Z",
        "2026-01-01T00:00:00+00:00",
        "2026-01-01t00:00:00z",  # RFC 3339 allows lower case
        "2024-02-29T12:00:00Z",  # leap day
        "2000-02-29T12:00:00Z",
        "2016-12-31T23:59:60Z",  # leap second
    ],
)
def test_date_time_accepts_what_csmss_send(timestamp: str) -> None:
    assert code_of("ReserveNow", reserve_now(timestamp)) is None
    assert code_of("Heartbeat", {"currentTime": timestamp}, response=True) is None
    assert code_of("MeterValues", meter_values(1, timestamp)) is None


@pytest.mark.parametrize(
    "timestamp",
    [
        "",
        "now",
        "2026-01-01",
        "2026-01-01 00:00:00Z",
        "2026-01-01T00:00Z",
        "2026-01-01T00:00:00.Z",
        "2026-13-01T00:00:00Z",
        "2026-04-31T00:00:00Z",
        "2026-02-29T00:00:00Z",  # not a leap year
        "2100-02-29T00:00:00Z",
        "2026-01-01T24:00:00Z",
        "2026-01-01T00:00:00+25:00",
        "1767225600",
    ],
)
def test_date_time_rejects_what_is_not_one(timestamp: str) -> None:
    assert code_of("ReserveNow", reserve_now(timestamp)) == PROPERTY
    assert code_of("Heartbeat", {"currentTime": timestamp}, response=True) == PROPERTY


def test_date_time_must_be_a_string() -> None:
    assert code_of("ReserveNow", reserve_now(1767225600)) == TYPE
