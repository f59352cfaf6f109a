"""Meter values: the sampling clock of a transaction and the sampled values.

Online, a transaction is sampled every ``MeterValueSampleInterval`` seconds from its
start; offline every ``disconnectedMeterValueSampleInterval``. Each sample is a
transaction message (queued in order, kept offline); with ``StopTxnSampledData`` the
samples are also kept for the StopTransaction's ``transactionData``.
"""

from __future__ import annotations

from fleet.model.messages import (
    MeterValue,
    MeterValuesRequest,
    Phase,
    ReadingContext,
    SampledValue,
)
from fleet.model.outbox import Outgoing, wire
from fleet.model.port import StationPort
from fleet.model.records import Transaction, iso8601


def first_sample_after(st: StationPort, start: float, now: float) -> float | None:
    interval = st.sample_interval if st.online else st.offline_sample_interval
    if interval <= 0:
        return None
    periods = int((now - start) // interval) + 1
    return start + periods * interval


def reschedule_sample(st: StationPort, now: float) -> None:
    tx = st.transaction
    if tx is not None and tx.stop_reason is None:
        tx.next_sample = first_sample_after(st, tx.started_at, now)


def take_sample(st: StationPort, tx: Transaction, now: float, context: ReadingContext) -> None:
    """A periodic sample: a MeterValues of ``MeterValuesSampledData`` and a value kept for
    ``StopTxnSampledData``. An empty list sends (or keeps) nothing: OCPP 1.6 requires at
    least one sampledValue, and an empty MeterValues would be schema-invalid."""
    st.integrate(now)
    value = meter_value(st, now, context, st.measurands)
    if value["sampledValue"]:
        payload: MeterValuesRequest = {
            "connectorId": tx.connector_id,
            "transactionId": 0,  # filled in when sent
            "meterValue": [value],
        }
        st.queue_transaction_message(Outgoing("MeterValues", wire(payload), tx))
    keep_stop_sample(st, tx, now, context)


def keep_stop_sample(st: StationPort, tx: Transaction, now: float, context: ReadingContext) -> None:
    """Keep a ``StopTxnSampledData`` value for the StopTransaction's transactionData."""
    if st.stop_measurands:
        value = meter_value(st, now, context, st.stop_measurands)
        if value["sampledValue"]:
            tx.samples.append(value)


ENERGY = "Energy.Active.Import.Register"

_PHASES: dict[str, tuple[Phase, ...]] = {
    "Current.Import": ("L1", "L2", "L3"),
    "Current.Import.L1": ("L1",),
    "Current.Import.L2": ("L2",),
    "Current.Import.L3": ("L3",),
}


_ENERGY, _OFFERED, _CURRENT = range(3)
_Plan = tuple[tuple[int, int, "Phase | None"], ...]
_PLANS: dict[tuple[str, ...], _Plan] = {}
"""MeterValuesSampledData (as configured) -> what to sample, in order: (kind, line
index, phase) per sampled value. A fleet has a handful of distinct lists, and a sample
then costs no string matching (meter_value runs at every sample of every station)."""


def _plan(measurands: tuple[str, ...]) -> _Plan:
    plan: list[tuple[int, int, Phase | None]] = []
    for measurand in measurands:
        if measurand == ENERGY:
            plan.append((_ENERGY, 0, None))
        elif measurand == "Current.Offered":
            plan.append((_OFFERED, 0, None))
        elif measurand.startswith("Current.Import"):
            for phase in _PHASES.get(measurand, ()):
                plan.append((_CURRENT, int(phase[1]) - 1, phase))
    _PLANS[measurands] = done = tuple(plan)
    return done


def meter_value(
    st: StationPort, now: float, context: ReadingContext, measurands: tuple[str, ...]
) -> MeterValue:
    m = st.meter
    plan = _PLANS.get(measurands)
    if plan is None:
        plan = _plan(measurands)
    sampled: list[SampledValue] = []
    for kind, line, phase in plan:
        if kind == _CURRENT:
            assert phase is not None
            sampled.append(
                {
                    "value": f"{m.currents[line]:.1f}",
                    "context": context,
                    "measurand": "Current.Import",
                    "phase": phase,
                    "location": "Outlet",
                    "unit": "A",
                }
            )
        elif kind == _ENERGY:
            sampled.append(
                {
                    "value": str(int(m.energy_wh)),
                    "context": context,
                    "measurand": "Energy.Active.Import.Register",
                    "location": "Outlet",
                    "unit": "Wh",
                }
            )
        else:
            sampled.append(
                {
                    "value": f"{m.offered:.1f}",
                    "context": context,
                    "measurand": "Current.Offered",
                    "location": "Outlet",
                    "unit": "A",
                }
            )
    return {"timestamp": iso8601(now), "sampledValue": sampled}
