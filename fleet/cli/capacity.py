"""``fleet capacity``: the largest fleet a CSMS holds. The fleet steps up (``--start``,
``+ --step`` ... ``--max``) in one Locust child run until a step breaks an SLO; the plan,
the verdict and the HTML report are :mod:`fleet.reports.capacity`'s."""

from __future__ import annotations

import json
import shutil
import signal
import sys
import tempfile
from pathlib import Path

import click

from fleet.cli.child import locust_command, run_child
from fleet.cli.options import UsageProblem, duration_seconds, parse_slos, station_options
from fleet.cli.prerun import check_open_files, checked_setup, open_csms
from fleet.engine.security import TlsSettings, redact_url
from fleet.reports import capacity as cap


@click.command()
@station_options(
    spawn_rate=50.0,
    spawn_rate_help="Stations brought online per second at each step.",
    slo_help="A threshold every step must hold, e.g. 'Heartbeat.p95 < 500ms' (repeatable).",
    slo_required=True,
    html_help="Write the HTML report here.",
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
    "--json",
    "json_out",
    type=click.Path(dir_okay=False),
    help="Write the steps and the answer as JSON here.",
)
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
    parse_slos(slo_texts)  # every --slo read before anything starts
    first = start if start is not None else step
    if maximum < first:
        raise UsageProblem(f"--max {maximum} is below the first step ({first})")
    hold_s = duration_seconds("--hold", hold)
    settle_s = (
        cap.default_settle(hold_s, step, spawn_rate)
        if settle is None
        else duration_seconds("--settle", settle, zero_ok=True)
    )
    if settle_s >= hold_s:
        raise UsageProblem(f"--settle ({settle_s:g}s) must be shorter than --hold ({hold_s:g}s)")
    if csms_url is not None and csms_delay_ms:
        raise UsageProblem("--csms-delay-ms is for the embedded CSMS (not with --csms)")
    tls = TlsSettings(ca_file, client_cert, client_key, insecure)
    profile = checked_setup(profile_name, station_prefix, csms_url, tls)
    check_open_files(maximum, embedded=csms_url is None)

    sizes = cap.sizes(first, step, maximum)
    work = Path(tempfile.mkdtemp(prefix="fleet-capacity-"))
    plan_path, out_path = work / "plan.json", work / "steps.json"
    plan_path.write_text(json.dumps(cap.plan(sizes, hold_s, settle_s, spawn_rate, slo_texts)))

    csms, url = open_csms(
        profile,
        csms_url,
        tls,
        station_prefix,
        maximum,
        heartbeat_interval=int(profile.config.get("HeartbeatInterval", 60)),
        service_time=csms_delay_ms / 1000.0,
    )
    click.echo(
        f"fleet: capacity search over {len(sizes)} steps ({sizes[0]}..{sizes[-1]} stations), "
        f"{hold_s:g}s each, measured after {settle_s:g}s; at most {len(sizes) * hold_s:g}s",
        err=True,
    )
    cmd = locust_command(url, profile, station_prefix, maximum, spawn_rate, seed, no_validate, tls)
    cmd += ["--headless", "--only-summary", "--exit-code-on-error", "0"]
    cmd += ["--fleet-capacity-plan", str(plan_path), "--fleet-capacity-out", str(out_path)]
    try:
        code = run_child(cmd, {"FLEET_SHAPE": "capacity"})
    finally:
        if csms is not None:
            csms.stop()
    if code == 2:
        sys.exit(2)  # Locust said why (a usage error in the child)
    # Stopped by SIGINT / SIGTERM (run_child: 128 + the signal): the steps measured so far
    # are still printed and written, and the exit code says the search was cut short.
    interrupted = code in (128 + signal.SIGINT, 128 + signal.SIGTERM)
    try:
        data = cap.read(out_path)
    except (OSError, ValueError):
        if interrupted:
            click.echo("fleet: capacity search interrupted before a step was measured", err=True)
            sys.exit(code)
        raise click.ClickException("the capacity search measured no step") from None
    finally:
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
            "no_data_at": result.unmeasured,
            "no_data": [r.as_dict() for r in result.no_data],
        }
        Path(json_out).write_text(json.dumps(data, indent=2) + "\n")
    if interrupted:
        click.echo(
            "fleet: capacity search interrupted: the steps above are all it measured", err=True
        )
        sys.exit(code)
    sys.exit(result.exit_code)
