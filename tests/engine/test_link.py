"""Stations on the real engine, over real loopback websockets, against the reference CSMS.

No Locust here: a Fleet on an asyncio loop, the ReferenceCsms on the same loop.
Every wait is bounded (``until``), so a broken station fails fast instead of hanging.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import pytest
from ocpp.v16 import call
from support import HANG_GUARD, until
from websockets.asyncio.server import ServerConnection, serve

from fleet.csms.server import ReferenceCsms
from fleet.engine.fleet import Fleet
from fleet.model.config import ConfigStore
from fleet.model.station import Station
from fleet.scenarios import behaviour
from fleet.scenarios.profile import load

FAST = {"MinimumStatusDuration": 0, "MeterValueSampleInterval": 1, "WebSocketPingInterval": 0}


def run(coro: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(coro(), HANG_GUARD))


def _station(identity: str, fleet: Fleet, **config: Any) -> Station:
    return Station(identity, fleet.now(), config=ConfigStore({**FAST, **config}))


def test_boot_statuses_and_csms_calls() -> None:
    async def scenario() -> None:
        csms = ReferenceCsms(accepted_tags=["TAG1"])
        await csms.start()
        fleet = Fleet(asyncio.get_running_loop(), seed=1)
        profile = load("idle")
        fleet.add(_station("CP1", fleet), csms.url, behaviour.factory(profile))
        ledger = csms.ledger
        await until(
            lambda: "CP1" in ledger.station_ids() and len(ledger.station("CP1").statuses) >= 2,
            what="boot",
        )
        record = ledger.station("CP1")
        assert record.boots == 1
        assert {s.connector_id for s in record.statuses} == {0, 1}
        assert fleet.stats.stations_connected == 1
        assert fleet.stats.boot_status["Accepted"] == 1

        conf = await csms.call("CP1", call.GetConfiguration(key=["HeartbeatInterval", "Nope"]))
        assert conf.configuration_key[0]["key"] == "HeartbeatInterval"
        assert conf.unknown_key == ["Nope"]
        changed = await csms.call(
            "CP1", call.ChangeConfiguration(key="NumberOfConnectors", value="2")
        )
        assert changed.status == "Rejected"

        # Remote start: the idle behaviour plugs in within the profile's 1..5 s.
        started = await csms.call("CP1", call.RemoteStartTransaction(id_tag="TAG1", connector_id=1))
        assert started.status == "Accepted"
        await until(lambda: ledger.summary()["transactions_started"] == 1, 8, "StartTransaction")
        await until(lambda: ledger.summary()["meter_value_samples"] > 0, 5, "MeterValues")
        (tx_id,) = [t for t in ledger.station("CP1").transactions]
        stopped = await csms.call("CP1", call.RemoteStopTransaction(transaction_id=tx_id))
        assert stopped.status == "Accepted"
        await until(lambda: ledger.summary()["transactions_stopped"] == 1, 5, "StopTransaction")
        tx = ledger.transaction(tx_id)
        assert tx.stop_reason == "Remote"
        assert tx.meter_stop >= tx.meter_start
        assert ledger.check() == []

        fleet.stop_all()
        await until(lambda: fleet.stats.stations_connected == 0, what="clean stop")
        await csms.stop()

    run(scenario)


def test_reconnects_after_csms_restart_and_delivers_queue() -> None:
    async def scenario() -> None:
        csms = ReferenceCsms(accept_all_tags=True)
        await csms.start()
        port = csms.port
        fleet = Fleet(asyncio.get_running_loop(), seed=2)
        link = fleet.add(_station("CP2", fleet), csms.url)
        station = link.station
        await until(lambda: station.boot_status == "Accepted", what="boot")
        link.hardware(station.plug_in)
        link.hardware(lambda now: station.present_tag("T1", now))
        await until(lambda: csms.ledger.summary()["transactions_started"] == 1, what="start")
        await until(
            lambda: station.transaction and station.transaction.transaction_id, what="tx id"
        )

        await csms.stop()
        await until(lambda: fleet.stats.stations_connected == 0, what="disconnect seen")
        await asyncio.sleep(1.5)  # samples pile up offline (disconnectedMeterValueSampleInterval)
        link.hardware(lambda now: station.present_tag("T1", now))  # stop while offline
        assert station.queued >= 1

        csms2 = ReferenceCsms(port=port, accept_all_tags=True, ledger=csms.ledger)
        await csms2.start()
        await until(lambda: fleet.stats.stations_connected == 1, 10, "reconnect")
        await until(
            lambda: csms.ledger.summary()["transactions_stopped"] == 1, 10, "queued stop delivered"
        )
        assert fleet.stats.reconnects == 1
        assert csms.ledger.station("CP2").boots == 1  # a reconnect is not a reboot
        assert csms.ledger.check() == []
        fleet.stop_all()
        await csms2.stop()

    run(scenario)


def test_unreachable_csms_is_counted_not_raised() -> None:
    async def scenario() -> None:
        fleet = Fleet(asyncio.get_running_loop(), seed=3)
        fleet.add(_station("CP3", fleet), "ws://127.0.0.1:9/ocpp")  # discard port: refused
        await until(lambda: sum(fleet.stats.connect_failures.values()) >= 1, what="failure")
        assert fleet.stats.stations_connected == 0
        fleet.stop_all()

    run(scenario)


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (b"not json", "FormationViolation"),
        (b'{"a": 1}', "FormationViolation"),
        (b'[2, "c1", "NoSuchAction", {}]', "NotImplemented"),
        (b'[2, "c2", "BootNotification", {}]', "NotSupported"),
        (b'[2, "c3", "RemoteStopTransaction", {}]', "OccurenceConstraintViolation"),
        (b'[2, "c4", "RemoteStopTransaction", {"transactionId": "x"}]', "TypeConstraintViolation"),
        # A security-extension action the Charge Pro's guide does not list.
        (b'[2, "c5", "ExtendedTriggerMessage", {"requestedMessage": "Heartbeat"}]', "NotSupported"),
    ],
)
def test_bad_csms_frames_get_callerrors(frame: bytes, code: str) -> None:
    """A misbehaving CSMS gets the OCPP answer, and the station keeps running."""

    async def scenario() -> None:
        replies: asyncio.Queue[Any] = asyncio.Queue()

        async def handler(ws: ServerConnection) -> None:
            async for message in ws:
                msg = orjson.loads(message)
                if msg[0] == 2 and msg[2] == "BootNotification":
                    await ws.send(
                        orjson.dumps(
                            [
                                3,
                                msg[1],
                                {
                                    "status": "Accepted",
                                    "interval": 300,
                                    "currentTime": "2026-01-01T00:00:00Z",
                                },
                            ]
                        ).decode()
                    )
                    await ws.send(frame.decode())
                elif msg[0] == 4:
                    await replies.put(msg)
                elif msg[0] == 2:
                    await ws.send(orjson.dumps([3, msg[1], {}]).decode())

        async with serve(handler, "127.0.0.1", 0, subprotocols=["ocpp1.6"]) as server:  # type: ignore[list-item]
            port = server.sockets[0].getsockname()[1]
            fleet = Fleet(asyncio.get_running_loop(), seed=4)
            fleet.add(_station("CP4", fleet), f"ws://127.0.0.1:{port}/ocpp")
            reply = await asyncio.wait_for(replies.get(), 5)
            assert reply[2] == code
            assert fleet.stats.stations_connected == 1
            fleet.stop_all()

    run(scenario)
