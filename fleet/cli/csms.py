"""``fleet csms``: the reference CSMS (the one ``fleet run`` embeds) as a server of its
own, for a fleet on other hosts, ``fleet capacity`` trials and the tests."""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import click

from fleet.cli.options import UsageProblem, run_stations_options
from fleet.cli.prerun import password_check, tag_options
from fleet.engine.security import tls_reason
from fleet.scenarios.profile import ProfileError, load


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=9000, show_default=True)
@click.option("--accept-tag", "accept_tags", multiple=True, help="An idTag to accept (repeatable).")
@click.option("--accept-all", is_flag=True, help="Accept every idTag.")
@click.option(
    "--profile",
    "profile_name",
    help="Accept the id tags of this profile (its per-station tags: of the stations named "
    "by --station-prefix and --stations, as `fleet profiles tags` lists them).",
)
@run_stations_options("With --profile: accept the tags of stations 1..N only (default: any).")
@click.option(
    "--one-transaction-per-tag",
    is_flag=True,
    help="Answer a StartTransaction with ConcurrentTx while its idTag is in a transaction "
    "elsewhere, as many database-backed CSMSs do.",
)
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
    station_prefix: str,
    stations: int | None,
    one_transaction_per_tag: bool,
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
    extra: dict[str, Any] = {"one_transaction_per_tag": one_transaction_per_tag}
    if profile_name:
        try:
            extra.update(tag_options(load(profile_name), station_prefix, stations))
        except ProfileError as exc:
            raise UsageProblem(str(exc)) from None
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
                accepted_tags=accept_tags,
                accept_all_tags=accept_all,
                boot_status=boot_status,
                heartbeat_interval=heartbeat_interval,
                ssl_context=context,
                basic_auth=None if not basic_auth_key else password_check(basic_auth_key),
                service_time=delay_ms / 1000.0,
            )
        )
    except OSError as exc:
        raise UsageProblem(f"cannot listen on {host}:{port} ({exc.strerror or exc})") from None
    except KeyboardInterrupt:
        pass
