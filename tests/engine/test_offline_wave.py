"""An offline wave on the real engine against the reference CSMS, proved by its ledger.

Twenty charging stations; a wave cuts 40% of them mid-session for a few seconds. The
cut stations keep charging, sample at disconnectedMeterValueSampleInterval, some stop
their session and start a new one offline, then reconnect with their backoff and
deliver their queues. The ledger must then show: nothing lost (each station's distinct
transaction messages = what it queued minus what it dropped, and it dropped nothing),
nothing duplicated (re-sent copies are re-deliveries, no more than the stations
re-sent), the order of every transaction intact, and every meterStop equal to the
register the station counted.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections import defaultdict
from datetime import datetime
from typing import Any

from test_link import _station, run, until

from fleet.csms.server import ReferenceCsms
from fleet.engine.fleet import Fleet
from fleet.engine.link import StationLink
from fleet.scenarios import network

OFFLINE = {"disconnectedMeterValueSampleInterval": 5}  # the guide's minimum


def _record_stops(link: StationLink, stops: dict[str, list[tuple[float, int]]]) -> None:
    """Remember (energy, register at the stop) for every transaction the station ends."""
    original = link.transaction_stopped
    station = link.station

    def stopped(connector_id: int, reason: str, energy_wh: float) -> None:
        stops[station.identity].append((energy_wh, int(station.meter.energy_wh)))
        original(connector_id, reason, energy_wh)

    link.transaction_stopped = stopped  # type: ignore[method-assign]


def _record_link_changes(link: StationLink, offline: dict[str, list[float]]) -> None:
    """Remember when the station lost and got back the CSMS (model time)."""
    station = link.station
    down, up = station.disconnected, station.connected

    def disconnected(now: float) -> None:
        offline[station.identity].append(now)
        down(now)

    def connected(now: float) -> None:
        if station.identity in offline:
            offline[station.identity].append(now)
        up(now)

    station.disconnected = disconnected  # type: ignore[method-assign]
    station.connected = connected  # type: ignore[method-assign]


def _settled(fleet: Fleet) -> bool:
    return fleet.stats.stations_connected == len(fleet.links) and all(
        link.station.transaction_backlog == 0 for link in fleet.links.values()
    )


def test_offline_wave_loses_nothing_duplicates_nothing_and_keeps_order() -> None:
    async def scenario() -> None:
        csms = ReferenceCsms(accept_all_tags=True)
        await csms.start()
        ledger = csms.ledger
        fleet = Fleet(asyncio.get_running_loop(), seed=5)
        stops: dict[str, list[tuple[float, int]]] = defaultdict(list)
        links = []
        for i in range(20):
            link = fleet.add(_station(f"OW{i:02d}", fleet, **OFFLINE), csms.url)
            _record_stops(link, stops)
            links.append(link)
        await until(lambda: fleet.stats.boot_status["Accepted"] == 20, 10, "boots")
        for i, link in enumerate(links):
            station = link.station
            link.hardware(station.plug_in)
            link.hardware(lambda now, s=station, i=i: s.present_tag(f"TAG{i}", now))
        await until(
            lambda: all(
                lk.station.transaction is not None and lk.station.transaction.transaction_id
                for lk in links
            ),
            5,
            "sessions running",
        )
        await asyncio.sleep(1.5)  # some online samples first

        offline: dict[str, list[float]] = defaultdict(list)  # [down, up] per station
        for link in links:
            _record_link_changes(link, offline)
        # 7 s: a session restarted 1 s into the wave samples offline 5 s later, whatever
        # the reconnect backoff's jitter (a 5 s wave relied on the seed's draws).
        wave = network.Wave(at=0, duration=7, share=0.4, mode="drop", charging_only=True)
        cut = network.fire(fleet, wave, random.Random(7))
        assert len(cut) == 8
        await until(lambda: fleet.stats.stations_connected == 12, 3, "the wave")
        await asyncio.sleep(1.0)
        # Half the cut stations end their session offline and start another one.
        for link in cut[:4]:
            station = link.station
            tag = station.transaction.id_tag  # type: ignore[union-attr]
            link.hardware(lambda now, s=station, t=tag: s.present_tag(t, now))
            link.hardware(station.unplug)
            link.hardware(station.plug_in)
            link.hardware(lambda now, s=station, t=tag: s.present_tag(t + "-2", now))
            assert station.status(1) == "Charging"
        # Current at once (kept per change by the links, no periodic walk).
        assert fleet.stats.offline_queue_depth >= 4 * 2  # those Stops and Starts at least
        await until(lambda: _settled(fleet), 16, "reconnected and queues delivered")

        await asyncio.sleep(1.0)
        for link in links:
            station = link.station
            tx = station.transaction
            assert tx is not None
            link.hardware(lambda now, s=station, t=tx.id_tag: s.present_tag(t, now))
        await until(lambda: ledger.summary()["transactions_active"] == 0, 5, "all stopped")
        await until(lambda: _settled(fleet), 5, "stops delivered")

        # -- the ledger proof --------------------------------------------------------
        stations = [link.station for link in links]
        assert sum(s.dropped_messages for s in stations) == 0
        sent = {s.identity: s.transaction_messages_queued - s.dropped_messages for s in stations}
        assert ledger.check(sent=sent) == []  # nothing lost, nothing extra, order kept
        summary = ledger.summary()
        assert summary["transactions_started"] == summary["transactions_stopped"] == 24
        assert summary["duplicates"] == 0
        assert summary["redeliveries"] <= sum(s.transaction_resends for s in stations)
        for link in cut:
            station = link.station
            assert station.offline_delivered > 0
            record = ledger.station(station.identity)
            down, up = offline[station.identity]
            assert up - down >= 5
            # Sampled offline at disconnectedMeterValueSampleInterval (5 s, online 1 s).
            for tx in record.transactions.values():
                times = [t for t in _times(tx.meter_values) if down < t < up]
                assert all(b - a >= 4.99 for a, b in itertools.pairwise(times)), times
            assert any(
                down < t < up
                for tx in record.transactions.values()
                for t in _times(tx.meter_values)
            )
        for station in stations:
            record = ledger.station(station.identity)
            txs = sorted(record.transactions.values(), key=lambda t: t.start_timestamp)
            counted = stops[station.identity]
            assert [tx.energy_wh for tx in txs] == [int(e) for e, _ in counted]
            assert [tx.meter_stop for tx in txs] == [register for _, register in counted]
        assert fleet.stats.offline_queue_depth == 0
        assert fleet.stats.offline_messages_delivered == sum(s.offline_delivered for s in stations)
        assert fleet.stats.offline_messages_delivered > 0
        assert fleet.stats.reconnects == 8

        fleet.stop_all()
        await csms.stop()

    run(scenario)


def _times(meter_values: list[dict[str, Any]]) -> list[float]:
    return [datetime.fromisoformat(mv["timestamp"]).timestamp() for mv in meter_values]


def test_refused_tls_and_hung_links_come_back_and_deliver() -> None:
    async def scenario() -> None:
        csms = ReferenceCsms(accept_all_tags=True)
        await csms.start()
        ledger = csms.ledger
        fleet = Fleet(asyncio.get_running_loop(), seed=6)
        config = {**OFFLINE, "WebSocketPingInterval": 1, "WebsocketConnectionTimeout": 3}
        links = [fleet.add(_station(f"NM{i}", fleet, **config), csms.url) for i in range(3)]
        await until(lambda: fleet.stats.boot_status["Accepted"] == 3, 10, "boots")
        for link in links:
            station = link.station
            link.hardware(station.plug_in)
            link.hardware(lambda now, s=station: s.present_tag("TAG", now))
        await until(
            lambda: all(
                lk.station.transaction is not None and lk.station.transaction.transaction_id
                for lk in links
            ),
            5,
            "sessions running",
        )
        for link, mode in zip(links, ("refuse", "tls", "hang"), strict=True):
            link.cut(2.0, mode)
        await until(lambda: fleet.stats.stations_connected == 0, 4, "all three offline")
        failures = fleet.stats.connect_failures
        await until(lambda: failures["refused"] and failures["tls"], 4, "failed attempts")
        assert failures["ping timeout"] == 1  # the hung socket was noticed by the ping
        await until(lambda: _settled(fleet), 14, "back and delivered")
        for link in links:
            station = link.station
            link.hardware(lambda now, s=station: s.present_tag("TAG", now))
        await until(lambda: ledger.summary()["transactions_stopped"] == 3, 5, "stops")
        await until(lambda: _settled(fleet), 5, "stops delivered")
        sent = {
            lk.station.identity: lk.station.transaction_messages_queued
            - lk.station.dropped_messages
            for lk in links
        }
        assert ledger.check(sent=sent) == []
        assert ledger.summary()["duplicates"] == 0
        fleet.stop_all()
        await csms.stop()

    run(scenario)


def test_a_start_that_arrived_before_the_link_dropped_is_a_re_delivery_not_a_duplicate() -> None:
    """The CSMS records the StartTransaction, then the link drops before the answer
    reaches the station: the station sends it again (at-least-once) and the ledger
    answers the same transactionId, counting one re-delivery and no duplicate."""

    async def scenario() -> None:
        csms = ReferenceCsms(accept_all_tags=True)
        await csms.start()
        ledger = csms.ledger
        fleet = Fleet(asyncio.get_running_loop(), seed=8)
        link = fleet.add(_station("RD1", fleet, **OFFLINE), csms.url)
        station = link.station
        await until(lambda: station.boot_status == "Accepted", 10, "boot")
        record_start = ledger.start_transaction

        def start_then_drop(*args: Any, **kwargs: Any) -> int:
            tid = record_start(*args, **kwargs)
            if link.cut_mode is None and ledger.summary()["redeliveries"] == 0:
                link.cut(0.5, "drop")  # the answer is lost with the socket
            return tid

        ledger.start_transaction = start_then_drop  # type: ignore[method-assign]
        link.hardware(station.plug_in)
        link.hardware(lambda now: station.present_tag("TAG", now))
        await until(
            lambda: station.transaction is not None and station.transaction.transaction_id,
            10,
            "StartTransaction answered after the reconnect",
        )
        assert station.transaction_resends == 1
        link.hardware(lambda now: station.present_tag("TAG", now))
        await until(lambda: _settled(fleet) and station.transaction is None, 5, "stop")
        summary = ledger.summary()
        assert (summary["transactions_started"], summary["transactions_stopped"]) == (1, 1)
        assert (summary["redeliveries"], summary["duplicates"]) == (1, 0)
        sent = {"RD1": station.transaction_messages_queued - station.dropped_messages}
        assert ledger.check(sent=sent) == []
        fleet.stop_all()
        await csms.stop()

    run(scenario)
