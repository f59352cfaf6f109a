"""The stations' model wake-ups share loop timers (fleet.engine.link.Wakeups).

A fake loop records the timers asked for and runs them when the test moves its clock,
so which station wakes when, and how many loop timers that took, is exact.
"""

from __future__ import annotations

from typing import Any

import pytest

from fleet.engine.fleet import Fleet
from fleet.engine.link import TIMER_SLACK, StationLink
from fleet.model.config import ConfigStore
from fleet.model.station import Station


class FakeLoop:
    """A clock and a timer list; ``run_until`` runs what is due, in time order."""

    def __init__(self) -> None:
        self.t = 1000.0
        self.timers: list[tuple[float, int, Any, tuple[Any, ...]]] = []
        self.errors: list[dict[str, Any]] = []
        self._seq = 0

    def time(self) -> float:
        return self.t

    def call_at(self, when: float, fn: Any, *args: Any) -> Any:
        self._seq += 1
        self.timers.append((when, self._seq, fn, args))
        return None

    def call_later(self, delay: float, fn: Any, *args: Any) -> Any:
        return self.call_at(self.t + delay, fn, *args)

    def call_exception_handler(self, context: dict[str, Any]) -> None:
        self.errors.append(context)

    def run_until(self, t: float) -> None:
        while True:
            due = sorted(x for x in self.timers if x[0] <= t)
            if not due:
                break
            first = due[0]
            self.timers.remove(first)
            self.t = max(self.t, first[0])
            first[2](*first[3])
        self.t = t


class Woken(Station):
    """Records every model step (the wake-ups among them)."""

    def __init__(self, identity: str, now: float, log: list[tuple[str, float]]) -> None:
        super().__init__(identity, now, config=ConfigStore({"WebSocketPingInterval": 0}))
        self.log = log
        self.fail = False

    def advance(self, now: float) -> None:
        self.log.append((self.identity, now))
        if self.fail:
            raise RuntimeError("model bug")
        super().advance(now)


def _links(n: int) -> tuple[list[StationLink], Fleet, FakeLoop, list[tuple[str, float]]]:
    loop = FakeLoop()
    fleet = Fleet(loop)  # type: ignore[arg-type]
    log: list[tuple[str, float]] = []
    links = [
        StationLink(fleet, Woken(f"W{i}", fleet.now(), log), "ws://127.0.0.1:9/ocpp")
        for i in range(n)
    ]
    return links, fleet, loop, log


def test_wakeups_due_within_one_slack_share_one_loop_timer() -> None:
    links, fleet, loop, log = _links(3)
    base = fleet.now() + 10.0
    # 10 ms apart: the grid rounds all three up to one point.
    for i, link in enumerate(reversed(links)):
        link._set_timer(base + 0.001 + i * 0.01)
    assert len(loop.timers) == 1
    at = loop.timers[0][0]
    assert at >= fleet.loop_time(base + 0.021)
    assert at - fleet.loop_time(base) <= TIMER_SLACK + 1e-6
    loop.run_until(at - 0.001)
    assert log == []  # never early
    loop.run_until(at)
    # Each woke once, in the order their wake-ups were set.
    assert [ident for ident, _ in log] == ["W2", "W1", "W0"]
    assert all(now >= base + 0.021 - 1e-6 for _, now in log)


def test_moved_and_cancelled_wakeups_do_not_wake_at_the_old_time() -> None:
    links, fleet, loop, log = _links(3)
    now = fleet.now()
    for link in links:
        link._set_timer(now + 5.0)
    links[0]._set_timer(now + 8.0)  # later
    links[1]._set_timer(None)  # nothing to do
    loop.run_until(fleet.loop_time(now + 5.0) + TIMER_SLACK)
    assert [ident for ident, _ in log] == ["W2"]
    loop.run_until(fleet.loop_time(now + 8.0) + TIMER_SLACK)
    assert [ident for ident, _ in log] == ["W2", "W0"]
    loop.run_until(fleet.loop_time(now + 60.0))
    assert [ident for ident, _ in log] == ["W2", "W0"]
    # Moved back to a time it was in before: it wakes there, once.
    links[1]._set_timer(fleet.now() + 5.0)
    links[1]._set_timer(fleet.now() + 7.0)
    links[1]._set_timer(fleet.now() + 5.0)
    loop.run_until(fleet.loop_time(fleet.now() + 30.0))
    assert [ident for ident, _ in log] == ["W2", "W0", "W1"]


def test_a_failing_station_does_not_keep_the_others_of_its_slot_asleep() -> None:
    links, fleet, loop, log = _links(3)
    links[1].station.fail = True  # type: ignore[attr-defined]
    for link in links:
        link._set_timer(fleet.now() + 1.0)
    loop.run_until(fleet.loop_time(fleet.now() + 2.0))
    assert [ident for ident, _ in log] == ["W0", "W1", "W2"]
    assert len(loop.errors) == 1
    assert isinstance(loop.errors[0]["exception"], RuntimeError)


@pytest.mark.parametrize("factor", [1.0, 144.0])
def test_a_station_woken_rearms_for_its_next_wakeup(factor: float) -> None:
    """A wake-up that asks for the next one (here every station's own next_wakeup, a
    stopped one's none) keeps the rhythm through the shared slots."""
    loop = FakeLoop()
    fleet = Fleet(loop, time_compression=factor)  # type: ignore[arg-type]
    log: list[tuple[str, float]] = []
    link = StationLink(fleet, Woken("R1", fleet.now(), log), "ws://127.0.0.1:9/ocpp")
    start = fleet.now()
    for k in range(1, 4):
        link._set_timer(start + k * 60.0)
    assert len(loop.timers) == 3  # three slots asked for, the first two left empty
    loop.run_until(fleet.loop_time(start + 200.0))
    assert [ident for ident, _ in log] == ["R1"]
    assert log[0][1] == pytest.approx(start + 180.0, abs=TIMER_SLACK * 2)
