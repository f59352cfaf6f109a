"""`pip install` gives a working fleet (issue 14, item 8): the wheel built from this
checkout, installed into a fresh venv, lists the built-in profiles and runs docs/ci.md's
CI command (shrunk to 5 stations for 10 s, against the embedded CSMS) from a directory
outside the checkout: the profiles and traces travel inside the package.

Offline: the dependencies' wheels are built once into a cache (``FLEET_WHEEL_CACHE``,
default ``~/.cache/chargepro-fleet/wheels``; filled through pip's configured index the
first time) and installed from there with ``--no-index``."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(
    os.environ.get("FLEET_WHEEL_CACHE", Path.home() / ".cache" / "chargepro-fleet" / "wheels")
)
PIP = [sys.executable, "-m", "pip", "--disable-pip-version-check"]


def _run(cmd: list[str], cwd: Path | None = None, timeout: float = 300) -> str:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{shlex.join(cmd)}: exit {proc.returncode}\n{proc.stderr}"
    return proc.stdout


def _wheel(tmp_path: Path) -> Path:
    """The wheel of what the checkout holds (copied first: a build writes build/ and
    *.egg-info next to the sources)."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "fleet", src / "fleet", ignore=shutil.ignore_patterns("__pycache__"))
    dist = tmp_path / "dist"
    _run([*PIP, "wheel", "-q", "--no-deps", "-w", str(dist), str(src)])
    (wheel,) = dist.glob("chargepro_fleet-*.whl")
    return wheel


def _ci_command() -> list[str]:
    """docs/ci.md's GitHub Actions `fleet run`, shrunk: the embedded CSMS instead of the
    staging URL, 5 stations for 10 s."""
    text = (ROOT / "docs" / "ci.md").read_text()
    block = re.search(r"^\s*run: \|\n((?:\s+fleet run .*\n)(?:\s+.*\\\n|\s+--.*\n)*)", text, re.M)
    assert block, "docs/ci.md: no GitHub Actions `fleet run` step"
    args = shlex.split(block.group(1).replace("\\\n", " "))
    shrunk = {"--stations": "5", "--spawn-rate": "5", "--duration": "10s"}
    out: list[str] = []
    rest = iter(args)
    for arg in rest:
        if arg == "--csms":
            next(rest)
        elif arg in shrunk:
            next(rest)
            out += [arg, shrunk[arg]]
        else:
            out.append(arg)
    return out


@pytest.mark.slow  # about 20 s with the wheel cache filled
def test_the_wheel_in_a_fresh_venv_runs_the_ci_example_outside_the_checkout(
    tmp_path: Path,
) -> None:
    wheel = _wheel(tmp_path)
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = venv / "bin" / "python"
    install = [*PIP, "--python", str(python), "install", "-q", "--no-index"]
    install += ["--find-links", str(CACHE), str(wheel)]
    if subprocess.run(install, capture_output=True).returncode != 0:
        CACHE.mkdir(parents=True, exist_ok=True)
        _run([*PIP, "wheel", "-q", "-w", str(CACHE), str(wheel)])
        _run(install)
    fleet = str(venv / "bin" / "fleet")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    listed = _run([fleet, "profiles", "list"], cwd=elsewhere)
    assert {"demo", "commuter-depot", "fault-storm"} <= {
        line.split()[0] for line in listed.splitlines()
    }
    # A profile that replays a trace: the trace ships too.
    assert ": ok" in _run([fleet, "profiles", "validate", "commuter-depot"], cwd=elsewhere)

    command = _ci_command()
    assert command[:3] == ["fleet", "run", "--headless"] and "--profile" in command
    _run([fleet, *command[1:]], cwd=elsewhere, timeout=120)
    for report in ("report.html", "summary.json", "report.xml"):
        assert (elsewhere / report).stat().st_size > 0, report
