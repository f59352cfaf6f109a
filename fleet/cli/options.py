"""What every command reads the same way: the one-line usage error, durations, SLOs,
and the options of the commands that run stations (``run`` and ``capacity``),
declared once."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

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


def duration_seconds(option: str, text: str, zero_ok: bool = False) -> float:
    """A duration option ('90s', '2m', '0') in seconds, or a one-line usage error."""
    if zero_ok and text.strip() in ("0", "0s"):
        return 0.0
    try:
        return float(parse_duration(text))
    except UsageProblem:
        raise UsageProblem(f"{option}: cannot read {text!r} (use e.g. 30s, 2m)") from None


def parse_slos(texts: tuple[str, ...]) -> list[Any]:
    """Every --slo read before anything starts: a bad one is a one-line usage error."""
    from fleet.reports.slo import SloError, parse_all

    try:
        return parse_all(texts)
    except SloError as exc:
        raise UsageProblem(str(exc)) from None


def station_options(
    *,
    spawn_rate: float,
    spawn_rate_help: str,
    slo_help: str,
    slo_required: bool = False,
    html_help: str,
) -> Callable[[F], F]:
    """The options of a command that runs stations against a CSMS: where (``--csms``),
    which (``--profile``, ``--station-prefix``, ``--seed``, ``--no-validate``), how fast,
    with which TLS, under which thresholds, and where the HTML report goes. What differs
    between ``run`` and ``capacity`` (the spawn rate's default, whether an SLO is
    required, what the HTML report is) comes in as arguments."""
    options = [
        click.option(
            "--csms",
            "csms_url",
            metavar="URL",
            help="CSMS websocket base URL; stations connect to URL/<id>. "
            "Default: the embedded reference CSMS.",
        ),
        click.option(
            "--profile",
            "profile_name",
            default="demo",
            show_default=True,
            help="Profile name (profiles/) or YAML path.",
        ),
        click.option(
            "--spawn-rate",
            "-r",
            type=click.FloatRange(min=0.01),
            default=spawn_rate,
            show_default=True,
            help=spawn_rate_help,
        ),
        click.option("--seed", type=int, default=None, help="Seed for reproducible runs."),
        click.option(
            "--station-prefix", default="CP", show_default=True, help="Station id prefix."
        ),
        click.option(
            "--no-validate", is_flag=True, help="Skip OCPP schema validation in the stations."
        ),
        click.option(
            "--ca-file",
            metavar="PEM",
            help="CA certificate(s) that sign the CSMS's certificate (wss://); "
            "default: the system store.",
        ),
        click.option(
            "--client-cert",
            metavar="PEM",
            help="Client certificate for SecurityProfile 3 (mutual TLS); '{id}' in the path "
            "is replaced by the station id.",
        ),
        click.option(
            "--client-key",
            metavar="PEM",
            help="Private key of --client-cert if not in the same file; '{id}' as there.",
        ),
        click.option(
            "--insecure",
            is_flag=True,
            help="Do not verify the CSMS's TLS certificate (testing only; prints a warning).",
        ),
        click.option(
            "--slo",
            "slo_texts",
            multiple=True,
            required=slo_required,
            metavar="EXPR",
            help=slo_help,
        ),
        click.option("--html", "html_report", type=click.Path(dir_okay=False), help=html_help),
    ]

    def decorate(command: F) -> F:
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


def run_stations_options(stations_help: str, required: bool = False) -> Any:
    """``--station-prefix`` and ``--stations`` of a run, for the commands that work out
    its per-station tags (``fleet profiles tags``, ``fleet csms --profile``)."""

    def decorate(command: Any) -> Any:
        command = click.option(
            "--stations",
            "-u",
            type=click.IntRange(min=1),
            required=required,
            default=None,
            help=stations_help,
        )(command)
        return click.option(
            "--station-prefix",
            default="CP",
            show_default=True,
            help="The run's --station-prefix (station ids PREFIX00001 ...).",
        )(command)

    return decorate
