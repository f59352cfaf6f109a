"""Locust's distributed mode: station numbers and the profile, handed out by the master.

Station numbers
    Every station of a run has a number 1..N, unique across all workers and hosts, and
    the id ``{prefix}{number:05d}`` (``CP00042``): the same ids a one-process run uses,
    whatever the number of workers. The number picks the station's trace rows (trace
    replay) and its kind (``profile.station_setup``), so it must not repeat.

    The master is the single allocator (:class:`NumberPool`); workers ask it for
    numbers with Locust's custom messages (``runner.send_message`` /
    ``register_message``). Why not a deterministic scheme (worker *i* of *W* takes
    ``i+1, i+1+W, ...``)? Workers only learn ``expect_workers``, not how many workers
    really joined; worker indexes grow past *W* when a worker reconnects or is
    replaced; and Locust's dispatcher does not split users evenly during a ramp or a
    rebalance, so such a scheme leaves holes and collides. The master sees every
    request, so the numbers in use are always the lowest free ones: a ramp to N gives
    exactly 1..N.

    A worker asks when its first user without a number starts, for all it will need in
    this spawn step (Locust's ``target_user_count`` minus what it holds), so one
    round trip over Locust's own ZeroMQ link (a few milliseconds) serves a whole step;
    the other users of the step take numbers from the local pool without waiting.
    Numbers of stopped users go back to the master (batched every
    :data:`RELEASE_DELAY` seconds). The master remembers which worker last held a
    number and gives a worker its own numbers back first, so a station that a ramp-down
    or a boot storm powered off comes back on the worker that keeps its state (its
    open transaction, its queue). When the master has to give away a number another
    worker parked, it tells that worker to forget the parked station. Numbers held by
    a worker that quit are freed.

    A one-process run (Locust's LocalRunner) uses the same pool in process, without
    messages.

The profile
    Workers on other hosts may not have the profile file (or the trace it replays), or
    may have another version of it. Every worker therefore takes the profile from the
    master: the YAML text and the trace file it names (relative to the profile, as in
    the profile). The worker unpacks them into a private temporary directory and loads
    them there. A trace given as an absolute path is not shipped: it must exist on
    every worker at that path.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gevent
import gevent.event
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner

from fleet.locust.numbers import NumberPool
from fleet.scenarios.bundle import bundle, unpack
from fleet.scenarios.profile import Profile, ProfileError, load

log = logging.getLogger("fleet.locust")

#: A worker re-sends an unanswered request after this many seconds (the master may not
#: have registered its listeners yet, right after ``--processes`` forked).
RETRY_EVERY = 1.0
#: A worker gives up waiting for the master after this many seconds.
ANSWER_TIMEOUT = 30.0
#: Numbers of stopped stations are sent back to the master in batches this often.
RELEASE_DELAY = 0.2

REQUEST_NUMBERS = "fleet_numbers_request"
NUMBERS = "fleet_numbers"
RELEASE_NUMBERS = "fleet_numbers_release"
FORGET = "fleet_forget"
REQUEST_PROFILE = "fleet_profile_request"
PROFILE = "fleet_profile"

LOCAL = "local"


# -- the allocator ---------------------------------------------------------------------


# -- the three sides -------------------------------------------------------------------


class LocalNumbers:
    """A one-process run: the pool in process."""

    def __init__(self) -> None:
        self.pool = NumberPool()

    def take(self) -> int:
        return self.pool.take(LOCAL, 1)[0][0]

    def release(self, number: int) -> None:
        self.pool.release(LOCAL, (number,))


class MasterSide:
    """The master: allocates numbers and serves the profile to its workers."""

    def __init__(self, environment: Environment, spec: str) -> None:
        runner = environment.runner
        assert isinstance(runner, MasterRunner)
        self.runner = runner
        self.pool = NumberPool()
        # Each worker's last answers by request id: a request sent again (the worker
        # heard nothing for RETRY_EVERY seconds) gets the same numbers, never more.
        self._answered: dict[str, dict[int, list[int]]] = {}
        # Read now: a worker that joins later gets what the master started with.
        self.bundles: dict[str, dict[str, Any]] = {spec: bundle(spec)}
        runner.register_message(REQUEST_NUMBERS, self._on_request)
        runner.register_message(RELEASE_NUMBERS, self._on_release)
        runner.register_message(REQUEST_PROFILE, self._on_profile)

    def _on_request(self, msg: Any, **_: Any) -> None:
        for holder in self.pool.holders():
            if holder not in self.runner.clients:  # the worker quit
                self.pool.drop_holder(holder)
                self._answered.pop(holder, None)
        rid = int(msg.data["rid"])
        answered = self._answered.setdefault(msg.node_id, {})
        numbers = answered.get(rid)
        if numbers is not None:  # a repeat: the same answer again
            self.runner.send_message(
                NUMBERS, {"rid": rid, "numbers": numbers}, client_id=msg.node_id
            )
            return
        count = max(1, min(int(msg.data["count"]), 1_000_000))
        numbers, stolen = self.pool.take(msg.node_id, count)
        answered[rid] = numbers
        while len(answered) > 8:
            del answered[next(iter(answered))]
        for other, lost in stolen.items():
            if other in self.runner.clients:
                self.runner.send_message(FORGET, {"numbers": lost}, client_id=other)
        self.runner.send_message(NUMBERS, {"rid": rid, "numbers": numbers}, client_id=msg.node_id)

    def _on_release(self, msg: Any, **_: Any) -> None:
        self.pool.release(msg.node_id, msg.data["numbers"])

    def _on_profile(self, msg: Any, **_: Any) -> None:
        opts = self.runner.environment.parsed_options
        spec = msg.data.get("spec") or getattr(opts, "fleet_profile", None) or "demo"
        reply: dict[str, Any] = {"rid": msg.data["rid"], "spec": spec}
        try:
            if spec not in self.bundles:
                self.bundles[spec] = bundle(spec)
            reply["bundle"] = self.bundles[spec]
        except ProfileError as exc:
            reply["error"] = str(exc)
        self.runner.send_message(PROFILE, reply, client_id=msg.node_id)


class WorkerSide:
    """A worker: takes numbers from the master in blocks and the profile as files.

    Runs on the gevent hub only (users' greenlets and the runner's message greenlet).
    """

    def __init__(self, environment: Environment) -> None:
        runner = environment.runner
        assert isinstance(runner, WorkerRunner)
        self.runner = runner
        self.pool: list[int] = []  # heap: numbers from the master not handed out yet
        self.in_use = 0
        # Requests not answered yet: rid -> [count, last sent]. A request is sent again
        # with the same rid until it is answered; the master answers a rid once.
        self._outstanding: dict[int, list[Any]] = {}
        self._rids = itertools.count(1)
        self._arrived = gevent.event.Event()
        self._releases: list[int] = []
        self._flusher: gevent.Greenlet | None = None
        self._answers: dict[int, dict[str, Any] | None] = {}  # profile rid -> answer
        self._profiles: dict[str, Profile] = {}
        self._folder = Path(tempfile.mkdtemp(prefix="fleet-worker-profile-"))
        runner.register_message(NUMBERS, self._on_numbers)
        runner.register_message(FORGET, self._on_forget)
        runner.register_message(PROFILE, self._on_profile)
        environment.events.test_stop.add_listener(self._on_test_stop)
        environment.events.quitting.add_listener(self._on_quitting)
        #: Set by the Bridge: drops parked stations whose numbers went to another worker.
        self.forget: Callable[[list[int]], None] | None = None

    # numbers

    def take(self) -> int:
        """The next number; waits (gevent) for the master's block if the pool is dry."""
        deadline = _now() + ANSWER_TIMEOUT
        while not self.pool:
            now = _now()
            if now > deadline:
                raise RuntimeError(
                    f"fleet: no station number from the Locust master in {ANSWER_TIMEOUT:.0f} s"
                )
            for rid, request in self._outstanding.items():
                if now - request[1] > RETRY_EVERY:
                    # The master was not listening yet (right after a fork), or is slow:
                    # the same request again, which it answers only once.
                    request[1] = now
                    self.runner.send_message(REQUEST_NUMBERS, {"rid": rid, "count": request[0]})
            if not self._outstanding:
                self._request()
            arrived = self._arrived
            arrived.wait(RETRY_EVERY)
        number = heapq.heappop(self.pool)
        self.in_use += 1
        return number

    def release(self, number: int) -> None:
        self.in_use -= 1
        self._releases.append(number)
        self._trim()
        if self._flusher is None:
            self._flusher = gevent.spawn_later(RELEASE_DELAY, self._flush)

    def _target(self) -> int:
        return int(getattr(self.runner, "target_user_count", 0) or 0)

    def _request(self) -> None:
        self._flush()  # the master may hand our freed numbers straight back
        count = self._target() - self.in_use - len(self.pool)
        count = max(1, count - sum(c for c, _ in self._outstanding.values()))
        rid = next(self._rids)
        self._outstanding[rid] = [count, _now()]
        self.runner.send_message(REQUEST_NUMBERS, {"rid": rid, "count": count})

    def _on_numbers(self, msg: Any, **_: Any) -> None:
        if self._outstanding.pop(msg.data["rid"], None) is None:
            return  # the answer to a repeated request, already taken
        for number in msg.data["numbers"]:
            heapq.heappush(self.pool, number)
        log.debug("station numbers from the master: %s", _ranges(msg.data["numbers"]))
        self._trim()
        arrived, self._arrived = self._arrived, gevent.event.Event()
        arrived.set()

    def _trim(self) -> None:
        """Give back numbers beyond what this worker should run (a late answer, a
        ramp-down while a request was out); the highest go first."""
        excess = self.in_use + len(self.pool) - max(self._target(), 0)
        if excess > 0 and self.pool:
            self.pool.sort()
            giving, self.pool = self.pool[-excess:], self.pool[:-excess]
            self._releases.extend(giving)
            if self._flusher is None:
                self._flusher = gevent.spawn_later(RELEASE_DELAY, self._flush)

    def _flush(self) -> None:
        flusher, self._flusher = self._flusher, None
        if flusher is not None and flusher is not gevent.getcurrent():
            flusher.kill(block=False)
        if self._releases:
            numbers, self._releases = self._releases, []
            self.runner.send_message(RELEASE_NUMBERS, {"numbers": numbers})

    def _on_forget(self, msg: Any, **_: Any) -> None:
        if self.forget is not None:
            self.forget(list(msg.data["numbers"]))

    def _on_test_stop(self, **_: Any) -> None:
        self._releases.extend(self.pool)
        self.pool = []
        self._flush()

    def _on_quitting(self, **_: Any) -> None:
        shutil.rmtree(self._folder, ignore_errors=True)

    # the profile

    def profile(self, spec: str | None) -> Profile:
        """The master's profile ``spec`` (None: the one the master runs with)."""
        if spec is not None and spec in self._profiles:
            return self._profiles[spec]
        answer = self._ask_profile(spec)
        if "error" in answer:
            raise ProfileError(f"{answer['error']} (on the Locust master)")
        name = answer["spec"]
        if name not in self._profiles:
            folder = self._folder / str(len(self._profiles))
            self._profiles[name] = load(str(unpack(answer["bundle"], folder)))
        return self._profiles[name]

    def _ask_profile(self, spec: str | None) -> dict[str, Any]:
        rid = next(self._rids)
        self._answers[rid] = None
        deadline = _now() + ANSWER_TIMEOUT
        while self._answers[rid] is None:
            if _now() > deadline:
                del self._answers[rid]
                raise ProfileError(
                    f"profile {spec or '(the master)'}: no answer from the Locust master "
                    f"in {ANSWER_TIMEOUT:.0f} s"
                )
            self.runner.send_message(REQUEST_PROFILE, {"rid": rid, "spec": spec})
            arrived = self._arrived
            arrived.wait(RETRY_EVERY)
        answer = self._answers.pop(rid)
        assert answer is not None
        return answer

    def _on_profile(self, msg: Any, **_: Any) -> None:
        if self._answers.get(msg.data["rid"], 0) is None:  # awaited, not answered yet
            self._answers[msg.data["rid"]] = msg.data
        arrived, self._arrived = self._arrived, gevent.event.Event()
        arrived.set()


