"""The Grafana dashboards as code: ``python grafana/build.py`` writes grafana/dashboards/.

Built with the Grafana Foundation SDK (typed builders generated from Grafana's own
schemas, pinned to the Grafana release docker-compose.yml runs). It is a development
dependency (the ``test`` extra): the product never imports this file, Grafana reads the
JSON it writes, and tests/metrics/test_dashboards.py fails when the committed JSON is not
what this file builds.

Every PromQL expression is written once, in :class:`Q`; a panel names the expressions
it plots. Conventions the panels keep:

- counters are shown as rates, energy in kWh and power in kW (the metric keeps joules,
  Prometheus' base unit);
- a labelled counter has no series until its first labelled event, so a panel of one
  also plots the total, ``or`` zero while the fleet is being scraped: a healthy run reads
  0, a fleet that is not there still reads "No data".

``python grafana/build.py --check`` exits 1 when a committed file differs.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import common, dashboard, prometheus, stat, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm

OUT = Path(__file__).resolve().parent / "dashboards"
DATASOURCE = dm.DataSourceRef(type_val="prometheus", uid="chargepro-prometheus")
TAG = "chargepro-fleet"
RATE = "[$__rate_interval]"
JOB = 'job=~"$job"'
J_PER_KWH = 3_600_000


def m(name: str, *matchers: str) -> str:
    """A selector of the dashboards' job variable (and more matchers)."""
    inside = ", ".join([JOB, *matchers])
    return f"{name}{{{inside}}}"


def rate(name: str, *matchers: str) -> str:
    return f"rate({m(name, *matchers)}{RATE})"


def by(labels: str, expr: str) -> str:
    return f"sum by ({labels}) ({expr})"


def or_zero(expr: str) -> str:
    """0 instead of no series while the fleet is scraped; still nothing when it is not.
    For label-less sums only (``or`` keeps the zero beside any labelled series)."""
    return f"({expr}) or (0 * {STARTED})"


STARTED = f"sum({m('fleet_stations_started')})"


def quantile(q: float, labels: str) -> str:
    return (
        f"histogram_quantile({q}, sum by ({labels}) "
        f"({rate('fleet_ocpp_round_trip_seconds_bucket')}))"
    )


