"""`make test` gets what the integration tests need (issue 14, item 15): Debian's
prometheus, chromium and chromium-driver are installed when missing and make runs as
root with apt-get; otherwise it names the tests that will skip. ``.ci/run`` is just
`make test`. apt-get itself is not run here: a stand-in records what make asks of it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MISSING = ["PROMETHEUS=no-such-prometheus", "CHROMIUM=/nonexistent", "CHROMEDRIVER=/nonexistent"]

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


def make(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "-s", "-C", str(ROOT), *args], capture_output=True, text=True, timeout=60
    )


def test_as_root_with_apt_get_the_missing_tools_are_installed(tmp_path: Path) -> None:
    log = tmp_path / "apt.log"
    apt = tmp_path / "apt-get"
    apt.write_text(f'#!/bin/sh\necho "$*" >> {log}\n')
    apt.chmod(0o755)
    proc = make("test-tools", *MISSING, f"APT_GET={apt}", "AS_ROOT=yes")
    assert proc.returncode == 0, proc.stderr
    assert "installing prometheus chromium chromium-driver" in proc.stdout
    assert log.read_text().splitlines() == [
        "update -qq",
        "install -y -qq --no-install-recommends prometheus chromium chromium-driver",
    ]


def test_without_root_it_names_the_tests_that_will_skip() -> None:
    proc = make("test-tools", *MISSING, "AS_ROOT=")
    assert proc.returncode == 0, proc.stderr
    assert "missing prometheus chromium chromium-driver" in proc.stdout
    assert "tests/metrics/test_prometheus.py will SKIP" in proc.stdout
    assert "tests/e2e/test_fleet_tab.py will SKIP" in proc.stdout


def test_make_test_gets_the_tools_before_pytest_and_ci_runs_make_test() -> None:
    plan = subprocess.run(
        ["make", "-n", "-C", str(ROOT), "test"], capture_output=True, text=True, timeout=60
    ).stdout
    assert 0 <= plan.index("--no-install-recommends") < plan.index("pytest")
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci and "apt-get install" not in ci
