"""The misbehaving-station mode in Locust: request entries and the end-of-run table.

:func:`attach` (called by the :class:`~fleet.locust.bridge.Bridge` of a worker or a
standalone process) starts the profile's :class:`MisbehaveDirector` on the fleet's loop
and a greenlet that drains its classified answers into Locust's statistics: request type
``MISBEHAVE``, name = the kind, response time = until the CSMS answered (or the timeout),
and a failure when the answer is a finding (the CSMS accepted invalid input, or left a
CALL unanswered: see ``fleet.scenarios.misbehave.FINDINGS``), its message naming the
answer and what was sent (``accepted: Heartbeat with an additional property``), so
Locust's failures table lists each finding once with its count. Headless runs exit 1
on findings, as on any other failure.

At the end the table of answers per kind (:func:`table`) is printed from the FleetStats
counters (``misbehave_sent`` / ``misbehave_answers``): by a standalone process at each
``test_stop``, from its own; by a master at ``quitting``, from the workers' sum
(:func:`fleet.locust.metrics.fleet_stats`, shipped in their reports), or, if none came,
rebuilt from Locust's aggregated MISBEHAVE entries (counts and findings per kind,
without the CALLERROR codes). Workers print nothing.
"""

from __future__ import annotations

import random
import sys
from typing import Any

import gevent
from locust import events
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner

from fleet.locust import current, metrics
from fleet.scenarios.misbehave import MisbehaveDirector, table

REQUEST_TYPE = "MISBEHAVE"
DRAIN_EVERY = 0.1


class MisbehaveFinding(Exception):
    """A CSMS answer that is a finding, as Locust's failures table shows it."""


def attach(bridge: Any) -> MisbehaveDirector | None:
    """Start the bridge's profile's misbehaving stations, if it has them (gevent side)."""
    plan = bridge.profile.misbehave
    if plan is None:
        return None
    director = MisbehaveDirector(bridge.fleet, plan, random.Random(bridge.rng.getrandbits(64)))
    bridge.thread.call(director.start)
    gevent.spawn(_drain, bridge, director)
    return director


def _drain(bridge: Any, director: MisbehaveDirector) -> None:
    """Classified answers into Locust's statistics, on the gevent side; and once more at
    ``test_stop``, so an answer classified in the run's last moments (a finding the end
    table counts) is in Locust's statistics, failures and exit code too."""
    fire = bridge.env.events.request.fire
    samples = director.samples
    failures: dict[str, MisbehaveFinding] = {}

    def flush(**_: Any) -> None:
        while samples:
            out = samples.popleft()
            exc = None
            if out.finding:
                message = f"{out.answer}: {out.variant}"
                exc = failures.get(message)
                if exc is None:
                    exc = failures[message] = MisbehaveFinding(message)
            fire(
                request_type=REQUEST_TYPE,
                name=out.kind,
                response_time=out.seconds * 1000.0,
                response_length=out.size,
                exception=exc,
                context={},
            )

    stop_event = bridge.env.events.test_stop
    stop_event.add_listener(flush)
    published = False  # Bridge.get() publishes it once its __init__ returns
    while True:
        if current.running() is bridge:
            published = True
        elif published:
            break  # a new fleet (the web UI's form changed) has its own director and drain
        flush()
        gevent.sleep(DRAIN_EVERY)
    stop_event.remove_listener(flush)
    bridge.thread.call(director.stop)


# -- the report ------------------------------------------------------------------------------


def _from_locust(environment: Environment) -> str:
    """The table rebuilt from Locust's aggregated MISBEHAVE entries (a master without the
    workers' FleetStats): per kind, answered and findings, by failure message."""
    stats = environment.stats
    sent: dict[str, int] = {}
    answers: dict[tuple[str, str], int] = {}
    for (name, method), entry in list(stats.entries.items()):
        if method != REQUEST_TYPE:
            continue
        sent[name] = entry.num_requests
        ok = entry.num_requests - entry.num_failures
        if ok:
            answers[(name, "not a finding")] = ok
    for error in list(stats.errors.values()):
        if error.method == REQUEST_TYPE:
            answer = str(error.error).split(":", 1)[0].strip()
            key = (error.name, answer)
            answers[key] = answers.get(key, 0) + error.occurrences
    return table(sent, answers)


def report(environment: Environment) -> str:
    """The end-of-run table for this process ("" on a worker or without misbehaviour)."""
    runner = environment.runner
    if isinstance(runner, WorkerRunner):
        return ""
    stats = metrics.fleet_stats(environment)  # on a master: the workers' sum
    text = table(stats.misbehave_sent, stats.misbehave_answers)
    if not text and isinstance(runner, MasterRunner):
        text = _from_locust(environment)
    return text


def _print(environment: Environment) -> None:
    text = report(environment)
    if text:
        sys.stdout.write(f"\n{text}\n\n")
        sys.stdout.flush()


@events.test_stop.add_listener
def _on_test_stop(environment: Environment, **_: Any) -> None:
    if not isinstance(environment.runner, MasterRunner):
        _print(environment)


@events.quitting.add_listener
def _on_quitting(environment: Environment, **_: Any) -> None:
    # A master prints once, last: the workers' final reports are in by then.
    if isinstance(environment.runner, MasterRunner):
        _print(environment)
