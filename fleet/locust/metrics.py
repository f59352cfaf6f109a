"""Prometheus for a Locust process: one scrape target for the whole fleet.

A standalone run serves ``/metrics`` from its one process. In distributed mode every
worker ships a snapshot of its :class:`FleetStats` in Locust's worker report (every
three seconds, and a final one when it quits); the master keeps the latest snapshot
per worker and serves the sum, so Prometheus scrapes one target however many workers
there are. The snapshot is generic over FleetStats' attributes: a counter another
module adds to FleetStats is shipped and summed with no change here.

A worker that leaves (quits, or goes missing) keeps its counters in the sum, so the
fleet's counters never go backwards (Prometheus would read a drop as a counter reset
and ``rate()`` would jump); its gauges (stations connected, connectors by status, ...)
drop out at once.

``fleet_totals`` is the same numbers as a dict, for the web UI's Fleet tab and the
end-of-run summary.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Iterator
from typing import Any

from locust.env import Environment
from locust.runners import STATE_MISSING, MasterRunner, WorkerRunner
from prometheus_client.core import Metric

from fleet.locust import current
from fleet.metrics import exporter
from fleet.metrics.exporter import StationRow
from fleet.metrics.stats import (
    GAUGES,
    LAG_THRESHOLD,
    FleetStats,
    LagWatch,
    Snapshot,
    lag_totals,
    merge,
    snapshot,
)

log = logging.getLogger("fleet.locust")

REPORT_KEY = "chargepro_fleet"
"""The key of our part of a Locust worker report."""

PER_STATION_LIMIT = 1000
"""``--fleet-metrics-per-station`` is refused above this many stations: each station
adds about five series (more while its connector changes status), and a thousand
stations is already several thousand series per scrape."""


def setup(environment: Environment) -> None:
    """Called once per process from the locustfile's init hook.

    Workers always ship their stats (the master's Fleet tab and end-of-run summary need
    them, with or without Prometheus); the master, or a standalone process, serves
    ``/metrics`` when ``--fleet-metrics-port`` is set.
    """
    opts = environment.parsed_options
    if opts is None:
        return
    runner = environment.runner
    per_station = bool(getattr(opts, "fleet_metrics_per_station", False))
    if per_station and not isinstance(runner, WorkerRunner):
        users = getattr(opts, "num_users", None) or 0
        if users > PER_STATION_LIMIT:
            sys.stderr.write(
                f"fleet: --fleet-metrics-per-station is for fleets of at most "
                f"{PER_STATION_LIMIT} stations ({users} asked)\n"
            )
            sys.exit(2)
    if isinstance(runner, WorkerRunner):
        environment.events.report_to_master.add_listener(
            lambda client_id, data, **_: _report(environment, data)
        )
        return
    extra = None
    if isinstance(runner, MasterRunner):
        aggregator = Aggregator(environment)
        _aggregators[id(environment)] = aggregator
        environment.events.worker_report.add_listener(aggregator.on_report)
        source: exporter.StatsSource = aggregator.totals
        extra = aggregator.families
    else:
        source = lambda: _local_stats(environment)  # noqa: E731
        extra = lambda: _local_families(environment, per_station)  # noqa: E731
    port = getattr(opts, "fleet_metrics_port", 0)
    if not port:
        return
    host = getattr(opts, "fleet_metrics_host", None) or "127.0.0.1"
    try:
        exporter.serve(source, port, host, extra)
    except OSError as exc:  # a port in use, an address not on this host
        sys.stderr.write(
            f"fleet: --fleet-metrics-port: cannot serve on {host}:{port} ({exc.strerror or exc})\n"
        )
        sys.exit(2)
    log.info("Prometheus metrics on http://%s:%d/metrics", host, port)


# -- workers ------------------------------------------------------------------------


def _report(environment: Environment, data: dict[str, Any]) -> None:
    """On a worker, in its report greenlet: add our snapshot to the worker report."""
    running = current.of(environment)
    if running is None:
        return  # no station yet: nothing to add
    part: dict[str, Any] = {"stats": snapshot(running.stats)}
    opts = environment.parsed_options  # the master's options arrive with each spawn
    if getattr(opts, "fleet_metrics_per_station", False):
        part["stations"] = [_row_to_wire(row) for row in station_rows(running.fleet.links)]
    data[REPORT_KEY] = part


# -- the master ---------------------------------------------------------------------

_aggregators: dict[int, Aggregator] = {}


class Aggregator:
    """On a master: the latest snapshot of each worker, summed on demand."""

    def __init__(self, environment: Environment) -> None:
        self.env = environment
        self.latest: dict[str, Snapshot] = {}
        self.stations: dict[str, list[Any]] = {}
        # The master's own measurements (its gevent hub's lag), summed in like a worker.
        self.own = FleetStats()

    def on_report(self, client_id: str, data: dict[str, Any], **_: Any) -> None:
        part = data.get(REPORT_KEY)
        if not isinstance(part, dict):
            return
        self.latest[client_id] = part.get("stats") or {}
        self.stations[client_id] = part.get("stations") or []

    def present(self) -> list[str]:
        """Workers connected now (Locust forgets a worker that quits; a missing one is
        marked, then forgotten)."""
        clients = getattr(self.env.runner, "clients", None)
        if clients is None:
            return []
        return [cid for cid, node in list(clients.items()) if node.state != STATE_MISSING]

    def totals(self) -> FleetStats:
        """Counters of every worker seen, gauges of the workers present."""
        present = set(self.present())
        snaps: list[Snapshot] = []
        for client_id, snap in list(self.latest.items()):
            if client_id not in present:
                snap = {name: v for name, v in snap.items() if name not in GAUGES}
            snaps.append(snap)
        snaps.append(snapshot(self.own))
        return merge(snaps)

    def families(self) -> Iterator[Metric]:
        """The master's extra families: workers, and per-station series if asked."""
        latest = self.latest
        workers = []
        for client_id in sorted(self.present()):
            connected = latest.get(client_id, {}).get("stations_connected", ["n", 0])[1]
            workers.append((client_id, connected))
        yield from exporter.worker_families(workers)
        opts = self.env.parsed_options
        if getattr(opts, "fleet_metrics_per_station", False):
            rows: list[StationRow] = []
            for client_id in sorted(self.present()):
                rows.extend(_row_from_wire(r) for r in self.stations.get(client_id, ()))
            yield from exporter.station_families(_capped(rows))


