"""The Core profile's CSMS-initiated operations: configuration, availability, remote
start/stop, unlock, data transfer, clear cache.

Reset is Core too, but it is the station's lifecycle (reboot, the queue across it) and
lives in ``station.py``; Authorize, StartTransaction and StopTransaction are in
features/transaction.py. Where OCPP 1.6 or the guide leaves room, the handler's
docstring says which reading the model takes.
"""

from __future__ import annotations

import copy
from typing import cast

from fleet.model.auth import ACCEPTED, IdTagInfo
from fleet.model.config import TooManyKeys
from fleet.model.messages import (
    ChangeAvailabilityRequest,
    ChangeAvailabilityResponse,
    ChangeConfigurationRequest,
    ChangeConfigurationResponse,
    ClearCacheRequest,
    ClearCacheResponse,
    DataTransferRequest,
    DataTransferResponse,
    GetConfigurationRequest,
    GetConfigurationResponse,
    RemoteStartTransactionRequest,
    RemoteStartTransactionResponse,
    RemoteStopTransactionRequest,
    RemoteStopTransactionResponse,
    UnlockConnectorRequest,
    UnlockConnectorResponse,
)
from fleet.model.port import StationPort, handler
from fleet.model.records import VENDOR_ID, Reconnect, as_json
from fleet.model.smart_charging import ProfileRejected, parse_profile
from fleet.protocol import errors
from fleet.protocol.errors import OcppError

# ChangeConfiguration of these makes the station reconnect with the new settings (the
# engine builds the URL from SupervisionUrl + "/" + BoxIdentifier at every connection).
_RECONNECT_KEYS = ("SupervisionUrl", "BoxIdentifier", "SecurityProfile", "AuthorizationKey")
_SECURITY_KEYS = frozenset({"SecurityProfile", "AuthorizationKey"})


def on_get_configuration(
    st: StationPort, payload: GetConfigurationRequest, now: float
) -> GetConfigurationResponse:
    try:
        # ConfigStore builds the answer from its key table (tests/model/test_config.py).
        return cast(GetConfigurationResponse, st.config.get_configuration(payload.get("key")))
    except TooManyKeys as exc:
        raise OcppError(errors.OCCURENCE_CONSTRAINT_VIOLATION, str(exc)) from None


def on_change_configuration(
    st: StationPort, payload: ChangeConfigurationRequest, now: float
) -> ChangeConfigurationResponse:
    config = st.config
    before = [config.get(key) for key in _RECONNECT_KEYS]
    status = config.change_configuration(payload["key"], payload["value"])
    st.apply_config_changes(now)
    changed = [
        key for key, old in zip(_RECONNECT_KEYS, before, strict=True) if config.get(key) != old
    ]
    if changed:
        # The station reconnects with the new settings right after answering (the
        # engine drains effects after the reply is written), so the change is in
        # effect: Accepted, not RebootRequired ("the Charge Point will not reboot
        # itself"), as the security whitepaper's profile upgrade also answers.
        status = "Accepted"
        for key in changed:
            if key in _SECURITY_KEYS:
                detail = "changed" if key == "AuthorizationKey" else f"= {config.get(key)}"
                st.security_event("ReconfigurationOfSecurityParameters", now, f"{key} {detail}")
        st.going_down(Reconnect())
    return {"status": status}


def backend_data_reset(st: StationPort, now: float) -> None:
    """``TriggerBackendConfigurationDataReset`` written true: the guide only says
    "specified data will be reset". Taken to mean the data the backend (the CSMS) put
    on the unit besides its configuration: the Local Authorization List (back to
    version 0), the Authorization Cache, the reservation and a pending remote-start
    charging profile. Configuration keys stay (resetting SupervisionUrl or
    BoxIdentifier would cut the unit off its CSMS), and so does the energy register."""
    st.auth.local_list.clear()
    st.auth.cache.clear()
    st.pending_tx_profile = None
    st.set_reservation(None, now)


def on_change_availability(
    st: StationPort, payload: ChangeAvailabilityRequest, now: float
) -> ChangeAvailabilityResponse:
    """5.2: connector 0 is the whole station (and so every connector). Accepted, or
    Scheduled while a transaction runs (applied when it ends; a station-wide change
    takes connector 0 with it then). The availability is kept across reboots."""
    cid = payload["connectorId"]
    if cid not in (0, 1):
        return {"status": "Rejected"}  # no such connector
    c0, c1 = st.connectors
    if payload["type"] == "Operative":
        if not c1.operative:
            c1.finishing = False  # Unavailable has no way to Finishing (4.9): Preparing
        c1.operative = True
        if cid == 0:
            c0.operative = True
            st.zero_inoperative_pending = False
        st.update_status(0, now)
        st.update_status(1, now)
        return {"status": "Accepted"}
    tx = st.transaction
    busy = tx is not None and tx.stop_reason is None
    c1.operative = False  # the connector's status follows once no transaction runs
    if cid == 0:
        if busy:
            st.zero_inoperative_pending = True
        else:
            c0.operative = False
    if st.driver.pending_tag is not None:
        st.clear_pending_tag()  # the driver who badged cannot charge here now
    st.set_reservation(None, now)  # 5.13: a reservation ends when Unavailable
    st.update_status(0, now)
    st.update_status(1, now)
    return {"status": "Scheduled" if busy else "Accepted"}


