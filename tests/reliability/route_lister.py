"""A second locustfile for the secrets test: lists the web UI's GET routes.

Loaded next to the fleet's (``-f fleet/locust/locustfile.py,tests/reliability/route_lister.py``)
it adds ``/__routes``: every rule of the Flask app's ``url_map`` that answers GET and
takes no parameters, so the test fetches every page and JSON route the UI has, including
ones added later, without keeping a list.
"""

from __future__ import annotations

from typing import Any

from flask import jsonify
from locust import events


@events.init.add_listener
def _list_routes(environment: Any, **_: Any) -> None:
    web_ui = environment.web_ui
    if web_ui is None:
        return
    app = web_ui.app

    def routes() -> Any:
        rules = sorted(
            rule.rule
            for rule in app.url_map.iter_rules()
            if "GET" in (rule.methods or ()) and not rule.arguments and rule.rule != "/__routes"
        )
        return jsonify(rules)

    app.add_url_rule("/__routes", "__routes", routes)
