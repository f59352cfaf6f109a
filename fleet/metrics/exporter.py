"""Prometheus exposition of :class:`FleetStats`, read at scrape time.

The collector reads plain numbers when Prometheus scrapes, so the loop thread never
touches a prometheus_client metric object (their locks are gevent locks in a Locust
process). Families follow Prometheus' conventions: base units (seconds, joules),
``_total`` on counters, labels of bounded cardinality (no station ids; the opt-in
per-station families are separate, see :func:`station_families`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from fleet.metrics.stats import FleetStats, Histogram

_ENERGY_J_PER_WH = 3600.0


StatsSource = FleetStats | Callable[[], FleetStats]
"""The stats to export: fixed, or fetched at each scrape (a master's sum over its
workers; a standalone process's current fleet, which the web UI may replace)."""


class FleetCollector(Collector):
    """Yields the fleet's metric families; names follow Prometheus conventions."""

    def __init__(
        self,
        stats: StatsSource,
        extra: Callable[[], Iterable[Metric]] | None = None,
    ) -> None:
        self.stats = stats
        self.extra = extra

    def collect(self) -> Iterator[Metric]:
        source = self.stats
        yield from fleet_families(source() if callable(source) else source)
        if self.extra is not None:
            yield from self.extra()


def fleet_families(s: FleetStats) -> Iterator[Metric]:
    """The fleet-wide families of one FleetStats (a process's own, or a sum)."""
    m = CounterMetricFamily(
        "fleet_ocpp_messages",
        "OCPP messages by action, direction (sent/received) and initiator",
        labels=["action", "direction", "initiator"],
    )
    for (action, direction, initiator), n in list(s.messages.items()):
        m.add_metric([action, direction, initiator], n)
    yield m

    h = HistogramMetricFamily(
        "fleet_ocpp_round_trip_seconds",
        "Round trip of station-initiated CALLs, by action (a timeout counts at "
        "WebsocketRequestTimeout)",
        labels=["action"],
    )
    for action, hist in list(s.round_trip.items()):
        _add_histogram(h, [action], hist)
    yield h

    yield _counter(
        "fleet_ocpp_callerrors",
        "CALLERRORs the CSMS answered, by action and code",
        ["action", "code"],
        s.callerrors,
    )
    yield _counter(
        "fleet_ocpp_timeouts",
        "Station CALLs the CSMS did not answer in time",
        ["action"],
        s.timeouts,
    )
    yield _counter(
        "fleet_csms_calls",
        "CSMS-initiated CALLs by action and what the station answered",
        ["action", "outcome"],
        s.csms_calls,
    )
    yield _counter(
        "fleet_inbound_errors",
        "Frames from the CSMS that broke OCPP-J or the schema, by action and CALLERROR code",
        ["action", "code"],
        s.inbound_errors,
    )
    yield _counter(
        "fleet_ocpp_schema_violations",
        "Payloads that broke the official OCPP 1.6 schema, by action and direction "
        "(received: the CSMS's, a finding; sent: ours)",
        ["action", "direction"],
        s.schema_violations,
    )
    yield _counter(
        "fleet_ignored_frames",
        "Frames OCPP says to ignore (e.g. replies to unknown ids)",
        ["reason"],
        s.ignored,
    )
    yield _counter(
        "fleet_disconnects",
        "Open connections lost without the station asking, by reason",
        ["reason"],
        s.disconnects,
    )
    yield _counter(
        "fleet_connect_failures",
        "Failed connection attempts by reason",
        ["reason"],
        s.connect_failures,
    )
    yield _gauge(
        "fleet_stations_connected", "Stations with an open websocket", s.stations_connected
    )
    yield _gauge("fleet_stations_started", "Stations the fleet is running", s.stations_started)
    yield _gauge(
        "fleet_stations_never_connected",
        "Running stations that have not connected once since they started (the run's verdict)",
        s.stations_never_connected,
    )
    g = GaugeMetricFamily(
        "fleet_stations_boot", "Stations by last BootNotification status", labels=["status"]
    )
    for status, n in list(s.boot_status.items()):
        g.add_metric([status], n)
    yield g
    g = GaugeMetricFamily(
        "fleet_connectors", "Connectors by OCPP status", labels=["connector", "status"]
    )
    for (connector, status), n in list(s.connectors.items()):
        g.add_metric([str(connector), status], n)
    yield g
    yield _gauge("fleet_transactions_active", "Transactions running now", s.transactions_active)
    c = CounterMetricFamily("fleet_transactions_started", "Transactions started")
    c.add_metric([], s.transactions_started)
    yield c
    c = CounterMetricFamily("fleet_transactions_stopped", "Transactions stopped")
    c.add_metric([], s.transactions_stopped)
    yield c
    c = CounterMetricFamily(
        "fleet_transactions_unfinished",
        "Transactions left open at the CSMS when their station stopped at the end of a run",
    )
    c.add_metric([], s.unfinished_transactions)
    yield c
    c = CounterMetricFamily(
        "fleet_energy_delivered_joules", "Energy delivered to EVs (1 Wh = 3600 J)"
    )
    c.add_metric([], s.energy_wh * _ENERGY_J_PER_WH)
    yield c
    yield _counter(
        "fleet_transaction_messages_dropped",
        "Transaction messages given up on after TransactionMessageAttempts, by action",
        ["action"],
        s.transaction_messages_dropped,
    )
    c = CounterMetricFamily("fleet_reconnects", "Websocket reconnections after a loss")
    c.add_metric([], s.reconnects)
    yield c
    yield _gauge(
        "fleet_offline_queue_depth",
        "Transaction messages queued in the stations, waiting for the CSMS",
        s.offline_queue_depth,
    )
    c = CounterMetricFamily(
        "fleet_offline_messages_delivered",
        "Transaction messages queued while offline and delivered after reconnecting",
    )
    c.add_metric([], s.offline_messages_delivered)
    yield c
    yield _counter(
        "fleet_faults_raised",
        "Vendor errors raised by fault storms, by vendor error code",
        ["code"],
        s.faults_raised,
    )
    yield _counter(
        "fleet_misbehave_sent",
        "Invalid CALLs sent by misbehaving stations, by kind",
        ["kind"],
        s.misbehave_sent,
    )
    yield _counter(
        "fleet_misbehave_answers",
        "How the CSMS answered misbehaving stations, by kind and answer "
        "(accepted, a CALLERROR code, timeout, ignored, closed, abandoned)",
        ["kind", "answer"],
        s.misbehave_answers,
    )
    g = GaugeMetricFamily(
        "fleet_faults_active", "Vendor errors active now, by vendor error code", labels=["code"]
    )
    for code, n in list(s.faults_active.items()):
        g.add_metric([code], n)
    yield g
    yield from _lag_families(
        "fleet_loop_lag",
        "How late a periodic probe timer ran on the stations' event loop: the generator's "
        "own share of every round trip",
        s.loop_lag,
        s.loop_lag_max,
    )
    yield from _lag_families(
        "fleet_hub_lag",
        "How late the gevent hub ran a periodic probe timer in each Locust process: "
        "the delay of Locust's own work (spawning, samples, heartbeats)",
        s.hub_lag,
        s.hub_lag_max,
    )
    yield _gauge(
        "fleet_loop_cpu_ratio",
        "CPU share of the stations' event-loop thread over the last second, 0-1 "
        "(the busiest process): near 1 the generator is the bottleneck",
        s.loop_cpu_ratio,
    )


def _lag_families(name: str, what: str, hist: Histogram, worst: float) -> Iterator[Metric]:
    """A lateness histogram ``<name>_seconds`` and its worst, ``<name>_max_seconds``."""
    h = HistogramMetricFamily(f"{name}_seconds", what)
    _add_histogram(h, [], hist)
    yield h
    yield _gauge(
        f"{name}_max_seconds", "The longest lateness since the start (the worst process)", worst
    )


@dataclass(frozen=True, slots=True)
class StationRow:
    """One station's state for the opt-in per-station families."""

    identity: str
    connected: bool
    energy_wh: float
    queue_depth: int
    connectors: tuple[tuple[int, str], ...]


def station_families(rows: Iterable[StationRow]) -> Iterator[Metric]:
    """Per-station series (``station`` label), only when a small fleet asks for them."""
    connected = GaugeMetricFamily(
        "fleet_station_connected", "1 when the station's websocket is open", labels=["station"]
    )
    energy = CounterMetricFamily(
        "fleet_station_energy_register_joules",
        "The station's energy register (1 Wh = 3600 J)",
        labels=["station"],
    )
    queue = GaugeMetricFamily(
        "fleet_station_offline_queue_depth",
        "Transaction messages waiting in this station's queue",
        labels=["station"],
    )
    status = GaugeMetricFamily(
        "fleet_station_connector_status",
        "1 for each connector's current OCPP status",
        labels=["station", "connector", "status"],
    )
    for row in rows:
        connected.add_metric([row.identity], 1 if row.connected else 0)
        energy.add_metric([row.identity], row.energy_wh * _ENERGY_J_PER_WH)
        queue.add_metric([row.identity], row.queue_depth)
        for connector, state in row.connectors:
            status.add_metric([row.identity, str(connector), state], 1)
    yield from (connected, energy, queue, status)


def worker_families(workers: Iterable[tuple[str, float]]) -> Iterator[Metric]:
    """The master's view of its workers: how many, and the stations each holds."""
    per_worker = GaugeMetricFamily(
        "fleet_worker_stations_connected",
        "Stations with an open websocket, by Locust worker (client id; 'local' standalone)",
        labels=["worker"],
    )
    n = 0
    for worker, connected in workers:
        per_worker.add_metric([worker], connected)
        n += 1
    yield GaugeMetricFamily(
        "fleet_workers",
        "Locust processes running stations (workers reporting to this master; 1 standalone)",
        value=n,
    )
    yield per_worker


def _add_histogram(family: HistogramMetricFamily, labels: list[str], hist: Histogram) -> None:
    cumulative, buckets = 0, []
    for bound, n in zip((*hist.bounds, float("inf")), list(hist.counts), strict=True):
        cumulative += n
        buckets.append(("+Inf" if bound == float("inf") else repr(bound), cumulative))
    family.add_metric(labels, buckets, hist.sum)


def _counter(name: str, doc: str, labels: list[str], values: Any) -> CounterMetricFamily:
    fam = CounterMetricFamily(name, doc, labels=labels)
    for key, n in list(values.items()):
        fam.add_metric(list(key) if isinstance(key, tuple) else [key], n)
    return fam


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


def serve(
    stats: StatsSource,
    port: int,
    addr: str = "127.0.0.1",
    extra: Callable[[], Iterable[Metric]] | None = None,
) -> CollectorRegistry:
    """Serve /metrics for these stats on addr:port (loopback unless told otherwise)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FleetCollector(stats, extra))
    start_http_server(port, addr=addr, registry=registry)
    return registry
