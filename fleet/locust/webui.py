"""The Fleet tab in Locust's web UI (issues 6, 15): the fleet's charts and gauges.

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

Charts over the run (issue 15) sit above the table. Locust's front end is a built
React bundle whose chart library (ECharts) is private to it, and its extension tabs
only render tables; rebuilding it would tie the project to a Node tool chain and to
one Locust release. So the page Locust serves gets one extra ``<script>`` (served
from the package, no CDN: the machine running a load test is often offline) that,
while the Fleet tab is shown, fetches ``/fleet/charts`` every two seconds and puts
the fragment above the table. The fragment is inline SVG drawn in Python by
:func:`fleet.reports.html.charts_html`, the same drawing as the fleet report's, from
a server-side :class:`~fleet.locust.fleet_rows.History` of the totals (one sample
every two seconds while a run goes on, bounded, cleared when a new run starts), so
the charts survive a page reload, as Locust's own do. ``/fleet/history`` serves the
samples as JSON.

Everything here runs in the gevent web server of the master (or a standalone process)
at request time; it only reads the plain counters the loop thread writes.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import gevent
from flask import Blueprint, Response, jsonify, request
from locust.env import Environment
from locust.runners import STATE_RUNNING, STATE_SPAWNING, STATE_STOPPING

from fleet.locust.fleet_rows import SAMPLE_EVERY, History, fleet_rows, sample
from fleet.locust.metrics import fleet_totals
from fleet.reports.html import charts_html, lag_banner

log = logging.getLogger("fleet.locust")

TAB_KEY = "fleet"
"""The tab's key: Locust matches it against ``?tab=`` and the ``extended_stats`` entry."""

ROUTE = "/fleet/totals"
"""The tab's data as JSON, under Locust's ``--web-base-path`` if one is set."""

HISTORY_ROUTE = "/fleet/history"
"""The samples of the run so far, as JSON (``{"samples": [...]}``)."""

CHARTS_ROUTE = "/fleet/charts"
"""The charts of the run so far, as an HTML fragment of inline SVG."""

_STRUCTURE = [
    {"key": "metric", "title": "Fleet"},
    {"key": "value", "title": "Now"},
]
# Locust's request-stats endpoint and its page (blueprint "locust"), matched by name so
# a --web-base-path prefix does not matter.
_STATS_ENDPOINT = "locust.request_stats"
_INDEX_ENDPOINT = "locust.index"
_STATIC = Path(__file__).with_name("static")
_SCRIPT = '<script src="./fleet/static/fleet-tab.js" defer></script>'


def setup(environment: Environment) -> None:
    """Register the Fleet tab (table, charts, their routes) on this process's web UI.

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

    recording = recorder(environment)

    def totals() -> Response:
        raw = fleet_totals(environment)
        return jsonify({"totals": raw, "rows": fleet_rows(raw)})

    def history() -> Response:
        return jsonify({"samples": recording.history.samples()})

    def charts() -> Response:
        samples = recording.history.samples()
        return Response(lag_banner(samples) + charts_html(samples), mimetype="text/html")

    def extend(response: Response) -> Response:
        """Add the Fleet rows to the stats the UI polls (the tab's live data), and the
        charts' script to the page."""
        if response.status_code != 200:
            return response
        if request.endpoint == _INDEX_ENDPOINT and response.mimetype == "text/html":
            page = response.get_data(as_text=True)
            if _SCRIPT not in page:
                response.set_data(page.replace("</body>", _SCRIPT + "\n</body>", 1))
            return response
        if request.endpoint != _STATS_ENDPOINT:
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
    blueprint = Blueprint(
        "fleet",
        __name__,
        url_prefix=base or None,
        static_folder=str(_STATIC),
        static_url_path="/fleet/static",
    )
    # The same login as Locust's own pages when --web-login is on.
    for route, view in ((ROUTE, totals), (HISTORY_ROUTE, history), (CHARTS_ROUTE, charts)):
        blueprint.add_url_rule(
            route,
            view_func=web_ui.auth_required_if_enabled(view),  # type: ignore[no-untyped-call]
        )
    web_ui.app.register_blueprint(blueprint)
    web_ui.app.after_request(extend)


class Recorder:
    """Samples the fleet's totals every :data:`SAMPLE_EVERY` seconds while a run
    spawns, runs or stops its stations, into a :class:`History` cleared when a new run
    starts: what the Fleet tab's charts and the fleet report draw."""

    def __init__(self, environment: Environment) -> None:
        self.env = environment
        self.history = History()
        self.time_compression = 1.0
        environment.events.test_start.add_listener(self._on_test_start)
        self._greenlet = gevent.spawn(self._run)

    def take(self) -> None:
        totals = fleet_totals(self.env)
        self.history.add(sample(time.time(), totals, self.time_compression))

    def _on_test_start(self, **_: Any) -> None:
        # Read per run: the web UI's form may change the profile or the speed-up.
        self.time_compression = _time_compression(self.env)
        self.history.clear()
        self.take()

    def _run(self) -> None:
        while True:
            gevent.sleep(SAMPLE_EVERY)
            runner = self.env.runner
            if runner is None or runner.state not in (
                STATE_SPAWNING,
                STATE_RUNNING,
                STATE_STOPPING,
            ):
                continue
            try:
                self.take()
            except Exception:  # a chart must never take the web UI down
                log.exception("could not sample the fleet's totals")


_recorders: dict[int, Recorder] = {}


def recorder(environment: Environment) -> Recorder:
    """This process's recorder (one per environment, started on first use): called by
    the web UI and by the end-of-run summary, whichever needs it."""
    found = _recorders.get(id(environment))
    if found is None or found.env is not environment:
        found = _recorders[id(environment)] = Recorder(environment)
    return found


def _time_compression(environment: Environment) -> float:
    """The model clock's speed-up, as the stations run it (the option, else the
    profile's): charging power is drawn per model hour."""
    from fleet.scenarios.profile import ProfileError, load

    opts = environment.parsed_options
    value = getattr(opts, "fleet_time_compression", None) if opts is not None else None
    if value:
        return float(value)
    try:
        return float(load(getattr(opts, "fleet_profile", None) or "demo").time_compression)
    except (ProfileError, OSError):
        return 1.0
