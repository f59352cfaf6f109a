"""The Locust child process of ``fleet run`` and ``fleet capacity``.

Locust runs as a child with the fleet's locustfile: gevent's monkey-patching stays out
of the CLI's process, which hosts the embedded reference CSMS (an asyncio thread) and
reads its ledger after the run. The CLI never imports Locust (tests/test_layers.py).
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

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
    """``python -m fleet.locust`` (Locust's command line) with the fleet's locustfile and
    the options every run has."""
    cmd = [
        sys.executable, "-m", "fleet.locust", "-f", str(LOCUSTFILE), "--host", url,
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
    """Run ``cmd`` to its end under :class:`Interrupts`; a run stopped by SIGINT or
    SIGTERM returns 130 / 143 (128 + the signal), as shells expect."""
    with Interrupts() as interrupts:
        code = interrupts.run(cmd, extra_env)
    return interrupts.exit_code(code)


class Interrupts:
    """SIGINT (Ctrl-C) and SIGTERM while ``fleet`` runs: the first one is remembered and
    passed on to the Locust child as SIGINT (Locust then stops the stations, writes its
    reports and tells its workers to quit); a second one, or a child still running
    ``grace`` seconds later, ends the child's whole process group (master and every
    worker) with SIGKILL. The child runs in a process group of its own so that nothing
    it forked outlives the run, and Ctrl-C in a terminal reaches only this process,
    which decides. No KeyboardInterrupt traceback: the caller asks :attr:`received`."""

    def __init__(self, grace: float = 20.0) -> None:
        self.grace = grace
        self.received: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._previous: dict[int, Any] = {}

    def install(self) -> Interrupts:
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __enter__(self) -> Interrupts:
        return self.install()

    def __exit__(self, *_: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    @property
    def name(self) -> str:
        return "" if self.received is None else signal.Signals(self.received).name

    def exit_code(self, code: int) -> int:
        return code if self.received is None else 128 + self.received

    def _handle(self, signum: int, _frame: object) -> None:
        if self.received is None:
            self.received = signum
            sys.stderr.write(f"fleet: {signal.Signals(signum).name}: stopping the run\n")
            if self._proc is not None:
                _signal_pid(self._proc.pid, signal.SIGINT)
        elif self._proc is not None:
            sys.stderr.write("fleet: second signal: killing the Locust processes\n")
            _kill_group(self._proc.pid)

    def run(self, cmd: list[str], extra_env: dict[str, str] | None = None) -> int:
        """Run ``cmd`` to its end (or, after a signal, until it stopped); its exit code.
        Nothing of its process group is left afterwards."""
        if self.received is not None:  # interrupted before the child started
            return 128 + self.received
        env = dict(os.environ)
        env.setdefault("PYTHONUNBUFFERED", "1")
        env.update(extra_env or {})
        # stdin: Locust's keyboard controls would stop a background process group that
        # touches the terminal (SIGTTOU); the run is steered through this process.
        self._proc = subprocess.Popen(
            cmd, env=env, stdin=subprocess.DEVNULL, start_new_session=True
        )
        if self.received is not None:  # a signal between the two lines above
            _signal_pid(self._proc.pid, signal.SIGINT)
        deadline = None
        exited = _ExitWatch(self._proc.pid)
        try:
            while True:
                try:
                    step = WAIT_STEP if self.received is not None else IDLE_STEP
                    code = exited.wait(self._proc, step)
                    break
                except subprocess.TimeoutExpired:
                    # (a blocking wait would be resumed after the handler ran, so the
                    # grace period is checked between short waits)
                    if self.received is None:
                        continue
                    if deadline is None:
                        deadline = time.monotonic() + self.grace
                    elif time.monotonic() > deadline:
                        sys.stderr.write(
                            f"fleet: Locust did not stop within {self.grace:.0f} s: killed\n"
                        )
                        _kill_group(self._proc.pid)
        finally:
            exited.close()
            # Workers the master did not take down (or a master killed above) go too.
            _kill_group(self._proc.pid)
            self._proc.wait()
        return code


WAIT_STEP = 0.2
"""Seconds between two looks at a signal's grace period while the child stops."""
IDLE_STEP = 1.0
"""The same before any signal (the handler signals the child at once; only the grace
period's start may be noticed this late)."""


class _ExitWatch:
    """Waits for the child's exit in one system call (``poll`` on a pidfd).

    ``Popen.wait(timeout)`` polls every 50 ms: those wake-ups cost the CLI process
    ~4 ms of CPU a second for the whole run (issue 16: what a run costs besides the
    stations). Without pidfds (not Linux, old kernels) it is what waits."""

    def __init__(self, pid: int) -> None:
        self.fd: int | None = None
        try:
            self.fd = os.pidfd_open(pid)
        except (AttributeError, OSError):
            return
        self.poller = select.poll()
        self.poller.register(self.fd, select.POLLIN)

    def wait(self, proc: subprocess.Popen[Any], seconds: float) -> int:
        """The exit code, or TimeoutExpired after ``seconds`` (a signal's handler runs
        meanwhile; PEP 475 resumes the wait after it)."""
        if self.fd is None:
            return proc.wait(timeout=seconds)
        self.poller.poll(seconds * 1000)
        return proc.wait(timeout=0)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _signal_pid(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
