"""The reference CSMS against the ``ocpp`` library's own ChargePoint, over real sockets."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import pytest
import websockets
from ocpp.exceptions import NotImplementedError as OcppNotImplementedError
from ocpp.routing import on
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.enums import Action
from websockets.asyncio.client import ClientConnection, connect

from fleet.csms.ledger import ENERGY_REGISTER
from fleet.csms.server import CsmsThread, ReferenceCsms

TIMEOUT = 4.0


class Station(ChargePoint):  # type: ignore[misc]
    """A minimal station that answers GetConfiguration, enough for CSMS-initiated calls."""

    @on(Action.get_configuration)
    def on_get_configuration(self, key: list[str] | None = None) -> call_result.GetConfiguration:
        return call_result.GetConfiguration(
            configuration_key=[{"key": "HeartbeatInterval", "readonly": False, "value": "60"}],
            unknown_key=key or None,
        )


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    async def bounded() -> None:
        await asyncio.wait_for(scenario(), TIMEOUT)

    asyncio.run(bounded())


@asynccontextmanager
async def running_csms(**options: Any) -> AsyncIterator[ReferenceCsms]:
    csms = ReferenceCsms(**options)
    await csms.start()
    try:
        yield csms
    finally:
        await csms.stop()


@asynccontextmanager
async def station(url: str, station_id: str = "CP1") -> AsyncIterator[Station]:
    async with connect(f"{url}/{station_id}", subprotocols=["ocpp1.6"], open_timeout=2) as ws:
        cp = Station(station_id, ws, response_timeout=2)
        task = asyncio.create_task(cp.start())
        try:
            yield cp
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


def boot() -> call.BootNotification:
    return call.BootNotification(
        charge_point_model="EVB1A22P4KI3N",
        charge_point_vendor="Schneider Electric",
        charge_point_serial_number="3N1234",
    )


def energy(value: str, unit: str = "Wh") -> dict[str, Any]:
    return {
        "timestamp": "2025-01-01T00:00:00Z",
        "sampled_value": [
            {"value": value, "measurand": ENERGY_REGISTER, "unit": unit},
            {"value": "16", "measurand": "Current.Offered", "unit": "A"},
        ],
    }


def test_boot_accepted_is_recorded_as_sent() -> None:
    async def scenario() -> None:
        async with running_csms(heartbeat_interval=30) as csms, station(csms.url) as cp:
            result = await cp.call(boot())
            assert result.status == "Accepted"
            assert result.interval == 30
            assert result.current_time.endswith("Z")
            record = csms.ledger.station("CP1")
            assert record.boots == 1
            assert record.connections == 1
            assert record.last_boot == {
                "chargePointModel": "EVB1A22P4KI3N",
                "chargePointVendor": "Schneider Electric",
                "chargePointSerialNumber": "3N1234",
            }
            assert csms.connected_stations() == ["CP1"]

    run(scenario)


@pytest.mark.parametrize("status", ["Pending", "Rejected"])
def test_boot_pending_and_rejected(status: str) -> None:
    async def scenario() -> None:
        async with running_csms(boot_status=status) as csms, station(csms.url) as cp:
            assert (await cp.call(boot())).status == status
            csms.boot_status = "Accepted"
            assert (await cp.call(boot())).status == "Accepted"
            assert csms.ledger.station("CP1").registration_status == "Accepted"
            assert csms.ledger.check() == []

    run(scenario)


def test_invalid_boot_status_is_refused_at_configuration() -> None:
    with pytest.raises(ValueError, match="boot_status"):
        ReferenceCsms(boot_status="Maybe")


def test_authorize_accepted_and_unknown_tags() -> None:
    async def scenario() -> None:
        async with running_csms(accepted_tags=["Tag-1"]) as csms, station(csms.url) as cp:
            accepted = await cp.call(call.Authorize(id_tag="TAG-1"))  # IdToken ignores case
            unknown = await cp.call(call.Authorize(id_tag="nobody"))
            assert accepted.id_tag_info["status"] == "Accepted"
            assert unknown.id_tag_info["status"] == "Invalid"
            csms.accept_all_tags = True
            anyone = await cp.call(call.Authorize(id_tag="nobody"))
            assert anyone.id_tag_info["status"] == "Accepted"
            assert csms.ledger.station("CP1").authorizations == {"TAG-1": 1, "nobody": 2}

    run(scenario)


def test_full_transaction_ends_consistent_in_the_ledger() -> None:
    async def scenario() -> None:
        async with running_csms(accept_all_tags=True) as csms, station(csms.url) as cp:
            await cp.call(boot())
            await cp.call(
                call.StatusNotification(connector_id=1, error_code="NoError", status="Charging")
            )
            start = await cp.call(
                call.StartTransaction(
                    connector_id=1, id_tag="TAG", meter_start=1000, timestamp="2025-01-01T00:00Z"
                )
            )
            assert start.id_tag_info["status"] == "Accepted"
            tid = start.transaction_id
            for value, unit in (("1100", "Wh"), ("1.2", "kWh"), ("1300", "Wh")):
                await cp.call(
                    call.MeterValues(
                        connector_id=1, transaction_id=tid, meter_value=[energy(value, unit)]
                    )
                )
            stop = await cp.call(
                call.StopTransaction(
                    meter_stop=1350,
                    timestamp="2025-01-01T01:00Z",
                    transaction_id=tid,
                    id_tag="TAG",
                    reason="EVDisconnected",
                    transaction_data=[energy("1000"), energy("1350")],
                )
            )
            assert stop.id_tag_info["status"] == "Accepted"

            tx = csms.ledger.transaction(tid)
            assert tx.stopped and tx.energy_wh == 350 and tx.stop_reason == "EVDisconnected"
            assert tx.meter_values[1]["sampledValue"][0] == {
                "value": "1.2",
                "measurand": ENERGY_REGISTER,
                "unit": "kWh",
            }
            assert tx.transaction_data is not None and len(tx.transaction_data) == 2
            assert csms.ledger.check() == []
            summary = csms.ledger.summary()
            assert summary["energy_wh"] == 350
            assert summary["meter_value_samples"] == 6
            assert summary["transactions_stopped"] == 1

    run(scenario)


def test_unknown_transaction_and_backwards_register_are_problems() -> None:
    async def scenario() -> None:
        async with running_csms() as csms, station(csms.url) as cp:
            await cp.call(
                call.MeterValues(connector_id=1, transaction_id=17, meter_value=[energy("5")])
            )
            start = await cp.call(
                call.StartTransaction(connector_id=1, id_tag="x", meter_start=0, timestamp="t")
            )
            assert start.id_tag_info["status"] == "Invalid"
            tid = start.transaction_id
            for value in ("200", "100"):
                values = call.MeterValues(
                    connector_id=1, transaction_id=tid, meter_value=[energy(value)]
                )
                await cp.call(values)
            await cp.call(call.StopTransaction(meter_stop=300, timestamp="t", transaction_id=tid))
            assert csms.ledger.check() == [
                "CP1: MeterValues for unknown transaction 17",
                f"CP1: energy register went backwards in transaction {tid}: 200 -> 100",
            ]

    run(scenario)


def test_other_station_messages_are_answered_and_recorded() -> None:
    async def scenario() -> None:
        async with running_csms() as csms, station(csms.url) as cp:
            await cp.call(call.Heartbeat())
            transfer = await cp.call(call.DataTransfer(vendor_id="Schneider", message_id="m"))
            assert transfer.status == "UnknownVendorId"
            await cp.call(call.DiagnosticsStatusNotification(status="Uploaded"))
            await cp.call(call.FirmwareStatusNotification(status="Installed"))
            record = csms.ledger.station("CP1")
            assert record.heartbeats == 1
            assert record.data_transfers == [{"vendorId": "Schneider", "messageId": "m"}]
            assert record.diagnostics_statuses == ["Uploaded"]
            assert record.firmware_statuses == ["Installed"]
            assert sum(record.messages.values()) == 4

    run(scenario)


def test_schema_violation_is_answered_with_call_error_and_recorded() -> None:
    async def scenario() -> None:
        async with running_csms() as csms:
            async with connect(f"{csms.url}/CP1", subprotocols=["ocpp1.6"]) as ws:
                await ws.send(json.dumps([2, "1", "Heartbeat", {"bogus": 1}]))
                reply = json.loads(await ws.recv())
            assert reply[:3] == [4, "1", "FormatViolation"]
            assert csms.ledger.station("CP1").messages == {"Heartbeat": 1}
            [problem] = csms.ledger.check()
            assert problem.startswith("CP1: Heartbeat answered with CallError FormatViolation")

    run(scenario)


def test_csms_initiated_call_round_trips() -> None:
    async def scenario() -> None:
        async with running_csms() as csms, station(csms.url) as cp:
            await cp.call(boot())
            result = await csms.call("CP1", call.GetConfiguration(key=["Nope"]), timeout=2)
            assert isinstance(result, call_result.GetConfiguration)
            assert result.configuration_key == [
                {"key": "HeartbeatInterval", "readonly": False, "value": "60"}
            ]
            assert result.unknown_key == ["Nope"]
            # A CallError is raised, not returned as None.
            with pytest.raises(OcppNotImplementedError):
                await csms.call("CP1", call.ClearCache(), timeout=2)
            with pytest.raises(KeyError, match="CP2"):
                await csms.call("CP2", call.ClearCache())

    run(scenario)


def test_reconnecting_station_replaces_its_old_connection() -> None:
    async def scenario() -> None:
        async with running_csms() as csms:
            async with station(csms.url) as old:
                old_ws: ClientConnection = old._connection
                async with station(csms.url) as new:
                    await asyncio.wait_for(old_ws.wait_closed(), 2)
                    assert csms.connected_stations() == ["CP1"]
                    await new.call(call.Heartbeat())
                    result = await csms.call("CP1", call.GetConfiguration(), timeout=2)
                    assert result.configuration_key
                assert csms.ledger.station("CP1").connections == 2
            for _ in range(100):
                if not csms.connected_stations():
                    break
                await asyncio.sleep(0.01)
            assert csms.connected_stations() == []

    run(scenario)


def test_connections_without_subprotocol_or_station_id_are_refused() -> None:
    async def scenario() -> None:
        async with running_csms() as csms:
            with pytest.raises(websockets.InvalidStatus) as refused:
                await connect(f"{csms.url}/CP1", open_timeout=2)
            assert refused.value.response.status_code == 400
            with pytest.raises(websockets.InvalidStatus) as refused:
                await connect(f"{csms.url}/CP1", subprotocols=["ocpp2.0.1"], open_timeout=2)
            assert refused.value.response.status_code == 400
            with pytest.raises(websockets.InvalidStatus) as refused:
                await connect(csms.url.removesuffix("/ocpp"), subprotocols=["ocpp1.6"])
            assert refused.value.response.status_code == 404
            assert csms.ledger.station_ids() == []

    run(scenario)


def test_station_id_is_last_path_segment() -> None:
    async def scenario() -> None:
        async with running_csms() as csms:
            base = csms.url.removesuffix("/ocpp")
            async with station(f"{base}/any/deep/path", "CP%200001") as cp:
                await cp.call(call.Heartbeat())
            assert csms.ledger.station_ids() == ["CP 0001"]

    run(scenario)


@contextmanager
def station_in_thread(url: str, station_id: str) -> Iterator[None]:
    """A station on its own loop, so that blocking CsmsThread calls have someone to talk to."""
    ready = threading.Event()
    loop = asyncio.new_event_loop()
    stop = loop.create_future()
    errors: list[BaseException] = []

    async def main() -> None:
        async with station(url, station_id) as cp:
            await cp.call(boot())
            ready.set()
            await asyncio.wait_for(stop, TIMEOUT)

    def target() -> None:
        try:
            loop.run_until_complete(main())
        except BaseException as error:
            errors.append(error)
            ready.set()
        finally:
            loop.close()

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    try:
        assert ready.wait(TIMEOUT) and not errors, errors
        yield
    finally:
        if not loop.is_closed():
            loop.call_soon_threadsafe(lambda: stop.done() or stop.set_result(None))
        thread.join(TIMEOUT)
    assert not errors, errors


def test_csms_thread_from_synchronous_code() -> None:
    with CsmsThread(accept_all_tags=True) as csms:
        assert csms.url.startswith("ws://127.0.0.1:")
        assert csms.connected_stations() == []
        with station_in_thread(csms.url, "CP7"):
            assert csms.connected_stations() == ["CP7"]
            result = csms.call("CP7", call.GetConfiguration(), timeout=2)
            assert result.configuration_key[0]["key"] == "HeartbeatInterval"
            with pytest.raises(KeyError, match="not connected"):
                csms.call("CP8", call.GetConfiguration())
        assert csms.ledger.summary()["boots"] == 1
    with pytest.raises(RuntimeError):
        csms.call("CP7", call.GetConfiguration())
    csms.stop()  # idempotent


def test_summary_numbers_over_several_stations() -> None:
    async def scenario() -> None:
        async with running_csms(accept_all_tags=True) as csms:

            async def one(station_id: str) -> None:
                async with station(csms.url, station_id) as cp:
                    await cp.call(boot())
                    await cp.call(
                        call.StatusNotification(
                            connector_id=1, error_code="NoError", status="Available"
                        )
                    )
                    await cp.call(call.Heartbeat())
                    start = await cp.call(
                        call.StartTransaction(
                            connector_id=1, id_tag="T", meter_start=10, timestamp="t"
                        )
                    )
                    await cp.call(
                        call.StopTransaction(
                            meter_stop=110, timestamp="t", transaction_id=start.transaction_id
                        )
                    )

            await asyncio.gather(*(one(f"CP{i}") for i in range(5)))
            summary = csms.ledger.summary()
            assert summary["stations"] == 5
            assert summary["boots"] == 5
            assert summary["status_notifications"] == 5
            assert summary["heartbeats"] == 5
            assert summary["transactions_started"] == summary["transactions_stopped"] == 5
            assert summary["transactions_active"] == 0
            assert summary["energy_wh"] == 500
            assert summary["messages_total"] == 25
            assert summary["messages_by_action"]["StopTransaction"] == 5
            assert summary["anomalies"] == 0
            ids = sorted(tx for r in csms.ledger.snapshot().values() for tx in r.transactions)
            assert ids == [1, 2, 3, 4, 5]

    run(scenario)
