"""``fleet run``: a fleet against a CSMS, headless with a summary and an exit code (CI),
or in the Locust web UI. Locust runs as a child process (:mod:`fleet.cli.child`); with
no ``--csms`` this process hosts the embedded reference CSMS and reports its ledger."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from fleet.cli.child import free_port, locust_command, run_child
from fleet.cli.options import UsageProblem, parse_duration, parse_slos, station_options
from fleet.cli.prerun import check_open_files, checked_setup, open_csms
from fleet.engine.security import TlsSettings


@click.command()
@station_options(
    spawn_rate=20.0,
    spawn_rate_help="Stations brought online per second.",
    slo_help="A threshold the run must hold, e.g. 'BootNotification.p95 < 2s', "
    "'error_rate < 1%', 'lost_transaction_messages == 0' (repeatable); a broken one makes "
    "the exit code 1.",
    html_help="Write Locust's HTML report here, and the fleet report (SLOs, charts, "
    "ledger) beside it as NAME-fleet.html.",
)
@click.option(
    "--stations",
    "-u",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="Number of stations.",
)
@click.option(
    "--processes",
    type=click.IntRange(min=-1),
    default=0,
    help="Locust's distributed mode on this host: a master and N worker processes "
    "(-1: one per CPU core). Station ids and numbers stay 1..N across workers.",
)
@click.option(
    "--duration",
    "-t",
    default="1m",
    show_default=True,
    help="Run time (headless), e.g. 90s, 5m, 1h.",
)
@click.option(
    "--headless/--web",
    default=False,
    help="Headless run with a summary, or the Locust web UI (default).",
)
@click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    default=0,
    help="Serve Prometheus /metrics on this port (0: off).",
)
@click.option(
    "--web-port",
    type=click.IntRange(1, 65535),
    default=8089,
    show_default=True,
    help="Locust web UI port.",
)
@click.option(
    "--csv",
    "csv_prefix",
    metavar="PREFIX",
    help="Write Locust's CSV statistics as PREFIX_stats.csv etc.",
)
@click.option(
    "--ledger-json",
    type=click.Path(dir_okay=False),
    help="Write the reference CSMS ledger summary here (embedded CSMS only).",
)
@click.option(
    "--time-compression",
    type=click.FloatRange(min=0.001, max=1e6),
    default=None,
    help="Model clock speed-up (144: a day in ten minutes). Default: the profile's.",
)
@click.option(
    "--shape",
    type=click.Choice(["ramp", "steps", "boot-storm", "none"]),
    default=None,
    help="Load shape (default: the profile's load section, if any; none: --stations at "
    "--spawn-rate).",
)
@click.option(
    "--class-picker",
    is_flag=True,
    help="Web UI: offer every load shape in Locust's class picker.",
)
@click.option(
    "--offline-share",
    type=click.FloatRange(0.0, 1.0),
    default=None,
    help="Share of stations an offline wave cuts off. Default: the profile's.",
)
@click.option(
    "--fault-rate",
    type=click.FloatRange(min=0.0),
    default=None,
    help="Fault storm rate (faults per station per hour). Default: the profile's.",
)
@click.option(
    "--json-summary",
    type=click.Path(dir_okay=False),
    help="Write the JSON summary (per action, errors, fleet totals, ledger, SLOs) here.",
)
@click.option(
    "--junit",
    "junit_xml",
    type=click.Path(dir_okay=False),
    help="Write JUnit XML here: one test case per --slo.",
)
def run(
    csms_url: str | None,
    stations: int,
    spawn_rate: float,
    processes: int,
    duration: str,
    profile_name: str,
    headless: bool,
    metrics_port: int,
    web_port: int,
    seed: int | None,
    station_prefix: str,
    csv_prefix: str | None,
    html_report: str | None,
    ledger_json: str | None,
    no_validate: bool,
    ca_file: str | None,
    client_cert: str | None,
    client_key: str | None,
    insecure: bool,
    time_compression: float | None,
    shape: str | None,
    class_picker: bool,
    offline_share: float | None,
    fault_rate: float | None,
    slo_texts: tuple[str, ...],
    json_summary: str | None,
    junit_xml: str | None,
) -> None:
    """Run a fleet: headless with a summary and an exit code, or in the Locust web UI."""
    seconds = parse_duration(duration)
    slos = parse_slos(slo_texts)
    if class_picker and headless:
        raise UsageProblem("--class-picker is for the web UI (not with --headless)")
    tls = TlsSettings(ca_file, client_cert, client_key, insecure)
    profile = checked_setup(profile_name, station_prefix, csms_url, tls)
    peak = stations
    if profile.load is not None and (shape or profile.load.shape) != "none":
        peak = max(peak, profile.load.stations)
    check_open_files(peak, embedded=csms_url is None)

    # Web UI: the number of stations is typed in there, so any station's tags go.
    csms, url = open_csms(profile, csms_url, tls, station_prefix, peak if headless else None)

    cmd = locust_command(url, profile, station_prefix, stations, spawn_rate, seed, no_validate, tls)
    cmd += ["--web-host", "127.0.0.1", "--web-port", str(web_port)]
    if headless:
        cmd += ["--headless", "--run-time", f"{seconds}s", "--only-summary"]
    if processes:
        # The master listens for its forked workers on loopback, on a free port (Locust's
        # default 5557 on every interface would clash with any other run on the host).
        port = free_port()
        cmd += ["--processes", str(processes), "--master-bind-host", "127.0.0.1"]
        cmd += ["--master-bind-port", str(port), "--master-host", "127.0.0.1"]
        cmd += ["--master-port", str(port)]
    if metrics_port:
        cmd += ["--fleet-metrics-port", str(metrics_port)]
    if html_report:
        cmd += ["--html", html_report]
    if csv_prefix:
        cmd += ["--csv", csv_prefix]
    if time_compression is not None:
        cmd += ["--fleet-time-compression", str(time_compression)]
    if offline_share is not None:
        cmd += ["--fleet-offline-share", str(offline_share)]
    if fault_rate is not None:
        cmd += ["--fleet-fault-rate", str(fault_rate)]
    # Locust runs the first load shape the locustfile exports; it exports the one
    # FLEET_SHAPE names (all of them for the web UI's class picker).
    if shape is None:
        shape = profile.load.shape if profile.load is not None else "none"
    env = {"FLEET_SHAPE": "" if shape == "none" else shape}
    if class_picker:
        cmd += ["--class-picker"]
        env["FLEET_SHAPE"] = "all"
    elif env["FLEET_SHAPE"]:
        click.echo(f"fleet: load shape {shape}", err=True)
    if not headless:
        click.echo(f"fleet: Locust web UI at http://127.0.0.1:{web_port}", err=True)

    reports = _Reports(slos, json_summary, junit_xml, html_report)
    cmd += reports.locust_options()
    code = run_child(cmd, env)
    ledger = None
    if csms is not None:
        code = max(code, _report_ledger(csms, ledger_json))
        ledger = {"summary": csms.ledger.summary(), "problems": csms.ledger.check()}
        csms.stop()
    code = max(code, reports.finish(ledger))
    sys.exit(code)


class _Reports:
    """The CI side of `fleet run`: the Locust child writes its summary to a temporary
    file; afterwards the ledger and the SLO verdicts are added, the SLO table printed and
    the JSON summary / JUnit XML written where asked."""

    def __init__(
        self, slos: list[Any], json_path: str | None, junit_path: str | None, html: str | None
    ) -> None:
        import tempfile

        self.slos = slos
        self.json_path = json_path
        self.junit_path = junit_path
        self.html_path = html
        self.wanted = bool(slos or json_path or junit_path or html)
        self._dir = tempfile.mkdtemp(prefix="fleet-summary-") if self.wanted else None
        self.path = str(Path(self._dir) / "summary.json") if self._dir else None

    def locust_options(self) -> list[str]:
        if self.path is None:
            return []
        options = ["--fleet-summary-json", self.path]
        if self.slos:
            # Thresholds decide: a failed exchange alone (Locust's default exit code 1)
            # must not fail a run whose 'error_rate < 1%' held.
            options += ["--exit-code-on-error", "0"]
        return options

    def finish(self, ledger: dict[str, Any] | None) -> int:
        """Evaluate, print, write; 1 when an SLO broke (or could not be evaluated)."""
        if self.path is None or self._dir is None:
            return 0
        import shutil

        from fleet.reports import html, junit
        from fleet.reports import slo as slo_mod
        from fleet.reports import summary as report

        try:
            try:
                data = report.read(self.path)
            except (OSError, ValueError):
                click.echo("fleet: Locust wrote no run summary: SLOs not evaluated", err=True)
                return 1
            history = data.pop(html.HISTORY_KEY, [])
            results = slo_mod.evaluate_all(self.slos, {**data, "ledger": ledger})
            data = report.with_results(data, results, ledger)
            if results:
                click.echo("")
                click.echo("SLOs")
                click.echo(slo_mod.table(results))
                for r in results:
                    if not r.passed:
                        click.echo(
                            f"fleet: SLO broken: {r.slo.text} (measured {r.measured_text})",
                            err=True,
                        )
            if self.json_path:
                report.write(data, self.json_path)
            if self.junit_path:
                junit.write(self.junit_path, results, data)
            if self.html_path:
                click.echo(f"fleet: fleet report {html.write(self.html_path, data, history)}")
            return 0 if data["passed"] else 1
        finally:
            shutil.rmtree(self._dir, ignore_errors=True)


def _report_ledger(csms: Any, path: str | None) -> int:
    """Print what the reference CSMS received; non-zero if it found inconsistencies."""
    summary = csms.ledger.summary()
    problems = csms.ledger.check()
    click.echo("")
    click.echo("Reference CSMS ledger")
    click.echo(
        f"  stations {summary['stations']}  boots {summary['boots']}  "
        f"heartbeats {summary['heartbeats']}  "
        f"status notifications {summary['status_notifications']}"
    )
    click.echo(
        f"  transactions started {summary['transactions_started']}  "
        f"stopped {summary['transactions_stopped']}  still open {summary['transactions_active']}"
    )
    click.echo(
        f"  energy delivered {summary['energy_wh'] / 1000:.1f} kWh  "
        f"meter samples {summary['meter_value_samples']}  messages {summary['messages_total']}"
    )
    click.echo(f"  consistency problems {len(problems)}")
    for line in problems[:10]:
        click.echo(f"    {line}")
    if path:
        Path(path).write_text(json.dumps({"summary": summary, "problems": problems}, indent=2))
    return 1 if problems else 0
