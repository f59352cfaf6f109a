"""The Fleet tab in Locust's web UI (issue 6): live fleet gauges beside Locust's own.

Locust's React UI has one extension mechanism that needs no rebuilt front end: tabs
listed in the page's ``template_args`` (``extended_tabs``, each shown as a table whose
columns ``extended_tables`` describes) whose rows arrive in the ``extended_stats`` of
``/stats/requests``, the JSON the UI already polls every two seconds while a test
spawns or runs. So the tab updates live with no polling of its own.

The data comes from :func:`fleet_rows`, also served on its own as ``GET /fleet/totals``
(raw numbers and the same rows), for scripts and for checking what the tab shows.
Only the fleet's counters are shown, never an option value: the configuration holds
secrets (``AuthorizationKey``) that must not reach a page anyone on the network may
open.

Everything here runs in the gevent web server of the master (or a standalone process)
at request time; it only reads the plain counters the loop thread writes.
"""

from __future__ import annotations

import json

from flask import Blueprint, Response, jsonify, request
from locust.env import Environment

from fleet.locust.fleet_rows import fleet_rows
from fleet.locust.metrics import fleet_totals

TAB_KEY = "fleet"
"""The tab's key: Locust matches it against ``?tab=`` and the ``extended_stats`` entry."""

ROUTE = "/fleet/totals"
"""The tab's data as JSON, under Locust's ``--web-base-path`` if one is set."""

_STRUCTURE = [
    {"key": "metric", "title": "Fleet"},
    {"key": "value", "title": "Now"},
]
# Locust's request-stats endpoint (blueprint "locust"), matched by name so a
# --web-base-path prefix does not matter.
_STATS_ENDPOINT = "locust.request_stats"


def setup(environment: Environment) -> None:
    """Register the Fleet tab and ``/fleet/totals`` on this process's web UI.

    Called once per process from the locustfile's init hook, before the web server
    starts (Locust creates it with ``delayed_start``), so routes can still be added.
    Workers and headless runs have no web UI: nothing to do.
    """
    web_ui = environment.web_ui
    if web_ui is None or web_ui.app is None:
        return
    args = web_ui.template_args
    # update_template_args() merges into template_args, so these keys survive every
    # page load; other extensions' tabs are kept.
    args["extended_tabs"] = [
        *(t for t in args.get("extended_tabs") or [] if t.get("key") != TAB_KEY),
        {"title": "Fleet", "key": TAB_KEY},
    ]
    args["extended_tables"] = [
        *(t for t in args.get("extended_tables") or [] if t.get("key") != TAB_KEY),
        {"key": TAB_KEY, "structure": _STRUCTURE},
    ]

    def totals() -> Response:
        raw = fleet_totals(environment)
        return jsonify({"totals": raw, "rows": fleet_rows(raw)})

    def extend_stats(response: Response) -> Response:
        """Add the Fleet rows to the stats the UI polls (the tab's live data)."""
        if request.endpoint != _STATS_ENDPOINT or response.status_code != 200:
            return response
        body = response.get_json(silent=True)
        if not isinstance(body, dict):
            return response
        others = [e for e in body.get("extended_stats") or [] if e.get("key") != TAB_KEY]
        body["extended_stats"] = [
            *others,
            {"key": TAB_KEY, "data": fleet_rows(fleet_totals(environment))},
        ]
        response.set_data(json.dumps(body))
        return response

    opts = environment.parsed_options
    base = (getattr(opts, "web_base_path", "") or "") if opts is not None else ""
    blueprint = Blueprint("fleet", __name__, url_prefix=base or None)
    # The same login as Locust's own pages when --web-login is on.
    view = web_ui.auth_required_if_enabled(totals)  # type: ignore[no-untyped-call]
    blueprint.add_url_rule(ROUTE, view_func=view)
    web_ui.app.register_blueprint(blueprint)
    web_ui.app.after_request(extend_stats)
