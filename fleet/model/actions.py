"""The OCPP 1.6 operations the Charge Pro takes part in: the two tables of the guide's
"Supported OCPP Operations" (plus the security extension's SecurityEventNotification).

One list for the station's routing table, the engine, and tools/gen_messages.py, which
generates a TypedDict for the request and the answer of each (fleet.model.messages).
"""

CSMS_INITIATED = (
    "CancelReservation",
    "ChangeAvailability",
    "ChangeConfiguration",
    "ClearCache",
    "ClearChargingProfile",
    "DataTransfer",
    "GetCompositeSchedule",
    "GetConfiguration",
    "GetDiagnostics",
    "GetLocalListVersion",
    "RemoteStartTransaction",
    "RemoteStopTransaction",
    "ReserveNow",
    "Reset",
    "SendLocalList",
    "SetChargingProfile",
    "TriggerMessage",
    "UnlockConnector",
    "UpdateFirmware",
)
"""CSMS -> station. Anything else OCPP 1.6 defines is answered NotImplemented."""

STATION_INITIATED = (
    "Authorize",
    "BootNotification",
    "DataTransfer",
    "DiagnosticsStatusNotification",
    "FirmwareStatusNotification",
    "Heartbeat",
    "MeterValues",
    "SecurityEventNotification",
    "StartTransaction",
    "StatusNotification",
    "StopTransaction",
)
"""Station -> CSMS."""
