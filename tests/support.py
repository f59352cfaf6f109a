"""Helpers shared by the tests: every wait in a test is bounded."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from fleet.scenarios.profile import ProfileError, load

HANG_GUARD = 120.0
"""Seconds a whole asyncio scenario may take before it counts as hung: a guard, not a
speed limit (some take 25 s on a machine whose cores are busy; every wait inside one is
bounded on its own)."""


async def until(check: Callable[[], Any], timeout: float = 5.0, what: str = "") -> Any:
    """Poll ``check`` until it returns something truthy (returned), or fail after
    ``timeout`` seconds: every wait in a test is bounded."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = check()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}")
        await asyncio.sleep(0.02)


def wait_until(check: Callable[[], Any], timeout: float = 5.0, what: str = "") -> Any:
    """:func:`until` for tests without an event loop (polling real processes)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what or check}")
        time.sleep(0.1)


def master_waiting(log: Path, master: subprocess.Popen[Any]) -> Callable[[], bool]:
    """For a wait: a Locust master started with ``--expect-workers`` logged that it waits
    for its workers (or it ended, which the caller then reports)."""
    return lambda: "Waiting for workers" in log.read_text() or master.poll() is not None


def assert_profile_error(tmp_path: Path, body: str, line: int, field: str, needle: str) -> None:
    """Loading a profile with ``body`` fails in one line: ``file:line: field: message``
    where the message matches ``needle``."""
    path = tmp_path / "bad.yaml"
    path.write_text(body)
    with pytest.raises(ProfileError, match=needle) as info:
        load(str(path))
    message = str(info.value)
    assert message.startswith(f"{path}:{line}: {field}: "), message
    assert "\n" not in message


@contextmanager
def fleet_web(
    args: list[str],
    port: int,
    log_path: Path,
    timeout: float = 60,
    env: dict[str, str] | None = None,
) -> Iterator[str]:
    """``fleet run --web --web-port PORT ARGS`` in its own process group, logging to
    ``log_path`` (``env``: extra environment); yields the web UI's base URL once it
    answers (bounded), and stops the group afterwards with SIGTERM (Locust stops its
    users: the stations close cleanly)."""
    log = log_path.open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "fleet", "run", "--web", "--web-port", str(port), *args],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: `fleet run` and its locust child
        env={**os.environ, **(env or {})},
    )
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"fleet run exited: {log_path.read_text()[-2000:]}")
        try:
            urllib.request.urlopen(base + "/", timeout=5).read()
        except OSError:
            return False
        return True

    try:
        wait_until(up, timeout, "the web UI")
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
        log.close()
