"""``ChargeProUser``: one Locust user is one Charge Pro station.

Spawning a user brings a station online; stopping it takes the station offline
with a clean websocket close. All OCPP traffic, timers and meter ticks run on the
fleet's event loop (see bridge.py), and every station-initiated exchange is reported
to Locust's statistics as request type ``OCPP`` named after its action. The user has
no running greenlet of its own (issue 16: one object per station): ``start`` adds the
station at once and hands Locust an unstarted greenlet as the user's handle.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import gevent
from gevent import Greenlet
from gevent.pool import Group
from locust import User, events, task
from locust.env import Environment
from locust.runners import LocalRunner, MasterRunner
from locust.user.users import LOCUST_STATE_WAITING

from fleet.engine import limits
from fleet.engine.security import SecurityConfigError
from fleet.locust import (
    bridge,
    distributed,
    embedded,
    generator,
    live,
    metrics,
    process,
    summary,
    webui,
)
from fleet.locust import host as csms_host
from fleet.scenarios.profile import ProfileError


@events.init_command_line_parser.add_listener
def _arguments(parser: Any, **_: Any) -> None:
    bridge.add_arguments(parser)
    live.add_arguments(parser)


@events.init.add_listener
def _init(environment: Environment, **_: Any) -> None:
    process.setup()  # native logging locks, a quiet Ctrl-C
    opts = environment.parsed_options
    if opts is None:
        return
    _enforce_open_files(environment)  # one open file per station (issue 7)
    try:
        # Registers the master/worker messages; a worker gets the master's profile.
        profile = distributed.setup(environment)
        if not isinstance(environment.runner, MasterRunner):  # the master connects nothing
            bridge.tls_settings(opts).check()
    except ProfileError as exc:
        sys.stderr.write(f"fleet: {exc}\n")
        sys.exit(2)
    except SecurityConfigError as exc:
        sys.stderr.write(f"fleet: TLS: {exc}\n")
        sys.exit(2)
    host = getattr(opts, "host", None) or ""
    if profile.security_profile >= 2 and host.startswith("ws://"):
        sys.stderr.write(
            f"fleet: profile {profile.name}: SecurityProfile {profile.security_profile} "
            "needs a wss:// --host\n"
        )
        sys.exit(2)
    metrics.setup(environment)
    generator.setup(environment)  # hub lag, the lag warning (issue 15)
    webui.setup(environment)
    csms_host.setup(environment)  # an empty Host in the web form is refused
    summary.setup(environment)  # --fleet-summary-json (issue 6, CI reports)
    live.setup(environment)  # the progress line and the SLOs that abort (issue 14)
    embedded.setup(environment)  # the web form's profile, told to fleet run's embedded CSMS


def _enforce_open_files(environment: Environment) -> None:
    """:func:`fleet.engine.limits.enforce` at ``init``: a standalone (local) runner
    holds all ``--users`` stations; a master holds none; a worker learns its share from
    the master only when the test starts, so it raises the limit here and its stations
    are checked by the process that launched it (``fleet run``)."""
    users = getattr(environment.parsed_options, "num_users", None)
    local = isinstance(environment.runner, LocalRunner) and isinstance(users, int)
    limits.enforce(users if local else None)


class ChargeProUser(User):
    """A simulated Schneider Charge Pro (OCPP 1.6J, one connector).

    ``--host`` is the CSMS's websocket base URL; the station connects to
    ``<host>/<station id>`` with subprotocol ``ocpp1.6``; without a host no station
    starts (:mod:`fleet.locust.host`).
    """

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        self.identity = ""
        self.bridge: bridge.Bridge | None = None

    def start(self, group: Group) -> Greenlet:
        """Add the station now and give Locust a greenlet that never runs.

        Locust counts, dispatches and stops users through their greenlets in the
        runner's group (``greenlet.args[0]`` is the user), so the user needs one; a
        running greenlet per station only slept and cost ~8 KB of memory. An unstarted
        one is enough: Locust kills it to stop the user (:meth:`stop`). A station that
        cannot start (no station number from the master) leaves no user behind, as
        when ``on_start`` raised in a user's greenlet.

        Locust spawns a worker's users in one loop without yielding; a worker that is
        given thousands at once (a master re-dispatching a missing worker's users) would
        hold the hub for seconds and miss its own heartbeats: each start yields first."""
        gevent.sleep(0)
        try:
            self.on_start()
        except Exception:
            logging.getLogger("fleet.locust").exception("a station could not start")
            # args[0]: how the runner finds the user; this one runs once and ends.
            handle = group.spawn(_handle, self)
        else:
            handle = Greenlet(_handle, self)
            group.add(handle)
            self._state = LOCUST_STATE_WAITING  # what Locust stops with a kill
        self._greenlet = handle
        self._group = group
        return handle

    def stop(self, force: bool = False) -> bool:
        """Take the station offline, then let Locust kill the handle (immediately:
        there is no task to finish)."""
        self.on_stop()
        return bool(super().stop(force=True))

    @task
    def hold(self) -> None:
        """Never runs (:meth:`start` never starts the greenlet); Locust warns at each test
        start about a user class without a task ("instantiating it will fail!")."""
        gevent.sleep(3600)

    def on_start(self) -> None:
        url = csms_host.of(self.environment)
        self.bridge = bridge.Bridge.get(self.environment)
        self.identity = self.bridge.next_identity()
        self.bridge.add_station(self.identity, url)

    def on_stop(self) -> None:
        # On the fleet it started on (the next run may bring another); once.
        if self.identity and self.bridge is not None:
            self.bridge.remove_station(self.identity)
            self.identity = ""


def _handle(*_: Any) -> None:
    """The body of a user's handle greenlet (never started while the user runs)."""
