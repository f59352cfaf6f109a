"""``fleet``: run a Charge Pro fleet against a CSMS, or serve the reference CSMS.

``fleet run`` starts Locust as a child process with the fleet's locustfile. A child
keeps gevent's monkey-patching out of this process, which hosts the embedded
reference CSMS (an asyncio thread) when no ``--csms`` is given, and reads its
ledger after the run. Every user mistake ends in one line on stderr and exit 2.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click

from fleet.engine.limits import stations_problem
from fleet.engine.security import (
    SecurityConfigError,
    TlsSettings,
    build_client_context,
    redact_url,
    tls_reason,
)
from fleet.scenarios.profile import Profile, ProfileError, available, load

LOCUSTFILE = Path(__file__).resolve().parent / "locust" / "locustfile.py"
_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s?)?$")


class UsageProblem(click.ClickException):
    """A user mistake: one line on stderr, exit code 2."""

    exit_code = 2


def parse_duration(text: str) -> int:
    """'90', '90s', '2m', '1h30m' -> seconds."""
    m = _DURATION.match(text.strip())
    if not text.strip() or m is None or not any(m.groups()):
        raise UsageProblem(f"--duration: cannot read {text!r} (use e.g. 90s, 2m, 1h30m)")
    h, mi, s = (int(g) if g else 0 for g in m.groups())
    total = h * 3600 + mi * 60 + s
    if total <= 0:
        raise UsageProblem("--duration must be more than 0 seconds")
    return total


def check_csms_url(url: str, timeout: float = 3.0, tls: TlsSettings | None = None) -> None:
    """Fail early, in one line, when the CSMS URL is malformed or nothing listens there.

    For wss:// with ``tls``, also check that the CSMS's certificate verifies.
    """
    parts = urlsplit(url)
    shown = redact_url(url)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise UsageProblem(f"--csms: {shown!r} is not a ws:// or wss:// URL")
    try:
        port = parts.port or (443 if parts.scheme == "wss" else 80)
    except ValueError:
        raise UsageProblem(f"--csms: {shown!r} has an invalid port") from None
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout) as sock:
            if parts.scheme == "wss" and tls is not None and not tls.insecure:
                _check_certificate(sock, parts.hostname, port, tls)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise UsageProblem(f"--csms: cannot reach {parts.hostname}:{port} ({reason})") from None


def _check_certificate(sock: socket.socket, host: str, port: int, tls: TlsSettings) -> None:
    """A TLS handshake without a client certificate: only verification errors count here
    (a CSMS that wants a client certificate is the stations' business)."""
    try:
        context = build_client_context(tls, None)
        with context.wrap_socket(sock, server_hostname=host):
            pass
    except ssl.SSLCertVerificationError as exc:
        raise UsageProblem(
            f"--csms: the TLS certificate of {host}:{port} does not verify "
            f"({exc.verify_message}); give its CA with --ca-file"
        ) from None
    except (ssl.SSLError, SecurityConfigError, OSError):
        pass


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="chargepro-fleet")
def cli() -> None:
    """Simulated Schneider Charge Pro stations (OCPP 1.6J) to load-test a CSMS."""


