"""``fleet``: run a Charge Pro fleet against a CSMS, or serve the reference CSMS.

One module per command; what several share sits beside them:

``run``       ``fleet run``: a fleet, headless (CI) or in the Locust web UI
``capacity``  ``fleet capacity``: the largest fleet a CSMS holds
``csms``      ``fleet csms``: the reference CSMS as a server
``profiles``  ``fleet profiles list|validate``
``bench``     ``fleet bench`` and ``fleet soak`` (the tools of :mod:`fleet.bench`)
``options``   the usage error, durations, SLOs, the options of ``run`` and ``capacity``
``prerun``    the checks before any station starts; the embedded CSMS's start-up
``child``     the Locust child process (Locust is never imported here)

Every user mistake ends in one line on stderr and exit 2.
"""

from __future__ import annotations

import sys

import click

from fleet.cli.bench import bench, soak
from fleet.cli.capacity import capacity
from fleet.cli.csms import csms
from fleet.cli.profiles import profiles
from fleet.cli.run import run


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="chargepro-fleet")
def cli() -> None:
    """Simulated Schneider Charge Pro stations (OCPP 1.6J) to load-test a CSMS."""


for _command in (run, capacity, csms, profiles, bench, soak):
    cli.add_command(_command)


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
