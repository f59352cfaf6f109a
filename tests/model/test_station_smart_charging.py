"""SetChargingProfile / ClearChargingProfile / GetCompositeSchedule on the station, and
their effect on the simulated charge, on a fake clock (every message schema-checked)."""

from __future__ import annotations

from typing import Any

from test_operations import Central, setup
from test_station import T0, iso, sampled

from fleet.model.meter import EvModel
from fleet.model.records import iso8601

ENERGY = "Energy.Active.Import.Register"


def profile(
    pid: int,
    periods: list[tuple[int, float]],
    *,
    purpose: str = "TxDefaultProfile",
    stack: int = 0,
    unit: str = "A",
    start: float | None = T0,
    kind: str = "Absolute",
    tx: int | None = None,
) -> dict[str, Any]:
    schedule: dict[str, Any] = {
        "chargingRateUnit": unit,
        "chargingSchedulePeriod": [{"startPeriod": s, "limit": lim} for s, lim in periods],
    }
    if start is not None:
        schedule["startSchedule"] = iso(start)
    raw: dict[str, Any] = {
        "chargingProfileId": pid,
        "stackLevel": stack,
        "chargingProfilePurpose": purpose,
        "chargingProfileKind": kind,
        "chargingSchedule": schedule,
    }
    if tx is not None:
        raw["transactionId"] = tx
    return raw


def set_profile(c: Central, connector: int, raw: dict[str, Any]) -> str:
    answer = c.call("SetChargingProfile", {"connectorId": connector, "csChargingProfiles": raw})
    return str(answer["status"])


def charging(config: dict[str, Any] | None = None) -> tuple[Any, Central]:
    st, c = setup(
        {"MeterValueSampleInterval": 10, **(config or {})},
        ev=EvModel(battery_wh=200_000, max_current=32, phases=3, soc=0.1),
    )
    c.run(T0 + 1)
    c.do(st.plug_in)
    c.do(st.present_tag, "TAG1")
    assert st.status(1) == "Charging"
    return st, c


def last_currents(c: Central) -> tuple[float, float]:
    mv = sampled(c.payloads("MeterValues")[-1]["meterValue"][0])
    return (
        float(mv[("Current.Offered", None)]["value"]),
        float(mv[("Current.Import", "L1")]["value"]),
    )


def test_a_schedule_steps_the_offered_current_at_its_second() -> None:
    st, c = charging()
    assert set_profile(c, 1, profile(1, [(0, 20), (100, 8)], start=T0 + 5)) == "Accepted"
    assert st.meter.offered == 32.0  # the schedule starts at T0 + 5
    c.run(T0 + 5)
    assert st.meter.offered == 20.0
    c.run(T0 + 104)
    assert st.meter.offered == 20.0
    c.run(T0 + 105)  # startSchedule + 100 s
    assert st.meter.offered == 8.0
    c.run(T0 + 111)
    assert last_currents(c) == (8.0, 8.0)  # the next MeterValues shows offer and draw


def test_under_six_amps_suspends_and_above_resumes() -> None:
    st, c = charging()
    assert set_profile(c, 1, profile(1, [(0, 5), (60, 16)])) == "Accepted"
    assert st.status(1) == "SuspendedEVSE"
    energy = st.meter.energy_wh
    c.run(T0 + 59)
    assert st.meter.energy_wh == energy  # nothing drawn while suspended
    c.run(T0 + 60)
    assert st.status(1) == "Charging"
    statuses = [p["status"] for p in c.payloads("StatusNotification") if p["connectorId"] == 1]
    assert statuses[-2:] == ["SuspendedEVSE", "Charging"]


def test_the_ev_draws_the_lower_of_its_maximum_and_the_offer() -> None:
    st, c = setup({}, ev=EvModel(max_current=16, phases=1, soc=0.1, battery_wh=200_000))
    c.run(T0 + 1)
    c.do(st.plug_in)
    c.do(st.present_tag, "TAG1")
    assert set_profile(c, 1, profile(1, [(0, 20)])) == "Accepted"
    assert (st.meter.offered, st.meter.currents) == (20.0, (16.0, 0.0, 0.0))
    assert set_profile(c, 1, profile(1, [(0, 10)])) == "Accepted"  # replaces id 1
    assert (st.meter.offered, st.meter.currents) == (10.0, (10.0, 0.0, 0.0))


