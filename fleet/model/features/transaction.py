"""Transactions: the authorization flow, StartTransaction / StopTransaction, and the
hardware events of a session (cable, badge, EV).

A badge (or a remote start with ``AuthorizeRemoteTxRequests``) is authorized locally
or by the CSMS per OCPP 1.6 section 3.5 (see :mod:`fleet.model.auth`); an authorized
driver waits for the cable up to ``ConnectionTimeOut``. The transaction messages go to
the outbox (:mod:`fleet.model.outbox`), which delivers them in order.
"""

from __future__ import annotations

from fleet.model import messages
from fleet.model.auth import ACCEPTED, IdTagInfo
from fleet.model.messages import (
    Reason,
    StartTransactionRequest,
    StartTransactionResponse,
    StopTransactionRequest,
    StopTransactionResponse,
)
from fleet.model.outbox import Outgoing, wire
from fleet.model.port import StationPort
from fleet.model.records import JsonDict, Transaction, iso8601
from fleet.model.smart_charging import ProfileRejected, parse_profile

from . import metering

# -- hardware events -----------------------------------------------------------------


def plug_in(st: StationPort, now: float) -> None:
    """The driver plugs the cable into the EV."""
    st.integrate(now)
    c1 = st.connectors[1]
    if c1.plugged:
        return
    c1.plugged = True
    c1.finishing = False
    st.update_status(1, now)
    driver = st.driver
    if driver.pending_tag is not None and st.can_start():
        tag, parent = driver.pending_tag, driver.pending_parent
        driver.pending_tag = None
        start_transaction(st, tag, now, parent, driver.pending_local)
    elif free_charging(st):
        # No badge needed: the session starts with DefaultIdTag (an Authorize of it
        # may go first; its answer does not gate the session).
        request_authorization(st, st.config.get("DefaultIdTag"), now)


def free_charging(st: StationPort) -> bool:
    """No one to authenticate: ``AuthenticationOCPPMode`` False (the guide's "free
    charging"), or standalone mode (``OcppEnable`` False: no CSMS to ask)."""
    return st.standalone or not st.config.get_bool("AuthenticationOCPPMode")


def unplug(st: StationPort, now: float) -> None:
    """The driver unplugs the cable at the EV."""
    st.integrate(now)
    c1 = st.connectors[1]
    if not c1.plugged:
        return
    c1.plugged = False
    c1.finishing = False
    tx = st.transaction
    if (
        tx is not None
        and tx.stop_reason is None
        and st.config.get_bool("StopTransactionOnEVSideDisconnect")
    ):
        st.stop_transaction("EVDisconnected", now)
    st.update_status(1, now)


def present_tag(st: StationPort, id_tag: str, now: float) -> None:
    """A badge is presented to the reader (or the free-charging tag is used)."""
    st.integrate(now)
    tag = id_tag
    if free_charging(st):
        tag = st.config.get("DefaultIdTag")  # what a free session is started with
    tx = st.transaction
    if tx is not None and tx.stop_reason is None:
        if tx.id_tag in (id_tag, tag):
            st.stop_transaction("Local", now, id_tag=tx.id_tag)
        elif tx.parent_id_tag is not None:
            _authorize_stop(st, tag, now)
        return
    request_authorization(st, tag, now)


def _authorize_stop(st: StationPort, id_tag: str, now: float) -> None:
    """Another idTag during a transaction with a parentIdTag: it stops the transaction
    if it has the same parent (OCPP 1.6 4.10). The list or the cache tells its parent;
    else the CSMS is asked (the answer goes to :func:`authorized`); offline, an unknown
    idTag stops nothing."""
    if st.driver.authorizing is not None:
        return
    known = st.auth.lookup(id_tag, st.config)
    if known is not None:
        authorized(st, id_tag, known.decision(now), now, local=True)
    elif st.online and st.boot_status == "Accepted":
        st.driver.authorizing = id_tag
        st.send("Authorize", {"idTag": id_tag})


def ev_suspend(st: StationPort, now: float) -> None:
    """The EV stops drawing (e.g. its battery management says so)."""
    st.integrate(now)
    st.connectors[1].ev_suspended = True
    st.recompute_draw(now)


