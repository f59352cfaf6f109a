"""Time compression: the model clock runs ``factor`` times faster, network time does not.

A fake loop clock makes the arithmetic exact: model time, timers mapped back to loop
time, the RPC timeout (still WebsocketRequestTimeout real seconds) and the round trips
reported to Locust / Prometheus (real seconds).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
import pytest

from fleet.engine.fleet import Fleet
from fleet.engine.link import StationLink
from fleet.model.config import ConfigStore
from fleet.model.station import Station


class _Handle:
    def __init__(self, when: float) -> None:
        self.when = when
        self._cancelled = False

    def cancel(self) -> None:
        self._cancelled = True

    def cancelled(self) -> bool:
        return self._cancelled


class FakeLoop:
    """Just the clock and timers a Fleet and a StationLink touch."""

    def __init__(self) -> None:
        self.t = 1000.0
        self.timers: list[_Handle] = []

    def time(self) -> float:
        return self.t

    def call_at(self, when: float, fn: Any, *args: Any) -> _Handle:
        handle = _Handle(when)
        self.timers.append(handle)
        return handle

    def call_later(self, delay: float, fn: Any, *args: Any) -> _Handle:
        return self.call_at(self.t + delay, fn)


def _fleet(factor: float) -> tuple[Fleet, FakeLoop]:
    loop = FakeLoop()
    return Fleet(loop, time_compression=factor), loop  # type: ignore[arg-type]


def test_factor_one_is_wall_clock() -> None:
    fleet, loop = _fleet(1.0)
    assert abs(fleet.now() - time.time()) < 1.0
    assert fleet.now == fleet.now  # the plain method: nothing extra on the hot path
    assert type(fleet).now is Fleet.now and "now" not in vars(fleet)
    loop.t += 10.0
    assert fleet.loop_time(fleet.now() + 5.0) == pytest.approx(loop.t + 5.0)
    assert fleet.real(7.0) == 7.0


@pytest.mark.parametrize("factor", [144.0, 2000.0])
def test_model_clock_runs_factor_times_faster(factor: float) -> None:
    fleet, loop = _fleet(factor)
    start = fleet.now()
    loop.t += 10.0
    assert fleet.now() - start == pytest.approx(10.0 * factor)
    # A model deadline one model hour ahead is 3600 / factor real seconds away.
    assert fleet.loop_time(fleet.now() + 3600.0) - loop.t == pytest.approx(3600.0 / factor)
    assert fleet.real(3600.0) == pytest.approx(3600.0 / factor)


def test_bad_factor_is_refused() -> None:
    with pytest.raises(ValueError, match="time_compression"):
        _fleet(0.0)


def _link(factor: float) -> tuple[StationLink, Fleet, FakeLoop]:
    fleet, loop = _fleet(factor)
    station = Station("CLK1", fleet.now(), config=ConfigStore({"WebsocketRequestTimeout": 10}))
    return StationLink(fleet, station, "ws://127.0.0.1:9/ocpp"), fleet, loop


@pytest.mark.parametrize("factor", [1.0, 144.0])
def test_rpc_timeout_stays_real_seconds(factor: float) -> None:
    link, fleet, loop = _link(factor)
    assert link.rpc.timeout == pytest.approx(10.0 * factor)
    link.rpc.call("Heartbeat", {}, fleet.now())
    deadline = link.rpc.deadline
    assert deadline is not None
    assert fleet.loop_time(deadline) - loop.t == pytest.approx(10.0)
    loop.t += 9.9
    assert link.rpc.check_timeout(fleet.now()) is None
    loop.t += 0.2
    failed = link.rpc.check_timeout(fleet.now())
    assert failed is not None and failed.timeout
    # The link's timer for that deadline is set at the right loop time.
    link._set_timer(deadline)
    assert link._timer is not None
    assert link._timer_at == pytest.approx(fleet.loop_time(deadline))


@pytest.mark.parametrize("factor", [1.0, 500.0])
def test_round_trips_are_reported_in_real_seconds(factor: float) -> None:
    link, fleet, loop = _link(factor)
    station = link.station
    station.connected(fleet.now())
    msg = station.next_message(fleet.now())
    assert msg is not None and msg.action == "BootNotification"
    frame = orjson.loads(link.rpc.call(msg.action, msg.payload, fleet.now()))
    loop.t += 0.05  # 50 ms on the wire
    answer = {"status": "Accepted", "currentTime": "2026-01-01T00:00:00Z", "interval": 60}
    link._message(orjson.dumps([3, frame[1], answer]))
    assert station.boot_status == "Accepted"
    assert fleet.samples is not None
    action, seconds, _, error = fleet.samples[-1]
    assert (action, error) == ("BootNotification", None)
    assert seconds == pytest.approx(0.05)
    assert fleet.stats.round_trip["BootNotification"].sum == pytest.approx(0.05)


def test_real_loop_compressed_clock() -> None:
    async def scenario() -> None:
        fleet = Fleet(asyncio.get_running_loop(), time_compression=1000.0)
        fired: list[float] = []
        start = fleet.now()
        fleet.call_at_model(start + 50.0, lambda: fired.append(fleet.now()))
        await asyncio.sleep(0.2)
        assert fired and fired[0] >= start + 50.0
        assert fleet.now() - start == pytest.approx(200.0, rel=0.5)

    asyncio.run(scenario())


def test_a_power_cut_lasts_its_model_seconds() -> None:
    """fleet.scenarios.power: outage durations are model seconds, as every scenario
    time; on a clock 144 times faster a one-hour cut keeps the station dark 25 s."""
    fleet, loop = _fleet(144.0)
    station = Station("CP-CLOCK-2", fleet.now(), config=ConfigStore({}))
    link = StationLink(fleet, station, "ws://127.0.0.1:9")
    link.hardware(lambda now: station.power_lost(3600.0, now))
    assert loop.timers[-1].when == pytest.approx(loop.t + 25.0)
