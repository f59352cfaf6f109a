"""The main knobs are Locust custom arguments shown in the web UI's start form."""

from __future__ import annotations

import os
import subprocess
import sys

WEB_UI = {
    "fleet_profile",
    "fleet_seed",
    "fleet_time_compression",
    "fleet_offline_share",
    "fleet_fault_rate",
}


def _run(code: str, **env: str) -> str:
    """In a subprocess: importing Locust would monkey-patch this test process (gevent)."""
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env},
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_main_knobs_are_in_the_web_ui_form() -> None:
    out = _run(
        "from locust.argument_parser import LocustArgumentParser\n"
        "from fleet.locust import bridge\n"
        "parser = LocustArgumentParser()\n"
        "bridge.add_arguments(parser)\n"
        "print(' '.join(sorted(parser.args_included_in_web_ui)))\n"
        "print(bridge._int_or_none(''), bridge._int_or_none('7'), bridge._float_or_none('144'),"
        " bridge._float_or_none('-1'), bridge._float_or_none(None))\n"
    )
    shown_line, conversions = out.splitlines()
    shown = set(shown_line.split())
    assert shown >= WEB_UI
    # Start-up configuration (TLS, metrics port) stays off the form.
    assert not {"fleet_ca_file", "fleet_insecure", "fleet_metrics_port"} & shown
    # The web form's strings; -1 / empty mean "the profile's".
    assert conversions == "None 7 144.0 None None"


def _exported_shapes(value: str) -> str:
    return _run(
        "import fleet.locust.locustfile as lf; "
        "print(sorted(n for n in vars(lf) if n.endswith('Shape')))",
        FLEET_SHAPE=value,
    )


def test_shapes_are_exported_only_on_request() -> None:
    # Locust runs the first shape class a locustfile exports: none unless asked for.
    assert _exported_shapes("") == "[]"
    assert _exported_shapes("boot-storm") == "['BootStormShape']"
    assert _exported_shapes("all") == "['BootStormShape', 'RampShape', 'StepsShape']"
