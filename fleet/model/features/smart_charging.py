"""The SmartCharging profile: SetChargingProfile, ClearChargingProfile,
GetCompositeSchedule, and the current the station offers the EV.

The profile store and the composite schedule are :mod:`fleet.model.smart_charging`;
this module is the glue: which limit applies to the running transaction now, and when
it next changes (``StationPort.limit_change_at``).
"""

from __future__ import annotations

import math

from fleet.model.messages import (
    ClearChargingProfileRequest,
    ClearChargingProfileResponse,
    GetCompositeScheduleRequest,
    GetCompositeScheduleResponse,
    SetChargingProfileRequest,
    SetChargingProfileResponse,
)
from fleet.model.meter import MIN_CHARGING_CURRENT, NOMINAL_VOLTAGE
from fleet.model.port import StationPort, handler
from fleet.model.records import as_json, iso8601
from fleet.model.smart_charging import TX, Limits, ProfileRejected, parse_profile, wired_phases


def tenth_down(value: float) -> float:
    """Round down to 0.1: OCPP limits are multiples of 0.1, and a limit must not be
    reported (or offered) above what a profile allows."""
    return math.floor(value * 10 + 1e-9) / 10


def profile_limits(st: StationPort) -> Limits:
    c = st.config
    return Limits(
        max_stack_level=c.get_int("ChargeProfileMaxStackLevel"),
        max_periods=c.get_int("ChargingScheduleMaxPeriods"),
        max_installed=c.get_int("MaxChargingProfilesInstalled"),
        allowed_units=c.get_list("ChargingScheduleAllowedChargingRateUnit"),
        reject_number_phases=st.reject_number_phases,
    )


def recompute_draw(st: StationPort, now: float) -> None:
    """Offered current and what the EV takes of it; sets SuspendedEVSE below 6 A.
    Nothing is offered until ``load_held_until`` (RestoreTimeout after a power cut),
    which is then the next change, as a schedule's next period is."""
    st.integrate(now)
    c1 = st.connectors[1]
    tx = st.transaction
    held = now < st.load_held_until
    offering = tx is not None and not c1.faulted and not tx.limit_reached and not held
    offered = st.max_current if offering else 0.0
    st.limit_change_at = None
    if tx is not None and st.smart.profiles:
        limit = st.smart.limit(
            now,
            1,
            unit="A",
            phases=wired_phases(st.wiring),
            tx_start=tx.started_at,
            transaction_id=tx.transaction_id,
        )
        if limit is not None:
            offered = min(offered, tenth_down(limit))
        st.limit_change_at = st.smart.next_change(
            now, 1, tx_start=tx.started_at, transaction_id=tx.transaction_id
        )
    if held and tx is not None:
        resume = st.load_held_until
        st.limit_change_at = (
            resume if st.limit_change_at is None else min(st.limit_change_at, resume)
        )
    st.meter.offered = offered
    c1.evse_suspended = tx is not None and offered < MIN_CHARGING_CURRENT
    drawing = tx is not None and not c1.evse_suspended and not c1.ev_suspended
    current = min(offered, st.ev.max_current) if drawing else 0.0
    st.meter.draw(current, st.wiring, st.ev.phases)
    st.update_status(1, now)


def on_set_charging_profile(
    st: StationPort, payload: SetChargingProfileRequest, now: float
) -> SetChargingProfileResponse:
    connector_id = payload["connectorId"]
    raw = payload["csChargingProfiles"]
    if connector_id not in (0, 1):
        return {"status": "Rejected"}
    if raw["chargingProfilePurpose"] == TX:
        # 3.13.1: a TxProfile only with a running transaction, and for that one.
        tx = st.transaction
        if (
            tx is None
            or tx.stop_reason is not None
            or raw.get("transactionId", tx.transaction_id) != tx.transaction_id
        ):
            return {"status": "Rejected"}
    limits = profile_limits(st)
    try:
        st.smart.install(parse_profile(connector_id, as_json(raw), now, limits), limits)
    except ProfileRejected:
        return {"status": "Rejected"}
    recompute_draw(st, now)
    return {"status": "Accepted"}


def on_clear_charging_profile(
    st: StationPort, payload: ClearChargingProfileRequest, now: float
) -> ClearChargingProfileResponse:
    removed = st.smart.clear(
        profile_id=payload.get("id"),
        connector_id=payload.get("connectorId"),
        purpose=payload.get("chargingProfilePurpose"),
        stack_level=payload.get("stackLevel"),
    )
    recompute_draw(st, now)
    return {"status": "Accepted" if removed else "Unknown"}


def on_get_composite_schedule(
    st: StationPort, payload: GetCompositeScheduleRequest, now: float
) -> GetCompositeScheduleResponse:
    connector_id = payload["connectorId"]
    unit = payload.get("chargingRateUnit", "A")
    allowed = st.config.get_list("ChargingScheduleAllowedChargingRateUnit")
    if connector_id not in (0, 1) or {"A": "Current", "W": "Power"}[unit] not in allowed:
        return {"status": "Rejected"}
    phases = wired_phases(st.wiring)
    ceiling = st.max_current if unit == "A" else st.max_current * NOMINAL_VOLTAGE * phases
    tx = st.transaction
    start = float(int(now))
    duration = payload["duration"]
    steps = st.smart.composite(
        start,
        duration,
        1,
        unit=unit,
        phases=phases,
        tx_start=tx.started_at if tx is not None else None,
        transaction_id=tx.transaction_id if tx is not None else None,
        ceiling=ceiling,
    )
    return {
        "status": "Accepted",
        "connectorId": connector_id,
        "scheduleStart": iso8601(start),
        "chargingSchedule": {
            "duration": duration,
            "startSchedule": iso8601(start),
            "chargingRateUnit": unit,
            "chargingSchedulePeriod": [
                {"startPeriod": offset, "limit": tenth_down(limit)} for offset, limit in steps
            ],
        },
    }


HANDLERS = {
    "SetChargingProfile": handler(on_set_charging_profile),
    "ClearChargingProfile": handler(on_clear_charging_profile),
    "GetCompositeSchedule": handler(on_get_composite_schedule),
}