def ev_resume(st: StationPort, now: float) -> None:
    """The EV wants current again."""
    st.integrate(now)
    if st.ev.full:
        return
    st.connectors[1].ev_suspended = False
    st.recompute_draw(now)


# -- time ---------------------------------------------------------------------------


def advance(st: StationPort, now: float) -> None:
    """A session's timed work: the energy limit, a full EV, samples, ConnectionTimeOut."""
    tx = st.transaction
    if tx is not None:
        check_energy_limit(st, now)
        full_at = ev_full_at(st)
        if full_at is not None and now >= full_at:
            # Float rounding can leave the SoC a hair below the target at the time
            # computed for it; without this the EV is never full and next_wakeup()
            # keeps returning `now`.
            st.ev.soc = max(st.ev.soc, st.ev.target_soc)
        if st.ev.full and not st.connectors[1].ev_suspended and tx.stop_reason is None:
            st.connectors[1].ev_suspended = True
            st.recompute_draw(now)
        if tx.next_sample is not None and now >= tx.next_sample and tx.stop_reason is None:
            metering.take_sample(st, tx, now, "Sample.Periodic")
            tx.next_sample = metering.first_sample_after(st, tx.started_at, now)
    driver = st.driver
    if (
        driver.pending_tag is not None
        and st.connection_timeout > 0
        and now >= driver.pending_since + st.connection_timeout
    ):
        clear_pending_tag(st)
        st.update_status(1, now)


def next_wakeup(st: StationPort) -> float | None:
    times: list[float] = []
    tx = st.transaction
    if tx is not None:
        if tx.next_sample is not None:
            times.append(tx.next_sample)
        full_at = ev_full_at(st)
        if full_at is not None:
            times.append(full_at)
        limit_at = _energy_limit_at(st)
        if limit_at is not None:
            times.append(limit_at)
    driver = st.driver
    if driver.pending_tag is not None and st.connection_timeout > 0:
        times.append(driver.pending_since + st.connection_timeout)
    return min(times) if times else None


def ev_full_at(st: StationPort) -> float | None:
    power = st.meter.power_w
    if power <= 0.0:
        return None
    ev = st.ev
    remaining_wh = max(0.0, (ev.target_soc - ev.soc) * ev.battery_wh)
    return st.meter.since + remaining_wh * 3600.0 / power


def _energy_limit_at(st: StationPort) -> float | None:
    """When a refused-but-continued transaction reaches MaxEnergyOnInvalidId."""
    tx = st.transaction
    power = st.meter.power_w
    if tx is None or tx.energy_limit is None or tx.limit_reached or power <= 0.0:
        return None
    remaining_wh = max(0.0, tx.energy_limit - st.meter.energy_wh)
    return st.meter.since + remaining_wh * 3600.0 / power


def check_energy_limit(st: StationPort, now: float) -> None:
    tx = st.transaction
    if tx is None or tx.energy_limit is None or tx.limit_reached:
        return
    at = _energy_limit_at(st)
    # As for a full EV: float rounding can leave the register a hair short at the
    # computed time, so reaching the time counts as reaching the energy.
    if st.meter.energy_wh >= tx.energy_limit or (at is not None and now >= at):
        tx.limit_reached = True
        st.recompute_draw(now)


# -- authorization ------------------------------------------------------------------


def request_authorization(st: StationPort, id_tag: str, now: float) -> None:
    """A badge (or a remote start with ``AuthorizeRemoteTxRequests``): decide locally
    or ask the CSMS, per OCPP 1.6 section 3.5 (see fleet.model.auth)."""
    if not st.can_start() or st.driver.authorizing is not None:
        return
    if st.online and st.boot_status == "Accepted":
        if st.config.get_bool("AuthenticationOCPPMode"):
            local = st.auth.pre_authorized(id_tag, now, st.config)
            if local is not None:
                authorized(st, id_tag, local, now, local=True)
                return
        st.driver.authorizing = id_tag
        st.send("Authorize", {"idTag": id_tag})
    else:
        authorize_offline(st, id_tag, now)


