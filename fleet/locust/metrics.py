"""Prometheus for a Locust process: one scrape target for the whole fleet.

Issue 6 (observability): a standalone run serves /metrics from its one process; in
distributed mode the workers ship their counters in Locust's worker reports and the
master serves the sum. ``fleet_totals`` is what the web UI's Fleet tab shows.
"""

from __future__ import annotations

import logging
from typing import Any

from locust.env import Environment
from locust.runners import MasterRunner

from fleet.metrics import exporter

log = logging.getLogger("fleet.locust")


def setup(environment: Environment) -> None:
    """Called once per process from the locustfile's init hook."""
    from fleet.locust.bridge import Bridge

    opts = environment.parsed_options
    port = getattr(opts, "fleet_metrics_port", 0) if opts is not None else 0
    if not port or isinstance(environment.runner, MasterRunner):
        return
    bridge = Bridge.get(environment)
    exporter.serve(bridge.stats, port, getattr(opts, "fleet_metrics_host", "127.0.0.1"))
    log.info("Prometheus metrics on http://%s:%d/metrics", opts.fleet_metrics_host, port)


def fleet_totals(environment: Environment) -> dict[str, Any]:
    """The fleet's gauges now (summed over workers on a master), for the Fleet tab."""
    from fleet.locust.bridge import Bridge

    bridge = Bridge._instance
    if bridge is None or bridge.env is not environment:
        return {
            "stations_connected": 0,
            "connectors": {},
            "transactions_active": 0,
            "energy_wh": 0.0,
            "offline_queue_depth": 0,
            "faults_active": {},
        }
    stats = bridge.stats
    connectors: dict[str, int] = {}
    for (_connector, status), count in list(stats.connectors.items()):
        connectors[status] = connectors.get(status, 0) + count
    return {
        "stations_connected": stats.stations_connected,
        "connectors": connectors,
        "transactions_active": stats.transactions_active,
        "energy_wh": stats.energy_wh,
        "offline_queue_depth": stats.offline_queue_depth,
        "faults_active": {k: v for k, v in list(stats.faults_active.items()) if v},
    }
