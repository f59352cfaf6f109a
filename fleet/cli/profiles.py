"""``fleet profiles``: list the shipped profiles, validate profile files."""

from __future__ import annotations

import sys

import click

from fleet.scenarios.profile import ProfileError, available, load


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
