"""Source addresses and worker sizing for 100,000 stations on one host (issue 16).

``--local-ips``: the stations' connections leave from the given addresses in turn (one
source address reaches one CSMS port over ~28,000 ephemeral ports); checked with real
connections from 127.0.0.2 and 127.0.0.3 to a loopback server that records the peer
address of each. ``--processes auto``: as few Locust workers as the open-file limit
allows.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
from support import until

from fleet.bench.sink import SinkConnection, canned
from fleet.engine.fleet import Fleet
from fleet.engine.limits import LOCAL_IPS_ENV, auto_processes, parse_local_ips
from fleet.engine.loop import new_event_loop
from fleet.model.config import ConfigStore
from fleet.model.station import Station

FLEET = str(Path(sys.executable).with_name("fleet"))


class Recorder(SinkConnection):
    """The bench sink's answers, plus the peer address of every connection."""

    peers: list[str] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        Recorder.peers.append(transport.get_extra_info("peername")[0])
        super().connection_made(transport)


async def _connect(port: int, fleet_args: dict, stations: int) -> tuple[list[str], int]:
    loop = asyncio.get_running_loop()
    Recorder.peers = []
    answers = canned(3600)
    server = await loop.create_server(lambda: Recorder(answers), "127.0.0.1", port)
    fleet = Fleet(loop, keep_samples=False, seed=1, **fleet_args)
    config = {"WebSocketPingInterval": 0, "MinimumStatusDuration": 0}
    for i in range(stations):
        fleet.add(Station(f"LIP{i}", fleet.now(), config=ConfigStore(config)),
                  f"ws://127.0.0.1:{port}/ocpp")  # fmt: skip
    await until(lambda: fleet.stats.boot_status["Accepted"] == stations, 10, "boots")
    booted = fleet.stats.boot_status["Accepted"]
    fleet.stop_all()
    server.close()
    return list(Recorder.peers), booted


def _run(coro):  # type: ignore[no-untyped-def]
    loop = new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


@pytest.mark.timeout(30)
def test_stations_connect_from_the_given_addresses_in_turn(free_port: int) -> None:
    peers, booted = _run(_connect(free_port, {"local_ips": ["127.0.0.2", "127.0.0.3"]}, 6))
    assert booted == 6
    assert sorted(peers) == ["127.0.0.2"] * 3 + ["127.0.0.3"] * 3


@pytest.mark.timeout(30)
def test_the_addresses_come_from_the_environment_fleet_run_sets(
    free_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(LOCAL_IPS_ENV, "127.0.0.2-127.0.0.3")
    peers, _ = _run(_connect(free_port, {}, 4))
    assert sorted(peers) == ["127.0.0.2", "127.0.0.2", "127.0.0.3", "127.0.0.3"]


@pytest.mark.timeout(30)
def test_without_addresses_the_kernel_picks_the_source(free_port: int) -> None:
    peers, _ = _run(_connect(free_port, {}, 2))
    assert peers == ["127.0.0.1", "127.0.0.1"]


def test_address_lists_ranges_and_cidr_blocks() -> None:
    assert parse_local_ips("127.0.0.2-127.0.0.4") == ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
    assert parse_local_ips("10.0.0.0/30") == ["10.0.0.1", "10.0.0.2"]
    assert parse_local_ips("10.0.0.7/32, 127.0.0.9") == ["10.0.0.7", "127.0.0.9"]
    assert len(parse_local_ips("127.0.1.0/24")) == 254
    for bad in ("", "127.0.0.9-127.0.0.2", "nope", "127.0.0.1-::1", "10.0.0.0/33"):
        with pytest.raises(ValueError):
            parse_local_ips(bad)


def test_auto_processes_is_the_fewest_workers_the_file_limit_allows() -> None:
    assert auto_processes(1, 20_000) == 1
    assert auto_processes(19_900, 20_000) == 1  # 19,900 sockets + 100 headroom
    assert auto_processes(19_901, 20_000) == 2
    assert auto_processes(100_000, 20_000) == 6  # 5 x 19,900 = 99,500: one more
    assert auto_processes(100_000, 1_000_000) == 1
    with pytest.raises(ValueError):
        auto_processes(10, 100)


def test_fleet_run_sizes_the_workers_and_checks_the_addresses() -> None:
    # 30,000 stations would not fit one process under a 20,000 limit; auto makes two
    # workers, each under it, and the run gets as far as checking the CSMS (port 9: none).
    def limited() -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_NOFILE, (20_000, 20_000))

    common = [FLEET, "run", "--headless", "--stations", "30000", "--duration", "5s",
              "--csms", "ws://127.0.0.1:9/ocpp"]  # fmt: skip
    out = subprocess.run(
        [*common, "--processes", "auto"],
        preexec_fn=limited, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert "fleet: --processes auto: 2 worker(s)" in out.stderr.splitlines()
    assert "open files" not in out.stderr
    assert "cannot reach 127.0.0.1:9" in out.stderr
    bad = subprocess.run(
        [*common, "--processes", "auto", "--local-ips", "127.0.0.9-127.0.0.2"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert bad.returncode == 2
    assert "--local-ips" in bad.stderr and "bad address range" in bad.stderr
    many = subprocess.run(
        [*common, "--processes", "many"], capture_output=True, text=True, timeout=60
    )
    assert many.returncode == 2 and "integer >= -1 or auto" in many.stderr
