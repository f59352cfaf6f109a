"""The Locust child's end of :mod:`fleet.cli.follow`: a run started from the web UI's
form with another profile first tells the embedded reference CSMS (hosted by ``fleet
run``) to accept that profile's id tags and AuthorizationKey.

It happens in ``test_start``, which Locust fires on the local runner or the master
before any user spawns, and it waits for the CSMS's answer (bounded), so the run's
first station already meets a CSMS that knows it. Without ``fleet run``'s embedded
CSMS (``--csms``, plain ``locust -f``) the variable is absent and nothing is done.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import Any

from locust.env import Environment
from locust.runners import WorkerRunner

log = logging.getLogger("fleet.locust")

ENV = "FLEET_EMBEDDED_CSMS"  # fleet.cli.follow.ENV (the CLI does not import Locust)
TIMEOUT = 10.0


def setup(environment: Environment) -> None:
    """Follow the web form's profile (not on a worker: the master announces)."""
    address = os.environ.get(ENV)
    if not address or isinstance(environment.runner, WorkerRunner):
        return
    host, port, token = address.rsplit(":", 2)
    state = {"announced": _spec(environment)}  # the CSMS started with this one

    def on_test_start(**_: Any) -> None:
        spec = _spec(environment)
        if spec == state["announced"]:
            return
        answer = _announce(host, int(port), token, spec)
        if answer == "ok":
            state["announced"] = spec
            log.info("embedded CSMS: now accepting the stations of profile %s", spec)
        else:
            log.error("embedded CSMS: profile %s: %s", spec, answer)

    environment.events.test_start.add_listener(on_test_start)


def _spec(environment: Environment) -> str:
    spec = getattr(environment.parsed_options, "fleet_profile", None) or "demo"
    # A relative path means this process's working directory, which the CLI shares.
    return os.path.abspath(spec) if os.path.exists(spec) else str(spec)


def _announce(host: str, port: int, token: str, spec: str) -> str:
    """Send the profile, return the answer (``ok`` or a reason)."""
    try:
        with socket.create_connection((host, port), timeout=TIMEOUT) as sock:
            sock.sendall(f"{token} {spec}\n".encode())
            data = b""
            while not data.endswith(b"\n"):
                chunk = sock.recv(1024)
                if not chunk:
                    break
                data += chunk
    except OSError as exc:
        return f"no answer ({exc})"
    answer = data.decode("utf-8", "replace").strip()
    return "ok" if answer == "ok" else answer.removeprefix("error ").strip() or "no answer"
