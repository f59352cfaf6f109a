"""The Locust child process of ``fleet run`` and ``fleet capacity``.

Locust runs as a child with the fleet's locustfile: gevent's monkey-patching stays out
of the CLI's process, which hosts the embedded reference CSMS (an asyncio thread) and
reads its ledger after the run. The CLI never imports Locust (tests/test_layers.py).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from fleet.engine.security import TlsSettings
from fleet.scenarios.profile import Profile

LOCUSTFILE = Path(__file__).resolve().parents[1] / "locust" / "locustfile.py"


def locust_command(
    url: str,
    profile: Profile,
    station_prefix: str,
    users: int,
    spawn_rate: float,
    seed: int | None,
    no_validate: bool,
    tls: TlsSettings,
) -> list[str]:
    """``python -m locust`` with the fleet's locustfile and the options every run has."""
    cmd = [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--host", url,
        "--fleet-profile", str(profile.path), "--fleet-station-prefix", station_prefix,
        "--users", str(users), "--spawn-rate", str(spawn_rate),
    ]  # fmt: skip
    if seed is not None:
        cmd += ["--fleet-seed", str(seed)]
    if no_validate:
        cmd += ["--fleet-no-validate"]
    return cmd + tls.as_options("fleet-")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_child(cmd: list[str], extra_env: dict[str, str] | None = None) -> int:
    """Run ``cmd`` to its end; Ctrl-C is passed on to it (Locust then writes its summary),
    and a child that does not stop within 15 s is killed."""
    env = dict(os.environ)
    env.setdefault("PYTHONUNBUFFERED", "1")
    env.update(extra_env or {})
    proc = subprocess.Popen(cmd, env=env)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.send_signal(signal.SIGINT)
        try:
            return proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            return 130