class Q:
    """Every query of every dashboard, in one place."""

    connected = f"sum({m('fleet_stations_connected')})"
    started = STARTED
    offline = f"{started} - {connected}"
    transactions = f"sum({m('fleet_transactions_active')})"
    transactions_started = f"sum({rate('fleet_transactions_started_total')}) * 60"
    transactions_stopped = f"sum({rate('fleet_transactions_stopped_total')}) * 60"
    energy_kwh = f"sum({m('fleet_energy_delivered_joules_total')}) / {J_PER_KWH}"
    power_kw = f"sum({rate('fleet_energy_delivered_joules_total')}) / 1000"
    workers = f"sum({m('fleet_workers')})"
    per_worker = m("fleet_worker_stations_connected")
    messages = f"sum({rate('fleet_ocpp_messages_total')})"
    messages_by_action = by("action, direction, initiator", rate("fleet_ocpp_messages_total"))
    boot = by("status", m("fleet_stations_boot"))
    lag_p99 = f"histogram_quantile(0.99, sum by (le) ({rate('fleet_loop_lag_seconds_bucket')}))"
    lag_p50 = f"histogram_quantile(0.5, sum by (le) ({rate('fleet_loop_lag_seconds_bucket')}))"
    lag_worst = f"max({m('fleet_loop_lag_max_seconds')})"
    hub_lag_p99 = f"histogram_quantile(0.99, sum by (le) ({rate('fleet_hub_lag_seconds_bucket')}))"
    hub_lag_worst = f"max({m('fleet_hub_lag_max_seconds')})"
    loop_cpu = f"max({m('fleet_loop_cpu_ratio')})"
    connectors = by("status", m("fleet_connectors", 'connector!="0"'))

    p50_by_action = quantile(0.5, "le, action")
    p95_by_action = quantile(0.95, "le, action")
    p50 = quantile(0.5, "le")
    p99 = quantile(0.99, "le")
    mean_by_action = (
        f"{by('action', rate('fleet_ocpp_round_trip_seconds_sum'))} / "
        f"{by('action', rate('fleet_ocpp_round_trip_seconds_count'))}"
    )
    answered_by_action = by("action", rate("fleet_ocpp_round_trip_seconds_count"))
    callerrors = by("action, code", rate("fleet_ocpp_callerrors_total"))
    callerrors_total = or_zero(f"sum({rate('fleet_ocpp_callerrors_total')})")
    timeouts = by("action", rate("fleet_ocpp_timeouts_total"))
    timeouts_total = or_zero(f"sum({rate('fleet_ocpp_timeouts_total')})")
    violations = by(
        "action, direction",
        f"increase({m('fleet_ocpp_schema_violations_total')}{RATE})",
    )
    violations_total = or_zero(f"sum(increase({m('fleet_ocpp_schema_violations_total')}{RATE}))")
    csms_calls = by("action, outcome", rate("fleet_csms_calls_total"))
    csms_calls_total = or_zero(f"sum({rate('fleet_csms_calls_total')})")
    rejected = by("action, code", rate("fleet_inbound_errors_total"))
    rejected_total = or_zero(f"sum({rate('fleet_inbound_errors_total')})")
    ignored = by("reason", rate("fleet_ignored_frames_total"))
    ignored_total = or_zero(f"sum({rate('fleet_ignored_frames_total')})")
    misbehave_sent = by("kind", rate("fleet_misbehave_sent_total"))
    misbehave_sent_total = or_zero(f"sum({rate('fleet_misbehave_sent_total')})")
    misbehave_answers = by("kind, answer", rate("fleet_misbehave_answers_total"))
    misbehave_answers_total = or_zero(f"sum({rate('fleet_misbehave_answers_total')})")

    queue = f"sum({m('fleet_offline_queue_depth')})"
    delivered = f"sum({rate('fleet_offline_messages_delivered_total')}) * 60"
    dropped = f"sum({m('fleet_transaction_messages_dropped_total')})"
    dropped_by_action = f"{by('action', rate('fleet_transaction_messages_dropped_total'))} * 60"
    reconnects = f"sum({rate('fleet_reconnects_total')}) * 60"
    disconnects = f"{by('reason', rate('fleet_disconnects_total'))} * 60"
    disconnects_total = or_zero(f"sum({rate('fleet_disconnects_total')}) * 60")
    connect_failures = by("reason", rate("fleet_connect_failures_total"))
    connect_failures_total = or_zero(f"sum({rate('fleet_connect_failures_total')})")
    faults_active = or_zero(f"sum({m('fleet_faults_active')})")
    faults_by_code = by("code", m("fleet_faults_active"))
    faults_raised = f"{by('code', rate('fleet_faults_raised_total'))} * 60"
    faults_raised_total = or_zero(f"sum({rate('fleet_faults_raised_total')}) * 60")


# -- panels ----------------------------------------------------------------------------

Target = tuple[str, str]
"""(expression, legend)."""


def _targets(targets: Iterable[Target]) -> list[prometheus.Dataquery]:
    return [
        prometheus.Dataquery()
        .expr(expr)
        .legend_format(legend)
        .ref_id(chr(ord("A") + i))
        .range()
        .datasource(DATASOURCE)
        for i, (expr, legend) in enumerate(targets)
    ]


def stat_panel(title: str, unit: str, target: Target, description: str = "") -> stat.Panel:
    panel = (
        stat.Panel()
        .title(title)
        .description(description)
        .unit(unit)
        .datasource(DATASOURCE)
        .reduce_options(common.ReduceDataOptions().calcs(["lastNotNull"]).fields("").values(False))
        .color_mode(cm.BigValueColorMode.VALUE)
        .graph_mode(cm.BigValueGraphMode.AREA)
        .text_mode(cm.BigValueTextMode.AUTO)
        .justify_mode(cm.BigValueJustifyMode.AUTO)
        .orientation(cm.VizOrientation.AUTO)
    )
    for query in _targets([target]):
        panel = panel.with_target(query)
    return panel


def graph(
    title: str,
    unit: str,
    targets: Iterable[Target],
    description: str = "",
    stacked: bool = False,
) -> timeseries.Panel:
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .unit(unit)
        .min(0)
        .datasource(DATASOURCE)
        .draw_style(cm.GraphDrawStyle.LINE)
        .line_width(1)
        .fill_opacity(10 if stacked else 0)
        .show_points(cm.VisibilityMode.NEVER)
        .stacking(
            common.StackingConfig()
            .mode(cm.StackingMode.NORMAL if stacked else cm.StackingMode.NONE)
            .group("A")
        )
        .legend(
            common.VizLegendOptions()
            .display_mode(cm.LegendDisplayMode.TABLE)
            .placement(cm.LegendPlacement.RIGHT)
            .show_legend(True)
            .calcs(["lastNotNull", "max"])
        )
        .tooltip(
            common.VizTooltipOptions()
            .mode(cm.TooltipDisplayMode.MULTI)
            .sort(cm.SortOrder.DESCENDING)
        )
    )
    for query in _targets(targets):
        panel = panel.with_target(query)
    return panel


