"""``fleet profiles``: list the shipped profiles, validate profile files, export the idTags
a run uses (to provision a CSMS before it)."""

from __future__ import annotations

import csv
import sys

import click

from fleet.cli.options import UsageProblem, run_stations_options
from fleet.scenarios.profile import ProfileError, available, load, station_id


@click.group()
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


@profiles.command("tags")
@click.argument("name")
@run_stations_options("How many stations the run has.", required=True)
@click.option(
    "--output",
    "-o",
    type=click.File("w"),
    default="-",
    help="Write the CSV here (default: standard output).",
)
def profiles_tags(
    name: str, stations: int, station_prefix: str, output: click.utils.LazyFile
) -> None:
    """The idTags a run of profile NAME with this many stations badges with, as CSV
    (station_id, id_tag, parent_id_tag): the list a CSMS needs before the run. A shared
    pool's tags have no station (any station badges any of them)."""
    try:
        profile = load(name)
    except ProfileError as exc:
        raise UsageProblem(str(exc)) from None
    identities = (station_id(station_prefix, n) for n in range(1, stations + 1))
    writer = csv.writer(output, lineterminator="\n")
    writer.writerow(("station_id", "id_tag", "parent_id_tag"))
    writer.writerows(profile.id_tags.listing(identities))
