"""``fleet run``: a fleet against a CSMS, headless with a summary and an exit code (CI),
or in the Locust web UI. Locust runs as a child process (:mod:`fleet.cli.child`); with
no ``--csms`` this process hosts the embedded reference CSMS and reports its ledger."""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path
from typing import Any

import click

from fleet.cli.child import Interrupts, free_port, locust_command
from fleet.cli.options import (
    UsageProblem,
    duration_seconds,
    parse_duration,
    parse_slos,
    station_options,
)
from fleet.cli.prerun import check_open_files, checked_setup, open_csms
from fleet.engine.limits import LOCAL_IPS_ENV, auto_processes, parse_local_ips
from fleet.engine.security import TlsSettings
from fleet.scenarios.profile import Profile


def processes_value(value: str) -> int | str:
    """``--processes``: an integer >= -1 or ``auto``."""
    if value == "auto":
        return value
    try:
        number = int(value)
    except ValueError:
        number = -2
    if number < -1:
        raise click.BadParameter(f"expected an integer >= -1 or auto, got {value!r}")
    return number


def local_ips_value(value: str | None) -> str | None:
    """``--local-ips``: checked here, so a typo stops the run before it starts."""
    if value is not None:
        try:
            parse_local_ips(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None
    return value


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
    default="0",
    callback=lambda _ctx, _param, value: processes_value(value),
    help="Locust's distributed mode on this host: a master and N worker processes "
    "(-1: one per CPU core; auto: as few as the open-file limit allows for --stations). "
    "Station ids and numbers stay 1..N across workers.",
)
@click.option(
    "--local-ips",
    default=None,
    metavar="ADDRS",
    callback=lambda _ctx, _param, value: local_ips_value(value),
    help="Source addresses for the stations' connections, spread over them: "
    "127.0.0.2-127.0.0.9, a CIDR block or a comma-separated list (one address reaches "
    "one CSMS port over ~28,000 ephemeral ports).",
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
    "--web-host",
    default="127.0.0.1",
    show_default=True,
    help="Address the Locust web UI listens on (0.0.0.0: every interface). The UI has "
    "no login: anyone who reaches it can start load, so off loopback a warning is printed.",
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
    "--lag-threshold",
    "lag_threshold_ms",
    type=click.FloatRange(min=0.0, min_open=True),
    default=50.0,
    show_default=True,
    metavar="MS",
    help="Generator event-loop lag p99 (milliseconds) past which the run warns and the "
    "summary marks its latency figures suspect.",
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
@click.option(
    "--end",
    "end_mode",
    type=click.Choice(["stop", "power-off"]),
    default="stop",
    show_default=True,
    help="How stations leave at the end (or a ramp down): stop = end each session "
    "(StopTransaction, reason station.end_reason) and close cleanly; power-off = at once, "
    "sessions left open.",
)
@click.option(
    "--end-timeout",
    default="10s",
    show_default=True,
    help="How long the stations have at the end to deliver their StopTransactions.",
)
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False),
    help="Keep the stations' durable state (energy register, open transaction, queued "
    "messages, local list, charging profiles, configuration) here between runs.",
)
@click.option(
    "--connect-grace",
    default="10s",
    show_default=True,
    help="Headless: a station not connected this long after it started fails the run "
    "(at most half of --duration, so a short run is judged too).",
)
@click.option(
    "--progress-every",
    default="10s",
    show_default=True,
    help="Headless: print a progress line this often (0: off); one line each time "
    "unless stdout is a terminal.",
)
@click.option(
    "--slo-abort",
    is_flag=True,
    help="Stop the run as soon as any --slo is lost (one SLO alone: end it with ' abort' "
    "or '!'), write the reports and exit 1.",
)
@click.option(
    "--slo-abort-after",
    default="30s",
    show_default=True,
    help="How long into the run before an aborting SLO may stop it.",
)
@click.argument("locust_args", nargs=-1, type=click.UNPROCESSED, metavar="[-- LOCUST_OPTIONS]")
def run(
    csms_url: str | None,
    stations: int,
    spawn_rate: float,
    processes: int | str,
    local_ips: str | None,
    duration: str,
    profile_name: str,
    headless: bool,
    metrics_port: int,
    web_port: int,
    web_host: str,
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
    lag_threshold_ms: float,
    json_summary: str | None,
    junit_xml: str | None,
    end_mode: str,
    end_timeout: str,
    state_dir: str | None,
    connect_grace: str,
    progress_every: str,
    slo_abort: bool,
    slo_abort_after: str,
    locust_args: tuple[str, ...],
) -> None:
    """Run a fleet: headless with a summary and an exit code, or in the Locust web UI.

    Locust's own options go after ``--`` (e.g. ``-- --loglevel DEBUG``)."""
    seconds = parse_duration(duration)
    slos = parse_slos(slo_texts)
    passed_on = check_locust_args(locust_args)
    grace = min(duration_seconds("--connect-grace", connect_grace), seconds / 2)
    progress = duration_seconds("--progress-every", progress_every, zero_ok=True)
    abort_after = duration_seconds("--slo-abort-after", slo_abort_after, zero_ok=True)
    aborting = [s.text for s in slos if s.abort or slo_abort]
    if not headless:
        if aborting:
            raise UsageProblem("--slo-abort and SLOs ending in 'abort' are for --headless runs")
        _headless_only("connect_grace", "progress_every", "slo_abort_after")
    if class_picker and headless:
        raise UsageProblem("--class-picker is for the web UI (not with --headless)")
    tls = TlsSettings(ca_file, client_cert, client_key, insecure)
    profile = checked_setup(profile_name, station_prefix, csms_url, tls)
    if shape is None:
        shape = profile.load.shape if profile.load is not None else "none"
    users = _fleet_size(profile, shape, stations)
    _check_overrides(profile, fault_rate, offline_share)
    if not headless:
        check_port_free("--web-port", web_host, web_port)
        _warn_open_web_ui(web_host)
    if metrics_port:
        check_port_free("--metrics-port", "127.0.0.1", metrics_port)
    if processes == "auto":
        processes = 0 if csms_url is None else auto_processes(users)
        click.echo(f"fleet: --processes auto: {processes} worker(s)", err=True)
    assert isinstance(processes, int)
    # Each worker holds its share of the stations (Locust spreads users evenly).
    check_open_files(-(-users // processes) if processes > 0 else users, csms_url is None)

    # Until this process exits: a signal from here on stops the run cleanly.
    # The stations' end (--end-timeout) must fit in the grace before a kill.
    end_seconds = duration_seconds("--end-timeout", end_timeout, zero_ok=True)
    interrupts = Interrupts(grace=max(20.0, end_seconds + 10.0)).install()
    # Web UI: the number of stations is typed in there, so any station's tags go.
    csms, url = open_csms(profile, csms_url, tls, station_prefix, users if headless else None)
    cmd = locust_command(url, profile, station_prefix, users, spawn_rate, seed, no_validate, tls)
    cmd += ["--web-host", web_host, "--web-port", str(web_port)]
    if headless:
        cmd += ["--headless", "--run-time", f"{seconds}s", "--only-summary"]
        cmd += ["--fleet-connect-grace", f"{grace:g}", "--fleet-progress-every", f"{progress:g}"]
        for text in aborting:
            cmd += ["--fleet-slo-abort", text]
        if aborting:
            cmd += ["--fleet-slo-abort-after", f"{abort_after:g}"]
    if processes:
        # The master listens for its forked workers on loopback, on a free port (Locust's
        # default 5557 on every interface would clash with any other run on the host).
        port = free_port()
        cmd += ["--processes", str(processes), "--master-bind-host", "127.0.0.1"]
        cmd += ["--master-bind-port", str(port), "--master-host", "127.0.0.1"]
        cmd += ["--master-port", str(port)]
    if metrics_port:
        cmd += ["--fleet-metrics-port", str(metrics_port)]
    cmd += ["--fleet-lag-threshold", str(lag_threshold_ms)]
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
    cmd += end_options(end_mode, end_seconds, state_dir)
    # Locust runs the first load shape the locustfile exports; it exports the one
    # FLEET_SHAPE names (all of them for the web UI's class picker).
    env = {"FLEET_SHAPE": "" if shape == "none" else shape}
    if local_ips:
        env[LOCAL_IPS_ENV] = local_ips
    if class_picker:
        cmd += ["--class-picker"]
        env["FLEET_SHAPE"] = "all"
    elif env["FLEET_SHAPE"]:
        click.echo(f"fleet: load shape {shape}", err=True)
    if not headless:
        click.echo(f"fleet: Locust web UI at http://{_shown(web_host)}:{web_port}", err=True)

    follower = None
    if csms is not None and not headless:
        # The web form may start the next run with another profile: the embedded CSMS
        # follows it (fleet.cli.follow).
        from fleet.cli.follow import ProfileFollower

        follower = ProfileFollower(csms, station_prefix)
        env.update(follower.env())
    reports = _Reports(slos, json_summary, junit_xml, html_report, headless, grace)
    cmd += reports.locust_options() + passed_on
    code = interrupts.run(cmd, env)
    if follower is not None:
        follower.close()
    ledger = None
    if csms is not None:
        code = max(code, _report_ledger(csms, ledger_json))
        ledger = {"summary": csms.ledger.summary(), "problems": csms.ledger.check()}
        csms.stop()
    code = max(code, reports.finish(ledger, interrupts.name))
    sys.exit(interrupts.exit_code(code))


# Options `fleet run` sets itself: after `--` they would contradict it (or break the run).
_OWN_OPTIONS = {
    "-f": "--profile", "--locustfile": "--profile", "-H": "--csms", "--host": "--csms",
    "-u": "--stations", "--users": "--stations", "-r": "--spawn-rate",
    "--spawn-rate": "--spawn-rate", "-t": "--duration", "--run-time": "--duration",
    "--headless": "--headless", "--web-host": "--web-host", "--web-port": "--web-port",
    "--processes": "--processes", "--master": "--processes", "--worker": "--processes",
    "--master-bind-host": "--processes", "--master-bind-port": "--processes",
    "--master-host": "--processes", "--master-port": "--processes",
    "--html": "--html", "--csv": "--csv", "--class-picker": "--class-picker",
    "--exit-code-on-error": "--slo",
}  # fmt: skip


def check_locust_args(args: tuple[str, ...]) -> list[str]:
    """Locust's own options after ``--``, passed on as they are; the ones ``fleet run``
    sets itself (and ``--fleet-*``, its locustfile's) are a one-line usage error naming
    the ``fleet run`` option to use instead."""
    if args and not args[0].startswith("-"):
        raise UsageProblem(
            f"unexpected argument {args[0]!r} (Locust's options go after --, "
            "e.g. -- --loglevel DEBUG)"
        )
    for arg in args:
        name = arg.split("=", 1)[0]
        if name.startswith("--fleet-"):
            raise UsageProblem(f"{name}: set by fleet run from its own options, not after --")
        if name in _OWN_OPTIONS:
            raise UsageProblem(f"{name}: use fleet run's {_OWN_OPTIONS[name]} instead of -- {name}")
    return list(args)


def check_port_free(option: str, host: str, port: int) -> None:
    """A port something already listens on stops the run here, in one line, instead of
    a traceback from the Locust child once the CSMS and the stations are up."""
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers do
            sock.bind((host, port))
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise UsageProblem(f"{option} {port}: cannot listen on {host}:{port} ({reason})") from None


def _fleet_size(profile: Profile, shape: str, stations: int) -> int:
    """The peak number of stations: ``--stations``, unless the profile's own load shape
    runs (it sets the size; then an explicit ``--stations`` is a usage error rather than
    a number the run and its summary would not keep)."""
    load = profile.load
    if load is None or shape != load.shape:
        return stations
    source = click.get_current_context().get_parameter_source("stations")
    if source not in (None, click.core.ParameterSource.DEFAULT):
        raise UsageProblem(
            f"--stations {stations}: profile {profile.name}'s load shape ({load.shape}) sets "
            f"the fleet size ({load.stations} stations); drop --stations, or add --shape none "
            "for --stations at --spawn-rate"
        )
    return load.stations


def _check_overrides(
    profile: Profile, fault_rate: float | None, offline_share: float | None
) -> None:
    """An override of a part the profile does not have would be accepted without effect."""
    faults = profile.faults
    if fault_rate is not None and not any(
        s.rate is not None for s in (faults.storms if faults is not None else ())
    ):
        raise UsageProblem(
            f"--fault-rate: profile {profile.name} has no independent fault storm (a faults "
            "storm with a rate) to apply it to; e.g. --profile fault-storm"
        )
    network = profile.network
    if offline_share is not None and not (network is not None and network.waves):
        raise UsageProblem(
            f"--offline-share: profile {profile.name} has no offline wave (network."
            "offline_waves) to apply it to; e.g. --profile offline-wave"
        )


def _warn_open_web_ui(web_host: str) -> None:
    if web_host not in ("127.0.0.1", "localhost", "::1"):
        click.echo(
            f"fleet: WARNING: the Locust web UI listens on {web_host} without a login: "
            "anyone who reaches it can start and stop load (use a firewall, an SSH tunnel "
            "or an authenticating proxy)",
            err=True,
        )


def _shown(web_host: str) -> str:
    """The address to print for the UI (a wildcard is reached as this host's name)."""
    if web_host in ("0.0.0.0", "::", ""):
        return socket.gethostname()
    return f"[{web_host}]" if ":" in web_host else web_host


def _headless_only(*names: str) -> None:
    """Options that only a headless run reads: given to a web UI run, a usage error
    rather than a setting without effect."""
    from click.core import ParameterSource

    ctx = click.get_current_context()
    for name in names:
        if ctx.get_parameter_source(name) == ParameterSource.COMMANDLINE:
            raise UsageProblem(f"--{name.replace('_', '-')} is for --headless runs")


class _Reports:
    """The CI side of `fleet run`: the Locust child writes its summary to a temporary
    file; afterwards the ledger and the SLO verdicts are added, the SLO table printed and
    the JSON summary / JUnit XML written where asked."""

    def __init__(
        self,
        slos: list[Any],
        json_path: str | None,
        junit_path: str | None,
        html: str | None,
        headless: bool,
        grace: float,
    ) -> None:
        import tempfile

        self.slos = slos
        self.grace = grace
        self.json_path = json_path
        self.junit_path = junit_path
        self.html_path = html
        # A headless run always reads its summary: the verdict needs the stations that
        # never connected, with or without SLOs.
        self.wanted = bool(slos or json_path or junit_path or html or headless)
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

    def finish(self, ledger: dict[str, Any] | None, interrupted: str = "") -> int:
        """Evaluate, print, write; 1 when an SLO broke (or could not be evaluated) or
        the run was interrupted (``interrupted``: the signal's name): a run cut short
        did not show what it was asked to, so it never passes."""
        code = self._finish(ledger, interrupted)
        if interrupted and self.path is None:  # (else the verdict said so)
            click.echo(f"fleet: run interrupted ({interrupted})", err=True)
        return 1 if interrupted else code

    def _finish(self, ledger: dict[str, Any] | None, interrupted: str) -> int:
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
            reasons = _failed_because(data, self.grace)
            if interrupted:
                data["interrupted"] = interrupted
                reasons.append(f"interrupted by {interrupted} before the end of the run")
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
            for reason in reasons:
                click.echo(f"fleet: FAILED: {reason}", err=True)
            data["failed_because"] = reasons
            data["passed"] = bool(data["passed"]) and not reasons
            if self.json_path:
                report.write(data, self.json_path)
            if self.junit_path:
                junit.write(self.junit_path, results, data)
            if self.html_path:
                click.echo(f"fleet: fleet report {html.write(self.html_path, data, history)}")
            if reasons:
                return 1
            # 3 when nothing broke but an SLO had nothing to measure (slo.exit_code).
            return 0 if data["passed"] else slo_mod.exit_code(results) or 1
        finally:
            shutil.rmtree(self._dir, ignore_errors=True)


def _failed_because(data: dict[str, Any], grace: float) -> list[str]:
    """What fails a headless run besides its SLOs, one line each: stations that never
    connected (the CSMS was not exercised: a wrong URL or key, a CSMS refusing them), and
    an aborting SLO that stopped the run early."""
    reasons = []
    fleet = data.get("fleet") or {}
    never = int(fleet.get("stations_never_connected") or 0)
    if never:
        started = int(fleet.get("stations_started") or 0)
        errors = [e for e in data.get("errors") or () if e.get("action") == "WS connect"]
        if errors:
            top = errors[0]
            why = f"WS connect failed {top['occurrences']}x: {top['error']}"
        else:
            why = f"no connection within the {grace:g}s connect grace"
        reasons.append(f"{never} of {started} stations never connected ({why})")
    aborted = data.get("aborted")
    if aborted:
        reasons.append(
            f"stopped at {aborted['at_s']:g}s: SLO lost: {aborted['slo']} "
            f"(measured {aborted['measured_text']})"
        )
    return reasons


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
        f"  energy in stopped transactions {summary['energy_stopped_wh'] / 1000:.2f} kWh  "
        f"energy metered incl. running {summary['energy_metered_wh'] / 1000:.2f} kWh"
    )
    click.echo(
        f"  meter samples {summary['meter_value_samples']}  messages {summary['messages_total']}"
    )
    click.echo(f"  consistency problems {len(problems)}")
    for line in problems[:10]:
        click.echo(f"    {line}")
    if path:
        Path(path).write_text(json.dumps({"summary": summary, "problems": problems}, indent=2))
    return 1 if problems else 0


def end_options(end_mode: str, end_seconds: float, state_dir: str | None) -> list[str]:
    """--end, --end-timeout and --state-dir as the Locust child's options (issue 17)."""
    options = ["--fleet-end", end_mode, "--fleet-end-timeout", f"{end_seconds:g}"]
    if state_dir:
        options += ["--fleet-state-dir", str(Path(state_dir).resolve())]
    return options