Panel = stat.Panel | timeseries.Panel


def board(uid: str, title: str, description: str, tags: list[str], panels: list[Panel]) -> Any:
    """A dashboard of the fleet: the job variable, links to the others, panels laid out
    left to right (stats 4 or 6 wide, graphs half the width)."""
    job = (
        dashboard.QueryVariable("job")
        .label("Prometheus job")
        .datasource(DATASOURCE)
        .query("label_values(fleet_stations_connected, job)")
        .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .include_all(True)
        .multi(True)
        .all_value(".*")
        .current(dm.VariableOption(selected=True, text=["All"], value=["$__all"]))
        .sort(dm.VariableSort.ALPHABETICAL_ASC)
    )
    out = (
        dashboard.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags([TAG, *tags])
        .timezone("browser")
        .editable()
        .tooltip(dm.DashboardCursorSync.CROSSHAIR)
        .refresh("5s")
        .time("now-15m", "now")
        .version(1)
        .link(
            dashboard.DashboardLink("Fleet dashboards")
            .type(dm.DashboardLinkType.DASHBOARDS)
            .tags([TAG])
            .as_dropdown(True)
            .include_vars(True)
            .keep_time(True)
        )
        .with_variable(job)
    )
    stats = sum(1 for p in panels if isinstance(p, stat.Panel))
    stat_width = 24 // stats if stats else 0
    x = y = row_height = 0
    for number, panel in enumerate(panels, start=1):
        w, h = (stat_width, 5) if isinstance(panel, stat.Panel) else (12, 8)
        if x + w > 24:
            x, y = 0, y + row_height
        panel = panel.id(number).grid_pos(dm.GridPos(h=h, w=w, x=x, y=y))
        out = out.with_panel(panel)
        x, row_height = x + w, h
    return out.build()


# -- the dashboards ----------------------------------------------------------------------


def overview() -> Any:
    return board(
        "chargepro-fleet-overview",
        "Charge Pro fleet - overview",
        "Stations, connectors, transactions, energy and OCPP traffic of the simulated fleet.",
        ["ocpp"],
        [
            stat_panel(
                "Stations connected",
                "short",
                (Q.connected, "connected"),
                "Stations with an open websocket to the CSMS, summed over every Locust worker.",
            ),
            stat_panel(
                "Stations started",
                "short",
                (Q.started, "started"),
                "Stations the fleet is running (connected or trying to).",
            ),
            stat_panel("Active transactions", "short", (Q.transactions, "active")),
            stat_panel(
                "Energy delivered",
                "kwatth",
                (Q.energy_kwh, "energy"),
                "Energy the simulated EVs took since the start, in kWh "
                "(the metric counts joules: 1 kWh = 3.6 MJ).",
            ),
            stat_panel(
                "Locust workers",
                "short",
                (Q.workers, "workers"),
                "Locust processes holding stations (1 for a standalone run).",
            ),
            stat_panel("Messages / s", "reqps", (Q.messages, "messages/s")),
            graph(
                "Stations by boot status",
                "short",
                [(Q.boot, "{{status}}")],
                "Stations by the status the CSMS gave their last BootNotification "
                "(Accepted, Pending, Rejected).",
                stacked=True,
            ),
            graph(
                "Connectors by status",
                "short",
                [(Q.connectors, "{{status}}")],
                "Connector 1 of every station by OCPP status (Available, Preparing, "
                "Charging, SuspendedEV, Finishing, Faulted, ...).",
                stacked=True,
            ),
            graph(
                "OCPP messages / s by action",
                "reqps",
                [(Q.messages_by_action, "{{action}} {{direction}} ({{initiator}} call)")],
                "Every OCPP message, by action, direction (sent/received by the stations) "
                "and who initiated the exchange.",
            ),
            graph(
                "Charging power",
                "kwatt",
                [(Q.power_kw, "power")],
                "Rate of the energy delivered: the fleet's charging power, in kW.",
            ),
            graph(
                "Transactions",
                "short",
                [
                    (Q.transactions, "active"),
                    (Q.transactions_started, "started / min"),
                    (Q.transactions_stopped, "stopped / min"),
                ],
            ),
            graph(
                "Stations per worker",
                "short",
                [(Q.per_worker, "{{worker}}")],
                "Connected stations held by each Locust worker: an unbalanced or lost "
                "worker shows here.",
                stacked=True,
            ),
            graph(
                "Generator: event-loop lag",
                "s",
                [
                    (Q.lag_p99, "p99"),
                    (Q.lag_p50, "p50"),
                    (Q.lag_worst, "worst since start"),
                    (Q.hub_lag_p99, "gevent hub p99"),
                    (Q.hub_lag_worst, "gevent hub worst since start"),
                ],
                "How late a 20 ms probe timer runs on the stations' event loop. Every "
                "round trip includes this lag: past 50 ms (p99) the latency panels "
                "measure the generator as much as the CSMS; add workers. The gevent hub "
                "lines: how late each Locust process's hub wakes a 20 ms sleeper (a hub "
                "that lags delays spawning and the heartbeats to the master).",
            ),
            graph(
                "Generator: loop thread CPU",
                "percentunit",
                [(Q.loop_cpu, "busiest loop thread")],
                "CPU share of the busiest stations' event-loop thread over the last "
                "second. Near 100 % it is saturated: the lag above grows with the load.",
            ),
        ],
    )