def on_remote_start(
    st: StationPort, payload: RemoteStartTransactionRequest, now: float
) -> RemoteStartTransactionResponse:
    """Rejected while the boot is Pending: OCPP 1.6 4.2 does not allow it then (a badge
    is the station's own business: the offline rules decide, and its transaction
    messages wait for Accepted)."""
    connector_id = payload.get("connectorId", 1)
    id_tag = payload["idTag"]
    if (
        connector_id != 1
        or not st.can_start()
        or st.driver.authorizing is not None
        or st.boot_status == "Pending"
    ):
        return {"status": "Rejected"}
    profile = payload.get("chargingProfile")
    if profile is not None and profile.get("chargingProfilePurpose") != "TxProfile":
        # 5.11: the purpose of a RemoteStartTransaction's profile SHALL be TxProfile.
        return {"status": "Rejected"}
    authorize_first = st.config.get_bool("AuthorizeRemoteTxRequests")
    known = st.auth.lookup(id_tag, st.config)
    parent = None if known is None else known.parent_id_tag
    reservation = st.reservation
    if (
        reservation is not None
        and not reservation.admits(id_tag, parent)
        and not authorize_first  # else the Authorize.conf's parentIdTag decides
    ):
        return {"status": "Rejected"}
    if profile is not None:
        try:
            parse_profile(1, as_json(profile), now, st.profile_limits())
        except ProfileRejected:
            return {"status": "Rejected"}
    st.pending_tx_profile = copy.deepcopy(None if profile is None else as_json(profile))
    if authorize_first:
        st.request_authorization(id_tag, now)
    else:
        # The StartTransaction.conf is the CSMS's first word on this idTag.
        st.authorized(id_tag, IdTagInfo(ACCEPTED, None, parent), now, local=True)
    st.observer.remote_start(connector_id, id_tag)
    return {"status": "Accepted"}


def on_remote_stop(
    st: StationPort, payload: RemoteStopTransactionRequest, now: float
) -> RemoteStopTransactionResponse:
    """Rejected while the boot is Pending: OCPP 1.6 4.2 does not allow it then."""
    tx = st.transaction
    if (
        tx is None
        or tx.stop_reason is not None
        or tx.transaction_id != payload["transactionId"]
        or st.boot_status == "Pending"
    ):
        return {"status": "Rejected"}
    st.stop_transaction("Remote", now)
    return {"status": "Accepted"}


def on_unlock_connector(
    st: StationPort, payload: UnlockConnectorRequest, now: float
) -> UnlockConnectorResponse:
    """5.18: a running transaction is stopped first (reason UnlockCommand). The Charge
    Pro's socket has a locking motor (the guide's "Lock / Unlock cable Failure",
    0x100205), so Unlocked, or UnlockFailed while that ConnectorLockFailure is
    active; a connector it does not have (0 is the station) is NotSupported."""
    if payload["connectorId"] != 1:
        return {"status": "NotSupported"}
    tx = st.transaction
    if tx is not None and tx.stop_reason is None:
        st.stop_transaction("UnlockCommand", now)
    if any(
        conn.fault is not None and conn.fault.error_code == "ConnectorLockFailure"
        for conn in st.connectors
    ):
        return {"status": "UnlockFailed"}
    return {"status": "Unlocked"}


def on_data_transfer(
    st: StationPort, payload: DataTransferRequest, now: float
) -> DataTransferResponse:
    """The Charge Pro knows no vendor-specific data. A vendorId other than its own is
    UnknownVendorId; its own ("Schneider Electric", compared case-insensitively as
    OCPP's CiString is) with any messageId, or none, is UnknownMessageId."""
    if payload["vendorId"].casefold() != VENDOR_ID.casefold():
        return {"status": "UnknownVendorId"}
    return {"status": "UnknownMessageId"}


def on_clear_cache(st: StationPort, payload: ClearCacheRequest, now: float) -> ClearCacheResponse:
    """5.4: Accepted whenever the cache could be cleared, which it always can; also
    while ``AuthorizationCacheEnabled`` is False (the cache exists, unused)."""
    st.auth.cache.clear()
    return {"status": "Accepted"}


HANDLERS = {
    "GetConfiguration": handler(on_get_configuration),
    "ChangeConfiguration": handler(on_change_configuration),
    "ChangeAvailability": handler(on_change_availability),
    "RemoteStartTransaction": handler(on_remote_start),
    "RemoteStopTransaction": handler(on_remote_stop),
    "UnlockConnector": handler(on_unlock_connector),
    "DataTransfer": handler(on_data_transfer),
    "ClearCache": handler(on_clear_cache),
}
