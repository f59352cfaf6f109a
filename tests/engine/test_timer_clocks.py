"""Which clock the protocol's timers run on under time compression (issue 14, item 17).

At 144x a HeartbeatInterval of 60 s on the model clock is a heartbeat every 0.4 real
seconds per idle station: the CSMS sees mostly heartbeats (96% of public-ac's messages).
By default heartbeats and pings keep real time and meter samples follow the model clock
(each compressed session carries the samples it would in production); a profile's
``sessions.clocks`` switches each one.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from support import HANG_GUARD, assert_profile_error, until

from fleet.csms.server import ReferenceCsms
from fleet.engine.fleet import CLOCKS, Fleet
from fleet.model.config import ConfigStore
from fleet.model.station import Station
from fleet.scenarios.profile import load

FACTOR = 144.0
CONFIG = {"MinimumStatusDuration": 0, "MeterValueSampleInterval": 60, "WebSocketPingInterval": 0}


def mix(clocks: dict[str, str] | None, heartbeat: int) -> dict[str, int]:
    """Two idle and two charging stations at 144x against the reference CSMS (heartbeat
    interval ``heartbeat`` s); returns the CSMS's messages by action once 40 MeterValues
    (20 minutes of two sessions, model time: 8.3 real seconds) arrived."""

    async def scenario() -> dict[str, int]:
        csms = ReferenceCsms(accept_all_tags=True, heartbeat_interval=heartbeat)
        await csms.start()
        fleet = Fleet(asyncio.get_running_loop(), seed=1, time_compression=FACTOR, clocks=clocks)
        links = [
            fleet.add(Station(f"CK{i}", fleet.now(), config=ConfigStore(CONFIG)), csms.url)
            for i in range(4)
        ]
        await until(lambda: fleet.stats.boot_status["Accepted"] == 4, 10, "boots")
        for link in links[:2]:
            link.hardware(link.station.plug_in)
            link.hardware(lambda now, s=link.station: s.present_tag("TAG1", now))
        by_action = csms.ledger.summary
        await until(
            lambda: by_action()["messages_by_action"].get("MeterValues", 0) >= 40, 20, "samples"
        )
        fleet.stop_all()
        await csms.stop()
        return dict(by_action()["messages_by_action"])

    return asyncio.run(asyncio.wait_for(scenario(), HANG_GUARD))


def test_by_default_heartbeats_keep_real_time_and_samples_follow_the_model() -> None:
    assert CLOCKS == {"heartbeat": "real", "meter_values": "model", "ping": "real"}
    # A 600 s interval is 4.2 real seconds on the model clock, and the 40 samples take
    # at least 8.3: each idle station would have heartbeated. In real time the first is
    # 600 s away, longer than the test may take (HANG_GUARD).
    seen = mix(None, heartbeat=600)
    assert seen.get("Heartbeat", 0) == 0, seen
    assert seen["StartTransaction"] == 2


def test_heartbeats_on_the_model_clock_swamp_the_mix() -> None:
    seen = mix({"heartbeat": "model"}, heartbeat=60)
    # Each idle station sends one every 60 / 144 real seconds meanwhile (8.3 s at least).
    assert seen["Heartbeat"] >= 10, seen


def test_samples_on_the_real_clock_leave_a_compressed_session_almost_bare() -> None:
    async def scenario() -> int:
        csms = ReferenceCsms(accept_all_tags=True, heartbeat_interval=60)
        await csms.start()
        fleet = Fleet(
            asyncio.get_running_loop(),
            seed=1,
            time_compression=FACTOR,
            clocks={"meter_values": "real"},
        )
        config = ConfigStore({**CONFIG, "MeterValueSampleInterval": 300})
        link = fleet.add(Station("CR1", fleet.now(), config=config), csms.url)
        await until(lambda: fleet.stats.boot_status["Accepted"] == 1, 10, "boot")
        link.hardware(link.station.plug_in)
        link.hardware(lambda now: link.station.present_tag("TAG1", now))
        started = csms.ledger.summary
        await until(lambda: started()["transactions_started"] == 1, 10, "charging")
        # Ten model minutes of charging (4.2 real seconds): two samples on the model
        # clock, none in real time (the first is five real minutes away).
        model_end = fleet.now() + 600
        await until(lambda: fleet.now() >= model_end, 20, "ten model minutes")
        count = started()["messages_by_action"].get("MeterValues", 0)
        fleet.stop_all()
        await csms.stop()
        return int(count)

    assert asyncio.run(asyncio.wait_for(scenario(), HANG_GUARD)) == 0


def test_the_configured_interval_is_what_the_csms_reads() -> None:
    """Scaling is the model's scheduling only: GetConfiguration shows the CSMS's value."""
    station = Station("CG1", 0.0, config=ConfigStore(CONFIG))
    station.scale_timers(FACTOR, 1.0, 0.0)
    assert station.config.get_int("HeartbeatInterval") != station.heartbeat_interval
    assert station.heartbeat_interval == station.config.get_int("HeartbeatInterval") * FACTOR
    assert station.sample_interval == 60


def test_profiles_switch_each_clock(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(
        "name: p\nid_tags: [A]\nsessions:\n  time_compression: 10\n"
        "  clocks: {heartbeat: model, ping: model}\n"
    )
    assert load(str(path)).sessions.clocks == {
        "heartbeat": "model",
        "meter_values": "model",
        "ping": "model",
    }
    assert load("public-ac").sessions.clocks == CLOCKS


@pytest.mark.parametrize(
    ("body", "line", "field", "needle"),
    [
        ("name: p\nsessions:\n  clocks: {heartbeat: wall}\n", 3, "sessions.clocks.heartbeat",
         "real or model"),
        ("name: p\nsessions:\n  clocks: {status: real}\n", 3, "sessions.clocks.status",
         "unknown field"),
    ],
)  # fmt: skip
def test_bad_clocks_name_the_line(
    tmp_path: Path, body: str, line: int, field: str, needle: str
) -> None:
    assert_profile_error(tmp_path, body, line, field, needle)