def latency() -> Any:
    return board(
        "chargepro-csms-latency",
        "Charge Pro fleet - CSMS latency and errors",
        "How fast and how well the CSMS answers: round trips, CALLERRORs, timeouts, schema "
        "violations, CSMS-initiated calls, and how it copes with misbehaving stations.",
        ["ocpp", "latency"],
        [
            graph(
                "Round trip p50 by action",
                "s",
                [(Q.p50_by_action, "{{action}}")],
                "Median time from a station's CALL to the CSMS's answer, by action "
                "(histogram_quantile: within one bucket's width of the true value; "
                "see the metrics notes).",
            ),
            graph(
                "Round trip p95 by action",
                "s",
                [(Q.p95_by_action, "{{action}}")],
                "A timed-out CALL counts at WebsocketRequestTimeout (10 s by default).",
            ),
            graph(
                "Round trip p50 and p99 (all actions)",
                "s",
                [(Q.p99, "p99"), (Q.p50, "p50")],
            ),
            graph("Mean round trip by action", "s", [(Q.mean_by_action, "{{action}}")]),
            graph(
                "Station calls answered / s",
                "reqps",
                [(Q.answered_by_action, "{{action}}")],
                stacked=True,
            ),
            graph(
                "CALLERRORs / s by action and code",
                "reqps",
                [(Q.callerrors_total, "all"), (Q.callerrors, "{{action}} {{code}}")],
                "Station calls the CSMS answered with a CALLERROR (and CALLRESULTs that broke "
                "the schema, with the CALLERROR code the station would use).",
            ),
            graph(
                "Timeouts / s by action",
                "reqps",
                [(Q.timeouts_total, "all"), (Q.timeouts, "{{action}}")],
                "Station calls the CSMS did not answer within WebsocketRequestTimeout.",
            ),
            graph(
                "Schema violations by action and direction",
                "short",
                [(Q.violations_total, "all"), (Q.violations, "{{action}} {{direction}}")],
                "Payloads that broke the official OCPP 1.6 schema. received: the CSMS sent "
                "it (a finding about the CSMS); sent: a station did (a fleet bug, or a "
                "misbehaving station on purpose).",
            ),
            graph(
                "CSMS-initiated calls / s by action and answer",
                "reqps",
                [(Q.csms_calls_total, "all"), (Q.csms_calls, "{{action}} {{outcome}}")],
                "Calls the CSMS made (RemoteStartTransaction, GetConfiguration, ...), by the "
                "status the station answered or the CALLERROR code it returned.",
            ),
            graph(
                "Frames from the CSMS rejected / s",
                "reqps",
                [(Q.rejected_total, "all"), (Q.rejected, "{{action}} {{code}}")],
                "CSMS frames that broke OCPP-J or the schema, answered by the station with "
                "a CALLERROR.",
            ),
            graph(
                "Frames from the CSMS ignored / s by reason",
                "reqps",
                [(Q.ignored_total, "all"), (Q.ignored, "{{reason}}")],
                "Frames OCPP-J says to drop without an answer: replies to unknown or "
                "answered ids, calls while the boot is rejected, unreadable frames.",
            ),
            graph(
                "Misbehaving stations: invalid CALLs / s by kind",
                "reqps",
                [(Q.misbehave_sent_total, "all"), (Q.misbehave_sent, "{{kind}}")],
                "What the profile's misbehave section sends the CSMS on purpose (schema, "
                "types, order, duplicate ids, floods, malformed frames, unknown actions).",
            ),
            graph(
                "CSMS answers to misbehaving stations / s",
                "reqps",
                [(Q.misbehave_answers_total, "all"), (Q.misbehave_answers, "{{kind}}: {{answer}}")],
                "How the CSMS answered each kind: accepted (usually a finding), its "
                "CALLERROR code, timeout, ignored, closed, abandoned.",
            ),
        ],
    )