def authorize_offline(st: StationPort, id_tag: str, now: float) -> None:
    """Offline rules: the list and cache, LocalAuthorizeOffline, AllowOfflineTxForUnknownId."""
    st.driver.authorizing = None
    decision = (
        IdTagInfo(ACCEPTED)  # free charging needs no one's approval
        if free_charging(st)
        else st.auth.offline(id_tag, now, st.config)
    )
    authorized(st, id_tag, decision, now, local=True)


def authorize_answered(
    st: StationPort, id_tag: str, info_payload: messages.IdTagInfo, now: float
) -> None:
    st.driver.authorizing = None
    info = learn(st, id_tag, info_payload, now)
    if not st.config.get_bool("AuthenticationOCPPMode"):
        # Free charging: the answer does not gate the session.
        info = IdTagInfo(ACCEPTED, None, info.parent_id_tag)
    authorized(st, id_tag, info, now)


def learn(
    st: StationPort,
    id_tag: str,
    info_payload: messages.IdTagInfo,
    now: float,
    report: bool = True,
) -> IdTagInfo:
    """An idTagInfo from the CSMS: update the cache, report a conflict with the list.

    The CSMS's answer is followed either way; a conflict is reported with a
    StatusNotification on connector 0 carrying the guide's LocalListConflict error
    (0x30000E) and the connector's unchanged status.
    """
    try:
        info = IdTagInfo.parse(info_payload)
    except ValueError:
        # An unreadable expiryDate: keep the status, forget the date.
        info = IdTagInfo(str(info_payload["status"]), None, info_payload.get("parentIdTag"))
    if st.auth.learn(id_tag, info, now, st.config) and report:
        st.report_local_list_conflict(now)
    return info


def authorized(
    st: StationPort, id_tag: str, info: IdTagInfo, now: float, *, local: bool = False
) -> None:
    """Authorization decided (``local``: without an Authorize.conf from the CSMS).

    During a transaction it is a request to stop it (see :func:`_authorize_stop`)."""
    tx = st.transaction
    if tx is not None and tx.stop_reason is None:
        st.observer.authorization(id_tag, info.status)
        if (
            info.status == ACCEPTED
            and info.parent_id_tag is not None
            and info.parent_id_tag == tx.parent_id_tag
        ):
            st.stop_transaction("Local", now, id_tag=id_tag)
        return
    status = info.status
    reservation = st.reservation
    if (
        status == ACCEPTED
        and reservation is not None
        and not reservation.admits(id_tag, info.parent_id_tag)
    ):
        status = "Reserved"  # not an OCPP status: the connector is someone else's
    st.observer.authorization(id_tag, status)
    if status != ACCEPTED or not st.can_start():
        if st.driver.pending_tag is None:
            st.pending_tx_profile = None  # the remote start it came with is over
        return
    c1 = st.connectors[1]
    if c1.plugged:
        # Also while Finishing: the cable is still in, so a badge or a remote start
        # begins a new session (4.9 F2, via Preparing: features/status.py).
        start_transaction(st, id_tag, now, info.parent_id_tag, local)
    else:
        driver = st.driver
        driver.pending_tag = id_tag
        driver.pending_parent = info.parent_id_tag
        driver.pending_local = local
        driver.pending_since = now
        c1.authorized = True
        st.update_status(1, now)


def clear_pending_tag(st: StationPort) -> None:
    driver = st.driver
    driver.pending_tag = None
    driver.pending_parent = None
    st.pending_tx_profile = None
    st.connectors[1].authorized = False


# -- start and stop -------------------------------------------------------------------


