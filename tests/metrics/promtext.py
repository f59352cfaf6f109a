"""Reading a /metrics page in tests (prometheus_client's own parser)."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

Samples = dict[str, list[tuple[dict[str, str], float]]]


def scrape(url: str, timeout: float = 5.0) -> Samples:
    """Every sample of the page, by sample name (``fleet_ocpp_messages_total``, ...)."""
    out: Samples = {}
    for family in text_string_to_metric_families(fetch(url, timeout)):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return out


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of a sample's values over the series matching ``labels``."""
    return sum(
        value
        for have, value in samples.get(name, [])
        if all(have.get(k) == v for k, v in labels.items())
    )


PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None,
    reason="needs promtool (Debian's prometheus package; .ci/run installs it)",
)


def fetch(url: str, timeout: float = 5.0) -> str:
    """The /metrics page as text, as a scraper gets it."""
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return str(resp.read().decode())


def promtool_check(text: str) -> str:
    """Run the real ``promtool check metrics`` on an exposition; fail with its output.

    promtool parses with Prometheus' own text parser (a second HELP or TYPE line for a
    family is an error there, though prometheus_client's parser lets it pass) and lints
    the names (``_total`` on counters, base units)."""
    assert PROMTOOL is not None
    proc = subprocess.run(
        [PROMTOOL, "check", "metrics"],
        input=text.encode(),
        capture_output=True,
        timeout=30,
    )
    output = (proc.stdout + proc.stderr).decode()
    assert proc.returncode == 0, f"promtool check metrics:\n{output}"
    return output


def families(text: str) -> dict[str, int]:
    """Family name -> number of samples, from the ``# TYPE`` lines of an exposition."""
    out: dict[str, int] = {}
    for family in text_string_to_metric_families(text):
        out[family.name] = len(family.samples)
    return out


def fleet_run(stations: int, seconds: float, profile: str, *extra: str) -> list[str]:
    """The command line of a headless ``fleet run`` (all stations spawned in a second)."""
    return [
        sys.executable,
        "-m",
        "fleet",
        "run",
        "--headless",
        "--stations",
        str(stations),
        "--spawn-rate",
        str(stations),
        "--duration",
        f"{seconds:g}s",
        "--profile",
        profile,
        *extra,
    ]


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    """Ask a process to end, and kill it if it does not within 15 s."""
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)