# -- a standalone process -----------------------------------------------------------


def _local_stats(environment: Environment) -> FleetStats:
    """This process's fleet now (the web UI's start form may have replaced it)."""
    running = current.of(environment)
    return FleetStats() if running is None else running.stats


def own_stats(environment: Environment) -> FleetStats | None:
    """Where this process's own measurements go (the gevent hub's lag): its fleet's
    stats, a master's own part of the sum; None before a fleet exists."""
    aggregator = _aggregators.get(id(environment))
    if aggregator is not None and aggregator.env is environment:
        return aggregator.own
    running = current.of(environment)
    return None if running is None else running.stats


def _local_families(environment: Environment, per_station: bool) -> Iterator[Metric]:
    """A standalone process is the fleet's one worker (the same families as on a
    master, so the dashboards work for both)."""
    connected = _local_stats(environment).stations_connected
    yield from exporter.worker_families([("local", connected)])
    if per_station:
        yield from exporter.station_families(_local_rows(environment))


def _local_rows(environment: Environment) -> list[StationRow]:
    running = current.of(environment)
    return [] if running is None else _capped(station_rows(running.fleet.links))


_warned_cap = False


def _capped(rows: list[StationRow]) -> list[StationRow]:
    """At most PER_STATION_LIMIT rows (a web UI user may grow the fleet past it)."""
    global _warned_cap
    if len(rows) <= PER_STATION_LIMIT:
        return rows
    if not _warned_cap:
        _warned_cap = True
        log.warning(
            "per-station metrics: %d stations, exporting the first %d only",
            len(rows),
            PER_STATION_LIMIT,
        )
    return sorted(rows, key=lambda r: r.identity)[:PER_STATION_LIMIT]


def station_rows(links: dict[str, Any]) -> list[StationRow]:
    """Per-station state read from the gevent side while the loop thread runs.

    Reads single attributes (whole under the GIL); the queue depth walks the station's
    queue in Python, which the loop thread may change meanwhile: then the plain queue
    length stands in for this scrape.
    """
    rows = []
    for identity, link in list(links.items()):
        station = link.station
        try:
            depth = station.transaction_backlog
        except RuntimeError:  # deque mutated during iteration
            depth = station.queued
        rows.append(
            StationRow(
                identity,
                bool(station.online),
                float(station.meter.energy_wh),
                int(depth),
                tuple((c.connector_id, c.status) for c in station.connectors),
            )
        )
    return rows


def _row_to_wire(row: StationRow) -> list[Any]:
    return [
        row.identity,
        row.connected,
        row.energy_wh,
        row.queue_depth,
        [list(c) for c in row.connectors],
    ]


def _row_from_wire(wire: list[Any]) -> StationRow:
    identity, connected, energy_wh, depth, connectors = wire
    return StationRow(
        identity, bool(connected), energy_wh, depth, tuple((c, s) for c, s in connectors)
    )