def main() -> None:
    """The ``fleet`` command: click's errors shortened to one line naming the problem."""
    try:
        cli.main(prog_name="fleet", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.Abort:
        sys.exit(130)
    except click.ClickException as exc:
        click.echo(f"fleet: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)


@cli.command()
@click.option(
    "--csms",
    "csms_url",
    metavar="URL",
    help="CSMS websocket base URL; stations connect to URL/<id>. "
    "Default: the embedded reference CSMS.",
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
    "--spawn-rate",
    "-r",
    type=click.FloatRange(min=0.01),
    default=20.0,
    show_default=True,
    help="Stations brought online per second.",
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
    "--profile",
    "profile_name",
    default="demo",
    show_default=True,
    help="Profile name (profiles/) or YAML path.",
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
@click.option("--seed", type=int, default=None, help="Seed for reproducible runs.")
@click.option("--station-prefix", default="CP", show_default=True, help="Station id prefix.")
@click.option(
    "--csv",
    "csv_prefix",
    metavar="PREFIX",
    help="Write Locust's CSV statistics as PREFIX_stats.csv etc.",
)
@click.option(
    "--html",
    "html_report",
    type=click.Path(dir_okay=False),
    help="Write Locust's HTML report here.",
)
@click.option(
    "--ledger-json",
    type=click.Path(dir_okay=False),
    help="Write the reference CSMS ledger summary here (embedded CSMS only).",
)
@click.option("--no-validate", is_flag=True, help="Skip OCPP schema validation in the stations.")
@click.option(
    "--ca-file",
    metavar="PEM",
    help="CA certificate(s) that sign the CSMS's certificate (wss://); default: the system store.",
)
@click.option(
    "--client-cert",
    metavar="PEM",
    help="Client certificate for SecurityProfile 3 (mutual TLS); '{id}' in the path is "
    "replaced by the station id.",
)
@click.option(
    "--client-key",
    metavar="PEM",
    help="Private key of --client-cert if not in the same file; '{id}' as there.",
)
@click.option(
    "--insecure",
    is_flag=True,
    help="Do not verify the CSMS's TLS certificate (testing only; prints a warning).",
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
    "--slo",
    "slo_texts",
    multiple=True,
    metavar="EXPR",
    help="A threshold the run must hold, e.g. 'BootNotification.p95 < 2s', 'error_rate < 1%', "
    "'lost_transaction_messages == 0' (repeatable); a broken one makes the exit code 1.",
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
    slos = _parse_slos(slo_texts)
    if class_picker and headless:
        raise UsageProblem("--class-picker is for the web UI (not with --headless)")
    tls = TlsSettings(ca_file, client_cert, client_key, insecure)
    profile = _checked_setup(profile_name, station_prefix, csms_url, tls)

    # Stations (and, embedded, the CSMS's side of each connection) need open files;
    # the Locust child inherits the raised limit.
    peak = stations
    if profile.load is not None and (shape or profile.load.shape) != "none":
        peak = max(peak, profile.load.stations)
    embedded = csms_url is None
    problem = stations_problem(
        peak, 2 if embedded else 1, " (two per station with the embedded CSMS)" if embedded else ""
    )
    if problem is not None:
        raise UsageProblem(problem)

    csms, url = _open_csms(profile, csms_url, tls)

    cmd = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--host",
        url,
        "--fleet-profile",
        str(profile.path),
        "--fleet-station-prefix",
        station_prefix,
        "--users",
        str(stations),
        "--spawn-rate",
        str(spawn_rate),
        "--web-host",
        "127.0.0.1",
        "--web-port",
        str(web_port),
    ]
    if headless:
        cmd += ["--headless", "--run-time", f"{seconds}s", "--only-summary"]
    if processes:
        # The master listens for its forked workers on loopback, on a free port (Locust's
        # default 5557 on every interface would clash with any other run on the host).
        port = _free_port()
        cmd += ["--processes", str(processes), "--master-bind-host", "127.0.0.1"]
        cmd += ["--master-bind-port", str(port), "--master-host", "127.0.0.1"]
        cmd += ["--master-port", str(port)]
    if metrics_port:
        cmd += ["--fleet-metrics-port", str(metrics_port)]
    if seed is not None:
        cmd += ["--fleet-seed", str(seed)]
    if html_report:
        cmd += ["--html", html_report]
    if csv_prefix:
        cmd += ["--csv", csv_prefix]
    if no_validate:
        cmd += ["--fleet-no-validate"]
    cmd += tls.as_options("fleet-")
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

    reports = _Reports(slos, json_summary, junit_xml)
    cmd += reports.locust_options()
    code = _run_child(cmd, env)
    ledger = None
    if csms is not None:
        code = max(code, _report_ledger(csms, ledger_json))
        ledger = {"summary": csms.ledger.summary(), "problems": csms.ledger.check()}
        csms.stop()
    code = max(code, reports.finish(ledger))
    sys.exit(code)


def _parse_slos(texts: tuple[str, ...]) -> list[Any]:
    """Every --slo read before anything starts: a bad one is a one-line usage error."""
    from fleet.reports.slo import SloError, parse_all

    try:
        return parse_all(texts)
    except SloError as exc:
        raise UsageProblem(str(exc)) from None


class _Reports:
    """The CI side of `fleet run`: the Locust child writes its summary to a temporary
    file; afterwards the ledger and the SLO verdicts are added, the SLO table printed and
    the JSON summary / JUnit XML written where asked."""

    def __init__(self, slos: list[Any], json_path: str | None, junit_path: str | None) -> None:
        import tempfile

        self.slos = slos
        self.json_path = json_path
        self.junit_path = junit_path
        self.wanted = bool(slos or json_path or junit_path)
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

        from fleet.reports import junit
        from fleet.reports import slo as slo_mod
        from fleet.reports import summary as report

        try:
            try:
                data = report.read(self.path)
            except (OSError, ValueError):
                click.echo("fleet: Locust wrote no run summary: SLOs not evaluated", err=True)
                return 1
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
            return 0 if data["passed"] else 1
        finally:
            shutil.rmtree(self._dir, ignore_errors=True)


def _free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _checked_setup(
    profile_name: str, station_prefix: str, csms_url: str | None, tls: TlsSettings
) -> Profile:
    """What every command that runs stations checks before anything starts: the
    profile, the station prefix, the TLS files and what the security profile needs.
    Each mistake is one line; turning verification off is always a warning."""
    try:
        profile = load(profile_name)
    except ProfileError as exc:
        raise UsageProblem(str(exc)) from None
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,16}", station_prefix):
        raise UsageProblem("--station-prefix: 1..16 letters, digits, '.', '_' or '-'")
    try:
        tls.check()
    except SecurityConfigError as exc:
        raise UsageProblem(f"TLS: {exc}") from None
    security_profile = profile.security_profile
    if security_profile >= 2 and not (csms_url or "").lower().startswith("wss://"):
        raise UsageProblem(
            f"profile {profile.name}: SecurityProfile {security_profile} needs a wss:// CSMS "
            "(--csms wss://...)"
        )
    if security_profile == 3 and not tls.client_cert:
        raise UsageProblem(
            f"profile {profile.name}: SecurityProfile 3 needs a client certificate (--client-cert)"
        )
    if tls.insecure:
        click.echo(
            "fleet: WARNING: TLS certificate verification is off (--insecure): "
            "any server can pose as the CSMS",
            err=True,
        )
    return profile


def _open_csms(
    profile: Profile, csms_url: str | None, tls: TlsSettings, **options: Any
) -> tuple[Any, str]:
    """The CSMS the stations connect to: the one at ``csms_url`` (checked reachable), or
    an embedded reference CSMS (``options`` go to it) that accepts the profile's tags and
    its Basic auth key. Returns the embedded CSMS (None otherwise) and the URL."""
    if csms_url is not None:
        check_csms_url(csms_url, tls=tls)
        return None, csms_url
    from fleet.csms.server import CsmsThread

    key = profile.config.get("AuthorizationKey") if profile.security_profile == 1 else None
    csms = CsmsThread(
        accepted_tags=profile.id_tags,
        basic_auth=None if key is None else _password_check(str(key)),
        **options,
    )
    url = csms.start()
    click.echo(f"fleet: embedded reference CSMS at {url}", err=True)
    return csms, url


def _password_check(key: str) -> Any:
    """A Basic auth predicate for the reference CSMS: every station has this password."""
    expected = key.encode("utf-8", "surrogateescape")

    def check(station_id: str, password: str) -> bool:
        return hmac.compare_digest(password.encode("utf-8", "surrogateescape"), expected)

    return check


def _run_child(cmd: list[str], extra_env: dict[str, str] | None = None) -> int:
    env = dict(os.environ)
    env.setdefault("PYTHONUNBUFFERED", "1")
    env.update(extra_env or {})
    proc = subprocess.Popen(cmd, env=env)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.send_signal(signal.SIGINT)
        try:
            return proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            return 130


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


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=9000, show_default=True)
@click.option("--accept-tag", "accept_tags", multiple=True, help="An idTag to accept (repeatable).")
@click.option("--accept-all", is_flag=True, help="Accept every idTag.")
@click.option("--profile", "profile_name", help="Accept the id tags of this profile.")
@click.option(
    "--boot-status",
    type=click.Choice(["Accepted", "Pending", "Rejected"]),
    default="Accepted",
    show_default=True,
)
@click.option("--heartbeat-interval", type=click.IntRange(min=0), default=60, show_default=True)
@click.option("--tls-cert", metavar="PEM", help="Serve wss:// with this certificate (chain).")
@click.option("--tls-key", metavar="PEM", help="Private key of --tls-cert if not in that file.")
@click.option(
    "--tls-client-ca",
    metavar="PEM",
    help="Require station certificates signed by this CA (mutual TLS, SecurityProfile 3).",
)
@click.option(
    "--require-basic-auth",
    "basic_auth_key",
    metavar="KEY",
    envvar="FLEET_CSMS_AUTHORIZATION_KEY",
    help="Require HTTP Basic auth: user = station id, password = KEY (profiles 1 and 2). "
    "Also read from $FLEET_CSMS_AUTHORIZATION_KEY, which keeps it off the command line.",
)
@click.option(
    "--delay-ms",
    type=click.FloatRange(min=0.0),
    default=0.0,
    help="Serve messages one at a time, each taking this long: a CSMS of known capacity "
    "(1000/delay messages per second), for trying `fleet capacity`.",
)
@click.option(
    "--ledger-journal",
    metavar="FILE",
    type=click.Path(dir_okay=False),
    help="Append every ledger event to FILE (written at once) and reload it at start, so "
    "the ledger survives the CSMS being killed and restarted.",
)
def csms(
    host: str,
    port: int,
    accept_tags: tuple[str, ...],
    accept_all: bool,
    profile_name: str | None,
    boot_status: str,
    heartbeat_interval: int,
    tls_cert: str | None,
    tls_key: str | None,
    tls_client_ca: str | None,
    basic_auth_key: str | None,
    delay_ms: float,
    ledger_journal: str | None,
) -> None:
    """Serve the reference CSMS (the one `fleet run` embeds) until Ctrl-C."""
    from fleet.csms.ledger import JournaledLedger
    from fleet.csms.server import serve_forever, tls_context

    context = None
    if tls_cert is None and (tls_key or tls_client_ca):
        raise UsageProblem("--tls-key and --tls-client-ca need --tls-cert")
    if tls_cert is not None:
        try:
            context = tls_context(tls_cert, tls_key, tls_client_ca)
        except (OSError, ssl.SSLError) as exc:
            raise UsageProblem(
                f"TLS: cannot load --tls-cert / --tls-key / --tls-client-ca ({tls_reason(exc)})"
            ) from None
    tags = list(accept_tags)
    if profile_name:
        try:
            tags += load(profile_name).id_tags
        except ProfileError as exc:
            raise UsageProblem(str(exc)) from None
    extra: dict[str, Any] = {}
    if ledger_journal:
        try:
            extra["ledger"] = JournaledLedger(ledger_journal)
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageProblem(f"--ledger-journal {ledger_journal}: {exc}") from None
    try:
        asyncio.run(
            serve_forever(
                host,
                port,
                **extra,
                accepted_tags=tags,
                accept_all_tags=accept_all,
                boot_status=boot_status,
                heartbeat_interval=heartbeat_interval,
                ssl_context=context,
                basic_auth=None if not basic_auth_key else _password_check(basic_auth_key),
                service_time=delay_ms / 1000.0,
            )
        )
    except OSError as exc:
        raise UsageProblem(f"cannot listen on {host}:{port} ({exc.strerror or exc})") from None
    except KeyboardInterrupt:
        pass


@cli.command()
@click.option(
    "--csms",
    "csms_url",
    metavar="URL",
    help="CSMS websocket base URL. Default: the embedded reference CSMS.",
)
@click.option("--profile", "profile_name", default="demo", show_default=True, help="Fleet profile.")
@click.option(
    "--slo",
    "slo_texts",
    multiple=True,
    required=True,
    metavar="EXPR",
    help="A threshold every step must hold, e.g. 'Heartbeat.p95 < 500ms' (repeatable).",
)
@click.option(
    "--start", type=click.IntRange(min=1), default=None, help="First fleet size (default: --step)."
)
@click.option(
    "--step",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="Stations added per step.",
)
@click.option(
    "--max",
    "maximum",
    type=click.IntRange(min=1),
    default=1000,
    show_default=True,
    help="Largest fleet size to try.",
)
@click.option("--hold", default="60s", show_default=True, help="How long each step lasts.")
@click.option(
    "--settle",
    default=None,
    help="How long after a step starts its measurement begins (default: the ramp plus a "
    "quarter of --hold, at most half of it).",
)
@click.option(
    "--spawn-rate",
    "-r",
    type=click.FloatRange(min=0.01),
    default=50.0,
    show_default=True,
    help="Stations brought online per second at each step.",
)
@click.option(
    "--html", "html_report", type=click.Path(dir_okay=False), help="Write the HTML report here."
)
@click.option(
    "--json",
    "json_out",
    type=click.Path(dir_okay=False),
    help="Write the steps and the answer as JSON here.",
)
@click.option("--seed", type=int, default=None, help="Seed for reproducible runs.")
@click.option("--station-prefix", default="CP", show_default=True, help="Station id prefix.")
@click.option("--no-validate", is_flag=True, help="Skip OCPP schema validation in the stations.")
@click.option("--ca-file", metavar="PEM", help="CA certificate(s) of the CSMS (wss://).")
@click.option("--client-cert", metavar="PEM", help="Client certificate (SecurityProfile 3).")
@click.option("--client-key", metavar="PEM", help="Private key of --client-cert.")
@click.option("--insecure", is_flag=True, help="Do not verify the CSMS's TLS certificate.")
@click.option(
    "--csms-delay-ms",
    type=click.FloatRange(min=0.0),
    default=0.0,
    help="Embedded CSMS only: serve messages one at a time, each taking this long.",
)
def capacity(
    csms_url: str | None,
    profile_name: str,
    slo_texts: tuple[str, ...],
    start: int | None,
    step: int,
    maximum: int,
    hold: str,
    settle: str | None,
    spawn_rate: float,
    html_report: str | None,
    json_out: str | None,
    seed: int | None,
    station_prefix: str,
    no_validate: bool,
    ca_file: str | None,
    client_cert: str | None,
    client_key: str | None,
    insecure: bool,
    csms_delay_ms: float,
) -> None:
    """Find the largest fleet the CSMS holds: steps up until one breaks an SLO."""
    import tempfile

    from fleet import capacity as cap

    _parse_slos(slo_texts)  # every --slo read before anything starts
    first = start if start is not None else step
    if maximum < first:
        raise UsageProblem(f"--max {maximum} is below the first step ({first})")
    hold_s = _seconds("--hold", hold)
    settle_s = (
        cap.default_settle(hold_s, step, spawn_rate)
        if settle is None
        else _seconds("--settle", settle, zero_ok=True)
    )
    if settle_s >= hold_s:
        raise UsageProblem(f"--settle ({settle_s:g}s) must be shorter than --hold ({hold_s:g}s)")
    if csms_url is not None and csms_delay_ms:
        raise UsageProblem("--csms-delay-ms is for the embedded CSMS (not with --csms)")
    tls = TlsSettings(ca_file, client_cert, client_key, insecure)
    profile = _checked_setup(profile_name, station_prefix, csms_url, tls)
    embedded = csms_url is None
    problem = stations_problem(
        maximum,
        2 if embedded else 1,
        " (two per station with the embedded CSMS)" if embedded else "",
    )
    if problem is not None:
        raise UsageProblem(problem)

    sizes = cap.sizes(first, step, maximum)
    work = Path(tempfile.mkdtemp(prefix="fleet-capacity-"))
    plan_path, out_path = work / "plan.json", work / "steps.json"
    plan_path.write_text(json.dumps(cap.plan(sizes, hold_s, settle_s, spawn_rate, slo_texts)))

    csms, url = _open_csms(
        profile,
        csms_url,
        tls,
        heartbeat_interval=int(profile.config.get("HeartbeatInterval", 60)),
        service_time=csms_delay_ms / 1000.0,
    )
    click.echo(
        f"fleet: capacity search over {len(sizes)} steps ({sizes[0]}..{sizes[-1]} stations), "
        f"{hold_s:g}s each, measured after {settle_s:g}s; at most {len(sizes) * hold_s:g}s",
        err=True,
    )
    cmd = [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--host", url,
        "--fleet-profile", str(profile.path), "--fleet-station-prefix", station_prefix,
        "--headless", "--only-summary", "--users", str(maximum),
        "--spawn-rate", str(spawn_rate), "--exit-code-on-error", "0",
        "--fleet-capacity-plan", str(plan_path), "--fleet-capacity-out", str(out_path),
    ]  # fmt: skip
    if seed is not None:
        cmd += ["--fleet-seed", str(seed)]
    if no_validate:
        cmd += ["--fleet-no-validate"]
    cmd += tls.as_options("fleet-")
    try:
        code = _run_child(cmd, {"FLEET_SHAPE": "capacity"})
    finally:
        if csms is not None:
            csms.stop()
    if code == 2:
        sys.exit(2)  # Locust said why (a usage error in the child)
    try:
        data = cap.read(out_path)
    except (OSError, ValueError):
        raise click.ClickException("the capacity search measured no step") from None
    finally:
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    result = cap.verdict(data)
    click.echo("")
    click.echo(f"Capacity search against {redact_url(url)}")
    click.echo(cap.table(result.steps))
    for line in result.lines():
        click.echo(line)
    if html_report:
        Path(html_report).write_text(cap.render_html(data, result, redact_url(url)))
    if json_out:
        data["result"] = {
            "largest_passing": result.largest_passing,
            "breaking": result.breaking,
            "broken": [r.as_dict() for r in result.broken],
            "complete": result.complete,
        }
        Path(json_out).write_text(json.dumps(data, indent=2) + "\n")
    sys.exit(0 if result.complete and result.largest_passing is not None else 1)


def _seconds(option: str, text: str, zero_ok: bool = False) -> float:
    """A duration option ('90s', '2m', '0') in seconds, or a one-line usage error."""
    if zero_ok and text.strip() in ("0", "0s"):
        return 0.0
    try:
        return float(parse_duration(text))
    except UsageProblem:
        raise UsageProblem(f"{option}: cannot read {text!r} (use e.g. 30s, 2m)") from None


@cli.command(
    context_settings={"ignore_unknown_options": True, "help_option_names": []},
    add_help_option=False,
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def bench(args: tuple[str, ...]) -> None:
    """Benchmark the engine against a sink CSMS (fleet bench --help; see the README)."""
    from fleet import bench as bench_module

    bench_module.main(list(args), prog="fleet bench")


@cli.group()
def profiles() -> None:
    """List and validate fleet profiles."""


@profiles.command("list")
def profiles_list() -> None:
    """Show the shipped profiles."""
    for path in available():
        try:
            p = load(str(path))
            click.echo(f"{p.name:<16} {p.description}")
        except ProfileError as exc:
            click.echo(f"{path.stem:<16} INVALID: {exc}")


@profiles.command("validate")
@click.argument("files", nargs=-1, required=True)
def profiles_validate(files: tuple[str, ...]) -> None:
    """Check profile files; one line per problem, exit 2 if any."""
    bad = 0
    for name in files:
        try:
            p = load(name)
            click.echo(f"{p.path}: ok")
        except ProfileError as exc:
            click.echo(f"fleet: {exc}", err=True)
            bad += 1
    if bad:
        sys.exit(2)
