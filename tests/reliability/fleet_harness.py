"""Shared by the fault tests: a reference CSMS in its own process, a fleet of charging
stations on this process's loop, and the ledger proof at the end."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from fleet.bench.soak import start_csms
from fleet.csms.ledger import JournaledLedger, Ledger
from fleet.engine.fleet import Fleet
from fleet.engine.link import StationLink
from fleet.model.config import ConfigStore
from fleet.model.station import Station


class CsmsProcess:
    """``fleet csms`` as a separate process, its ledger journaled to ``journal``."""

    def __init__(self, port: int, journal: Path, *extra: str) -> None:
        self.port = port
        self.journal = journal
        self.extra = extra
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ocpp"

    def start(self) -> None:
        self.proc = start_csms(self.port, "--ledger-journal", str(self.journal), *self.extra)

    def kill(self) -> None:
        """SIGKILL: no cleanup, no closing handshakes, whatever was in flight is lost."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
            self.proc = None

    def ledger(self) -> Ledger:
        return JournaledLedger.read(str(self.journal))


def add_stations(
    fleet: Fleet, url: str, n: int, prefix: str, config: dict[str, Any]
) -> list[StationLink]:
    return [
        fleet.add(Station(f"{prefix}{i:04d}", fleet.now(), config=ConfigStore(config)), url)
        for i in range(n)
    ]


async def add_gradually(
    fleet: Fleet, url: str, n: int, prefix: str, config: dict[str, Any], per_second: float
) -> list[StationLink]:
    """Bring ``n`` stations up at ``per_second`` (in batches of a tenth of a second)."""
    links: list[StationLink] = []
    batch = max(1, int(per_second / 10))
    for start in range(0, n, batch):
        for i in range(start, min(n, start + batch)):
            station = Station(f"{prefix}{i:04d}", fleet.now(), config=ConfigStore(config))
            links.append(fleet.add(station, url))
        await asyncio.sleep(0.1)
    return links


def start_sessions(links: list[StationLink], suffix: str = "") -> None:
    for link in links:
        station = link.station
        tag = f"T{station.identity}{suffix}"
        link.hardware(station.plug_in)
        link.hardware(lambda now, s=station, t=tag: s.present_tag(t, now))


def stop_sessions(links: list[StationLink]) -> None:
    for link in links:
        station = link.station
        tx = station.transaction
        if tx is not None:
            link.hardware(lambda now, s=station, t=tx.id_tag: s.present_tag(t, now))


def settled(fleet: Fleet, links: list[StationLink]) -> bool:
    return fleet.stats.stations_connected == len(links) and all(
        link.station.transaction_backlog == 0 and not link.rpc.busy for link in links
    )


def record_connects(links: list[StationLink], times: dict[str, list[float]]) -> None:
    """Remember when each station (re)connected, in monotonic seconds."""
    for link in links:
        station = link.station
        up = station.connected

        def connected(now: float, s: Station = station, up: Any = up) -> None:
            times[s.identity].append(time.monotonic())
            up(now)

        station.connected = connected  # type: ignore[method-assign]


def ledger_proof(ledger: Ledger, links: list[StationLink]) -> dict[str, Any]:
    """Nothing lost, nothing duplicated, order kept: the assertions every fault test ends on."""
    stations = [link.station for link in links]
    assert sum(s.dropped_messages for s in stations) == 0
    sent = {s.identity: s.transaction_messages_queued - s.dropped_messages for s in stations}
    problems = ledger.check(sent=sent)
    assert problems == [], problems[:20]
    summary = ledger.summary()
    assert summary["duplicates"] == 0
    assert summary["redeliveries"] <= sum(s.transaction_resends for s in stations)
    assert summary["transactions_active"] == 0
    return summary
