"""The ledger is the tests' oracle, so its own checks are tested with plain calls."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from fleet.csms.ledger import ENERGY_REGISTER, Ledger, energy_readings


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def energy(value: float | str, unit: str | None = "Wh", **extra: str) -> dict[str, Any]:
    sample: dict[str, Any] = {"value": str(value), "measurand": ENERGY_REGISTER, **extra}
    if unit is not None:
        sample["unit"] = unit
    return {"timestamp": "2025-01-01T00:00:00Z", "sampledValue": [sample]}


def started(ledger: Ledger, station: str = "CP1", meter_start: int = 1000) -> int:
    return ledger.start_transaction(station, 1, "TAG", meter_start, "2025-01-01T00:00:00Z")


def test_boot_status_heartbeat_and_authorize_are_recorded() -> None:
    clock = FakeClock()
    ledger = Ledger(clock=clock)
    ledger.record_connection("CP1")
    ledger.record_boot("CP1", {"chargePointVendor": "Schneider Electric"}, "Pending")
    clock.now = 1005.0
    ledger.record_boot("CP1", {"chargePointVendor": "Schneider Electric", "x": 1})
    ledger.record_status("CP1", 1, "Available", "NoError")
    ledger.record_status("CP1", 1, "Faulted", "OtherError", "boom", "E42")
    ledger.record_heartbeat("CP1")
    ledger.record_authorize("CP1", "TAG")
    ledger.record_authorize("CP1", "TAG")

    record = ledger.station("CP1")
    assert record.boots == 2
    assert record.boot_times == [1000.0, 1005.0]
    assert record.last_boot == {"chargePointVendor": "Schneider Electric", "x": 1}
    assert record.registration_status == "Accepted"
    assert [s.status for s in record.statuses] == ["Available", "Faulted"]
    assert record.last_status[1] == (1005.0, 1, "Faulted", "OtherError", "boom", "E42")
    assert record.heartbeats == 1
    assert record.authorizations == {"TAG": 2}
    assert ledger.check() == []


def test_transaction_ids_are_global_and_start_at_one() -> None:
    ledger = Ledger()
    assert started(ledger, "CP1") == 1
    assert started(ledger, "CP2") == 2
    assert ledger.transaction(2).connector_id == 1
    assert ledger.station("CP1").active_transactions == {1: 1}


def test_consistent_transaction_with_kwh_and_missing_unit() -> None:
    ledger = Ledger()
    tid = started(ledger, meter_start=1000)
    ledger.record_meter_values("CP1", 1, tid, [energy(1000, unit=None)])
    ledger.record_meter_values("CP1", 1, tid, [energy("1.1", unit="kWh")])
    ledger.record_meter_values("CP1", 1, tid, [energy(1250.5)])
    ledger.stop_transaction(
        "CP1", tid, 1300, "2025-01-01T01:00:00Z", reason="Local", transaction_data=[energy(1300)]
    )
    tx = ledger.transaction(tid)
    assert tx.stopped and tx.energy_wh == 300 and tx.stop_reason == "Local"
    assert len(tx.meter_values) == 3
    assert ledger.station("CP1").active_transactions == {}
    assert ledger.check() == []


def test_unknown_and_foreign_transactions_are_anomalies() -> None:
    ledger = Ledger()
    other = started(ledger, "CP2")
    ledger.record_meter_values("CP0001", 1, 17, [energy(5)])
    ledger.record_meter_values("CP0001", 1, other, [energy(5)])
    ledger.stop_transaction("CP0001", 99, 10, "2025-01-01T00:00:00Z")
    problems = ledger.check()
    assert problems == [
        "CP0001: MeterValues for unknown transaction 17",
        f"CP0001: MeterValues for unknown transaction {other} (it belongs to CP2)",
        "CP0001: StopTransaction for unknown transaction 99 (meterStop 10)",
    ]
    assert len(ledger.station("CP0001").unmatched_meter_values) == 2


def test_double_start_double_stop_and_late_meter_values() -> None:
    ledger = Ledger()
    first = started(ledger)
    second = ledger.start_transaction("CP1", 1, "OTHER", 1000, "2025-01-01T00:00:00Z")
    ledger.stop_transaction("CP1", second, 1100, "t")
    ledger.stop_transaction("CP1", second, 1200, "t")
    ledger.record_meter_values("CP1", 2, second, [energy(1050)])
    assert ledger.check() == [
        f"CP1: StartTransaction on connector 1 while transaction {first} is active",
        f"CP1: second StopTransaction for transaction {second}",
        f"CP1: MeterValues for transaction {second} after its stop",
        f"CP1: MeterValues on connector 2 for transaction {second} on connector 1",
    ]
    assert ledger.transaction(second).meter_stop == 1100


def test_backwards_register_is_reported_once_live_and_by_check() -> None:
    ledger = Ledger()
    tid = started(ledger, meter_start=1000)
    ledger.record_meter_values("CP1", 1, tid, [energy(1200)])
    ledger.record_meter_values("CP1", 1, tid, [energy(1100)])
    message = f"CP1: energy register went backwards in transaction {tid}: 1200 -> 1100"
    assert ledger.anomalies == [message]
    ledger.stop_transaction("CP1", tid, 1300, "t")
    assert ledger.check() == [message]


def test_stopped_transaction_range_checks() -> None:
    ledger = Ledger()
    tid = started(ledger, meter_start=1000)
    ledger.record_meter_values("CP1", 1, tid, [energy(900), energy("1.5", unit="kWh")])
    ledger.stop_transaction("CP1", tid, 1400, "t", transaction_data=[energy(1300), energy(1200)])
    assert ledger.anomalies == []
    assert ledger.check() == [
        f"CP1: energy register 900 Wh outside [1000, 1400] in transaction {tid}",
        f"CP1: energy register 1500 Wh outside [1000, 1400] in transaction {tid}",
        f"CP1: energy register went backwards in transactionData of transaction {tid}: "
        "1300 -> 1200",
    ]


def test_meter_stop_below_meter_start() -> None:
    ledger = Ledger()
    tid = started(ledger, meter_start=1000)
    ledger.record_meter_values("CP1", 1, tid, [energy(1000)])
    ledger.stop_transaction("CP1", tid, 950, "t")
    assert ledger.check() == [f"CP1: meterStop 950 < meterStart 1000 in transaction {tid}"]
    assert ledger.summary()["energy_wh"] == -50


def test_energy_readings_skip_other_measurands_phases_and_signed_data() -> None:
    meter_value = {
        "timestamp": "t",
        "sampledValue": [
            {"value": "16", "measurand": "Current.Import", "unit": "A"},
            {"value": "5", "measurand": ENERGY_REGISTER, "phase": "L1"},
            {"value": "7", "location": "EV"},
            {"value": "abc", "format": "SignedData"},
            {"value": "2.5", "unit": "kWh"},
            {"value": "x"},
            {"value": "3", "unit": "varh"},
        ],
    }
    readings, problems = energy_readings([meter_value])
    assert readings == [2500.0]
    assert problems == [
        "unreadable energy register value 'x'",
        "energy register in unexpected unit 'varh'",
    ]


def test_messages_after_rejected_boot_are_anomalies() -> None:
    ledger = Ledger()
    ledger.record_message("CP1", "BootNotification")
    ledger.record_boot("CP1", {}, "Rejected")
    ledger.record_message("CP1", "Heartbeat")
    ledger.record_message("CP1", "BootNotification")
    assert ledger.check() == ["CP1: Heartbeat after a rejected BootNotification"]
    assert ledger.station("CP1").messages == {"BootNotification": 2, "Heartbeat": 1}


def test_summary_is_json_and_counts_everything() -> None:
    ledger = Ledger()
    for station in ("CP1", "CP2"):
        ledger.record_connection(station)
        ledger.record_message(station, "BootNotification")
        ledger.record_boot(station, {})
        ledger.record_status(station, 0, "Available", "NoError")
        ledger.record_heartbeat(station)
    done = started(ledger, "CP1", meter_start=100)
    started(ledger, "CP2")
    ledger.record_meter_values("CP1", 1, done, [energy(150), energy(160)])
    ledger.record_meter_values("CP2", 1, None, [energy(5)])
    ledger.stop_transaction("CP1", done, 350, "t")
    ledger.record_meter_values("CP1", 1, 42, [energy(1)])

    summary = ledger.summary()
    assert json.loads(json.dumps(summary)) == summary
    assert summary == {
        "stations": 2,
        "connections": 2,
        "boots": 2,
        "status_notifications": 2,
        "heartbeats": 2,
        "authorizations": 0,
        "transactions_started": 2,
        "transactions_stopped": 1,
        "transactions_active": 1,
        "energy_stopped_wh": 250,
        "energy_metered_wh": 250,  # CP2's transaction runs without an energy reading yet
        "energy_wh": 250,
        "meter_value_samples": 4,
        "messages_total": 2,
        "messages_by_action": {"BootNotification": 2},
        "anomalies": 1,
        "transactions_concurrent_tx": 0,
        "transaction_messages": 4,
        "redeliveries": 0,
        "duplicates": 0,
    }


def test_snapshot_is_independent_of_later_writes() -> None:
    ledger = Ledger()
    tid = started(ledger)
    snapshot = ledger.snapshot()
    ledger.record_meter_values("CP1", 1, tid, [energy(1001)])
    snapshot["CP1"].transactions[tid].meter_values.append({"bogus": True})
    assert snapshot["CP1"].transactions[tid].meter_values == [{"bogus": True}]
    assert ledger.transaction(tid).meter_values == [energy(1001)]


def test_concurrent_writers_and_readers() -> None:
    ledger = Ledger()

    def write(station: str) -> None:
        for _ in range(300):
            tid = started(ledger, station, meter_start=0)
            ledger.record_meter_values(station, 1, tid, [energy(5)])
            ledger.stop_transaction(station, tid, 10, "t")

    threads = [threading.Thread(target=write, args=(f"CP{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    while any(thread.is_alive() for thread in threads):
        ledger.summary()
        ledger.check()
        time.sleep(0.001)
    for thread in threads:
        thread.join(5)
    summary = ledger.summary()
    assert summary["transactions_stopped"] == 1200
    assert summary["energy_wh"] == 12000
    assert ledger.check() == []


@settings(max_examples=50, deadline=None)
@given(
    start=st.integers(0, 10**6),
    steps=st.lists(st.integers(0, 5000), max_size=8),
    in_kwh=st.booleans(),
)
def test_monotonic_readings_within_range_are_consistent(
    start: int, steps: list[int], in_kwh: bool
) -> None:
    ledger = Ledger()
    tid = started(ledger, meter_start=start)
    value = start
    for step in steps:
        value += step
        reading: float | int = value / 1000 if in_kwh else value
        ledger.record_meter_values("CP1", 1, tid, [energy(reading, "kWh" if in_kwh else "Wh")])
    ledger.stop_transaction("CP1", tid, value, "t")
    assert ledger.check() == []
    assert ledger.summary()["energy_wh"] == value - start


def test_energy_of_running_transactions_is_metered_apart_from_stopped_ones() -> None:
    """Issue 14: a run that ends with sessions under way printed 0.0 kWh delivered while
    the fleet had metered kWh: the running transactions' last readings count too."""
    ledger = Ledger()
    done = started(ledger, "CP1", meter_start=1000)
    ledger.record_meter_values("CP1", 1, done, [energy(1500)])
    ledger.stop_transaction("CP1", done, 2000, "t")
    running = started(ledger, "CP2", meter_start=40_000)
    ledger.record_meter_values("CP2", 1, running, [energy(41_000), energy(43_500)])
    quiet = started(ledger, "CP3", meter_start=7)  # no reading yet: nothing metered
    summary = ledger.summary()
    assert summary["energy_stopped_wh"] == 1000
    assert summary["energy_metered_wh"] == 1000 + 3500
    assert summary["transactions_active"] == 2 and quiet


