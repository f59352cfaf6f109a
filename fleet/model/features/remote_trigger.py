"""The RemoteTrigger profile: TriggerMessage (OCPP 1.6 5.17).

The triggered message is queued, marked ``triggered``: the engine writes the answer
first, so the CSMS sees TriggerMessage.conf before the message it asked for, and a
station whose boot is Pending sends it at once (OCPP 1.6 4.2: the exception to "no
request but BootNotification").
"""

from __future__ import annotations

from fleet.model.messages import (
    MeterValuesRequest,
    StationRequest,
    TriggerMessageRequest,
    TriggerMessageResponse,
)
from fleet.model.outbox import Outgoing, wire
from fleet.model.port import StationPort, handler

from . import metering


def on_trigger_message(
    st: StationPort, payload: TriggerMessageRequest, now: float
) -> TriggerMessageResponse:
    requested = payload["requestedMessage"]
    connector_id = payload.get("connectorId")
    if connector_id is not None and connector_id not in (0, 1):
        return {"status": "Rejected"}  # no such connector
    if requested == "BootNotification":
        _send(st, "BootNotification", st.boot_payload())
    elif requested == "Heartbeat":
        _send(st, "Heartbeat", {})
    elif requested == "StatusNotification":
        targets = (connector_id,) if connector_id is not None else (0, 1)
        for cid in targets:
            _send(st, "StatusNotification", st.status_payload(st.connectors[cid], now))
    elif requested == "MeterValues":
        _trigger_meter_values(st, connector_id, now)
    elif requested == "DiagnosticsStatusNotification":
        _send(st, "DiagnosticsStatusNotification", {"status": st.transfers.diagnostics_status})
    elif requested == "FirmwareStatusNotification":
        _send(st, "FirmwareStatusNotification", {"status": st.transfers.firmware_status})
    else:
        return {"status": "NotImplemented"}
    return {"status": "Accepted"}


def _send(st: StationPort, action: str, payload: StationRequest) -> None:
    st.outbox.append(Outgoing(action, wire(payload), triggered=True))


def _trigger_meter_values(st: StationPort, connector_id: int | None, now: float) -> None:
    """Connector 1 (also when none is named: it is the only one) with the running
    transaction's id if any; connector 0 is the station's meter, outside transactions.
    See docs/station-model.md, decisions for the empty-measurand fallback."""
    value = metering.meter_value(st, now, "Trigger", st.measurands)
    if not value["sampledValue"]:
        # Nothing configured to sample (MeterValuesSampledData ""): an Accepted trigger
        # still sends a message, with the register every Charge Pro meter has.
        value = metering.meter_value(st, now, "Trigger", (metering.ENERGY,))
    cid = 1 if connector_id is None else connector_id
    mv: MeterValuesRequest = {"connectorId": cid, "meterValue": [value]}
    tx = st.transaction
    if cid == 1 and tx is not None and tx.stop_reason is None:
        # Filled in when sent, like any message of the transaction.
        mv["transactionId"] = 0
        st.outbox.append(Outgoing("MeterValues", wire(mv), tx, triggered=True))
    else:
        _send(st, "MeterValues", mv)


HANDLERS = {"TriggerMessage": handler(on_trigger_message)}
