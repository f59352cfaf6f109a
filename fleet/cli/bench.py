"""``fleet bench`` and ``fleet soak``: the measuring tools of :mod:`fleet.bench`, behind the
``fleet`` command. Their options are their own (argparse; ``fleet bench --help``), so
click passes every argument through untouched, ``--help`` included."""

from __future__ import annotations

import sys

import click

_PASS_THROUGH = {"ignore_unknown_options": True, "help_option_names": []}


@click.command(context_settings=_PASS_THROUGH, add_help_option=False)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def bench(args: tuple[str, ...]) -> None:
    """Benchmark the engine against a sink CSMS (fleet bench --help; see the README)."""
    from fleet.bench import benchmark

    benchmark.main(list(args), prog="fleet bench")


@click.command(context_settings=_PASS_THROUGH, add_help_option=False)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def soak(args: tuple[str, ...]) -> None:
    """Run a fleet for a long time and watch it for leaks (fleet soak --help)."""
    from fleet.bench import soak as soak_module

    sys.exit(soak_module.main(list(args), prog="fleet soak"))