def test_re_deliveries_are_idempotent_and_counted_apart_from_duplicates() -> None:
    ledger = Ledger()
    tid = started(ledger)
    assert started(ledger) == tid  # the answer was lost: the same id again
    mv = {"timestamp": "2025-01-01T00:01:00Z", "sampledValue": [{"value": "1100"}]}
    ledger.record_meter_values("CP1", 1, tid, [mv])
    ledger.record_meter_values("CP1", 1, tid, [mv])
    ledger.stop_transaction("CP1", tid, 1200, "2025-01-01T00:02:00Z", "Local")
    ledger.stop_transaction("CP1", tid, 1200, "2025-01-01T00:02:00Z", "Local")
    record = ledger.station("CP1")
    assert (record.transaction_messages, record.redeliveries, record.duplicates) == (3, 3, 0)
    assert len(ledger.transaction(tid).meter_values) == 1
    assert ledger.check(sent={"CP1": 3}) == []
    assert ledger.check(sent={"CP1": 4}) == ["CP1: 1 of 4 transaction messages lost"]
    assert ledger.check(sent={"CP1": 2}) == ["CP1: 1 transaction messages more than it sent"]
    ledger.stop_transaction("CP1", tid, 1300, "2025-01-01T00:02:00Z", "Local")
    assert ledger.station("CP1").duplicates == 1
    assert ledger.check(sent={"CP1": 3}) == [f"CP1: second StopTransaction for transaction {tid}"]


def test_meter_values_out_of_order_or_after_the_stop_are_reported() -> None:
    ledger = Ledger()
    tid = started(ledger)

    def at(stamp: str, wh: int) -> dict[str, Any]:
        return {"timestamp": stamp, "sampledValue": [{"value": str(wh)}]}

    ledger.record_meter_values("CP1", 1, tid, [at("2025-01-01T00:02:00Z", 1100)])
    ledger.record_meter_values("CP1", 1, tid, [at("2025-01-01T00:01:00Z", 1150)])
    ledger.record_meter_values("CP1", 1, tid, [at("2025-01-01T00:09:00Z", 1200)])
    ledger.stop_transaction("CP1", tid, 1300, "2025-01-01T00:05:00Z")
    assert ledger.check() == [
        f"CP1: meter value at 2025-01-01T00:01:00Z out of order in transaction {tid}",
        f"CP1: meter value at 2025-01-01T00:09:00Z after the stop in transaction {tid}",
    ]