def offline() -> Any:
    return board(
        "chargepro-offline-faults",
        "Charge Pro fleet - offline and faults",
        "Offline waves and fault storms: connectivity, the offline queue, reconnects, "
        "vendor errors.",
        ["ocpp", "offline", "faults"],
        [
            stat_panel(
                "Stations offline",
                "short",
                (Q.offline, "offline"),
                "Stations running but without a websocket (an offline wave, a reboot, a "
                "CSMS that refuses connections).",
            ),
            stat_panel(
                "Offline queue depth",
                "short",
                (Q.queue, "queued"),
                "Transaction messages waiting in the stations' queues for the CSMS.",
            ),
            stat_panel(
                "Transaction messages dropped",
                "short",
                (Q.dropped, "dropped"),
                "Transaction messages given up on after TransactionMessageAttempts: lost "
                "for the CSMS.",
            ),
            stat_panel(
                "Active faults",
                "short",
                (Q.faults_active, "faults"),
                "Vendor errors active now (0 while no fault storm has raised one).",
            ),
            graph(
                "Connected vs started",
                "short",
                [(Q.connected, "connected"), (Q.started, "started")],
            ),
            graph(
                "Offline queue: depth, delivered, dropped",
                "short",
                [
                    (Q.queue, "queued now"),
                    (Q.delivered, "delivered after reconnect / min"),
                    (Q.dropped_by_action, "dropped {{action}} / min"),
                ],
                "Transaction messages queued while offline, delivered once back (in order, "
                "before anything new), and dropped after TransactionMessageAttempts.",
            ),
            graph("Reconnects / min", "short", [(Q.reconnects, "reconnects")]),
            graph(
                "Connections lost / min by reason",
                "short",
                [(Q.disconnects_total, "all"), (Q.disconnects, "{{reason}}")],
                "Open connections that went away without the station asking (connection "
                "lost, closed by CSMS, ping timeout, ...).",
            ),
            graph(
                "Connection failures / s by reason",
                "reqps",
                [(Q.connect_failures_total, "all"), (Q.connect_failures, "{{reason}}")],
            ),
            graph(
                "Active faults by vendor error code",
                "short",
                [(Q.faults_active, "all"), (Q.faults_by_code, "{{code}}")],
                "Vendor errors (the Charge Pro guide's codes) active now, raised by fault storms.",
            ),
            graph(
                "Faults raised / min by vendor error code",
                "short",
                [(Q.faults_raised_total, "all"), (Q.faults_raised, "{{code}}")],
            ),
        ],
    )


DASHBOARDS = {
    "csms-latency.json": latency,
    "fleet-overview.json": overview,
    "offline-and-faults.json": offline,
}


def render() -> dict[str, str]:
    """File name -> the JSON text this module builds for it."""
    return {
        name: json.dumps(build(), cls=JSONEncoder, indent=2, sort_keys=True) + "\n"
        for name, build in DASHBOARDS.items()
    }


def main(argv: list[str]) -> int:
    files = render()
    if "--check" in argv:
        stale = [n for n, text in files.items() if not _same(OUT / n, text)]
        extra = sorted(p.name for p in OUT.glob("*.json") if p.name not in files)
        for name in stale:
            print(f"grafana/dashboards/{name} is not what grafana/build.py builds")
        for name in extra:
            print(f"grafana/dashboards/{name} is not built by grafana/build.py")
        return 1 if stale or extra else 0
    for name, text in files.items():
        (OUT / name).write_text(text)
    return 0


def _same(path: Path, text: str) -> bool:
    return path.is_file() and path.read_text() == text


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