def test_tx_profile_needs_the_running_transaction() -> None:
    st, c = setup()
    assert set_profile(c, 1, profile(1, [(0, 10)], purpose="TxProfile")) == "Rejected"
    c.do(st.plug_in)
    c.do(st.present_tag, "TAG1")
    tx_id = st.transaction.transaction_id
    assert set_profile(c, 1, profile(1, [(0, 10)], purpose="TxProfile", tx=tx_id + 1)) == (
        "Rejected"
    )
    assert set_profile(c, 1, profile(1, [(0, 10)], purpose="TxProfile", tx=tx_id)) == "Accepted"
    assert st.meter.offered == 10.0
    c.do(st.present_tag, "TAG1")  # stop: the TxProfile ends with its transaction
    assert st.smart.profiles == {}


def test_rejections_as_the_guide_and_the_keys_say() -> None:
    st, c = setup()
    assert set_profile(c, 2, profile(1, [(0, 10)])) == "Rejected"  # no connector 2
    assert set_profile(c, 1, profile(1, [(0, 7360)], unit="W")) == "Rejected"  # key: Current
    with_phases = profile(1, [(0, 10)])
    with_phases["chargingSchedule"]["chargingSchedulePeriod"][0]["numberPhases"] = 3
    st.reject_number_phases = True  # the profile option; accepted by default
    assert set_profile(c, 1, with_phases) == "Rejected"  # "Parameter not used"
    assert set_profile(c, 1, profile(1, [(0, 10)], stack=201)) == "Rejected"
    assert set_profile(c, 1, profile(1, [(0, 10)], purpose="ChargePointMaxProfile")) == "Rejected"
    assert st.smart.profiles == {}


def test_power_profiles_when_the_unit_allows_them_on_mono_wiring() -> None:
    st, c = charging(
        {"ChargingScheduleAllowedChargingRateUnit": "Current,Power", "PhasesConnection": 4}
    )
    assert set_profile(c, 1, profile(1, [(0, 2300)], unit="W")) == "Accepted"
    assert st.meter.offered == 10.0  # 2300 W / 230 V on one phase
    assert st.meter.currents == (10.0, 0.0, 0.0)  # Mono1: L1 only


def test_clear_charging_profile() -> None:
    st, c = charging()
    set_profile(c, 1, profile(1, [(0, 10)], stack=1))
    set_profile(c, 0, profile(2, [(0, 16)], purpose="ChargePointMaxProfile"))
    assert c.call("ClearChargingProfile", {"id": 99}) == {"status": "Unknown"}
    assert c.call("ClearChargingProfile", {"chargingProfilePurpose": "TxDefaultProfile"}) == {
        "status": "Accepted"
    }
    assert st.meter.offered == 16.0
    assert c.call("ClearChargingProfile", {}) == {"status": "Accepted"}
    assert st.meter.offered == 32.0


def test_get_composite_schedule() -> None:
    _, c = charging()
    set_profile(c, 0, profile(1, [(0, 16)], purpose="ChargePointMaxProfile"))
    set_profile(c, 1, profile(2, [(0, 10), (600, 20)], start=T0 + 1))
    answer = c.call("GetCompositeSchedule", {"connectorId": 1, "duration": 1800})
    assert answer["status"] == "Accepted"
    assert answer["scheduleStart"] == iso8601(T0 + 1)
    schedule = answer["chargingSchedule"]
    assert schedule["chargingRateUnit"] == "A" and schedule["duration"] == 1800
    assert schedule["chargingSchedulePeriod"] == [
        {"startPeriod": 0, "limit": 10.0},
        {"startPeriod": 600, "limit": 16.0},  # 20 A capped by ChargePointMaxProfile
    ]
    assert c.call("GetCompositeSchedule", {"connectorId": 2, "duration": 60}) == {
        "status": "Rejected"
    }
    w = c.call("GetCompositeSchedule", {"connectorId": 1, "duration": 60, "chargingRateUnit": "W"})
    assert w == {"status": "Rejected"}  # the unit takes Current only (the key)


def test_profiles_survive_a_reboot() -> None:
    st, c = charging()
    set_profile(c, 0, profile(1, [(0, 12)], purpose="ChargePointMaxProfile"))
    assert c.call("Reset", {"type": "Hard"}) == {"status": "Accepted"}
    c.run(c.now + 1)
    (effect,) = c.effects()
    c.reboot(effect)  # type: ignore[arg-type]
    assert sorted(st.smart.profiles) == [1]
    c.do(st.unplug)
    c.do(st.plug_in)
    c.do(st.present_tag, "TAG1")  # a new session
    assert st.status(1) == "Charging" and st.meter.offered == 12.0
