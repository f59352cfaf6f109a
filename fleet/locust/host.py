"""The CSMS URL stations connect to: Locust's host (``--host``, or the web form's Host
field), never a default. A run without one refuses to start stations rather than load
some CSMS nobody named: the web form answers with the reason, and a station started
without a host (any other way) stops at once with one line in the log."""

from __future__ import annotations

import logging
from typing import Any

from locust.env import Environment
from locust.exception import StopUser

log = logging.getLogger("fleet")

MISSING = (
    "no CSMS URL: fill in Host (the CSMS's websocket base URL, e.g. ws://csms:9000/ocpp); "
    "stations not started"
)


def of(environment: Environment) -> str:
    """The host for a station about to start; :class:`StopUser` (logged once per run)
    when there is none."""
    host = (environment.host or "").strip()
    if host:
        return host
    if not getattr(environment, "_fleet_no_host_logged", False):
        environment._fleet_no_host_logged = True  # type: ignore[attr-defined]
        log.error("%s", MISSING)
    raise StopUser()


def setup(environment: Environment) -> None:
    """The web form's Start with an empty Host is refused with :data:`MISSING` (Locust's
    form shows the message) before any station starts."""
    web_ui = environment.web_ui
    if web_ui is None or web_ui.app is None:
        return
    from flask import jsonify, request

    @web_ui.app.before_request
    def _refuse_empty_host() -> Any:
        if request.method != "POST" or request.path.rstrip("/") != "/swarm":
            return None
        if "host" in request.form and not request.form["host"].strip():
            log.error("%s", MISSING)
            return jsonify({"success": False, "message": MISSING, "host": environment.host})
        return None