def start_transaction(
    st: StationPort, id_tag: str, now: float, parent_id_tag: str | None, local: bool
) -> None:
    c1 = st.connectors[1]
    c1.authorized = False
    c1.finishing = False
    c1.in_transaction = True
    c1.ev_suspended = st.ev.full
    meter_start = int(st.meter.energy_wh)
    tx = Transaction(st.next_local_tx, 1, id_tag, meter_start, now)
    tx.authorized_locally = local
    tx.parent_id_tag = parent_id_tag
    tx.standalone = st.standalone
    st.next_local_tx += 1
    st.transaction = tx
    payload: StartTransactionRequest = {
        "connectorId": 1,
        "idTag": id_tag,
        "meterStart": meter_start,
        "timestamp": iso8601(now),
    }
    reservation = st.reservation
    if reservation is not None and reservation.admits(id_tag, parent_id_tag):
        # 5.13: the reservation is consumed and StartTransaction names it.
        payload["reservationId"] = tx.reservation_id = reservation.reservation_id
        st.reservation = None
        c1.reserved = False
    if st.pending_tx_profile is not None:
        # 5.11: the RemoteStartTransaction's profile is this transaction's TxProfile.
        limits = st.profile_limits()
        try:
            profile = parse_profile(1, st.pending_tx_profile, now, limits)
            st.smart.install(profile, limits)
        except ProfileRejected:
            pass  # checked when the request was accepted; the store may have filled since
        st.pending_tx_profile = None
    st.driver.pending_parent = None
    # The status first: from Finishing the connector passes through Preparing, which
    # the CSMS then sees before the StartTransaction, as after a plug-in.
    st.recompute_draw(now)
    st.queue_transaction_message(Outgoing("StartTransaction", wire(payload), tx))
    metering.keep_stop_sample(st, tx, now, "Transaction.Begin")
    tx.next_sample = metering.first_sample_after(st, now, now)
    st.update_status(1, now)
    st.observer.transaction_started(1, id_tag)


def start_answered(
    st: StationPort, tx: Transaction, payload: StartTransactionResponse, now: float
) -> None:
    tx.transaction_id = int(payload["transactionId"])
    if st.smart.profiles and tx is st.transaction:
        st.recompute_draw(now)  # a TxProfile may name the transaction by this id
    # A conflict with the list is reported here only when no Authorize.conf came first.
    info = learn(st, tx.id_tag, payload["idTagInfo"], now, tx.authorized_locally)
    if tx.parent_id_tag is None:
        tx.parent_id_tag = info.parent_id_tag
    if (
        info.status == ACCEPTED
        or tx is not st.transaction
        or tx.stop_reason is not None
        # Free charging (guide: AuthenticationOCPPMode False) authenticates no one.
        or not st.config.get_bool("AuthenticationOCPPMode")
    ):
        return
    if st.config.get_bool("StopTransactionOnInvalidId"):
        st.stop_transaction("DeAuthorized", now)
    elif tx.energy_limit is None:
        # OCPP 4.8: only stop delivering energy, keep the transaction. Up to
        # MaxEnergyOnInvalidId Wh in the transaction (0: suspend at once), then
        # SuspendedEVSE until it ends.
        tx.energy_limit = tx.meter_start + st.config.get_int("MaxEnergyOnInvalidId")
        check_energy_limit(st, now)


def stop_answered(
    st: StationPort, request: JsonDict, payload: StopTransactionResponse, now: float
) -> None:
    info = payload.get("idTagInfo")
    id_tag = request.get("idTag")
    if info is not None and id_tag is not None:
        learn(st, id_tag, info, now, report=False)  # the session is over


def stop_transaction(
    st: StationPort, reason: Reason, now: float, id_tag: str | None = None
) -> None:
    tx = st.transaction
    assert tx is not None
    st.integrate(now)
    tx.stop_reason = reason
    meter_stop = int(st.meter.energy_wh)
    payload: StopTransactionRequest = {
        "transactionId": 0,  # filled in when sent
        "meterStop": meter_stop,
        "timestamp": iso8601(now),
        "reason": reason,
    }
    if id_tag is not None:
        payload["idTag"] = id_tag
    metering.keep_stop_sample(st, tx, now, "Transaction.End")
    if tx.samples:
        payload["transactionData"] = tx.samples
    st.queue_transaction_message(Outgoing("StopTransaction", wire(payload), tx))
    st.transaction = None
    st.smart.transaction_ended(tx.transaction_id)
    c1 = st.connectors[1]
    c1.in_transaction = False
    c1.ev_suspended = False
    c1.finishing = c1.plugged
    if st.zero_inoperative_pending:
        # A ChangeAvailability(0, Inoperative) answered Scheduled takes effect now.
        st.zero_inoperative_pending = False
        st.connectors[0].operative = False
        st.update_status(0, now)
    st.recompute_draw(now)
    st.update_status(1, now)
    st.observer.transaction_stopped(1, reason, meter_stop - tx.meter_start)
