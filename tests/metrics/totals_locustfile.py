"""The fleet's locustfile plus a probe: writes ``fleet_totals(environment)`` as JSON to
``$FLEET_TOTALS_OUT`` twice a second, so a test can read what the web UI's Fleet tab
and the end-of-run summary get on a master (summed over the workers)."""

from __future__ import annotations

import json
import os
from typing import Any

import gevent
from locust import events
from locust.env import Environment

from fleet.locust.locustfile import *  # noqa: F403  (ChargeProUser)
from fleet.locust.metrics import fleet_totals


@events.init.add_listener
def _probe(environment: Environment, **_: Any) -> None:
    path = os.environ["FLEET_TOTALS_OUT"]

    def write() -> None:
        while True:
            tmp = path + ".tmp"
            with open(tmp, "w") as fh:
                json.dump(fleet_totals(environment), fh)
            os.replace(tmp, path)
            gevent.sleep(0.5)

    gevent.spawn(write)