# -- the Fleet tab and the end-of-run summary ------------------------------------------


def fleet_stats(environment: Environment) -> FleetStats:
    """This process's fleet, or on a master the sum over its workers."""
    aggregator = _aggregators.get(id(environment))
    if aggregator is not None and aggregator.env is environment:
        return aggregator.totals()
    return _local_stats(environment)


def fleet_totals(environment: Environment) -> dict[str, Any]:
    """The fleet's numbers now (summed over workers on a master), for the Fleet tab and
    the end-of-run summary."""
    stats = fleet_stats(environment)
    # Outlets only (connector 1..): connector 0 is the station as a whole, and counting
    # it beside the outlet would show every station twice. Prometheus has both.
    connectors: dict[str, int] = {}
    for (connector, status), count in list(stats.connectors.items()):
        if connector >= 1:
            connectors[status] = connectors.get(status, 0) + count
    callerrors: dict[str, int] = {}
    for (_action, code), count in list(stats.callerrors.items()):
        callerrors[code] = callerrors.get(code, 0) + count
    violations: dict[str, int] = {}
    for (_action, direction), count in list(stats.schema_violations.items()):
        violations[direction] = violations.get(direction, 0) + count
    return {
        "stations_connected": stats.stations_connected,
        "stations_started": stats.stations_started,
        "stations_never_connected": stats.stations_never_connected,
        "connectors": connectors,
        "transactions_active": stats.transactions_active,
        "energy_wh": stats.energy_wh,
        "offline_queue_depth": stats.offline_queue_depth,
        "faults_active": {k: v for k, v in list(stats.faults_active.items()) if v},
        "transaction_messages_dropped": _sum(stats.transaction_messages_dropped.values()),
        "callerrors": {k: v for k, v in callerrors.items() if v},
        "timeouts": _sum(stats.timeouts.values()),
        "reconnects": stats.reconnects,
        "schema_violations": sum(violations.values()),
        "schema_violations_by_direction": violations,
        "offline_messages_delivered": stats.offline_messages_delivered,
        "transactions_started": stats.transactions_started,
        "transactions_stopped": stats.transactions_stopped,
        "unfinished_transactions": stats.unfinished_transactions,
        "connect_failures": {k: v for k, v in list(stats.connect_failures.items()) if v},
        "generator": _generator(environment, stats),
    }


def lag_threshold(environment: Environment) -> float:
    """``--fleet-lag-threshold`` (milliseconds) in seconds; the default without it."""
    opts = environment.parsed_options
    ms = getattr(opts, "fleet_lag_threshold", None) if opts is not None else None
    return float(ms) / 1000 if isinstance(ms, int | float) and ms > 0 else LAG_THRESHOLD


_watches: dict[int, tuple[Environment, LagWatch]] = {}


def lag_watch(environment: Environment) -> LagWatch:
    """This environment's lag watch: the lag monitor (fleet.locust.generator) feeds it,
    the totals show what it found."""
    found = _watches.get(id(environment))
    if found is None or found[0] is not environment:
        found = _watches[id(environment)] = (environment, LagWatch(lag_threshold(environment)))
    return found[1]


def _generator(environment: Environment, stats: FleetStats) -> dict[str, Any]:
    """The generator's lag (:func:`lag_totals`) against ``--fleet-lag-threshold``, with
    the recent p99 and its warning once the monitor has looked."""
    out = lag_totals(stats, lag_threshold(environment))
    workers = _worker_lags(environment)
    if workers:
        # The p99 over every worker's probes together hides one lagging worker among
        # many calm ones: each worker's own, and the worst of them (issue 16).
        out["workers"] = workers
        p99s = [w["lag_p99_ms"] for w in workers.values() if w["lag_p99_ms"] is not None]
        out["worst_worker_lag_p99_ms"] = max(p99s) if p99s else None
    watch = lag_watch(environment)
    if watch.recent_ms is not None:
        out["recent_lag_p99_ms"] = watch.recent_ms
        out["lag_warning"] = watch.above
    return out


def _worker_lags(environment: Environment) -> dict[str, dict[str, Any]]:
    """On a master: each worker's loop and hub lag, from its latest report."""
    aggregator = _aggregators.get(id(environment))
    if aggregator is None or aggregator.env is not environment:
        return {}
    out = {}
    for client_id, snap in list(aggregator.latest.items()):
        lag = lag_totals(merge([snap]))
        out[client_id] = {
            key: lag[key]
            for key in ("samples", "lag_p99_ms", "lag_max_ms", "hub_lag_p99_ms", "hub_lag_max_ms")
        }
    return out


def _sum(values: Iterable[int]) -> int:
    return sum(list(values))