# -- the profile as files --------------------------------------------------------------


# -- per process -----------------------------------------------------------------------


class _Process:
    def __init__(self, environment: Environment, side: LocalNumbers | MasterSide | WorkerSide):
        self.environment = environment
        self.side = side


_current: _Process | None = None


def setup(environment: Environment) -> Profile:
    """Called once per process from the locustfile's init hook, after Locust created
    the runner: registers the custom messages and returns the run's profile (on a
    worker, the master's)."""
    global _current
    opts = environment.parsed_options
    spec = getattr(opts, "fleet_profile", None) or "demo"
    runner = environment.runner
    side: LocalNumbers | MasterSide | WorkerSide
    if isinstance(runner, MasterRunner):
        profile = load(spec)
        side = MasterSide(environment, spec)
    elif isinstance(runner, WorkerRunner):
        side = WorkerSide(environment)
        _current = _Process(environment, side)
        # The worker's own --fleet-profile does not count: the master sends its options
        # with every spawn, and its profile now.
        return side.profile(None)
    else:
        profile = load(spec)
        side = LocalNumbers()
    _current = _Process(environment, side)
    return profile


def _side(environment: Environment) -> LocalNumbers | MasterSide | WorkerSide:
    global _current
    if _current is None or _current.environment is not environment:
        if isinstance(environment.runner, (MasterRunner, WorkerRunner)):
            setup(environment)
        else:
            _current = _Process(environment, LocalNumbers())
    assert _current is not None
    return _current.side


def numbers(environment: Environment) -> LocalNumbers | WorkerSide:
    """Where this process's stations take their numbers from."""
    side = _side(environment)
    if isinstance(side, MasterSide):
        raise RuntimeError("the Locust master runs no stations")
    return side


def profile(environment: Environment, spec: str) -> Profile:
    """The profile ``spec``: loaded here, or on a worker, the master's copy."""
    side = _side(environment)
    if isinstance(side, WorkerSide):
        return side.profile(spec)
    return load(spec)


def _now() -> float:
    return time.monotonic()


def _ranges(numbers: list[int]) -> str:
    """``[1, 2, 3, 7]`` -> ``'1-3, 7'`` (for logs)."""
    out: list[str] = []
    for _, group in itertools.groupby(enumerate(sorted(numbers)), lambda p: p[1] - p[0]):
        run = [n for _, n in group]
        out.append(str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}")
    return ", ".join(out)
